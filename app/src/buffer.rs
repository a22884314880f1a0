//! The client's bounded buffer of lines and the filtered view over it, kept up to date
//! incrementally: appending a batch filters only the new lines. The buffer owns the filter
//! it shows: which rows are visible and the filter that chose them cannot disagree.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::ansi::{self, Style, Styled};
use crate::export::{self, Origin};
use crate::filter::Filter;
use crate::json;
use crate::protocol::{Cursor, Lifecycle, LifecycleEvent, LogLine, Replica};

/// Lines kept in the browser by default.
pub const DEFAULT_MAX_LINES: usize = 100_000;
/// The range a user may choose (URL parameter `keep`).
pub const MAX_LINES_RANGE: std::ops::RangeInclusive<usize> = 1_000..=1_000_000;

/// How far back from the newest row a marker looks for its place or for itself told
/// before: markers arrive close to the lines they belong among, and the look stays cheap.
const MARKER_REACH: usize = 1000;

/// The first row's id: ids below it are for older rows put before it.
const FIRST_ID: u64 = 1 << 48;

/// One row of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Position in this buffer since it was created; never reused.
    pub id: u64,
    /// Characters of visible text, to lay the row out when lines wrap.
    pub chars: u32,
    pub kind: RowKind,
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
    fn line(id: u64, line: LogLine) -> Row {
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
            chars: chars as u32,
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

    fn marker(id: u64, service: &str, change: Lifecycle) -> Row {
        let text = change.describe(service);
        Row {
            id,
            chars: text.chars().count() as u32,
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

/// How many screen lines a row of `chars` characters takes when wrapped at `cols`.
pub fn wrapped_lines(chars: u32, cols: u32) -> u32 {
    chars.div_ceil(cols.max(1)).max(1)
}

#[derive(Debug)]
pub struct LineBuffer {
    cap: usize,
    rows: VecDeque<Arc<Row>>,
    next_id: u64,
    filter: Filter,
    /// Changes with every new filter, so that rows highlighted by the old one are redrawn.
    filter_generation: u64,
    /// Ids of the rows that pass the filter, oldest first.
    visible: VecDeque<u64>,
    /// Lines that fell off the front because the buffer was full.
    evicted: u64,
    /// The last cursor per container, to resume after a reconnect and to refuse repeats.
    last: HashMap<String, Cursor>,
    /// Markers among `rows`, and among the visible ones: the counter counts lines only.
    markers: usize,
    visible_markers: usize,
}

impl LineBuffer {
    pub fn new(cap: usize) -> LineBuffer {
        LineBuffer {
            cap: cap.max(1),
            rows: VecDeque::new(),
            // Room below for older rows put before the first (`prepend`).
            next_id: FIRST_ID,
            filter: Filter::default(),
            filter_generation: 0,
            visible: VecDeque::new(),
            evicted: 0,
            last: HashMap::new(),
            markers: 0,
            visible_markers: 0,
        }
    }

    /// Changes how many rows are kept; the oldest fall off at once if there are more.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.evict_over_cap();
    }

    /// Appends lines the server sent; a line at or before the last one seen from its container
    /// is a repeat (a resume overlaps what was held) and is dropped. Returns how many were
    /// added.
    pub fn push(&mut self, lines: impl IntoIterator<Item = LogLine>) -> usize {
        let mut added = 0;
        for line in lines {
            if let Some(last) = self.last.get(&line.cursor.container) {
                if line.cursor.position() <= last.position() {
                    continue;
                }
            }
            self.last
                .insert(line.cursor.container.clone(), line.cursor.clone());
            self.append(Row::line(self.next_id, line));
            added += 1;
        }
        added
    }

    /// Appends a marker for a change in the life of one of `service`'s containers. Returns
    /// whether it was added: a resumed subscription tells again of changes already shown.
    pub fn push_change(&mut self, service: &str, change: Lifecycle) -> bool {
        let text = change.describe(service);
        let Lifecycle {
            ts_ns,
            replica,
            event,
            ..
        } = change;
        let told = self.rows.iter().rev().take(MARKER_REACH).any(|r| {
            matches!(&r.kind, RowKind::Marker { ts_ns: t, replica: p, text: x }
                if *t == ts_ns && p.number == replica.number && *x == text)
        });
        if told {
            return false;
        }
        // A new run's first lines can be stamped before the engine's start time, and they can
        // arrive before the news of the restart: lines after the marker's place go below it.
        // A start's place is the exit just before it, if the timeline shows one.
        let place = match event {
            LifecycleEvent::Started => self
                .rows
                .iter()
                .rev()
                .take(MARKER_REACH)
                .find(|r| r.is_marker())
                .filter(|r| r.replica().number == replica.number)
                .map_or(ts_ns, |r| r.ts_ns().min(ts_ns)),
            _ => ts_ns,
        };
        let later = self.take_later_lines(place);
        let chars = text.chars().count() as u32;
        self.append(Row {
            id: self.next_id,
            chars,
            kind: RowKind::Marker {
                ts_ns,
                replica,
                text,
            },
        });
        for row in later.into_iter().rev() {
            let mut row = Arc::unwrap_or_clone(row);
            row.id = self.next_id;
            self.append(row);
        }
        true
    }

    /// Puts older lines and changes (in time order, all before the rows held) before the
    /// first row, the newest of them first, while the cap has room: the live end is never
    /// pushed out to make room for the past. Returns how many visible rows were added.
    pub fn prepend(
        &mut self,
        service: &str,
        lines: Vec<LogLine>,
        changes: Vec<Lifecycle>,
    ) -> usize {
        let mut older: Vec<Row> = Vec::with_capacity(lines.len() + changes.len());
        let mut changes = changes.into_iter().peekable();
        for line in lines {
            while let Some(c) = changes.next_if(|c| c.ts_ns <= line.cursor.ts_ns) {
                older.push(Row::marker(0, service, c));
            }
            older.push(Row::line(0, line));
        }
        older.extend(changes.map(|c| Row::marker(0, service, c)));
        let room = self.cap.saturating_sub(self.rows.len());
        let mut front = self.rows.front().map_or(self.next_id, |r| r.id);
        let mut added = 0;
        for mut row in older.into_iter().rev().take(room) {
            front -= 1;
            row.id = front;
            let passes = self.passes(&row);
            if passes {
                self.visible.push_front(row.id);
                added += 1;
            }
            if row.is_marker() {
                self.markers += 1;
                self.visible_markers += usize::from(passes);
            }
            self.rows.push_front(Arc::new(row));
        }
        added
    }

    /// The cursor of the oldest line held, where older lines end.
    pub fn oldest_cursor(&self) -> Option<&Cursor> {
        self.rows.iter().find_map(|r| r.cursor())
    }

    /// Takes off the end the lines stamped after `place` (back to the last marker), newest
    /// first, giving their ids back so that ids stay in row order once they are put back.
    fn take_later_lines(&mut self, place: i64) -> Vec<Arc<Row>> {
        let mut later = Vec::new();
        while let Some(last) = self.rows.back() {
            if last.is_marker() || last.ts_ns() <= place || later.len() >= MARKER_REACH {
                break;
            }
            let row = self.rows.pop_back().expect("a last row");
            if self.visible.back() == Some(&row.id) {
                self.visible.pop_back();
            }
            self.next_id -= 1;
            later.push(row);
        }
        later
    }

    fn append(&mut self, row: Row) {
        let row = Arc::new(row);
        self.next_id += 1;
        let passes = self.passes(&row);
        if passes {
            self.visible.push_back(row.id);
        }
        if row.is_marker() {
            self.markers += 1;
            self.visible_markers += usize::from(passes);
        }
        self.rows.push_back(row);
        self.evict_over_cap();
    }

    /// The oldest rows fall off while there are more than the cap.
    fn evict_over_cap(&mut self) {
        while self.rows.len() > self.cap {
            if let Some(old) = self.rows.pop_front() {
                let was_visible = self.visible.front() == Some(&old.id);
                if was_visible {
                    self.visible.pop_front();
                }
                if old.is_marker() {
                    self.markers -= 1;
                    self.visible_markers -= usize::from(was_visible);
                } else {
                    self.evicted += 1;
                }
            }
        }
    }

    fn passes(&self, row: &Row) -> bool {
        match &row.kind {
            // A restart explains the lines around it whatever they say; only hiding its
            // replica hides it.
            RowKind::Marker { replica, .. } => self.filter.shows_replica(replica.number),
            RowKind::Line { line, styled, .. } => {
                self.filter
                    .matches(&styled.plain, line.stream, line.replica.number, line.level)
            }
        }
    }

    /// Applies a new filter to every row held.
    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = filter;
        self.filter_generation += 1;
        self.visible = if self.filter.is_everything() {
            self.rows.iter().map(|r| r.id).collect()
        } else {
            self.rows
                .iter()
                .filter(|r| self.passes(r))
                .map(|r| r.id)
                .collect()
        };
        self.visible_markers = self
            .rows
            .iter()
            .filter(|r| r.is_marker() && self.passes(r))
            .count();
    }

    /// The filter in force: the view highlights its matches.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    pub fn filter_generation(&self) -> u64 {
        self.filter_generation
    }

    /// Empties the view. The cursors are kept, so lines already seen are not shown again
    /// after a reconnect.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.visible.clear();
        self.evicted = 0;
        self.markers = 0;
        self.visible_markers = 0;
    }

    /// Forgets everything but the filter, cursors included (another service was chosen).
    pub fn reset(&mut self) {
        self.clear();
        self.last.clear();
    }

    /// Rows held, markers included.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows that pass the filter, markers included.
    pub fn visible_len(&self) -> usize {
        self.visible.len()
    }

    /// Log lines held, markers left out: what the counter's "of M" says.
    pub fn line_count(&self) -> usize {
        self.rows.len() - self.markers
    }

    /// Log lines that pass the filter, markers left out: the counter's "N".
    pub fn visible_line_count(&self) -> usize {
        self.visible.len() - self.visible_markers
    }

    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The visible rows at positions `start..end` of the filtered view.
    pub fn visible_rows(&self, start: usize, end: usize) -> Vec<Arc<Row>> {
        let Some(first) = self.rows.front().map(|r| r.id) else {
            return Vec::new();
        };
        let end = end.min(self.visible.len());
        (start.min(end)..end)
            .filter_map(|i| self.rows.get((self.visible[i] - first) as usize).cloned())
            .collect()
    }

    /// With lines wrapped at `cols` characters: the screen line each visible row starts at,
    /// and at the end the total.
    pub fn wrapped_offsets(&self, cols: u32) -> Vec<u32> {
        let Some(first) = self.rows.front().map(|r| r.id) else {
            return vec![0];
        };
        let mut out = Vec::with_capacity(self.visible.len() + 1);
        let mut at = 0;
        out.push(0);
        for id in &self.visible {
            if let Some(r) = self.rows.get((id - first) as usize) {
                at += wrapped_lines(r.chars, cols);
            }
            out.push(at);
        }
        out
    }

    /// Where the line at `cursor` is in the filtered view, if it is shown.
    pub fn visible_index_of(&self, cursor: &Cursor) -> Option<usize> {
        let first = self.rows.front()?.id;
        self.visible.iter().position(|id| {
            self.rows
                .get((id - first) as usize)
                .is_some_and(|r| r.cursor() == Some(cursor))
        })
    }

    /// Every visible row, oldest first.
    pub fn all_visible(&self) -> Vec<Arc<Row>> {
        self.visible_rows(0, self.visible.len())
    }

    /// Where to resume: the last cursor of every container seen.
    pub fn resume_cursors(&self) -> Vec<Cursor> {
        let mut c: Vec<Cursor> = self.last.values().cloned().collect();
        c.sort();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FilterSpec;
    use crate::protocol::Stream;

    fn replica() -> Replica {
        Replica {
            number: 1,
            name: "r".into(),
        }
    }

    fn line(container: &str, ts: i64, text: &str) -> LogLine {
        LogLine {
            cursor: Cursor {
                ts_ns: ts,
                seq: 0,
                container: container.into(),
            },
            ts: String::new(),
            stream: Stream::Stdout,
            replica: replica(),
            text: text.into(),
            truncated: false,
            level: None,
        }
    }

    fn change(ts_ns: i64, event: LifecycleEvent) -> Lifecycle {
        Lifecycle {
            ts_ns,
            ts: String::new(),
            replica: replica(),
            event,
        }
    }

    fn exited(ts_ns: i64) -> Lifecycle {
        change(ts_ns, LifecycleEvent::Exited { exit_code: Some(3) })
    }

    fn texts(b: &LineBuffer) -> Vec<String> {
        b.all_visible()
            .iter()
            .map(|r| r.plain().to_owned())
            .collect()
    }

    fn filter(text: &str) -> Filter {
        Filter::compile(&FilterSpec {
            text: text.into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn older_lines_go_before_the_first_within_the_cap_and_the_filter() {
        let mut b = LineBuffer::new(6);
        b.set_filter(filter("keep"));
        b.push([line("a", 10, "keep 10"), line("a", 11, "drop 11")]);
        let older = (1..=5)
            .map(|i| line("a", i, &format!("keep {i}")))
            .collect();
        // Room for 4: the newest of the older lines, and the exit among them.
        let added = b.prepend("web", older, vec![exited(4)]);
        assert_eq!(added, 4);
        assert_eq!(
            texts(&b),
            [
                "keep 3",
                "web #1 exited with code 3",
                "keep 4",
                "keep 5",
                "keep 10"
            ]
            .map(String::from)
        );
        assert_eq!(b.oldest_cursor().map(|c| c.ts_ns), Some(3));
        assert_eq!(b.len(), 6);
        // Full: the past never pushes out the live end.
        assert_eq!(b.prepend("web", vec![line("a", 0, "keep 0")], vec![]), 0);
        b.push([line("a", 12, "keep 12")]);
        assert_eq!(texts(&b).last().map(String::as_str), Some("keep 12"));
        // Resuming goes on after the newest line, not the older ones.
        assert_eq!(b.resume_cursors()[0].ts_ns, 12);
    }

    #[test]
    fn a_json_line_is_shown_and_filtered_readable_and_downloaded_as_written() {
        let mut b = LineBuffer::new(10);
        let written = r#"{"level":"warn","msg":"disk almost full","pct":91}"#;
        b.push([
            line("a", 1, written),
            line("a", 2, "\x1b[31m{\"msg\":\"coloured\"}\x1b[0m"),
        ]);
        assert_eq!(
            texts(&b),
            [
                "disk almost full  level=warn  pct=91",
                "{\"msg\":\"coloured\"}"
            ]
            .map(String::from)
        );
        b.set_filter(filter("pct=91"));
        assert_eq!(b.visible_len(), 1, "the filter reads what is shown");
        let mut out = String::new();
        b.all_visible()[0].export(&mut out);
        assert!(out.trim_end().ends_with(written), "{out}");
        assert_eq!(b.all_visible()[0].json(), Some(written));
    }

    #[test]
    fn repeats_are_dropped() {
        let mut b = LineBuffer::new(10);
        assert_eq!(b.push([line("a", 1, "x"), line("a", 2, "y")]), 2);
        assert_eq!(b.push([line("a", 2, "y"), line("a", 3, "z")]), 1);
        assert_eq!(b.push([line("b", 1, "other container")]), 1);
        assert_eq!(b.len(), 4);
    }

    #[test]
    fn oldest_lines_fall_off_at_the_bound() {
        let mut b = LineBuffer::new(3);
        b.push((1..=5).map(|i| line("a", i, &i.to_string())));
        assert_eq!(b.len(), 3);
        assert_eq!(b.evicted(), 2);
        assert_eq!(texts(&b), ["3", "4", "5"]);
    }

    #[test]
    fn wrapped_rows_take_as_many_lines_as_their_text_needs() {
        let mut b = LineBuffer::new(10);
        b.push([
            line("a", 1, ""),
            line("a", 2, &"x".repeat(10)),
            line("a", 3, &"é".repeat(11)),
        ]);
        assert_eq!(b.wrapped_offsets(10), vec![0, 1, 2, 4]);
        assert_eq!(b.wrapped_offsets(100), vec![0, 1, 2, 3]);
    }

    #[test]
    fn lowering_the_bound_drops_the_oldest_at_once() {
        let mut b = LineBuffer::new(10);
        b.push((1..=10).map(|i| line("a", i, &i.to_string())));
        b.set_cap(4);
        assert_eq!(b.len(), 4);
        assert_eq!(b.evicted(), 6);
        assert_eq!(b.all_visible()[0].plain(), "7");
    }

    #[test]
    fn a_line_row_is_its_text_without_escapes() {
        let mut b = LineBuffer::new(10);
        b.push([line("a", 1, "\x1b[31mred\x1b[0m é")]);
        let row = &b.all_visible()[0];
        assert_eq!(row.plain(), "red é");
        assert_eq!(row.chars, 5);
        assert_eq!(row.spans().len(), 1);
        assert!(!row.is_marker());
    }

    #[test]
    fn filter_applies_to_held_and_new_lines() {
        let mut b = LineBuffer::new(100);
        b.push([line("a", 1, "error one"), line("a", 2, "fine")]);
        let before = b.filter_generation();
        b.set_filter(filter("error"));
        assert_ne!(b.filter_generation(), before);
        assert_eq!(b.filter().highlights("an error"), vec![3..8]);
        assert_eq!(b.visible_len(), 1);
        b.push([line("a", 3, "ERROR two"), line("a", 4, "ok")]);
        assert_eq!(b.visible_len(), 2);
        assert_eq!(b.visible_rows(1, 2)[0].plain(), "ERROR two");
    }

    #[test]
    fn markers_pass_any_text_filter_and_take_no_cursor() {
        let mut b = LineBuffer::new(10);
        b.set_filter(filter("nothing matches this"));
        b.push([line("a", 1, "x")]);
        assert!(b.push_change("web", exited(2)));
        assert_eq!(b.visible_len(), 1);
        let row = &b.all_visible()[0];
        assert_eq!(
            row.kind,
            RowKind::Marker {
                ts_ns: 2,
                replica: replica(),
                text: "web #1 exited with code 3".into()
            }
        );
        assert!(row.spans().is_empty());
        assert_eq!(b.resume_cursors().len(), 1);
        // The counter counts lines: none of the one held matches.
        assert_eq!((b.visible_line_count(), b.line_count()), (0, 1));
        b.set_filter(Filter::default());
        assert_eq!((b.visible_line_count(), b.line_count()), (1, 1));
    }

    #[test]
    fn markers_hide_with_their_replica() {
        let mut b = LineBuffer::new(10);
        b.push_change("web", exited(2));
        b.set_filter(
            Filter::compile(&FilterSpec {
                replica: Some(2),
                ..Default::default()
            })
            .unwrap(),
        );
        assert_eq!((b.visible_len(), b.len()), (0, 1));
    }

    #[test]
    fn markers_count_toward_the_bound_but_not_as_evicted_lines() {
        let mut b = LineBuffer::new(2);
        b.push_change("web", exited(1));
        b.push([line("a", 2, "x"), line("a", 3, "y")]);
        assert_eq!((b.len(), b.evicted(), b.line_count()), (2, 0, 2));
        b.push([line("a", 4, "z")]);
        assert_eq!((b.evicted(), texts(&b)), (1, vec!["y".into(), "z".into()]));
    }

    #[test]
    fn a_change_told_again_on_resume_shows_once() {
        let mut b = LineBuffer::new(10);
        b.push([line("a", 1, "x")]);
        assert!(b.push_change("web", exited(2)));
        assert!(!b.push_change("web", exited(2)));
        assert_eq!(b.visible_len(), 2);
        // The same words at another time are another change.
        assert!(b.push_change("web", exited(3)));
        assert_eq!(b.visible_len(), 3);
    }

    #[test]
    fn a_marker_goes_before_lines_written_after_it() {
        let mut b = LineBuffer::new(10);
        b.push([line("a", 1, "old run"), line("a", 5, "new run")]);
        b.push_change("web", change(2, LifecycleEvent::Exited { exit_code: None }));
        // The engine's start time can be later than the new run's first line.
        b.push_change("web", change(5, LifecycleEvent::Started));
        b.push([line("a", 6, "new run, later")]);
        assert_eq!(
            texts(&b),
            [
                "old run",
                "web #1 exited",
                "web #1 started",
                "new run",
                "new run, later"
            ]
        );
        let ids: Vec<_> = b.all_visible().iter().map(|r| r.id - FIRST_ID).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4], "ids in row order");
    }

    #[test]
    fn rows_export_in_the_download_format() {
        let mut b = LineBuffer::new(10);
        let mut err = line("a", 1_500_000_000, "\x1b[1mboom\x1b[0m");
        err.stream = Stream::Stderr;
        b.push([err]);
        b.push_change("web", change(2_000_000_000, LifecycleEvent::Removed));
        let mut out = String::new();
        for r in b.all_visible() {
            r.export(&mut out);
        }
        assert_eq!(
            out,
            "1970-01-01T00:00:01.500000000Z r stderr boom\n\
             1970-01-01T00:00:02.000000000Z r event web #1 was removed\n"
        );
    }

    #[test]
    fn clear_keeps_cursors_reset_forgets_them() {
        let mut b = LineBuffer::new(10);
        b.push([line("a", 5, "x")]);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.resume_cursors().len(), 1);
        assert_eq!(b.push([line("a", 5, "x")]), 0);
        b.reset();
        assert_eq!(b.push([line("a", 5, "x")]), 1);
    }
}
