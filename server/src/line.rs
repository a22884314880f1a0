//! A log line as the server holds and sends it: the protocol's line with its JSON as a
//! `lines` message's run holds it (`app::wire_lines`), written once when the line is read. A line
//! fanned out to a hundred viewers was otherwise escaped into JSON a hundred times: that was
//! the largest cost in the profile of many viewers.

use std::ops::Deref;
use std::sync::Arc;

use app::protocol::LogLine;
use app::wire_lines::{LineOut, RunLine};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// What one line takes in memory beyond its strings: the `Arc`, the struct, allocator slack.
const OVERHEAD: usize = 112;

/// A line and its JSON, shared by everything that holds it (ring, tape, backlogs).
#[derive(Debug)]
pub struct Line {
    line: LogLine,
    json: Box<RawValue>,
}

impl Line {
    pub fn new(line: LogLine) -> Line {
        // A `LogLine` is strings, numbers and enums: serialising it cannot fail. Not
        // `RawValue::from_string`, which parses the JSON again to check it.
        let json =
            serde_json::value::to_raw_value(&LineOut::from(&line)).expect("a log line serialises");
        Line { line, json }
    }

    /// Lines are shared, never copied, from the follower that reads them to the sockets.
    pub fn shared(line: LogLine) -> Arc<Line> {
        Arc::new(Line::new(line))
    }

    /// The line as a run of a `lines` message holds it.
    pub fn json(&self) -> &str {
        self.json.get()
    }

    /// The memory the line holds, as the byte bounds count it: its strings, and its JSON
    /// beside them (which holds its text and stamp again).
    pub fn bytes(&self) -> usize {
        let l = &self.line;
        l.text.len()
            + l.ts.len()
            + l.cursor.container.len()
            + l.replica.name.len()
            + self.json.get().len()
            + OVERHEAD
    }
}

impl Deref for Line {
    type Target = LogLine;

    fn deref(&self) -> &LogLine {
        &self.line
    }
}

/// Written in its run as the JSON made when the line was read, not serialised again.
impl RunLine for Line {
    fn line(&self) -> &LogLine {
        &self.line
    }

    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::{Cursor, Level, Replica, Stream};
    use app::wire_lines::Runs;

    fn line(text: &str) -> LogLine {
        LogLine {
            cursor: Cursor {
                ts_ns: 1_700_000_000_000_000_001,
                seq: 7,
                container: "abc".into(),
            },
            ts: "2023-11-14T22:13:20.000000001Z".into(),
            stream: Stream::Stderr,
            replica: Replica {
                number: 2,
                name: "p-web-2".into(),
            },
            text: text.into(),
            truncated: true,
            level: Some(Level::Warn),
        }
    }

    #[test]
    fn a_held_line_is_sent_as_the_protocol_line_it_holds() {
        let hostile = "<script>\"quoted\"\\ \u{1b}[31m tab\t ü \u{2028}";
        let held = Line::new(line(hostile));
        let sent = serde_json::to_string(&Runs(&[&held])).unwrap();
        let back =
            app::wire_lines::deserialize(&mut serde_json::Deserializer::from_str(&sent)).unwrap();
        assert_eq!(back, [line(hostile)]);
        assert_eq!(
            sent,
            serde_json::to_string(&Runs(&[line(hostile)])).unwrap()
        );
    }

    #[test]
    fn its_bytes_count_the_json_beside_the_line() {
        let short = Line::new(line("x"));
        let long = Line::new(line(&"x".repeat(1_000)));
        // The text is held twice: in the line and in its JSON.
        assert_eq!(long.bytes() - short.bytes(), 2 * 999);
    }
}
