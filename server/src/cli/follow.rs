//! `--follow`: one socket per service, each subscribed after the lines already printed and,
//! when it is cut (a server restart, a network cut), opened again and resumed by cursor, so
//! that no line comes twice and none is missing.

use std::sync::Arc;
use std::time::Duration;

use app::protocol::{
    ClientMessage, ContainerInfo, ErrorCode, LogLine, ServerMessage, ServiceKey, Tail,
};
use tokio::sync::mpsc;

use super::backlog::Resume;
use super::client::{self, CliError, Client};

/// What the followers tell the printer.
pub enum Event {
    Subscribed(ServiceKey, Vec<ContainerInfo>),
    Lines(ServiceKey, Vec<LogLine>),
    /// A word for stderr: a reconnection, a lifecycle change, lines lost.
    Notice(String),
    Fatal(CliError),
}

/// Where one service's following starts.
pub struct Start {
    pub key: ServiceKey,
    pub resume: Resume,
    /// The tail to ask for while no line of the service was taken (no cursor to resume
    /// from), with lines older than `floor_ns` left out.
    pub tail: u32,
    pub floor_ns: i64,
}

/// Longest wait between two tries to reach the server again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub fn spawn(client: Arc<Client>, starts: Vec<Start>) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(64);
    for start in starts {
        tokio::spawn(follow(client.clone(), start, tx.clone()));
    }
    rx
}

/// Why a session on one socket ended.
enum Ended {
    /// The socket was cut or could not be opened: try again.
    Cut(String),
    /// Trying again would not help.
    Fatal(CliError),
    /// Nobody reads the events any more.
    Gone,
}

async fn follow(client: Arc<Client>, mut start: Start, tx: mpsc::Sender<Event>) {
    let mut backoff = Duration::from_millis(250);
    let mut cut = false;
    loop {
        match session(&client, &mut start, &tx, &mut cut).await {
            Ended::Cut(reason) => {
                if !cut {
                    let notice = format!(
                        "lost {} at {} ({reason}); reconnecting",
                        start.key,
                        client.server()
                    );
                    if tx.send(Event::Notice(notice)).await.is_err() {
                        return;
                    }
                    cut = true;
                    backoff = Duration::from_millis(250);
                }
                if start.resume.is_empty() {
                    // Nothing taken yet: whatever comes after the cut is new.
                    start.floor_ns = start.floor_ns.max(crate::clock::now_ns());
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Ended::Fatal(e) => {
                let _ = tx.send(Event::Fatal(e)).await;
                return;
            }
            Ended::Gone => return,
        }
    }
}

async fn session(
    client: &Client,
    start: &mut Start,
    tx: &mpsc::Sender<Event>,
    cut: &mut bool,
) -> Ended {
    let mut socket = match client.connect().await {
        Ok(socket) => socket,
        Err(CliError::Unreachable { reason, .. }) => return Ended::Cut(reason),
        Err(e) => return Ended::Fatal(e),
    };
    let resume = start.resume.cursors();
    let subscribe = ClientMessage::Subscribe {
        project: start.key.project.clone(),
        service: start.key.service.clone(),
        tail: Tail::try_from(i64::from(start.tail)).unwrap_or_default(),
        resume: (!resume.is_empty()).then_some(resume),
    };
    if !client::send(&mut socket, &subscribe).await {
        return Ended::Cut("the socket closed".into());
    }
    let from_tail = start.resume.is_empty();
    loop {
        let message = match client::receive(&mut socket).await {
            None => return Ended::Cut("the socket closed".into()),
            Some(Err(e)) => {
                return Ended::Fatal(CliError::BadAnswer {
                    server: client.server(),
                    reason: e,
                })
            }
            Some(Ok(m)) => m,
        };
        if matches!(message, ServerMessage::Subscribed { .. }) && std::mem::take(cut) {
            let notice = format!(
                "reconnected to {}; {} goes on after its last line",
                client.server(),
                start.key
            );
            if tx.send(Event::Notice(notice)).await.is_err() {
                return Ended::Gone;
            }
        }
        let event = match event_of(message, start, from_tail) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(e) => return Ended::Fatal(e),
        };
        if tx.send(event).await.is_err() {
            return Ended::Gone;
        }
    }
}

/// What a message means to the printer: an event, nothing, or the end of following.
fn event_of(
    message: ServerMessage,
    start: &mut Start,
    from_tail: bool,
) -> Result<Option<Event>, CliError> {
    let key = &start.key;
    Ok(Some(match message {
        ServerMessage::Subscribed { containers, .. } => Event::Subscribed(key.clone(), containers),
        ServerMessage::Lines { mut lines, .. } => {
            if from_tail {
                lines.retain(|l| l.cursor.ts_ns >= start.floor_ns);
            }
            for line in &lines {
                start.resume.note(&line.cursor);
            }
            Event::Lines(key.clone(), lines)
        }
        ServerMessage::Lifecycle { change, .. } => Event::Notice(change.describe(&key.to_string())),
        ServerMessage::Dropped { count } => Event::Notice(format!(
            "{count} lines of {key} were left out: this terminal read them slower than they came"
        )),
        ServerMessage::Error {
            code: ErrorCode::LinesUnread,
            message,
        } => Event::Notice(message),
        ServerMessage::Error {
            code: ErrorCode::UnknownService,
            ..
        } => return Err(CliError::UnknownService(key.to_string())),
        ServerMessage::Error { message, .. } => return Err(CliError::Refused(message)),
        ServerMessage::Hello { .. }
        | ServerMessage::Services { .. }
        | ServerMessage::Engine { .. }
        | ServerMessage::History { .. }
        | ServerMessage::Unsubscribed => return Ok(None),
    }))
}
