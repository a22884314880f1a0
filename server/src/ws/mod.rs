//! The WebSocket route: one socket per browser tab, carrying a subscription (to one service,
//! or to several merged), batches of lines, engine and service status, and errors. The
//! protocol is in docs/PROTOCOL.md.

mod pace;
mod project;
mod read;
mod send;

use std::sync::Arc;
use std::time::Duration;

use app::protocol::{
    ClientMessage, Cursor, EngineStatus, ErrorCode, HistoryStatus, ServerMessage, Tail,
    TailOverLimit, CLOSE_SESSION_ENDED, MAX_RESUME_CURSORS, PROTOCOL_VERSION,
};
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use tokio::sync::watch;

use self::pace::Pace;
use self::project::{keep_newest, Part, Whole};
use self::read::read_message;
use self::send::{send_backlogs, send_error, send_json, send_lines, Backlog, Closed, Sink};
use crate::auth::{Auth, SocketCounts, Viewer};
use crate::config::Config;
use crate::hub::{Batch, Delivery, Hub, HubError, Start, Subscription};
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

/// A socket's read buffer, allocated at the upgrade. A viewer sends only small requests (a
/// longer one is read in several goes), and 100 viewers with the default 128 KiB each held
/// 12.5 MiB for nothing.
const READ_BUFFER: usize = 4 << 10;

pub async fn route(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    pace: Result<Query<Pace>, QueryRejection>,
    State(state): State<SocketState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    if let Err(refused) = origin::check(&headers, &state.config.allowed_origins) {
        tracing::warn!(%refused, "WebSocket upgrade refused");
        return (StatusCode::FORBIDDEN, refused.to_string()).into_response();
    }
    let pace = match Pace::checked(pace) {
        Ok(pace) => pace,
        Err(refused) => return (StatusCode::BAD_REQUEST, refused).into_response(),
    };
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
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move {
            serve(socket, state, viewer, pace).await;
            drop(slot);
        })
}

/// The next delivery of any of `subs`, and whose; they are asked in turn from `turn` on, so
/// that a busy service does not keep a quiet one waiting.
async fn next_delivery(subs: &mut [Subscription], turn: usize, batch: Batch) -> (usize, Delivery) {
    if subs.is_empty() {
        return std::future::pending().await;
    }
    let first = turn % subs.len();
    let (before, after) = subs.split_at_mut(first);
    let asks = after
        .iter_mut()
        .chain(before.iter_mut())
        .map(|s| Box::pin(s.next(batch)));
    let (delivery, i, _) = futures::future::select_all(asks).await;
    ((first + i) % subs.len(), delivery)
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

async fn serve(socket: WebSocket, state: SocketState, viewer: Viewer, pace: Duration) {
    let (mut tx, mut rx) = socket.split();
    let mut session = Session {
        tx: &mut tx,
        state: &state,
        viewer: &viewer,
        pace,
        subs: Vec::new(),
        turn: 0,
        whole: None,
    };
    let _ = session.run(&mut rx).await;
}

/// One open socket: what it may see, and what it follows.
struct Session<'a> {
    tx: &'a mut Sink,
    state: &'a SocketState,
    viewer: &'a Viewer,
    /// What its client asked for (`Pace`).
    pace: Duration,
    /// What it follows: one service, or several merged.
    subs: Vec<Subscription>,
    /// Which subscription is asked first for its next delivery.
    turn: usize,
    /// The whole project followed, when it is: services that come later join it.
    whole: Option<Whole>,
}

/// What the socket loop does next.
enum Next {
    Go,
    Stop,
}

impl Session<'_> {
    async fn run(&mut self, rx: &mut SplitStream<WebSocket>) -> Result<(), Closed> {
        let hub = &self.state.hub;
        hub.first_listing().await;
        let batch = Batch {
            pace: self.pace,
            ..hub.config().batch
        };
        // Only the engines some service of the viewer's scope may be on.
        let scope = &self.viewer.scope;
        let mut engines: Vec<_> = hub
            .engines()
            .iter()
            .filter(|e| scope.may_see_engine(e.name()))
            .map(|e| e.status())
            .collect();
        let mut default = hub.engines().default_engine().status().borrow().clone();
        if !scope.may_see_engine(&default.name) {
            default.error = None;
        }
        let mut services = hub.services();
        let mut shutdown = self.state.shutdown.clone();

        let mut history = self.state.hub.history().map(|h| h.health().status());
        let hello = ServerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            engine: default,
            engines: engines
                .iter_mut()
                .map(|e| e.borrow_and_update().clone())
                .collect(),
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
                (i, delivery) = next_delivery(&mut self.subs, self.turn, batch) => {
                    self.turn = self.turn.wrapping_add(1);
                    self.deliver(i, delivery, batch).await?;
                }
                Some(status) = engine_changed(&mut engines) => {
                    send_json(self.tx, &ServerMessage::Engine { engine: status }).await?;
                }
                Some(history) = history_changed(&mut history) => {
                    send_json(self.tx, &ServerMessage::History { history }).await?;
                }
                Ok(()) = services.changed() => {
                    let projects = self.viewer.scope.filter(&services.borrow_and_update());
                    send_json(self.tx, &ServerMessage::Services { projects: projects.clone() }).await?;
                    self.join_new_services(&projects).await?;
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
                send_error(self.tx, ErrorCode::BadMessage, why.into(), None).await?;
                return Ok(Next::Go);
            }
            Some(Ok(_)) => return Ok(Next::Go),
        };
        let (id, msg) = read_message(&text);
        match msg {
            Err((code, message)) => send_error(self.tx, code, message, id).await?,
            Ok(ClientMessage::Unsubscribe { .. }) => {
                self.subs.clear();
                self.whole = None;
                send_json(self.tx, &ServerMessage::Unsubscribed { id }).await?;
            }
            Ok(ClientMessage::Subscribe {
                engine,
                project,
                service,
                tail,
                resume,
                ..
            }) => {
                if let Some(start) = self.start(tail, resume, id).await? {
                    let key = self.state.hub.key(engine, project, service);
                    let part = Part {
                        key,
                        containers: Vec::new(),
                    };
                    if self.subscribe(vec![part], start, id).await? {
                        self.whole = None;
                    }
                }
            }
            Ok(ClientMessage::SubscribeProject {
                engine,
                project,
                services,
                tail,
                resume,
                ..
            }) => {
                if let Some(start) = self.start(tail, resume, id).await? {
                    let engine = self.state.hub.engines().name_or_default(engine);
                    self.subscribe_project(engine, project, services, start, id)
                        .await?;
                }
            }
        }
        Ok(Next::Go)
    }

    /// Where a subscription starts; None (the client told why) for a tail over this
    /// server's limit.
    async fn start(
        &mut self,
        tail: Tail,
        resume: Option<Vec<Cursor>>,
        id: Option<u32>,
    ) -> Result<Option<Start>, Closed> {
        let most = self.state.config.max_tail_lines;
        Ok(match resume {
            Some(cursors) if cursors.len() > MAX_RESUME_CURSORS => {
                let why = format!(
                    "resume may hold at most {MAX_RESUME_CURSORS} cursors (one per container), got {}",
                    cursors.len()
                );
                send_error(self.tx, ErrorCode::BadRequest, why, id).await?;
                None
            }
            Some(cursors) => Some(Start::Resume(cursors)),
            None if tail.get() > most => {
                let over = TailOverLimit {
                    most,
                    got: tail.get(),
                };
                send_error(self.tx, ErrorCode::BadRequest, over.to_string(), id).await?;
                None
            }
            None => Some(Start::Tail(tail.get())),
        })
    }

    /// A subscribe that fails leaves the old subscription as it was; one that succeeds ends
    /// it before `subscribed`, so no line of the old services follows that message. Several
    /// services send a `subscribed` each, then their backlogs merged in time order. Returns
    /// whether it took.
    async fn subscribe(
        &mut self,
        parts: Vec<Part>,
        start: Start,
        id: Option<u32>,
    ) -> Result<bool, Closed> {
        let Some(mut subs) = self.follow(&parts, &start, id).await? else {
            return Ok(false);
        };
        // A token removed, or a session ended, while the services were being followed.
        if !self.signed_in() {
            return Ok(false);
        }
        self.subs.clear();
        // Each service's tail is its newest `n`; of several, the newest `n` of them all.
        let newest = match start {
            Start::Tail(n) if subs.len() > 1 => Some(n as usize),
            _ => None,
        };
        self.announce(&mut subs, newest, id).await?;
        self.subs = subs;
        Ok(true)
    }

    /// A hub subscription for each part, or None when one is refused (the client is told).
    async fn follow(
        &mut self,
        parts: &[Part],
        start: &Start,
        id: Option<u32>,
    ) -> Result<Option<Vec<Subscription>>, Closed> {
        let hub = &self.state.hub;
        let several = parts.len() > 1;
        let mut subs: Vec<Subscription> = Vec::with_capacity(parts.len());
        for part in parts {
            let asked = match start {
                Start::Tail(n) => Start::Tail(*n),
                Start::Resume(cursors) if several => Start::Resume(part.cursors(cursors, parts)),
                Start::Resume(cursors) => Start::Resume(cursors.clone()),
            };
            match hub
                .subscribe(part.key.clone(), &self.viewer.scope, asked)
                .await
            {
                Ok(s) => {
                    subs.push(s);
                    if let (true, Start::Tail(n)) = (several, start) {
                        keep_newest(&mut subs, *n as usize);
                    }
                }
                Err(e) => {
                    let (code, why) = refusal(e);
                    send_error(self.tx, code, why, id).await?;
                    return Ok(None);
                }
            }
        }
        Ok(Some(subs))
    }

    /// Tells the client of new subscriptions: a `subscribed` each, what they lost, then their
    /// backlogs (of several, the `newest` of them all, merged in time order).
    async fn announce(
        &mut self,
        subs: &mut [Subscription],
        newest: Option<usize>,
        id: Option<u32>,
    ) -> Result<(), Closed> {
        for s in subs.iter() {
            let subscribed = ServerMessage::Subscribed {
                engine: s.key().engine.clone(),
                project: s.key().project.clone(),
                service: s.key().service.clone(),
                containers: s.containers.clone(),
                id,
            };
            send_json(self.tx, &subscribed).await?;
        }
        for s in subs.iter().filter(|s| s.lost > 0) {
            let service = Some(s.key().service.clone());
            let dropped = ServerMessage::Dropped {
                count: s.lost,
                service,
            };
            send_json(self.tx, &dropped).await?;
        }
        for s in subs.iter_mut() {
            if let Some(e) = s.unread.take() {
                let message = format!(
                    "the lines of {} since this view was last connected could not all be read, \
                     so some are missing before the ones that follow: {e}",
                    s.key().service
                );
                // Not an answer: the subscription stands, with a gap.
                send_error(self.tx, ErrorCode::LinesUnread, message, None).await?;
            }
        }
        let backlogs: Vec<Backlog> = subs
            .iter_mut()
            .map(|s| Backlog {
                key: s.key().clone(),
                lines: std::mem::take(&mut s.backlog),
                markers: std::mem::take(&mut s.markers),
            })
            .collect();
        let batch = self.state.hub.config().batch;
        send_backlogs(self.tx, &backlogs, newest, batch).await
    }

    async fn deliver(&mut self, i: usize, delivery: Delivery, batch: Batch) -> Result<(), Closed> {
        let key = self.subs[i].key().clone();
        match delivery {
            Delivery::Lines(lines) => {
                let lines: Vec<_> = lines.iter().collect();
                send_lines(self.tx, &key, &lines, batch).await
            }
            Delivery::Dropped(count) => {
                let service = Some(key.service);
                send_json(self.tx, &ServerMessage::Dropped { count, service }).await
            }
            Delivery::Lifecycle(change) => {
                let msg = ServerMessage::Lifecycle {
                    engine: key.engine,
                    project: key.project,
                    service: key.service,
                    change: (*change).clone(),
                };
                send_json(self.tx, &msg).await
            }
        }
    }
}

/// How a refused subscription is told to the client.
fn refusal(e: HubError) -> (ErrorCode, String) {
    match e {
        HubError::UnknownService(e) => (ErrorCode::UnknownService, e.to_string()),
        HubError::Engine(e) => (ErrorCode::EngineUnreachable, e.to_string()),
    }
}

/// The next status of whichever engine changes first; None once the engines are gone, and
/// never without any.
async fn engine_changed(engines: &mut [watch::Receiver<EngineStatus>]) -> Option<EngineStatus> {
    if engines.is_empty() {
        return std::future::pending().await;
    }
    let changes = engines.iter_mut().map(|rx| {
        Box::pin(async move {
            rx.changed().await.ok()?;
            Some(rx.borrow_and_update().clone())
        })
    });
    futures::future::select_all(changes).await.0
}
