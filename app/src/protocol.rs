//! The wire types that server and client share: what travels over the WebSocket and what the
//! server functions answer. docs/PROTOCOL.md describes the same messages for other clients.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::asks::{
    InvalidServices, InvalidTail, ServiceNames, Tail, TailOverLimit, MAX_RESUME_CURSORS,
    MAX_SERVICES, MAX_TAIL,
};
pub use crate::cursor::{Cursor, InvalidCursor};
pub(crate) use crate::service_key::local_engine;
pub use crate::service_key::{ServiceKey, LOCAL_ENGINE};

/// Version of the WebSocket protocol, sent in the `hello` message.
pub const PROTOCOL_VERSION: u32 = 2;

/// WebSocket close code of a socket whose session expired or was signed out: the client
/// should sign in again.
pub const CLOSE_SESSION_ENDED: u16 = 4401;

/// Which output of the container a line was written to. A TTY container has only one
/// output, which the engine reports as stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Which outputs of a service to read or show: the filter's choice and the tail's `streams`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Streams {
    #[default]
    Both,
    Stdout,
    Stderr,
}

impl Streams {
    pub fn allows(self, s: Stream) -> bool {
        match self {
            Streams::Both => true,
            Streams::Stdout => s == Stream::Stdout,
            Streams::Stderr => s == Stream::Stderr,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("streams must be stdout, stderr or both, got {0:?}")]
pub struct InvalidStreams(pub String);

/// The word a URL or a query uses: `both`, `stdout` or `stderr`, as on the wire.
impl FromStr for Streams {
    type Err = InvalidStreams;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "both" => Ok(Streams::Both),
            "stdout" => Ok(Streams::Stdout),
            "stderr" => Ok(Streams::Stderr),
            other => Err(InvalidStreams(other.chars().take(200).collect())),
        }
    }
}

/// Which replica of a service wrote a line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Replica {
    /// `com.docker.compose.container-number`.
    pub number: u32,
    /// The container's name, without the leading slash.
    pub name: String,
}

/// One line of a service's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub cursor: Cursor,
    /// The engine's timestamp, RFC 3339 with nanoseconds, UTC.
    pub ts: String,
    pub stream: Stream,
    pub replica: Replica,
    /// The line without its line ending. Bytes that were not UTF-8 are U+FFFD.
    pub text: String,
    /// True when the line was longer than the server's maximum and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The level the line states (in a JSON field, a logfmt `level=`, or at its start), as
    /// the server found it; absent when it states none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
}

/// How severe a line says it is, from the least to the most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// The level's name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

/// A change in a container's life, shown in its service's timeline among the lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// When it happened, by the engine's clock: nanoseconds since the epoch, to place it
    /// among lines (their cursors' `ts_ns`) without parsing `ts`.
    pub ts_ns: i64,
    /// The same instant as RFC 3339, UTC, for people.
    pub ts: String,
    pub replica: Replica,
    #[serde(flatten)]
    pub event: LifecycleEvent,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum LifecycleEvent {
    Started,
    Exited {
        exit_code: Option<i64>,
    },
    Removed,
    /// Its health check's verdict changed.
    Health {
        health: Health,
    },
}

impl Lifecycle {
    /// What the timeline shows, e.g. "web #1 exited with code 137".
    pub fn describe(&self, service: &str) -> String {
        let who = format!("{service} #{}", self.replica.number);
        match &self.event {
            LifecycleEvent::Started => format!("{who} started"),
            LifecycleEvent::Exited { exit_code: Some(c) } => format!("{who} exited with code {c}"),
            LifecycleEvent::Exited { exit_code: None } => format!("{who} exited"),
            LifecycleEvent::Removed => format!("{who} was removed"),
            LifecycleEvent::Health { health } => match health {
                Health::Healthy => format!("{who} is healthy"),
                Health::Starting => format!("{who} is starting its health check"),
                Health::Unhealthy => format!("{who} is unhealthy"),
            },
        }
    }
}

/// A service that does not exist, or that the asker may not see: both read the same, so that
/// a scope does not tell what lies outside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service {0}: no Compose project {p:?} with a service {s:?}", p = .0.project, s = .0.service)]
pub struct UnknownService(pub ServiceKey);

/// The state of one container, as the engine reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

/// One container of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: String,
    pub replica: Replica,
    pub state: ContainerState,
    /// The code of the container's last exit, when it has exited at least once.
    pub exit_code: Option<i64>,
    /// What the container's health check says, when it has one and runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// The Swarm node a stack's task runs on (its hostname, or its id when the manager does
    /// not say); absent for a Compose container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The Swarm task whose container this is, when that container runs on another node
    /// than the engine read (a manager): its log and state are read through the manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// The verdict of a container's health check. Ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Starting,
    Unhealthy,
}

/// What a user most needs to know about a service at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ServiceState {
    /// At least one container runs.
    Running { running: u32 },
    /// No container runs, and at least one is being restarted by the engine.
    Restarting { exit_code: Option<i64> },
    /// Every container has stopped; the code is that of the most recent exit.
    Exited { exit_code: Option<i64> },
    /// Containers exist but none has started yet.
    Created,
    /// Every container is gone; its lines are kept in history (listed only with history).
    Removed,
}

impl ServiceState {
    /// Sums up the state of a service's containers; `last_exit` is the exit code of the one
    /// that stopped last (the listing does not say when each stopped; the engine does).
    pub fn of(containers: &[ContainerInfo], last_exit: Option<i64>) -> ServiceState {
        let running = containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .count() as u32;
        if running > 0 {
            ServiceState::Running { running }
        } else if containers
            .iter()
            .any(|c| c.state == ContainerState::Restarting)
        {
            ServiceState::Restarting {
                exit_code: last_exit,
            }
        } else if containers
            .iter()
            .any(|c| matches!(c.state, ContainerState::Exited | ContainerState::Dead))
        {
            ServiceState::Exited {
                exit_code: last_exit,
            }
        } else {
            ServiceState::Created
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, ServiceState::Running { .. })
    }
}

/// A Compose service with its containers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    #[serde(default = "local_engine")]
    pub engine: String,
    pub project: String,
    pub service: String,
    #[serde(flatten)]
    pub state: ServiceState,
    /// Number of replicas, whatever their state: a Compose service's containers, a stack
    /// service's task slots.
    pub replicas: u32,
    /// The replicas a stack's service should have, as its Swarm manager says (absent for
    /// Compose, and for a global service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    pub containers: Vec<ContainerInfo>,
}

impl ServiceInfo {
    /// The worst verdict among the running containers' health checks.
    pub fn health(&self) -> Option<Health> {
        self.containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .filter_map(|c| c.health)
            .max()
    }

    pub fn key(&self) -> ServiceKey {
        ServiceKey::new(&self.engine, &self.project, &self.service)
    }
}

/// A Compose project with its services, sorted by name. A project of the same name on two
/// engines is two projects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectInfo {
    #[serde(default = "local_engine")]
    pub engine: String,
    pub name: String,
    pub services: Vec<ServiceInfo>,
}

/// The service `key` names among `projects`.
pub fn find_service<'a>(projects: &'a [ProjectInfo], key: &ServiceKey) -> Option<&'a ServiceInfo> {
    projects
        .iter()
        .filter(|p| p.engine == key.engine && p.name == key.project)
        .flat_map(|p| &p.services)
        .find(|s| s.service == key.service)
}

/// Whether a Docker engine answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStatus {
    /// The engine's name (`--engine NAME=URL`; `local` without one).
    #[serde(default = "local_engine")]
    pub name: String,
    pub reachable: bool,
    /// The API version agreed with the engine, when it answered.
    pub api_version: Option<String>,
    /// The engine's own version, when it answered.
    pub engine_version: Option<String>,
    /// Why the engine is unreachable.
    pub error: Option<String>,
}

/// Whether history is being kept on disk (sent only by a server that keeps it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryStatus {
    /// False while writes to the data dir fail: live lines still flow, but are not kept.
    pub kept: bool,
    /// The last write error, while not kept.
    pub error: Option<String>,
}

/// Messages a client sends over the WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Follow a service, replacing any earlier subscription of this socket.
    Subscribe {
        /// The engine; without it, the server's default: its only engine, else `local`, else
        /// the first given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine: Option<String>,
        project: String,
        service: String,
        /// How many recent lines to send before following. Ignored when `resume` is given.
        #[serde(default)]
        tail: Tail,
        /// The last cursor the client holds for each container (and stream) of the service; the server
        /// then sends exactly the lines after them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Vec<Cursor>>,
        /// Echoed in this request's answer (`subscribed`, `unsubscribed` or `error`), so a
        /// client that sent several can tell which was answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
    /// Follow several services of one project at once, their lines merged in time order:
    /// those named, or (without `services`) every service of the project its viewer may
    /// see. Replaces any earlier subscription of this socket. `tail` is the newest lines of
    /// them all; `resume` the last cursor the client holds for each container of any.
    SubscribeProject {
        /// The engine; without it, the server's default: its only engine, else `local`, else
        /// the first given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine: Option<String>,
        project: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        services: Option<ServiceNames>,
        #[serde(default)]
        tail: Tail,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Vec<Cursor>>,
        /// Echoed in this request's answer (`subscribed`, `unsubscribed` or `error`), so a
        /// client that sent several can tell which was answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
    /// Stop following.
    Unsubscribe {
        /// Echoed in this request's answer (`subscribed`, `unsubscribed` or `error`), so a
        /// client that sent several can tell which was answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
}

/// Why a client's request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message was not valid JSON or not a known message.
    BadMessage,
    /// A field had a value outside what is allowed (a tail of -1, say).
    BadRequest,
    /// No such Compose project or service, or outside `--project`.
    UnknownService,
    /// The Docker engine did not answer.
    EngineUnreachable,
    /// Lines a resuming subscription asked for could not be read (the engine failed, or was
    /// busy with other reads): the subscription goes on, with a gap the message describes.
    LinesUnread,
}

/// Messages the server sends over the WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every socket. `history` is absent from a server that keeps none.
    Hello {
        protocol: u32,
        /// The default engine's status (the only engine's, or `local`'s), for clients that
        /// know one engine.
        engine: EngineStatus,
        /// Every engine's status, in name order.
        #[serde(default)]
        engines: Vec<EngineStatus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history: Option<HistoryStatus>,
    },
    /// An engine (named in its status) became reachable or unreachable.
    Engine { engine: EngineStatus },
    /// Whether history is being kept changed.
    History { history: HistoryStatus },
    /// All projects and their services, sent on connect and whenever a container changes.
    Services { projects: Vec<ProjectInfo> },
    /// The subscription is in place; the lines that follow belong to it. A subscription to
    /// several services sends one for each, before any line.
    Subscribed {
        #[serde(default = "local_engine")]
        engine: String,
        project: String,
        service: String,
        containers: Vec<ContainerInfo>,
        /// The `id` of the request this answers, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
    /// Lines of the subscribed service, in time order within each replica.
    Lines {
        #[serde(default = "local_engine")]
        engine: String,
        project: String,
        service: String,
        /// On the wire: `runs` of one container's lines (`crate::wire_lines`).
        #[serde(
            rename = "runs",
            serialize_with = "crate::wire_lines::serialize",
            deserialize_with = "crate::wire_lines::deserialize"
        )]
        lines: Vec<LogLine>,
    },
    /// A container of the subscribed service started, exited or was removed; it comes in
    /// order with the service's lines.
    Lifecycle {
        #[serde(default = "local_engine")]
        engine: String,
        project: String,
        service: String,
        #[serde(flatten)]
        change: Lifecycle,
    },
    /// The subscriber fell behind and `count` lines were skipped; the stream goes on.
    Dropped {
        count: u64,
        /// The service whose lines they were (absent from servers before it was told).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
    },
    /// The subscription ended (after `unsubscribe`).
    Unsubscribed {
        /// The `id` of the request this answers, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
    /// A request failed; the socket stays open.
    Error {
        code: ErrorCode,
        message: String,
        /// The `id` of the request this answers, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_outside_bounds_is_a_clear_error() {
        let err = serde_json::from_str::<ClientMessage>(
            r#"{"type":"subscribe","project":"p","service":"s","tail":-1}"#,
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("tail must be between 0 and 10000 lines, got -1"));
        let err = serde_json::from_str::<ClientMessage>(
            r#"{"type":"subscribe","project":"p","service":"s","tail":1000000000}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("got 1000000000"));
        let ok: ClientMessage = serde_json::from_str(
            r#"{"type":"subscribe","project":"p","service":"s","tail":10000}"#,
        )
        .unwrap();
        assert!(matches!(ok, ClientMessage::Subscribe { tail, .. } if tail.get() == 10_000));
    }

    #[test]
    fn a_project_subscription_names_one_to_64_services_each_once() {
        let read = |services: serde_json::Value| {
            let msg = serde_json::json!({"type": "subscribe_project", "project": "p", "services": services});
            serde_json::from_value::<ClientMessage>(msg)
        };
        let whole: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe_project","project":"p"}"#).unwrap();
        assert!(
            matches!(whole, ClientMessage::SubscribeProject { services: None, tail, .. } if tail == Tail::DEFAULT)
        );
        let two = read(serde_json::json!(["web", "db"])).unwrap();
        assert!(
            matches!(two, ClientMessage::SubscribeProject { services: Some(s), .. } if s.get() == ["web", "db"])
        );
        assert!(read(serde_json::json!([])).is_err(), "none");
        assert!(read(serde_json::json!(["web", "web"])).is_err(), "twice");
        let many: Vec<String> = (0..=MAX_SERVICES).map(|i| format!("s{i}")).collect();
        let err = read(serde_json::json!(many)).unwrap_err().to_string();
        assert!(err.contains("at most 64"), "{err}");
        let most: Vec<String> = (0..MAX_SERVICES).map(|i| format!("s{i}")).collect();
        assert!(read(serde_json::json!(most)).is_ok());
    }

    #[test]
    fn subscribe_defaults_to_a_tail_of_100() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","project":"p","service":"s"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Subscribe {
                engine: None,
                project: "p".into(),
                service: "s".into(),
                tail: Tail::DEFAULT,
                resume: None,
                id: None,
            }
        );
    }

    #[test]
    fn a_requests_id_is_optional_and_its_answer_echoes_it() {
        let bare: ClientMessage = serde_json::from_str(r#"{"type":"unsubscribe"}"#).unwrap();
        assert_eq!(bare, ClientMessage::Unsubscribe { id: None });
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe_project","project":"p","id":7}"#).unwrap();
        assert!(matches!(
            m,
            ClientMessage::SubscribeProject { id: Some(7), .. }
        ));
        let answer = ServerMessage::Unsubscribed { id: Some(7) };
        let text = serde_json::to_string(&answer).unwrap();
        assert_eq!(text, r#"{"type":"unsubscribed","id":7}"#);
        let plain = serde_json::to_string(&ServerMessage::Unsubscribed { id: None }).unwrap();
        assert_eq!(plain, r#"{"type":"unsubscribed"}"#);
    }

    #[test]
    fn service_state_sums_up_its_containers() {
        let c = |state, exit_code| ContainerInfo {
            id: "a".into(),
            replica: Replica {
                number: 1,
                name: "p_s_1".into(),
            },
            state,
            exit_code,
            health: None,
            node: None,
            task: None,
        };
        assert_eq!(
            ServiceState::of(
                &[
                    c(ContainerState::Running, None),
                    c(ContainerState::Exited, Some(1))
                ],
                Some(1)
            ),
            ServiceState::Running { running: 1 }
        );
        assert_eq!(
            ServiceState::of(&[c(ContainerState::Exited, Some(7))], Some(7)),
            ServiceState::Exited { exit_code: Some(7) }
        );
        assert_eq!(
            ServiceState::of(&[c(ContainerState::Restarting, Some(3))], Some(3)),
            ServiceState::Restarting { exit_code: Some(3) }
        );
    }

    #[test]
    fn lifecycle_messages_read_as_the_timeline_shows_them() {
        let m = ServerMessage::Lifecycle {
            engine: "local".into(),
            project: "p".into(),
            service: "web".into(),
            change: Lifecycle {
                ts_ns: 1_795_314_731_000_000_000,
                ts: "2026-11-22T02:32:11.000000000Z".into(),
                replica: Replica {
                    number: 1,
                    name: "p_web_1".into(),
                },
                event: LifecycleEvent::Exited {
                    exit_code: Some(137),
                },
            },
        };
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""type":"lifecycle""#), "{json}");
        assert!(
            json.contains(r#""event":"exited","exit_code":137"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<ServerMessage>(&json).unwrap(), m);
        if let ServerMessage::Lifecycle { change, .. } = m {
            assert_eq!(change.describe("web"), "web #1 exited with code 137");
        }
    }

    #[test]
    fn a_health_change_reads_as_its_verdict() {
        let change = Lifecycle {
            ts_ns: 0,
            ts: "1970-01-01T00:00:00.000000000Z".into(),
            replica: Replica {
                number: 2,
                name: "p_web_2".into(),
            },
            event: LifecycleEvent::Health {
                health: Health::Unhealthy,
            },
        };
        let json = serde_json::to_string(&change).unwrap();
        assert!(
            json.contains(r#""event":"health","health":"unhealthy""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Lifecycle>(&json).unwrap(), change);
        assert_eq!(change.describe("web"), "web #2 is unhealthy");
    }

    #[test]
    fn a_service_is_as_healthy_as_its_worst_running_container() {
        let c = |n, state, health| ContainerInfo {
            id: format!("{n}"),
            replica: Replica {
                number: n,
                name: format!("p_web_{n}"),
            },
            state,
            exit_code: None,
            health,
            node: None,
            task: None,
        };
        let service = |containers| ServiceInfo {
            engine: "local".into(),
            project: "p".into(),
            service: "web".into(),
            state: ServiceState::Created,
            replicas: 2,
            desired: None,
            containers,
        };
        let run = ContainerState::Running;
        assert_eq!(
            service(vec![
                c(1, run, Some(Health::Healthy)),
                c(2, run, Some(Health::Unhealthy))
            ])
            .health(),
            Some(Health::Unhealthy)
        );
        assert_eq!(
            service(vec![
                c(1, run, Some(Health::Healthy)),
                c(2, ContainerState::Exited, Some(Health::Unhealthy))
            ])
            .health(),
            Some(Health::Healthy),
            "a stopped container's last verdict does not count"
        );
        assert_eq!(service(vec![c(1, run, None)]).health(), None);
        let json = serde_json::to_string(&c(1, run, Some(Health::Starting))).unwrap();
        assert!(json.contains(r#""health":"starting""#), "{json}");
    }

    #[test]
    fn streams_read_the_words_they_are_written_as() {
        for s in [Streams::Both, Streams::Stdout, Streams::Stderr] {
            let word = serde_json::to_value(s).unwrap();
            assert_eq!(word.as_str().unwrap().parse::<Streams>(), Ok(s));
        }
        assert_eq!(
            "STDOUT".parse::<Streams>().unwrap_err().to_string(),
            r#"streams must be stdout, stderr or both, got "STDOUT""#
        );
        assert!(Streams::Both.allows(Stream::Stderr));
        assert!(Streams::Stdout.allows(Stream::Stdout));
        assert!(!Streams::Stdout.allows(Stream::Stderr));
        assert!(!Streams::Stderr.allows(Stream::Stdout));
    }

    #[test]
    fn server_messages_are_tagged_by_type() {
        let m = ServerMessage::Dropped {
            count: 5,
            service: None,
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"dropped","count":5}"#
        );
    }
}
