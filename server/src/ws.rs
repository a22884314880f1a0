//! The WebSocket route: one socket per browser tab, carrying a subscription, batches of lines,
//! engine and service status, and errors. The protocol is in docs/PROTOCOL.md.

use std::sync::Arc;

use app::protocol::{
    ClientMessage, ErrorCode, Lifecycle, LogLine, ServerMessage, ServiceKey, PROTOCOL_VERSION,
};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde::Serialize;

use crate::auth::Viewer;
use crate::hub::{line_bytes, Batch, Delivery, HubError, Start, Subscription};
use crate::{origin, AppState};

pub async fn route(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    State(state): State<AppState>,
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

async fn serve(socket: WebSocket, state: AppState, viewer: Viewer) {
    let (mut tx, mut rx) = socket.split();
    let _ = run(&mut tx, &mut rx, &state, &viewer).await;
}

/// Whether the viewer's session still holds (it may have expired, or been signed out).
fn signed_in(state: &AppState, viewer: &Viewer) -> bool {
    match (&viewer.session, state.auth.sessions()) {
        (Some(token), Some(sessions)) => sessions.get(token).is_some(),
        _ => true,
    }
}

async fn run(
    tx: &mut Sink,
    rx: &mut futures::stream::SplitStream<WebSocket>,
    state: &AppState,
    viewer: &Viewer,
) -> Result<(), Closed> {
    let hub = &state.hub;
    let batch = hub.config().batch;
    let mut engine = hub.engine().status();
    let mut services = hub.services();
    let mut shutdown = state.shutdown.clone();

    let hello = ServerMessage::Hello {
        protocol: PROTOCOL_VERSION,
        engine: engine.borrow_and_update().clone(),
    };
    send_json(tx, &hello).await?;
    let projects = viewer.scope.filter(&services.borrow_and_update());
    send_json(tx, &ServerMessage::Services { projects }).await?;

    let mut sub: Option<Subscription> = None;
    let mut session_check = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = session_check.tick() => {
                if !signed_in(state, viewer) {
                    let _ = tx.send(Message::Close(Some(CloseFrame {
                        code: app::protocol::CLOSE_SESSION_ENDED,
                        reason: "session ended: sign in again".into(),
                    }))).await;
                    return Ok(());
                }
            }
            msg = rx.next() => {
                let text = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        send_error(tx, ErrorCode::BadMessage,
                            "binary messages are not understood; send JSON text".into()).await?;
                        continue;
                    }
                    Some(Ok(_)) => continue,
                };
                match read_message(&text) {
                    Err((code, message)) => send_error(tx, code, message).await?,
                    Ok(ClientMessage::Unsubscribe) => {
                        sub = None;
                        send_json(tx, &ServerMessage::Unsubscribed).await?;
                    }
                    Ok(ClientMessage::Subscribe { project, service, tail, resume }) => {
                        // A subscribe that fails leaves the old subscription as it was; one
                        // that succeeds ends it before `subscribed`, so no line of the old
                        // service follows that message.
                        let key = ServiceKey { project, service };
                        if !viewer.scope.allows(&key) {
                            // The same answer as for a service that does not exist: a name
                            // out of scope tells nothing, not even that it exists.
                            send_error(tx, ErrorCode::UnknownService,
                                format!("unknown service {key}: no Compose project {:?} with a service {:?}", key.project, key.service)).await?;
                            continue;
                        }
                        let most = state.config.max_tail_lines;
                        if resume.is_none() && tail.get() > most {
                            send_error(tx, ErrorCode::BadRequest,
                                format!("tail must be between 0 and {most} lines on this server (--max-tail-lines), got {}", tail.get())).await?;
                            continue;
                        }
                        let start = match resume {
                            Some(cursors) => Start::Resume(cursors),
                            None => Start::Tail(tail.get()),
                        };
                        match hub.subscribe(key.clone(), start).await {
                            Ok(mut s) => {
                                drop(sub.take());
                                send_json(tx, &ServerMessage::Subscribed {
                                    project: key.project.clone(),
                                    service: key.service.clone(),
                                    containers: s.containers.clone(),
                                }).await?;
                                if s.lost > 0 {
                                    send_json(tx, &ServerMessage::Dropped { count: s.lost }).await?;
                                }
                                if let Some(e) = s.unread.take() {
                                    send_error(tx, ErrorCode::LinesUnread, format!(
                                        "the lines since this view was last connected could not all be read, so some are missing before the ones that follow: {e}")).await?;
                                }
                                let backlog = std::mem::take(&mut s.backlog);
                                let markers = std::mem::take(&mut s.markers);
                                send_backlog(tx, &key, &backlog, &markers, batch).await?;
                                sub = Some(s);
                            }
                            Err(HubError::UnknownService(k)) => {
                                send_error(tx, ErrorCode::UnknownService,
                                    format!("unknown service {k}: no Compose project {:?} with a service {:?}", k.project, k.service)).await?;
                            }
                            Err(HubError::Engine(e)) => {
                                send_error(tx, ErrorCode::EngineUnreachable, e.to_string()).await?;
                            }
                        }
                    }
                }
            }
            delivery = next_delivery(&mut sub, batch) => {
                let key = sub.as_ref().map(|s| s.key().clone()).expect("a delivery comes from a subscription");
                match delivery {
                    Delivery::Lines(lines) => send_lines(tx, &key, &lines, batch).await?,
                    Delivery::Dropped(count) => send_json(tx, &ServerMessage::Dropped { count }).await?,
                    Delivery::Lifecycle(change) => send_json(tx, &ServerMessage::Lifecycle {
                        project: key.project.clone(),
                        service: key.service.clone(),
                        change: (*change).clone(),
                    }).await?,
                }
            }
            Ok(()) = engine.changed() => {
                let status = engine.borrow_and_update().clone();
                send_json(tx, &ServerMessage::Engine { engine: status }).await?;
            }
            Ok(()) = services.changed() => {
                let projects = viewer.scope.filter(&services.borrow_and_update());
                send_json(tx, &ServerMessage::Services { projects }).await?;
            }
            _ = shutdown.changed() => {
                let _ = tx.send(Message::Close(Some(CloseFrame {
                    code: axum::extract::ws::close_code::AWAY,
                    reason: "server shutting down".into(),
                }))).await;
                return Ok(());
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
        fn any_text_gets_a_message_or_an_error(text in "\\PC{0,300}") {
            let _ = read_message(&text);
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
