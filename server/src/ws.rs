//! The WebSocket route: one socket per browser tab, carrying a subscription, batches of lines,
//! engine and service status, and errors. The protocol is in docs/PROTOCOL.md.

use std::sync::Arc;

use app::protocol::{
    ClientMessage, ErrorCode, HistoryStatus, Lifecycle, LogLine, ServerMessage, ServiceKey,
    TailOverLimit, CLOSE_SESSION_ENDED, PROTOCOL_VERSION,
};
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::watch;

use crate::auth::{Auth, SocketCounts, Viewer};
use crate::config::Config;
use crate::hub::{line_bytes, Batch, Delivery, Hub, HubError, Start, Subscription};
use crate::origin;

/// What the socket route needs.
#[derive(Clone)]
pub struct SocketState {
    pub hub: Hub,
    pub config: Arc<Config>,
    pub auth: Arc<Auth>,
    pub sockets: Arc<SocketCounts>,
    /// Becomes true when the server is asked to stop.
    pub shutdown: watch::Receiver<bool>,
}

pub async fn route(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    State(state): State<SocketState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    if let Err(refused) = origin::check(&headers, &state.config.allowed_origins) {
        tracing::warn!(%refused, "WebSocket upgrade refused");
        return (StatusCode::FORBIDDEN, refused.to_string()).into_response();
    }
    let most = state.config.max_sockets_per_user;
    let Some(slot) = state.sockets.take(viewer.limit_key(), most as usize) else {
        let who = viewer.limit_key();
        tracing::warn!(%who, "WebSocket refused: too many open");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!("WebSocket refused: {who} already has {most} open (--max-sockets-per-user); close one"),
        )
            .into_response();
    };
    let max = state.config.max_message_bytes as usize;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            serve(socket, state, viewer).await;
            drop(slot);
        })
}

/// A `lines` message, serialised straight from the hub's shared lines without copying them.
#[derive(Serialize)]
#[serde(tag = "type", rename = "lines")]
struct LinesOut<'a> {
    project: &'a str,
    service: &'a str,
    lines: Vec<&'a LogLine>,
}

type Sink = SplitSink<WebSocket, Message>;

/// Why the socket loop ended.
struct Closed;

async fn send_json<T: Serialize>(tx: &mut Sink, msg: &T) -> Result<(), Closed> {
    let text = serde_json::to_string(msg).map_err(|_| Closed)?;
    tx.send(Message::Text(text.into()))
        .await
        .map_err(|_| Closed)
}

/// Sends lines as `lines` messages of at most a batch each (a line larger than a batch's
/// bytes goes alone).
async fn send_lines(
    tx: &mut Sink,
    key: &ServiceKey,
    lines: &[Arc<LogLine>],
    batch: Batch,
) -> Result<(), Closed> {
    let mut rest = lines;
    while !rest.is_empty() {
        let mut bytes = 0;
        let n = rest
            .iter()
            .take(batch.lines)
            .take_while(|l| {
                bytes += line_bytes(l);
                bytes <= batch.bytes
            })
            .count()
            .max(1);
        let (chunk, after) = rest.split_at(n);
        let msg = LinesOut {
            project: &key.project,
            service: &key.service,
            lines: chunk.iter().map(|l| l.as_ref()).collect(),
        };
        send_json(tx, &msg).await?;
        rest = after;
    }
    Ok(())
}

/// Sends the backlog with the changes in their places among the lines, as a live viewer got
/// them. `markers` are in time order.
async fn send_backlog(
    tx: &mut Sink,
    key: &ServiceKey,
    lines: &[Arc<LogLine>],
    markers: &[Arc<Lifecycle>],
    batch: Batch,
) -> Result<(), Closed> {
    let mut rest = lines;
    for m in markers {
        let at = m.ts_ns;
        let (before, after) = rest.split_at(rest.partition_point(|l| l.cursor.ts_ns <= at));
        send_lines(tx, key, before, batch).await?;
        send_json(
            tx,
            &ServerMessage::Lifecycle {
                project: key.project.clone(),
                service: key.service.clone(),
                change: m.as_ref().clone(),
            },
        )
        .await?;
        rest = after;
    }
    send_lines(tx, key, rest, batch).await
}

async fn send_error(tx: &mut Sink, code: ErrorCode, message: String) -> Result<(), Closed> {
    send_json(tx, &ServerMessage::Error { code, message }).await
}

/// Reads a client message, telling apart what is not a message at all (`bad_message`) from a
/// known message with a field out of bounds (`bad_request`).
fn read_message(text: &str) -> Result<ClientMessage, (ErrorCode, String)> {
    const KNOWN: [&str; 2] = ["subscribe", "unsubscribe"];
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| (ErrorCode::BadMessage, format!("not JSON: {e}")))?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            (
                ErrorCode::BadMessage,
                "a message is a JSON object with a \"type\" field".to_owned(),
            )
        })?;
    if !KNOWN.contains(&kind.as_str()) {
        let kind: String = kind.chars().take(50).collect();
        return Err((
            ErrorCode::BadMessage,
            format!("unknown message type {kind:?}; expected one of {KNOWN:?}"),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| (ErrorCode::BadRequest, format!("bad {kind} message: {e}")))
}

async fn next_delivery(sub: &mut Option<Subscription>, batch: Batch) -> Delivery {
    match sub {
        Some(s) => s.next(batch).await,
        None => std::future::pending().await,
    }
}

/// The next change in whether history is kept; never, when it is off (or its writer is gone).
async fn history_changed(
    status: &mut Option<watch::Receiver<HistoryStatus>>,
) -> Option<HistoryStatus> {
    if let Some(s) = status {
        if s.changed().await.is_ok() {
            return Some(s.borrow_and_update().clone());
        }
    }
    std::future::pending().await
}

async fn serve(socket: WebSocket, state: SocketState, viewer: Viewer) {
    let (mut tx, mut rx) = socket.split();
    let mut session = Session {
        tx: &mut tx,
        state: &state,
        viewer: &viewer,
        sub: None,
    };
    let _ = session.run(&mut rx).await;
}

/// One open socket: what it may see, and what it follows.
struct Session<'a> {
    tx: &'a mut Sink,
    state: &'a SocketState,
    viewer: &'a Viewer,
    sub: Option<Subscription>,
}

/// What the socket loop does next.
enum Next {
    Go,
    Stop,
}

impl Session<'_> {
    async fn run(&mut self, rx: &mut SplitStream<WebSocket>) -> Result<(), Closed> {
        let hub = &self.state.hub;
        let batch = hub.config().batch;
        let mut engine = hub.engine().status();
        let mut services = hub.services();
        let mut shutdown = self.state.shutdown.clone();

        let mut history = self.state.hub.history().map(|h| h.health().status());
        let hello = ServerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            engine: engine.borrow_and_update().clone(),
            history: history.as_mut().map(|h| h.borrow_and_update().clone()),
        };
        send_json(self.tx, &hello).await?;
        let projects = self.viewer.scope.filter(&services.borrow_and_update());
        send_json(self.tx, &ServerMessage::Services { projects }).await?;

        let mut session_check = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = session_check.tick() => {
                    if !self.signed_in() {
                        return self.close(CLOSE_SESSION_ENDED, "session ended or token removed: sign in again").await;
                    }
                }
                msg = rx.next() => {
                    if let Next::Stop = self.on_message(msg).await? {
                        return Ok(());
                    }
                }
                delivery = next_delivery(&mut self.sub, batch) => self.deliver(delivery, batch).await?,
                Ok(()) = engine.changed() => {
                    let status = engine.borrow_and_update().clone();
                    send_json(self.tx, &ServerMessage::Engine { engine: status }).await?;
                }
                Some(history) = history_changed(&mut history) => {
                    send_json(self.tx, &ServerMessage::History { history }).await?;
                }
                Ok(()) = services.changed() => {
                    let projects = self.viewer.scope.filter(&services.borrow_and_update());
                    send_json(self.tx, &ServerMessage::Services { projects }).await?;
                }
                _ = shutdown.changed() => {
                    return self.close(close_code::AWAY, "server shutting down").await;
                }
            }
        }
    }

    /// Whether the viewer's session or token still holds.
    fn signed_in(&self) -> bool {
        self.state.auth.still_holds(self.viewer)
    }

    async fn close(&mut self, code: u16, reason: &'static str) -> Result<(), Closed> {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.tx.send(Message::Close(Some(frame))).await;
        Ok(())
    }

    async fn on_message(
        &mut self,
        msg: Option<Result<Message, axum::Error>>,
    ) -> Result<Next, Closed> {
        let text = match msg {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(Next::Stop),
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                let why = "binary messages are not understood; send JSON text";
                send_error(self.tx, ErrorCode::BadMessage, why.into()).await?;
                return Ok(Next::Go);
            }
            Some(Ok(_)) => return Ok(Next::Go),
        };
        match read_message(&text) {
            Err((code, message)) => send_error(self.tx, code, message).await?,
            Ok(ClientMessage::Unsubscribe) => {
                self.sub = None;
                send_json(self.tx, &ServerMessage::Unsubscribed).await?;
            }
            Ok(ClientMessage::Subscribe {
                project,
                service,
                tail,
                resume,
            }) => {
                let key = ServiceKey { project, service };
                let most = self.state.config.max_tail_lines;
                let start = match resume {
                    Some(cursors) => Start::Resume(cursors),
                    None if tail.get() > most => {
                        let over = TailOverLimit {
                            most,
                            got: tail.get(),
                        };
                        send_error(self.tx, ErrorCode::BadRequest, over.to_string()).await?;
                        return Ok(Next::Go);
                    }
                    None => Start::Tail(tail.get()),
                };
                self.subscribe(key, start).await?;
            }
        }
        Ok(Next::Go)
    }

    /// A subscribe that fails leaves the old subscription as it was; one that succeeds ends
    /// it before `subscribed`, so no line of the old service follows that message.
    async fn subscribe(&mut self, key: ServiceKey, start: Start) -> Result<(), Closed> {
        let hub = &self.state.hub;
        let mut s = match hub.subscribe(key.clone(), &self.viewer.scope, start).await {
            Ok(s) => s,
            Err(HubError::UnknownService(e)) => {
                return send_error(self.tx, ErrorCode::UnknownService, e.to_string()).await;
            }
            Err(HubError::Engine(e)) => {
                return send_error(self.tx, ErrorCode::EngineUnreachable, e.to_string()).await;
            }
        };
        drop(self.sub.take());
        let subscribed = ServerMessage::Subscribed {
            project: key.project.clone(),
            service: key.service.clone(),
            containers: s.containers.clone(),
        };
        send_json(self.tx, &subscribed).await?;
        if s.lost > 0 {
            send_json(self.tx, &ServerMessage::Dropped { count: s.lost }).await?;
        }
        if let Some(e) = s.unread.take() {
            let message = format!(
                "the lines since this view was last connected could not all be read, so some \
                 are missing before the ones that follow: {e}"
            );
            send_error(self.tx, ErrorCode::LinesUnread, message).await?;
        }
        let backlog = std::mem::take(&mut s.backlog);
        let markers = std::mem::take(&mut s.markers);
        send_backlog(self.tx, &key, &backlog, &markers, hub.config().batch).await?;
        self.sub = Some(s);
        Ok(())
    }

    async fn deliver(&mut self, delivery: Delivery, batch: Batch) -> Result<(), Closed> {
        let key = self
            .sub
            .as_ref()
            .map(|s| s.key().clone())
            .expect("a delivery comes from a subscription");
        match delivery {
            Delivery::Lines(lines) => send_lines(self.tx, &key, &lines, batch).await,
            Delivery::Dropped(count) => send_json(self.tx, &ServerMessage::Dropped { count }).await,
            Delivery::Lifecycle(change) => {
                let msg = ServerMessage::Lifecycle {
                    project: key.project,
                    service: key.service,
                    change: (*change).clone(),
                };
                send_json(self.tx, &msg).await
            }
        }
    }
}

#[cfg(test)]
mod props {
    //! Property tests of reading client messages: nothing a client sends makes the server
    //! panic, and a tail is accepted exactly when it is within bounds.
    use super::*;
    use app::protocol::MAX_TAIL;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_gets_a_message_or_a_short_error(text in "\\PC{0,300}") {
            match read_message(&text) {
                Ok(_) => prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok()),
                Err((code, message)) => {
                    prop_assert!(matches!(code, ErrorCode::BadMessage | ErrorCode::BadRequest));
                    // Said back to the client: never an echo of whatever it sent.
                    prop_assert!(!message.is_empty() && message.len() <= 300, "{message}");
                }
            }
        }

        #[test]
        fn any_json_gets_a_message_or_an_error(
            kind in prop_oneof![Just("subscribe".to_owned()), Just("unsubscribe".to_owned()), "[a-z]{0,12}"],
            project in proptest::option::of("\\PC{0,20}"),
            tail in proptest::option::of(any::<i64>()),
            resume in proptest::option::of(proptest::collection::vec("\\PC{0,40}", 0..4)),
        ) {
            let mut msg = serde_json::json!({"type": kind, "service": "web"});
            if let Some(p) = project { msg["project"] = p.into(); }
            if let Some(t) = tail { msg["tail"] = t.into(); }
            if let Some(r) = resume { msg["resume"] = r.into(); }
            let _ = read_message(&msg.to_string());
        }

        #[test]
        fn a_tail_is_taken_only_within_bounds(tail in any::<i64>()) {
            let msg = serde_json::json!({"type": "subscribe", "project": "p", "service": "s", "tail": tail});
            let read = read_message(&msg.to_string());
            if (0..=i64::from(MAX_TAIL)).contains(&tail) {
                prop_assert!(read.is_ok(), "{tail}: {:?}", read.err());
            } else {
                prop_assert!(matches!(read, Err((ErrorCode::BadRequest, _))), "{tail}");
            }
        }
    }
}
