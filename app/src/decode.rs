//! The web client's reading of a `ServerMessage`, the same JSON as its derived
//! `Deserialize` takes. That derive, for a tag that may come anywhere in the object, first
//! copies every message into serde's generic `Content` and then reads its fields from the
//! copy: about 20 KB of the client's gzipped wasm, and a second pass over every batch of
//! lines. Here the tag is read first (the server writes it first: one look at the text),
//! then the message's own fields straight from the text, the tag skipped as an unknown field.

use serde::Deserialize;
use serde_json::from_str as read;

use crate::protocol::{
    ContainerInfo, EngineStatus, ErrorCode, HistoryStatus, Lifecycle, LogLine, ProjectInfo,
    ServerMessage,
};
use crate::service_key::local_engine;

/// A message as the server sends it, read as the derived `Deserialize` reads it.
pub fn server_message(text: &str) -> serde_json::Result<ServerMessage> {
    let tag = match text
        .strip_prefix(r#"{"type":""#)
        .and_then(|rest| rest.split_once('"'))
        .filter(|(tag, _)| !tag.contains('\\'))
    {
        Some((tag, _)) => tag.to_owned(),
        // Not as the server writes it: the tag looked for among the fields.
        None => serde_json::from_str::<Tag>(text)?.kind,
    };
    Ok(match tag.as_str() {
        "hello" => read::<Hello>(text)?.into(),
        "engine" => ServerMessage::Engine {
            engine: read::<EngineBody>(text)?.engine,
        },
        "history" => ServerMessage::History {
            history: read::<HistoryBody>(text)?.history,
        },
        "services" => ServerMessage::Services {
            projects: read::<Services>(text)?.projects,
        },
        "subscribed" => read::<Subscribed>(text)?.into(),
        "lines" => read::<Lines>(text)?.into(),
        "lifecycle" => read::<LifecycleBody>(text)?.into(),
        "dropped" => read::<Dropped>(text)?.into(),
        "unsubscribed" => ServerMessage::Unsubscribed {
            id: read::<Unsubscribed>(text)?.id,
        },
        "error" => read::<Error>(text)?.into(),
        other => {
            return Err(serde::de::Error::custom(format_args!(
                "unknown message type `{other}`"
            )))
        }
    })
}

#[derive(Deserialize)]
struct Tag {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Hello {
    protocol: u32,
    engine: EngineStatus,
    #[serde(default)]
    engines: Vec<EngineStatus>,
    #[serde(default)]
    history: Option<HistoryStatus>,
}

impl From<Hello> for ServerMessage {
    fn from(m: Hello) -> Self {
        ServerMessage::Hello {
            protocol: m.protocol,
            engine: m.engine,
            engines: m.engines,
            history: m.history,
        }
    }
}

#[derive(Deserialize)]
struct EngineBody {
    engine: EngineStatus,
}

#[derive(Deserialize)]
struct HistoryBody {
    history: HistoryStatus,
}

#[derive(Deserialize)]
struct Services {
    projects: Vec<ProjectInfo>,
}

#[derive(Deserialize)]
struct Subscribed {
    #[serde(default = "local_engine")]
    engine: String,
    project: String,
    service: String,
    containers: Vec<ContainerInfo>,
    #[serde(default)]
    id: Option<u32>,
}

impl From<Subscribed> for ServerMessage {
    fn from(m: Subscribed) -> Self {
        ServerMessage::Subscribed {
            engine: m.engine,
            project: m.project,
            service: m.service,
            containers: m.containers,
            id: m.id,
        }
    }
}

#[derive(Deserialize)]
struct Lines {
    #[serde(default = "local_engine")]
    engine: String,
    project: String,
    service: String,
    #[serde(rename = "runs", deserialize_with = "crate::wire_lines::deserialize")]
    lines: Vec<LogLine>,
}

impl From<Lines> for ServerMessage {
    fn from(m: Lines) -> Self {
        ServerMessage::Lines {
            engine: m.engine,
            project: m.project,
            service: m.service,
            lines: m.lines,
        }
    }
}

#[derive(Deserialize)]
struct LifecycleBody {
    #[serde(default = "local_engine")]
    engine: String,
    project: String,
    service: String,
    #[serde(flatten)]
    change: Lifecycle,
}

impl From<LifecycleBody> for ServerMessage {
    fn from(m: LifecycleBody) -> Self {
        ServerMessage::Lifecycle {
            engine: m.engine,
            project: m.project,
            service: m.service,
            change: m.change,
        }
    }
}

#[derive(Deserialize)]
struct Dropped {
    count: u64,
    #[serde(default)]
    service: Option<String>,
}

impl From<Dropped> for ServerMessage {
    fn from(m: Dropped) -> Self {
        ServerMessage::Dropped {
            count: m.count,
            service: m.service,
        }
    }
}

#[derive(Deserialize)]
struct Unsubscribed {
    #[serde(default)]
    id: Option<u32>,
}

#[derive(Deserialize)]
struct Error {
    code: ErrorCode,
    message: String,
    #[serde(default)]
    id: Option<u32>,
}

impl From<Error> for ServerMessage {
    fn from(m: Error) -> Self {
        ServerMessage::Error {
            code: m.code,
            message: m.message,
            id: m.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Cursor, LifecycleEvent, Replica, Stream};

    fn derived(text: &str) -> ServerMessage {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn every_message_reads_as_the_derived_deserialize_reads_it() {
        let texts = [
            r#"{"type":"engine","engine":{"name":"local","reachable":true}}"#,
            r#"{"type":"services","projects":[]}"#,
            r#"{"type":"subscribed","project":"p","service":"s","containers":[],"id":3}"#,
            r#"{"type":"subscribed","engine":"e","project":"p","service":"s","containers":[]}"#,
            r#"{"type":"dropped","count":4}"#,
            r#"{"type":"dropped","count":4,"service":"web"}"#,
            r#"{"type":"unsubscribed"}"#,
            r#"{"type":"unsubscribed","id":7}"#,
            r#"{"type":"error","code":"bad_request","message":"no","id":1}"#,
            r#"{"type":"error","code":"lines_unread","message":"gap"}"#,
            // Not as the server writes them: the tag elsewhere, spaces.
            r#"{"count":4,"type":"dropped"}"#,
            r#"{ "type" : "unsubscribed" }"#,
        ];
        for text in texts {
            assert_eq!(server_message(text).unwrap(), derived(text), "{text}");
        }
    }

    #[test]
    fn messages_written_by_the_server_read_back_the_same() {
        let replica = Replica {
            number: 1,
            name: "p_web_1".into(),
        };
        let local = EngineStatus {
            name: "local".into(),
            reachable: false,
            api_version: None,
            engine_version: None,
            error: Some("down".into()),
        };
        let messages = [
            ServerMessage::Hello {
                protocol: 1,
                engine: local.clone(),
                engines: vec![local],
                history: Some(HistoryStatus::default()),
            },
            ServerMessage::History {
                history: HistoryStatus::default(),
            },
            ServerMessage::Lines {
                engine: "local".into(),
                project: "p".into(),
                service: "web".into(),
                lines: vec![LogLine {
                    cursor: Cursor {
                        ts_ns: 5,
                        seq: 2,
                        container: "abc".into(),
                    },
                    ts: "2026-11-22T02:32:11.000000000Z".into(),
                    stream: Stream::Stderr,
                    replica: replica.clone(),
                    text: "a \"quoted\" line".into(),
                    truncated: true,
                    level: None,
                }],
            },
            ServerMessage::Lifecycle {
                engine: "e".into(),
                project: "p".into(),
                service: "web".into(),
                change: Lifecycle {
                    ts_ns: 1,
                    ts: "1970-01-01T00:00:00.000000001Z".into(),
                    replica,
                    event: LifecycleEvent::Exited { exit_code: Some(1) },
                },
            },
        ];
        for m in messages {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(server_message(&text).unwrap(), m, "{text}");
        }
    }

    #[test]
    fn an_unknown_or_missing_type_is_an_error() {
        assert!(server_message(r#"{"type":"nonsense"}"#).is_err());
        assert!(server_message(r#"{"count":4}"#).is_err());
        assert!(server_message(r#"{"type":"dropped"}"#).is_err());
        assert!(server_message("not json").is_err());
    }
}
