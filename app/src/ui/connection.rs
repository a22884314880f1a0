//! The one WebSocket of this tab: connects, subscribes, resumes after the last line held and
//! reconnects with backoff. It holds no lines: what the subscription brings is handed on
//! through a [`Feed`], so the lines and their filter are state of their own (`ui/lines.rs`)
//! that outlives any socket.

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
use leptos::prelude::*;

use crate::protocol::{
    ClientMessage, Cursor, EngineStatus, ErrorCode, HistoryStatus, Lifecycle, LogLine, ProjectInfo,
    ServerMessage, CLOSE_SESSION_ENDED, LOCAL_ENGINE,
};
use crate::target::Target;

/// Failed attempts in a row before the indicator says Disconnected and retries stop, by
/// default (URL parameter `retries`); with the backoff below that is about a minute and a half.
pub const DEFAULT_RETRIES: u32 = 12;
const BACKOFF_MIN_MS: u32 = 500;
/// How long after a refusal for an unreachable engine, while every engine is reachable, the
/// page asks again.
const ASK_AGAIN_MS: u32 = 2_000;
const BACKOFF_MAX_MS: u32 = 10_000;
/// How long the server gathers a busy service's lines for this page (`pace_ms`): a frame.
const PACE_MS: u32 = 16;

/// What the connection indicator shows.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnState {
    Connecting,
    Live,
    /// Waiting to try again at this time (milliseconds since the epoch).
    Reconnecting {
        retry_at: f64,
        attempt: u32,
    },
    /// Gave up; the user can ask for another try.
    Disconnected,
}

/// What the user wants to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub target: Target,
    pub tail: u32,
}

/// What the current subscription brings, in the order it came.
pub enum Delivery {
    Lines {
        service: String,
        lines: Vec<LogLine>,
    },
    /// A change in the life of one of `service`'s containers.
    Change { service: String, change: Lifecycle },
    /// Lines the server skipped because this tab fell behind.
    Dropped(u64),
}

/// Where the connection hands the subscription's traffic, and asks where to resume.
#[derive(Clone, Copy)]
pub struct Feed {
    pub deliver: Callback<Delivery>,
    /// The last cursor held of each container; empty when nothing is held, and a new
    /// subscription starts with a tail instead.
    pub cursors: Callback<(), Vec<Cursor>>,
}

enum Command {
    Send(ClientMessage),
    Reconnect,
}

/// Handles to the connection's state; `Copy`, so every component can hold one.
#[derive(Clone, Copy)]
pub struct Connection {
    pub state: RwSignal<ConnState>,
    /// Each engine's status, in name order; empty until the server said.
    pub engines: RwSignal<Vec<EngineStatus>>,
    /// The engine a URL that names none means: the server's default.
    pub default_engine: RwSignal<String>,
    /// Whether history is kept; None from a server that keeps none.
    pub history: RwSignal<Option<HistoryStatus>>,
    /// None until the server sent its first listing.
    pub projects: RwSignal<Option<Vec<ProjectInfo>>>,
    /// The last error the server reported for a request of ours.
    pub error: RwSignal<Option<String>>,
    /// Lookout signs viewers in itself (`--auth users`): a socket it ends or refuses may mean
    /// the session ended, and the page goes to the login page.
    pub signs_in: RwSignal<bool>,
    /// The user pressed Log out: the page is on its way to the login page already, and a
    /// socket closed for the ended session must not send it elsewhere first.
    pub signing_out: RwSignal<bool>,
    wanted: RwSignal<Option<Wanted>>,
    feed: Feed,
    commands: StoredValue<UnboundedSender<Command>>,
    /// The id of the last subscription change sent, and whether the server took it. Until
    /// it did, lines belong to an earlier subscription (perhaps of the same service with
    /// another tail) and are ignored; a refused one leaves the earlier in place, whose lines
    /// go on coming and are ignored too.
    asked: StoredValue<Asked>,
    /// This socket sent a request before it was Live: the indicator says Live once the
    /// server answered it, not at `hello`, since until then no line of it would come.
    opening: StoredValue<bool>,
}

/// The last request sent on the socket, by the id its answer echoes.
#[derive(Clone, Copy, Default)]
struct Asked {
    id: u32,
    taken: bool,
    /// The server refused it because the engine was unreachable: it is asked again as soon as
    /// an engine is reachable, so that the page recovers without a reload.
    awaits_engine: bool,
}

/// Whether the server says this page is not signed in (not merely unreachable).
async fn signed_out() -> bool {
    gloo_net::http::Request::get("/api/session")
        .send()
        .await
        .is_ok_and(|r| r.status() == 401)
}

fn go_to_login() {
    let loc = window().location();
    let here = format!(
        "{}{}",
        loc.pathname().unwrap_or_default(),
        loc.search().unwrap_or_default()
    );
    let next = String::from(js_sys::encode_uri_component(&here));
    let _ = loc.assign(&format!("/login?next={next}"));
}

impl Connection {
    /// Opens the socket and keeps it open for the life of the page.
    pub fn start(retries: u32, feed: Feed) -> Connection {
        let (tx, rx) = unbounded();
        let conn = Connection {
            state: RwSignal::new(ConnState::Connecting),
            engines: RwSignal::new(Vec::new()),
            default_engine: RwSignal::new(LOCAL_ENGINE.to_owned()),
            history: RwSignal::new(None),
            projects: RwSignal::new(None),
            error: RwSignal::new(None),
            signs_in: RwSignal::new(false),
            signing_out: RwSignal::new(false),
            wanted: RwSignal::new(None),
            feed,
            commands: StoredValue::new(tx),
            asked: StoredValue::new(Asked::default()),
            opening: StoredValue::new(false),
        };
        leptos::task::spawn_local(run(conn, rx, retries));
        conn
    }

    /// Follows a service or several, replacing what was followed before. Returns whether
    /// that changed anything: the lines held then belong to the old subscription and should
    /// be forgotten.
    #[must_use]
    pub fn follow(&self, wanted: Option<Wanted>) -> bool {
        if self.wanted.get_untracked() == wanted {
            return false;
        }
        self.wanted.set(wanted.clone());
        self.error.set(None);
        let id = self.next_id();
        let msg = match wanted {
            Some(w) => w.target.subscribe(w.tail, None, id),
            None => ClientMessage::Unsubscribe { id: Some(id) },
        };
        self.send(Command::Send(msg));
        true
    }

    /// A new request's id; its answer is awaited from now on.
    fn next_id(&self) -> u32 {
        self.asked.update_value(|a| {
            a.id = a.id.wrapping_add(1);
            a.taken = false;
            a.awaits_engine = false;
        });
        self.asked.get_value().id
    }

    /// A request went out on a socket not yet Live: Live waits for its answer (and says
    /// Connecting on a retry's socket, which is open by now).
    fn sent_before_live(&self) {
        if self.state.get_untracked() != ConnState::Live {
            self.opening.set_value(true);
            self.state.set(ConnState::Connecting);
        }
    }

    /// The server answers requests in order: its first answer is to the request that went
    /// out before Live.
    fn live_once_answered(&self, msg: &ServerMessage) {
        let answer = matches!(
            msg,
            ServerMessage::Subscribed { .. }
                | ServerMessage::Unsubscribed { .. }
                | ServerMessage::Error { id: Some(_), .. }
        );
        if answer && self.opening.get_value() {
            self.opening.set_value(false);
            self.state.set(ConnState::Live);
        }
    }

    pub fn reconnect(&self) {
        self.send(Command::Reconnect);
    }

    fn send(&self, c: Command) {
        self.commands.with_value(|tx| {
            let _ = tx.unbounded_send(c);
        });
    }

    fn handle(&self, text: &str) {
        let msg = match crate::decode::server_message(text) {
            Ok(m) => m,
            Err(e) => {
                leptos::logging::warn!("unreadable message from server: {e}");
                return;
            }
        };
        self.live_once_answered(&msg);
        match msg {
            ServerMessage::Hello {
                engine,
                engines,
                history,
                ..
            } => {
                if !self.opening.get_value() {
                    self.state.set(ConnState::Live);
                }
                self.hello_engines(engine, engines);
                self.history.set(history);
            }
            ServerMessage::Engine { engine } => self.engine_changed(engine),
            ServerMessage::History { history } => self.history.set(Some(history)),
            ServerMessage::Services { projects } => self.projects.set(Some(projects)),
            ServerMessage::Subscribed {
                engine,
                project,
                service,
                id,
                ..
            } => {
                if id == Some(self.asked.get_value().id) {
                    self.asked.update_value(|a| a.taken = true);
                }
                if self.is_current(&engine, &project, &service) {
                    self.error.set(None);
                }
            }
            ServerMessage::Lines {
                engine,
                project,
                service,
                lines,
            } => {
                if self.is_current(&engine, &project, &service) {
                    self.feed.deliver.run(Delivery::Lines { service, lines });
                }
            }
            ServerMessage::Lifecycle {
                engine,
                project,
                service,
                change,
            } => {
                if self.is_current(&engine, &project, &service) {
                    self.feed.deliver.run(Delivery::Change { service, change });
                }
            }
            ServerMessage::Dropped { count, .. } => {
                if self.asked.get_value().taken {
                    self.feed.deliver.run(Delivery::Dropped(count));
                }
            }
            ServerMessage::Unsubscribed { .. } => {}
            // Not an answer to a request: the subscription stands, with a gap.
            ServerMessage::Error {
                code: ErrorCode::LinesUnread,
                message,
                ..
            } => self.error.set(Some(message)),
            ServerMessage::Error { code, message, id } => self.refused(code, message, id),
        }
    }

    fn refused(&self, code: ErrorCode, message: String, id: Option<u32>) {
        // An earlier request's refusal says nothing of what is wanted now.
        let Some(id) = id.filter(|id| *id == self.asked.get_value().id) else {
            return;
        };
        self.error.set(Some(message));
        if code != ErrorCode::EngineUnreachable {
            return;
        }
        self.asked.update_value(|a| a.awaits_engine = true);
        // An engine that failed one request but stayed reachable sends no `engine` message
        // to wait for: ask again after a while.
        if self
            .engines
            .with_untracked(|e| e.iter().all(|e| e.reachable))
        {
            let conn = *self;
            leptos::task::spawn_local(async move {
                gloo_timers::future::TimeoutFuture::new(ASK_AGAIN_MS).await;
                let asked = conn.asked.get_value();
                if asked.id == id && asked.awaits_engine {
                    conn.ask_again();
                }
            });
        }
    }

    /// The engines `hello` tells of, and which of them a URL that names none means.
    fn hello_engines(&self, default: EngineStatus, engines: Vec<EngineStatus>) {
        if self.default_engine.get_untracked() != default.name {
            self.default_engine.set(default.name.clone());
        }
        // A server from before engines were named sends the one alone.
        self.engines.set(if engines.is_empty() {
            vec![default]
        } else {
            engines
        });
    }

    fn engine_changed(&self, engine: EngineStatus) {
        if engine.reachable && self.asked.get_value().awaits_engine {
            self.ask_again();
        }
        self.engines
            .update(|all| match all.iter_mut().find(|e| e.name == engine.name) {
                Some(known) => *known = engine,
                None => all.push(engine),
            });
    }

    /// Whether a message about this service belongs to the latest subscription.
    fn is_current(&self, engine: &str, project: &str, service: &str) -> bool {
        self.asked.get_value().taken
            && self.wanted.with_untracked(|w| {
                w.as_ref()
                    .is_some_and(|w| w.target.includes(engine, project, service))
            })
    }
}

fn ws_url() -> String {
    let loc = window().location();
    let scheme = if loc.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    // Lines reach the view once a frame: a busy service's lines gathered for a frame on the
    // server come in one message, not in hundreds that each cost the page its handling.
    format!(
        "{scheme}://{}/ws?pace_ms={PACE_MS}",
        loc.host().unwrap_or_default()
    )
}

fn backoff_ms(attempt: u32) -> u32 {
    let exp = BACKOFF_MIN_MS.saturating_mul(1 << attempt.min(10).saturating_sub(1));
    let capped = exp.min(BACKOFF_MAX_MS);
    // Jitter, so that many tabs do not all knock at once after a server restart.
    let jitter = (js_sys::Math::random() * 0.25 * f64::from(capped)) as u32;
    capped - jitter
}

impl Connection {
    /// What is wanted, resumed after the last line held or with a tail; None when nothing is.
    fn resubscription(&self) -> Option<ClientMessage> {
        let w = self.wanted.get_untracked()?;
        let cursors = self.feed.cursors.run(());
        let resume = (!cursors.is_empty()).then_some(cursors);
        Some(w.target.subscribe(w.tail, resume, self.next_id()))
    }

    /// Asks again for what the server refused while its engine was unreachable.
    fn ask_again(&self) {
        if let Some(msg) = self.resubscription() {
            self.error.set(None);
            self.send(Command::Send(msg));
        }
    }

    /// Resumes after the last line held, or starts with a tail, on a socket just opened.
    async fn subscribe_on_open(&self, sink: &mut SplitSink<WebSocket, Message>) {
        self.opening.set_value(false);
        let Some(msg) = self.resubscription() else {
            return;
        };
        let msg = serde_json::to_string(&msg).unwrap_or_default();
        if sink.send(Message::Text(msg)).await.is_ok() {
            self.sent_before_live();
        }
    }
}

async fn run(conn: Connection, mut commands: UnboundedReceiver<Command>, retries: u32) {
    enum Event {
        In(Result<Message, gloo_net::websocket::WebSocketError>),
        Command(Command),
    }
    let mut attempt: u32 = 0;
    loop {
        // What was asked while offline is covered by the subscription sent on connect.
        while commands.try_recv().is_ok() {}
        if attempt == 0 {
            conn.state.set(ConnState::Connecting);
        }
        if let Ok(ws) = WebSocket::open(&ws_url()) {
            let (mut sink, stream) = ws.split();
            conn.subscribe_on_open(&mut sink).await;
            let mut events =
                futures::stream::select(stream.map(Event::In), (&mut commands).map(Event::Command));
            while let Some(event) = events.next().await {
                match event {
                    Event::In(Ok(Message::Text(text))) => {
                        conn.handle(&text);
                        if conn.state.get_untracked() == ConnState::Live {
                            attempt = 0;
                        }
                    }
                    Event::In(Ok(Message::Bytes(_))) => {}
                    Event::In(Err(WebSocketError::ConnectionClose(e)))
                        if e.code == CLOSE_SESSION_ENDED =>
                    {
                        if !conn.signing_out.get_untracked() {
                            go_to_login();
                        }
                        return;
                    }
                    Event::In(Err(_)) => break,
                    Event::Command(Command::Send(msg)) => {
                        let text = serde_json::to_string(&msg).unwrap_or_default();
                        if sink.send(Message::Text(text)).await.is_err() {
                            break;
                        }
                        conn.sent_before_live();
                    }
                    Event::Command(Command::Reconnect) => {}
                }
            }
        }
        if conn.signs_in.get_untracked() && signed_out().await {
            if !conn.signing_out.get_untracked() {
                go_to_login();
            }
            return;
        }
        attempt += 1;
        if attempt > retries {
            conn.state.set(ConnState::Disconnected);
            // Wait for the user to ask again.
            while let Some(c) = commands.next().await {
                if matches!(c, Command::Reconnect) {
                    break;
                }
            }
            attempt = 0;
            continue;
        }
        let delay = backoff_ms(attempt);
        conn.state.set(ConnState::Reconnecting {
            retry_at: js_sys::Date::now() + f64::from(delay),
            attempt,
        });
        gloo_timers::future::TimeoutFuture::new(delay).await;
    }
}
