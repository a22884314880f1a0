//! A `lines` message's lines as they travel: in runs of one container's consecutive lines,
//! the container and its replica said once per run, not once per line. A live batch is
//! mostly one run, so a line costs its stamp and its text: about 100 bytes on the wire
//! against 240 with the container's 64-character id and the replica in every line, which
//! each of a hundred viewers' sockets copied and each browser read back.

use std::sync::Arc;

use serde::de::Error as _;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cursor::{is_container_id, Cursor};
use crate::protocol::{Level, LogLine, Replica, Stream};

/// One line within its run: what the run does not say. `seq` is left out when 0 and
/// `stream` when stdout, as most lines are.
#[derive(Serialize)]
pub struct LineOut<'a> {
    ts_ns: i64,
    #[serde(skip_serializing_if = "is_zero")]
    seq: u32,
    ts: &'a str,
    #[serde(skip_serializing_if = "is_stdout")]
    stream: Stream,
    text: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<Level>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_stdout(s: &Stream) -> bool {
    *s == Stream::Stdout
}

impl<'a> From<&'a LogLine> for LineOut<'a> {
    fn from(l: &'a LogLine) -> Self {
        LineOut {
            ts_ns: l.cursor.ts_ns,
            seq: l.cursor.seq,
            ts: &l.ts,
            stream: l.stream,
            text: &l.text,
            truncated: l.truncated,
            level: l.level,
        }
    }
}

/// A line a run can hold: the line, and how it is written within its run (the server
/// writes the JSON it made once when the line was read).
pub trait RunLine {
    fn line(&self) -> &LogLine;
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
}

impl RunLine for LogLine {
    fn line(&self) -> &LogLine {
        self
    }

    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        LineOut::from(self).serialize(s)
    }
}

impl<T: RunLine + ?Sized> RunLine for &T {
    fn line(&self) -> &LogLine {
        (**self).line()
    }

    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).write(s)
    }
}

/// Lines written as runs: consecutive lines of one container (and replica) share a run.
pub struct Runs<'a, T>(pub &'a [T]);

impl<T: RunLine> Serialize for Runs<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let same = |a: &T, b: &T| {
            let (a, b) = (a.line(), b.line());
            (Arc::ptr_eq(&a.cursor.container, &b.cursor.container)
                || a.cursor.container == b.cursor.container)
                && a.replica == b.replica
        };
        let mut seq = s.serialize_seq(None)?;
        for run in self.0.chunk_by(same) {
            let first = run[0].line();
            seq.serialize_element(&RunOut {
                container: &first.cursor.container,
                replica: &first.replica,
                lines: Written(run),
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
#[serde(bound(serialize = "T: RunLine"))]
struct RunOut<'a, T: RunLine> {
    container: &'a str,
    replica: &'a Replica,
    lines: Written<'a, T>,
}

struct Written<'a, T>(&'a [T]);

impl<T: RunLine> Serialize for Written<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for line in self.0 {
            seq.serialize_element(&Element(line))?;
        }
        seq.end()
    }
}

struct Element<'a, T>(&'a T);

impl<T: RunLine> Serialize for Element<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.write(s)
    }
}

/// For `#[serde(serialize_with)]` on a message's lines.
pub fn serialize<S: Serializer>(lines: &[LogLine], s: S) -> Result<S::Ok, S::Error> {
    Runs(lines).serialize(s)
}

#[derive(Deserialize)]
struct RunIn {
    container: String,
    replica: Replica,
    lines: Vec<LineIn>,
}

#[derive(Deserialize)]
struct LineIn {
    ts_ns: i64,
    #[serde(default)]
    seq: u32,
    ts: String,
    #[serde(default = "stdout")]
    stream: Stream,
    text: String,
    #[serde(default)]
    truncated: bool,
    #[serde(default)]
    level: Option<Level>,
}

fn stdout() -> Stream {
    Stream::Stdout
}

/// For `#[serde(deserialize_with)]` on a message's lines: the runs' lines in order, each
/// run's lines sharing one container id.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LogLine>, D::Error> {
    let runs = Vec::<RunIn>::deserialize(d)?;
    let mut lines = Vec::with_capacity(runs.iter().map(|r| r.lines.len()).sum());
    for run in runs {
        if !is_container_id(&run.container) {
            return Err(D::Error::custom(format_args!(
                "a run's container is not a container id: {:?}",
                run.container.chars().take(80).collect::<String>()
            )));
        }
        let container: Arc<str> = run.container.into();
        lines.extend(run.lines.into_iter().map(|l| LogLine {
            cursor: Cursor {
                ts_ns: l.ts_ns,
                seq: l.seq,
                container: container.clone(),
            },
            ts: l.ts,
            stream: l.stream,
            replica: run.replica.clone(),
            text: l.text,
            truncated: l.truncated,
            level: l.level,
        }));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(container: &str, replica: u32, seq: u32, stream: Stream, text: &str) -> LogLine {
        LogLine {
            cursor: Cursor {
                ts_ns: 1_700_000_000_000_000_000 + i64::from(seq),
                seq,
                container: container.into(),
            },
            ts: "2023-11-14T22:13:20.000000000Z".into(),
            stream,
            replica: Replica {
                number: replica,
                name: format!("p-web-{replica}"),
            },
            text: text.into(),
            truncated: seq == 3,
            level: (seq == 2).then_some(Level::Warn),
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Message {
        #[serde(serialize_with = "serialize", deserialize_with = "deserialize")]
        runs: Vec<LogLine>,
    }

    #[test]
    fn lines_of_two_replicas_in_turn_come_back_as_they_went() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let hostile = "<b>\"quoted\"\\ \u{1b}[31m \u{2028}";
        let lines = vec![
            line(&a, 1, 0, Stream::Stdout, "one"),
            line(&a, 1, 1, Stream::Stderr, hostile),
            line(&b, 2, 2, Stream::Stdout, "three"),
            line(&a, 1, 3, Stream::Stdout, "four"),
        ];
        let text = serde_json::to_string(&Message {
            runs: lines.clone(),
        })
        .unwrap();
        let back: Message = serde_json::from_str(&text).unwrap();
        assert_eq!(back.runs, lines);
        // Three runs (a, b, a again), each id written once.
        assert_eq!(text.matches(&a).count(), 2);
        assert_eq!(text.matches(&b).count(), 1);
        assert!(
            Arc::ptr_eq(
                &back.runs[0].cursor.container,
                &back.runs[1].cursor.container
            ),
            "a run's lines share their container's id"
        );
    }

    #[test]
    fn a_line_in_a_run_is_a_third_of_a_whole_line() {
        let id = "c".repeat(64);
        let l = line(&id, 1, 0, Stream::Stdout, "fast line 1234567");
        let whole = serde_json::to_string(&l).unwrap().len();
        let in_run = serde_json::to_string(&LineOut::from(&l)).unwrap().len();
        assert!(
            in_run * 2 < whole,
            "{in_run} bytes in a run against {whole}"
        );
    }

    #[test]
    fn a_run_without_a_container_id_is_refused() {
        for bad in ["", "not-hex", &"a".repeat(65)] {
            let text = format!(
                r#"{{"runs":[{{"container":"{bad}","replica":{{"number":1,"name":"x"}},"lines":[{{"ts_ns":1,"ts":"t","text":"x"}}]}}]}}"#
            );
            let err = serde_json::from_str::<Message>(&text).unwrap_err();
            assert!(err.to_string().contains("container id"), "{err}");
        }
    }
}
