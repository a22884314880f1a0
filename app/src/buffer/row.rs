//! A row of the view: a line as shown (its colour codes parsed, or a JSON object made
//! readable) or a container's start or exit, and whether it continues an entry.

use std::sync::Arc;

use crate::ansi::{self, Style, Styled};
use crate::export::{self, Origin};
use crate::json;
use crate::multiline::Grouper;
use crate::protocol::{Cursor, Lifecycle, LogLine, Replica};

/// One row of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Position in this buffer since it was created; never reused.
    pub id: u64,
    /// The service whose line or container it is: a view of several shows it.
    pub service: Arc<str>,
    /// Characters of visible text, to lay the row out when lines wrap.
    pub chars: u32,
    /// It continues the entry of the row before it (a line of a stack trace).
    pub continues: bool,
    pub kind: RowKind,
}

/// What the view shows of an entry on its first row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Lines after the first.
    pub more: u32,
    /// Only the first line is shown.
    pub collapsed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// A line of the log as shown, made once, when it arrived: its colour codes parsed,
    /// or, for a JSON object (`json`), its message and fields (`json::readable`).
    Line {
        line: LogLine,
        styled: Styled,
        json: bool,
    },
    /// A container's start, exit or removal. It has a time but no cursor: it is never
    /// resumed after, and it passes any text filter.
    Marker {
        ts_ns: i64,
        replica: Replica,
        /// What happened, e.g. "web #1 exited with code 137".
        text: String,
    },
}

impl Row {
    pub(super) fn line(id: u64, service: Arc<str>, line: LogLine) -> Row {
        // A line with colour codes is a terminal's, not a JSON document.
        let readable = (!line.text.contains('\x1b'))
            .then(|| json::readable(&line.text))
            .flatten();
        let json = readable.is_some();
        let styled = readable.unwrap_or_else(|| ansi::parse(&line.text));
        // A JSON row's `{}` button is two columns wide, before its text.
        let chars = styled.plain.chars().count() + if json { 2 } else { 0 };
        Row {
            id,
            service,
            chars: chars as u32,
            continues: false,
            kind: RowKind::Line { line, styled, json },
        }
    }

    /// A line's cursor; a marker has none.
    pub fn cursor(&self) -> Option<&Cursor> {
        match &self.kind {
            RowKind::Line { line, .. } => Some(&line.cursor),
            RowKind::Marker { .. } => None,
        }
    }

    pub(super) fn marker(id: u64, service: Arc<str>, change: Lifecycle) -> Row {
        let text = change.describe(&service);
        Row {
            id,
            service,
            chars: text.chars().count() as u32,
            continues: false,
            kind: RowKind::Marker {
                ts_ns: change.ts_ns,
                replica: change.replica,
                text,
            },
        }
    }

    pub fn is_marker(&self) -> bool {
        matches!(self.kind, RowKind::Marker { .. })
    }

    pub fn ts_ns(&self) -> i64 {
        match &self.kind {
            RowKind::Line { line, .. } => line.cursor.ts_ns,
            RowKind::Marker { ts_ns, .. } => *ts_ns,
        }
    }

    pub fn replica(&self) -> &Replica {
        match &self.kind {
            RowKind::Line { line, .. } => &line.replica,
            RowKind::Marker { replica, .. } => replica,
        }
    }

    /// The visible text, escapes removed: what the filter reads and the row shows.
    pub fn plain(&self) -> &str {
        match &self.kind {
            RowKind::Line { styled, .. } => &styled.plain,
            RowKind::Marker { text, .. } => text,
        }
    }

    /// Styled byte ranges of [`Row::plain`]; a marker's text has none.
    pub fn spans(&self) -> &[(std::ops::Range<usize>, Style)] {
        match &self.kind {
            RowKind::Line { styled, .. } => &styled.spans,
            RowKind::Marker { .. } => &[],
        }
    }

    /// The JSON object line as it was written, for a row made readable from one.
    pub fn json(&self) -> Option<&str> {
        match &self.kind {
            RowKind::Line {
                line, json: true, ..
            } => Some(&line.text),
            _ => None,
        }
    }

    /// Appends the row in the download format: a JSON line as written, other lines as
    /// shown (colour codes removed).
    pub fn export(&self, out: &mut String) {
        let origin = match &self.kind {
            RowKind::Line { line, .. } => line.stream.into(),
            RowKind::Marker { .. } => Origin::Event,
        };
        export::push_line(
            out,
            self.ts_ns(),
            &self.replica().name,
            origin,
            self.json().unwrap_or(self.plain()),
        );
    }
}

/// Whether a row continues the entry before it; a marker ends an entry.
pub(super) fn group(grouper: &mut Grouper, row: &Row) -> bool {
    match &row.kind {
        RowKind::Line {
            line, styled, json, ..
        } => {
            let (text, ts, stream, replica) = (
                &styled.plain,
                line.cursor.ts_ns,
                line.stream,
                container_key(&line.cursor.container),
            );
            // A JSON object or a line stating its level is an event of its own: grouped under
            // the line before, a level or field filter would hide it with that line.
            if *json || line.level.is_some() {
                grouper.begin(text, ts, stream, replica);
                false
            } else {
                grouper.next(text, ts, stream, replica)
            }
        }
        RowKind::Marker { .. } => {
            grouper.end();
            false
        }
    }
}

/// A container id as a number the grouper compares cheaply: replica numbers are only
/// unique within a service, and a view may hold several.
fn container_key(container: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    container.hash(&mut h);
    h.finish()
}

/// How many screen lines a row of `chars` characters takes when wrapped at `cols`.
pub fn wrapped_lines(chars: u32, cols: u32) -> u32 {
    chars.div_ceil(cols.max(1)).max(1)
}
