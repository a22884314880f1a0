//! `--follow`: one socket per project (up to 64 services each), subscribed to its services
//! after the lines already printed and, when it is cut (a server restart, a network cut),
//! opened again and resumed by cursor, so that no line comes twice and none is missing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::protocol::{
    ClientMessage, ContainerInfo, ErrorCode, LogLine, ServerMessage, ServiceKey, ServiceNames,
    Tail, MAX_RESUME_CURSORS, MAX_SERVICES, MAX_TAIL,
};
use tokio::sync::mpsc;

use super::backlog::Resume;
use super::client::{self, CliError, Client, Heard};

/// What the followers tell the printer.
pub enum Event {
    Subscribed(ServiceKey, Vec<ContainerInfo>),
    Lines(ServiceKey, Vec<LogLine>),
    /// A word for stderr: a reconnection, a lifecycle change, lines lost.
    Notice(String),
    Fatal(CliError),
}

/// Where the following of some services of one project starts: one socket follows them.
pub struct Start {
    pub engine: String,
    pub project: String,
    /// One is asked for with `subscribe`, several (at most [`MAX_SERVICES`]) with
    /// `subscribe_project` naming them.
    pub services: Vec<String>,
    /// The last line taken of each of their containers.
    pub resume: Resume,
    /// The tail to ask for while no line of them was taken (no cursor to resume from), with
    /// lines older than `floor_ns` left out.
    pub tail: u32,
    pub floor_ns: i64,
}

impl Start {
    /// The services of each project together, on as few sockets as the protocol allows. A
    /// service none of whose lines were taken goes alone, from a tail: among others it
    /// would resume from their cursors, and lose its lines stamped before them.
    pub fn grouped(services: Vec<(ServiceKey, Resume)>, tail: u32, floor_ns: i64) -> Vec<Start> {
        let mut starts: Vec<Start> = Vec::new();
        for (key, resume) in services {
            let fits = |s: &Start| {
                s.engine == key.engine
                    && s.project == key.project
                    && !s.resume.is_empty()
                    && !resume.is_empty()
                    && s.services.len() < MAX_SERVICES
                    && s.resume.len() + resume.len() <= MAX_RESUME_CURSORS
            };
            let open = starts.iter_mut().find(|s| fits(s));
            match open {
                Some(start) => {
                    start.services.push(key.service);
                    start.resume.extend(resume);
                }
                None => starts.push(Start {
                    engine: key.engine,
                    project: key.project,
                    services: vec![key.service],
                    resume,
                    tail,
                    floor_ns,
                }),
            }
        }
        starts
    }

    /// What notices call them: `shop/web`, or `shop/web, db` (`prod/shop/web` on an engine
    /// other than `local`).
    fn label(&self) -> String {
        format!(
            "{}{}/{}",
            self.engine_part(),
            self.project,
            self.services.join(", ")
        )
    }

    fn engine_part(&self) -> String {
        if self.engine == app::protocol::LOCAL_ENGINE {
            String::new()
        } else {
            format!("{}/", self.engine)
        }
    }
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
    /// The socket was cut, could not be opened, or the server was busy: try again. `held`:
    /// the subscription had stood long enough that the next try need not wait longer.
    Cut { reason: String, held: bool },
    /// Trying again would not help.
    Fatal(CliError),
    /// Nobody reads the events any more.
    Gone,
}

/// A ping goes out this often, and a socket silent for `SILENCE` is taken as cut (a
/// network that dropped without a word, a laptop that slept).
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE: Duration = Duration::from_secs(40);
/// A subscription that stood this long resets the wait between tries.
const HELD: Duration = Duration::from_secs(5);

async fn follow(client: Arc<Client>, mut start: Start, tx: mpsc::Sender<Event>) {
    let mut backoff = Duration::from_millis(250);
    let mut cut = false;
    // When the first subscription stood, by the server's clock.
    let mut began_ns = None;
    loop {
        match session(&client, &mut start, &tx, (&mut cut, &mut began_ns)).await {
            Ended::Cut { reason, held } => {
                if !cut {
                    let notice = format!(
                        "lost {} at {} ({reason}); reconnecting",
                        start.label(),
                        client.server()
                    );
                    if tx.send(Event::Notice(notice)).await.is_err() {
                        return;
                    }
                    cut = true;
                }
                if held {
                    backoff = Duration::from_millis(250);
                }
                if let (true, Some(began)) = (start.resume.is_empty(), began_ns) {
                    // No line taken yet: every line since the subscription began is new. A
                    // second of the server's clock covers what `Date` rounds away.
                    start.tail = MAX_TAIL;
                    start.floor_ns = start.floor_ns.max(began - 1_000_000_000);
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
    (cut, began_ns): (&mut bool, &mut Option<i64>),
) -> Ended {
    let lost = |reason: &str| Ended::Cut {
        reason: reason.to_owned(),
        held: false,
    };
    let mut socket = match client.connect().await {
        Ok(socket) => socket,
        Err(e) if e.is_transient() => return lost(&e.to_string()),
        Err(e) => return Ended::Fatal(e),
    };
    if !client::send(&mut socket, &subscription(start)).await {
        return lost("the socket closed");
    }
    let from_tail = start.resume.is_empty();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut heard = Instant::now();
    let mut subscribed_at = None;
    let held = |at: Option<Instant>| at.is_some_and(|t: Instant| t.elapsed() >= HELD);
    loop {
        let message = tokio::select! {
            heard = client::receive(&mut socket) => heard,
            _ = ping.tick() => {
                if heard.elapsed() > SILENCE {
                    let reason = format!("nothing heard for {} s", SILENCE.as_secs());
                    return Ended::Cut { reason, held: held(subscribed_at) };
                }
                if !client::ping(&mut socket).await {
                    return Ended::Cut { reason: "the socket closed".into(), held: held(subscribed_at) };
                }
                continue;
            }
        };
        heard = Instant::now();
        let message = match message {
            None => {
                let reason = "the socket closed".into();
                return Ended::Cut {
                    reason,
                    held: held(subscribed_at),
                };
            }
            Some(Err(e)) => {
                return Ended::Fatal(CliError::BadAnswer {
                    server: client.server(),
                    reason: e,
                })
            }
            Some(Ok(Heard::Alive)) => continue,
            Some(Ok(Heard::Message(m))) => m,
        };
        if matches!(message, ServerMessage::Subscribed { .. }) {
            subscribed_at = Some(Instant::now());
            began_ns.get_or_insert_with(|| client.server_now_ns());
            if std::mem::take(cut) && !back(client, &start.label(), tx).await {
                return Ended::Gone;
            }
        }
        let event = match event_of(message, start, from_tail) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(e) if e.is_transient() => return lost(&e.to_string()),
            Err(e) => return Ended::Fatal(e),
        };
        if tx.send(event).await.is_err() {
            return Ended::Gone;
        }
    }
}

/// Goes on after the last line taken, or, with none taken yet, begins with the tail.
fn subscription(start: &Start) -> ClientMessage {
    let cursors = start.resume.cursors();
    let resume = (!cursors.is_empty()).then_some(cursors);
    let tail = Tail::try_from(i64::from(start.tail)).unwrap_or_default();
    let project = start.project.clone();
    let engine = Some(start.engine.clone());
    match start.services.as_slice() {
        [service] => ClientMessage::Subscribe {
            engine,
            project,
            service: service.clone(),
            tail,
            resume,
            id: None,
        },
        several => ClientMessage::SubscribeProject {
            engine,
            project,
            // Grouped by `Start::grouped`: 2 to 64 names, each once.
            services: ServiceNames::try_from(several.to_vec()).ok(),
            tail,
            resume,
            id: None,
        },
    }
}

/// Says on stderr that `label` is followed again; false when nobody reads any more.
async fn back(client: &Client, label: &str, tx: &mpsc::Sender<Event>) -> bool {
    let notice = format!(
        "reconnected to {}; {label} goes on after its last line",
        client.server()
    );
    tx.send(Event::Notice(notice)).await.is_ok()
}

/// What a message means to the printer: an event, nothing, or the end of following.
fn event_of(
    message: ServerMessage,
    start: &mut Start,
    from_tail: bool,
) -> Result<Option<Event>, CliError> {
    let key = |engine, project, service| ServiceKey {
        engine,
        project,
        service,
    };
    Ok(Some(match message {
        ServerMessage::Subscribed {
            engine,
            project,
            service,
            containers,
            ..
        } => Event::Subscribed(key(engine, project, service), containers),
        ServerMessage::Lines {
            engine,
            project,
            service,
            mut lines,
        } => {
            if from_tail {
                lines.retain(|l| l.cursor.ts_ns >= start.floor_ns);
            }
            for line in &lines {
                start.resume.note(&line.cursor);
            }
            Event::Lines(key(engine, project, service), lines)
        }
        ServerMessage::Lifecycle {
            engine,
            project,
            service,
            change,
        } => Event::Notice(change.describe(&key(engine, project, service).to_string())),
        ServerMessage::Dropped { count, service } => Event::Notice(format!(
            "{count} lines of {} were left out: this terminal read them slower than they came",
            service.map_or_else(
                || start.label(),
                |s| format!("{}{}/{s}", start.engine_part(), start.project)
            )
        )),
        ServerMessage::Error {
            code: ErrorCode::LinesUnread,
            message,
            ..
        } => Event::Notice(message),
        ServerMessage::Error {
            code: ErrorCode::UnknownService,
            ..
        } => return Err(CliError::UnknownService(start.label())),
        ServerMessage::Error {
            code: ErrorCode::EngineUnreachable,
            message,
            ..
        } => {
            return Err(CliError::Busy {
                server: "the server's Docker engine".into(),
                status: 503,
                reason: message,
            })
        }
        ServerMessage::Error { message, .. } => return Err(CliError::Refused(message)),
        ServerMessage::Hello { .. }
        | ServerMessage::Services { .. }
        | ServerMessage::Engine { .. }
        | ServerMessage::History { .. }
        | ServerMessage::Unsubscribed { .. } => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::Cursor;

    fn followed(project: &str, service: &str, container: &str) -> (ServiceKey, Resume) {
        let mut resume = Resume::default();
        if !container.is_empty() {
            resume.note(&Cursor {
                ts_ns: 1,
                seq: 0,
                container: container.into(),
            });
        }
        let key = ServiceKey::local(project, service);
        (key, resume)
    }

    /// `quiet` has no line taken: with the others, it would start from their cursors' time.
    #[test]
    fn the_services_of_a_project_share_a_socket_and_their_cursors() {
        let starts = Start::grouped(
            vec![
                followed("shop", "web", "aaaa"),
                followed("blog", "db", "bbbb"),
                followed("shop", "db", "cccc"),
                followed("shop", "quiet", ""),
            ],
            100,
            0,
        );
        let groups: Vec<(String, Vec<String>, usize)> = starts
            .iter()
            .map(|s| (s.label(), s.services.clone(), s.resume.cursors().len()))
            .collect();
        assert_eq!(
            groups,
            [
                ("shop/web, db".into(), vec!["web".into(), "db".into()], 2),
                ("blog/db".into(), vec!["db".into()], 1),
                ("shop/quiet".into(), vec!["quiet".into()], 0),
            ]
        );
        assert!(matches!(
            subscription(&starts[0]),
            ClientMessage::SubscribeProject { .. }
        ));
        assert!(matches!(
            subscription(&starts[1]),
            ClientMessage::Subscribe { .. }
        ));
    }

    #[test]
    fn more_services_than_a_subscription_names_take_another_socket() {
        let many = (0..MAX_SERVICES + 1)
            .map(|i| followed("shop", &format!("s{i}"), &format!("c{i}")))
            .collect();
        let starts = Start::grouped(many, 100, 0);
        let sizes: Vec<usize> = starts.iter().map(|s| s.services.len()).collect();
        assert_eq!(sizes, [MAX_SERVICES, 1]);
    }
}
