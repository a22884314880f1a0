//! What a socket sends: JSON messages, lines in batches, and a subscription's backlog (one
//! service's, or several merged in time order).

use std::sync::Arc;

use app::protocol::{ErrorCode, Lifecycle, ServerMessage, ServiceKey};
use app::wire_lines::Runs;
use axum::extract::ws::{Message, WebSocket};
use futures::stream::SplitSink;
use futures::SinkExt;
use serde::Serialize;

use crate::hub::Batch;
use crate::line::Line;

pub type Sink = SplitSink<WebSocket, Message>;

/// Why the socket loop ended: the client is gone.
pub struct Closed;

/// A `lines` message, serialised straight from the hub's shared lines without copying them.
#[derive(Serialize)]
#[serde(tag = "type", rename = "lines")]
struct LinesOut<'a> {
    engine: &'a str,
    project: &'a str,
    service: &'a str,
    runs: Runs<'a, &'a Line>,
}

pub async fn send_json<T: Serialize>(tx: &mut Sink, msg: &T) -> Result<(), Closed> {
    let text = serde_json::to_string(msg).map_err(|_| Closed)?;
    tx.send(Message::Text(text.into()))
        .await
        .map_err(|_| Closed)
}

/// `id` is that of the request refused, if it gave one.
pub async fn send_error(
    tx: &mut Sink,
    code: ErrorCode,
    message: String,
    id: Option<u32>,
) -> Result<(), Closed> {
    send_json(tx, &ServerMessage::Error { code, message, id }).await
}

/// Sends lines as `lines` messages of at most a batch each (a line larger than a batch's
/// bytes goes alone).
pub async fn send_lines(
    tx: &mut Sink,
    key: &ServiceKey,
    lines: &[&Arc<Line>],
    batch: Batch,
) -> Result<(), Closed> {
    let mut rest = lines;
    while !rest.is_empty() {
        let mut bytes = 0;
        let n = rest
            .iter()
            .take(batch.lines)
            .take_while(|l| {
                bytes += l.json().len();
                bytes <= batch.bytes
            })
            .count()
            .max(1);
        let (chunk, after) = rest.split_at(n);
        let chunk: Vec<&Line> = chunk.iter().map(|l| l.as_ref()).collect();
        let msg = LinesOut {
            engine: &key.engine,
            project: &key.project,
            service: &key.service,
            runs: Runs(&chunk),
        };
        send_json(tx, &msg).await?;
        rest = after;
    }
    Ok(())
}

/// One service's backlog: its lines and its changes, each in time order.
pub struct Backlog {
    pub key: ServiceKey,
    pub lines: Vec<Arc<Line>>,
    pub markers: Vec<Arc<Lifecycle>>,
}

/// A line or a change of one of the backlogs, by the backlog's index.
enum Entry<'a> {
    Line(usize, &'a Arc<Line>),
    Change(usize, &'a Arc<Lifecycle>),
}

impl Entry<'_> {
    fn backlog(&self) -> usize {
        match self {
            Entry::Line(i, _) | Entry::Change(i, _) => *i,
        }
    }

    fn ts_ns(&self) -> i64 {
        match self {
            Entry::Line(_, l) => l.cursor.ts_ns,
            Entry::Change(_, c) => c.ts_ns,
        }
    }

    /// A line stamped at a change's instant goes before it.
    fn is_change(&self) -> bool {
        matches!(self, Entry::Change(..))
    }
}

/// The backlogs merged in time order, a change after the lines stamped at or before it (as
/// a live viewer got them); with `newest`, and more lines than that, only from the newest
/// that many lines on (the changes before them left out too).
fn merge(backlogs: &[Backlog], newest: Option<usize>) -> Vec<Entry<'_>> {
    let mut all: Vec<Entry> = Vec::new();
    for (i, b) in backlogs.iter().enumerate() {
        all.extend(b.lines.iter().map(|l| Entry::Line(i, l)));
        all.extend(b.markers.iter().map(|m| Entry::Change(i, m)));
    }
    all.sort_by(|a, b| {
        (a.ts_ns(), a.is_change())
            .cmp(&(b.ts_ns(), b.is_change()))
            .then_with(|| match (a, b) {
                (Entry::Line(_, x), Entry::Line(_, y)) => x.cursor.cmp(&y.cursor),
                _ => std::cmp::Ordering::Equal,
            })
    });
    let lines = all.iter().filter(|e| !e.is_change()).count();
    if let Some(newest) = newest.filter(|n| lines > *n) {
        let mut skip = lines - newest;
        let first = all.iter().position(|e| {
            let is_line = matches!(e, Entry::Line(..));
            if is_line && skip == 0 {
                return true;
            }
            skip -= usize::from(is_line);
            false
        });
        all.drain(..first.unwrap_or(all.len()));
    }
    all
}

/// Sends the backlogs merged in time order: runs of one service's lines as `lines`
/// messages, each change in its place among them.
pub async fn send_backlogs(
    tx: &mut Sink,
    backlogs: &[Backlog],
    newest: Option<usize>,
    batch: Batch,
) -> Result<(), Closed> {
    let merged = merge(backlogs, newest);
    let mut run: Vec<&Arc<Line>> = Vec::new();
    let mut run_of = None;
    for entry in &merged {
        let i = entry.backlog();
        if run_of != Some(i) || matches!(entry, Entry::Change(..)) {
            if let Some(of) = run_of.take() {
                send_lines(tx, &backlogs[of].key, &run, batch).await?;
                run.clear();
            }
        }
        match entry {
            Entry::Line(_, line) => {
                run.push(line);
                run_of = Some(i);
            }
            Entry::Change(_, change) => {
                let key = &backlogs[i].key;
                let msg = ServerMessage::Lifecycle {
                    engine: key.engine.clone(),
                    project: key.project.clone(),
                    service: key.service.clone(),
                    change: change.as_ref().clone(),
                };
                send_json(tx, &msg).await?;
            }
        }
    }
    if let Some(of) = run_of {
        send_lines(tx, &backlogs[of].key, &run, batch).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::{Cursor, LifecycleEvent, LogLine, Replica, Stream};

    fn line(ts_ns: i64, text: &str) -> Arc<Line> {
        Line::shared(LogLine {
            cursor: Cursor {
                ts_ns,
                seq: 0,
                container: "c".into(),
            },
            ts: String::new(),
            replica: Replica {
                number: 1,
                name: "c".into(),
            },
            stream: Stream::Stdout,
            text: text.into(),
            truncated: false,
            level: None,
        })
    }

    fn change(ts_ns: i64) -> Arc<Lifecycle> {
        Arc::new(Lifecycle {
            ts_ns,
            ts: String::new(),
            replica: Replica {
                number: 1,
                name: "c".into(),
            },
            event: LifecycleEvent::Started,
        })
    }

    fn backlog(service: &str, lines: &[(i64, &str)], markers: &[i64]) -> Backlog {
        Backlog {
            key: ServiceKey::local("p", service),
            lines: lines.iter().map(|(t, x)| line(*t, x)).collect(),
            markers: markers.iter().map(|t| change(*t)).collect(),
        }
    }

    fn shown(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Line(i, l) => format!("{i}:{}", l.text),
                Entry::Change(i, m) => format!("{i}:@{}", m.ts_ns),
            })
            .collect()
    }

    #[test]
    fn backlogs_merge_in_time_order_with_each_change_after_the_lines_of_its_instant() {
        let b = [
            backlog("web", &[(10, "w1"), (30, "w3")], &[30]),
            backlog("db", &[(20, "d2"), (40, "d4")], &[5]),
        ];
        assert_eq!(
            shown(&merge(&b, None)),
            ["1:@5", "0:w1", "1:d2", "0:w3", "0:@30", "1:d4"]
        );
    }

    #[test]
    fn a_merged_tail_keeps_the_newest_lines_of_all_and_the_changes_among_them() {
        let b = [
            backlog("web", &[(10, "w1"), (30, "w3")], &[15]),
            backlog("db", &[(20, "d2"), (40, "d4")], &[5]),
        ];
        assert_eq!(shown(&merge(&b, Some(3))), ["1:d2", "0:w3", "1:d4"]);
        assert_eq!(shown(&merge(&b, Some(0))), Vec::<String>::new());
        assert_eq!(merge(&b, Some(10)).len(), 6, "fewer lines than asked: all");
    }
}
