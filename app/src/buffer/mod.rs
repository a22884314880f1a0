//! The client's bounded buffer of lines and the filtered view over it, kept up to date
//! incrementally: appending a batch filters only the new lines. The buffer owns the filter
//! it shows: which rows are visible and the filter that chose them cannot disagree.
//!
//! Rows form entries: a line, and the lines after it that continue it (a stack trace,
//! `multiline`). The filter keeps or hides an entry whole, the counter counts it once, an
//! entry can be collapsed to its first line, and the oldest entries fall off whole.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::filter::Filter;
use crate::multiline::Grouper;
use crate::protocol::{Cursor, Lifecycle, LifecycleEvent, LogLine, Stream, MAX_RESUME_CURSORS};

mod entries;
mod row;

use row::group;
pub use row::{wrapped_lines, Entry, Row, RowKind};

/// Lines kept in the browser by default.
pub const DEFAULT_MAX_LINES: usize = 100_000;
/// The range a user may choose (URL parameter `keep`).
pub const MAX_LINES_RANGE: std::ops::RangeInclusive<usize> = 1_000..=1_000_000;

/// How far back from the newest row a marker looks for its place or for itself told
/// before: markers arrive close to the lines they belong among, and the look stays cheap.
const MARKER_REACH: usize = 1000;

/// The first row's id: ids below it are for older rows put before it.
const FIRST_ID: u64 = 1 << 48;

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
    /// The last cursor per container and stream, to resume after a reconnect and to refuse
    /// repeats. The engine stamps a container's stdout and stderr apart: a line of one may
    /// come after a later-stamped line of the other, and is no repeat.
    last: HashMap<(Arc<str>, Stream), Cursor>,
    /// Markers among `rows`, and among the visible ones: the counter counts entries only.
    markers: usize,
    visible_markers: usize,
    /// Rows that continue an entry, among `rows` and among the visible ones.
    continuations: usize,
    visible_continuations: usize,
    /// Whether the next line continues the last row's entry.
    grouper: Grouper,
    /// The first rows' ids of the entries shown collapsed.
    collapsed: HashSet<u64>,
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
            continuations: 0,
            visible_continuations: 0,
            grouper: Grouper::default(),
            collapsed: HashSet::new(),
        }
    }

    /// Changes how many rows are kept; the oldest fall off at once if there are more.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.evict_over_cap();
    }

    /// Appends lines of `service` the server sent; a line at or before the last one seen from
    /// its container's stream is a repeat (a resume overlaps what was held) and is dropped. Returns
    /// how many were added. Lines stamped before the newest rows (another service's or
    /// replica's, delivered in turn) go in their place among them.
    pub fn push(&mut self, service: &str, lines: impl IntoIterator<Item = LogLine>) -> usize {
        let service: Arc<str> = service.into();
        let mut fresh = Vec::new();
        for line in lines {
            let key = (line.cursor.container.clone(), line.stream);
            if let Some(last) = self.last.get(&key) {
                if line.cursor.position() <= last.position() {
                    continue;
                }
            }
            self.last.insert(key, line.cursor.clone());
            fresh.push(line);
        }
        let added = fresh.len();
        let oldest = fresh.iter().map(|l| l.cursor.ts_ns).min();
        let later = match oldest {
            Some(ts) if self.rows.back().is_some_and(|r| r.ts_ns() > ts) => {
                self.take_later_lines(ts)
            }
            _ => Vec::new(),
        };
        // Stable: a container's lines keep their order, which its stamps already follow.
        fresh.sort_by_key(|l| l.cursor.ts_ns);
        let mut later = later.into_iter().rev().peekable();
        for line in fresh {
            while let Some(row) = later.next_if(|r| r.ts_ns() <= line.cursor.ts_ns) {
                self.put_back(row);
            }
            self.append(Row::line(self.next_id, service.clone(), line));
        }
        later.for_each(|row| self.put_back(row));
        added
    }

    /// Appends again a row taken off the end, under a new id.
    fn put_back(&mut self, row: Arc<Row>) {
        let mut row = Arc::unwrap_or_clone(row);
        row.id = self.next_id;
        self.append(row);
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
                .filter(|r| &*r.service == service && r.replica().number == replica.number)
                .map_or(ts_ns, |r| r.ts_ns().min(ts_ns)),
            _ => ts_ns,
        };
        let later = self.take_later_lines(place);
        let chars = text.chars().count() as u32;
        self.append(Row {
            id: self.next_id,
            service: service.into(),
            chars,
            continues: false,
            kind: RowKind::Marker {
                ts_ns,
                replica,
                text,
            },
        });
        later.into_iter().rev().for_each(|row| self.put_back(row));
        true
    }

    /// Puts older lines and changes (in time order, all before the rows held) before the
    /// first row, the newest of them first, while the cap has room: the live end is never
    /// pushed out to make room for the past. Returns how many visible rows were added.
    /// Older lines are grouped among themselves; the first row held stays an entry's first.
    pub fn prepend(
        &mut self,
        service: &str,
        lines: Vec<LogLine>,
        changes: Vec<Lifecycle>,
    ) -> usize {
        let mut older: Vec<Row> = Vec::with_capacity(lines.len() + changes.len());
        let mut changes = changes.into_iter().peekable();
        let service: Arc<str> = service.into();
        for line in lines {
            while let Some(c) = changes.next_if(|c| c.ts_ns <= line.cursor.ts_ns) {
                older.push(Row::marker(0, service.clone(), c));
            }
            older.push(Row::line(0, service.clone(), line));
        }
        older.extend(changes.map(|c| Row::marker(0, service.clone(), c)));
        let room = self.cap.saturating_sub(self.rows.len());
        let older = older.split_off(older.len().saturating_sub(room));
        let mut grouper = Grouper::default();
        let front = self.rows.front().map_or(self.next_id, |r| r.id) - older.len() as u64;
        let mut rows = Vec::with_capacity(older.len());
        for (id, mut row) in (front..).zip(older) {
            row.id = id;
            row.continues = group(&mut grouper, &row);
            rows.push(Arc::new(row));
        }
        let mut ids = Vec::new();
        let (mut markers, mut continuations) = (0, 0);
        for entry in rows.chunk_by(|_, next| next.continues) {
            self.markers += entry.iter().filter(|r| r.is_marker()).count();
            self.continuations += entry.len() - 1;
            if self.entry_passes(entry.iter().map(|r| &**r)) {
                markers += usize::from(entry[0].is_marker());
                continuations += self.shown_of(entry.iter(), &mut ids);
            }
        }
        self.visible_markers += markers;
        self.visible_continuations += continuations;
        for id in ids.iter().rev() {
            self.visible.push_front(*id);
        }
        for row in rows.into_iter().rev() {
            self.rows.push_front(row);
        }
        ids.len()
    }

    /// The cursor of the oldest line held, where older lines end.
    pub fn oldest_cursor(&self) -> Option<&Cursor> {
        self.rows.iter().find_map(|r| r.cursor())
    }

    /// Takes off the end the lines stamped after `place` (back to the last marker), newest
    /// first, giving their ids back so that ids stay in row order once they are put back.
    /// Entries collapsed among them open again: their ids will be other rows'.
    fn take_later_lines(&mut self, place: i64) -> Vec<Arc<Row>> {
        let mut later = Vec::new();
        while let Some(last) = self.rows.back() {
            if last.is_marker() || last.ts_ns() <= place || later.len() >= MARKER_REACH {
                break;
            }
            let row = self.rows.pop_back().expect("a last row");
            let was_visible = self.visible.back() == Some(&row.id);
            if was_visible {
                self.visible.pop_back();
            }
            if row.continues {
                self.continuations -= 1;
                self.visible_continuations -= usize::from(was_visible);
            }
            self.collapsed.remove(&row.id);
            self.next_id -= 1;
            later.push(row);
        }
        later
    }

    fn append(&mut self, mut row: Row) {
        if self.rows.is_empty() {
            self.grouper.end();
        }
        row.continues = group(&mut self.grouper, &row);
        let row = Arc::new(row);
        self.next_id += 1;
        if row.continues {
            self.append_continuation(&row);
        } else {
            let passes = self.entry_passes([&*row].into_iter());
            if passes {
                self.visible.push_back(row.id);
            }
            if row.is_marker() {
                self.markers += 1;
                self.visible_markers += usize::from(passes);
            }
        }
        self.rows.push_back(row);
        self.evict_over_cap();
    }

    /// The oldest entries fall off whole while there are more rows than the cap.
    fn evict_over_cap(&mut self) {
        while self.rows.len() > self.cap {
            let Some(old) = self.rows.pop_front() else {
                break;
            };
            self.collapsed.remove(&old.id);
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
            while let Some(next) = self.rows.front().filter(|r| r.continues) {
                let id = next.id;
                self.rows.pop_front();
                let was_visible = self.visible.front() == Some(&id);
                if was_visible {
                    self.visible.pop_front();
                }
                self.continuations -= 1;
                self.visible_continuations -= usize::from(was_visible);
                self.evicted += 1;
            }
        }
    }

    /// Applies a new filter to every row held.
    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = filter;
        self.filter_generation += 1;
        self.refilter();
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
        self.continuations = 0;
        self.visible_continuations = 0;
        self.grouper.end();
        self.collapsed.clear();
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

    /// Entries of the log held, each counted once however many lines it has, markers left
    /// out: what the counter's "of M" says.
    pub fn line_count(&self) -> usize {
        self.rows.len() - self.markers - self.continuations
    }

    /// Entries that pass the filter, markers left out: the counter's "N".
    pub fn visible_line_count(&self) -> usize {
        self.visible.len() - self.visible_markers - self.visible_continuations
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

    /// Where to resume: the last cursor of every container and stream seen.
    /// At most the newest [`MAX_RESUME_CURSORS`], the most a resume may hold: containers
    /// long gone (a project recreated again and again) are the oldest, and their lines are
    /// all held already.
    pub fn resume_cursors(&self) -> Vec<Cursor> {
        let mut c: Vec<Cursor> = self.last.values().cloned().collect();
        c.sort();
        c.split_off(c.len().saturating_sub(MAX_RESUME_CURSORS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FilterSpec;
    use crate::protocol::Replica;

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

    #[test]
    fn a_stdout_line_after_a_later_stamped_stderr_line_is_no_repeat() {
        let mut b = LineBuffer::new(100);
        let err = LogLine {
            cursor: Cursor {
                seq: 1,
                ..line("a", 20, "").cursor
            },
            stream: Stream::Stderr,
            ..line("a", 20, "err")
        };
        b.push("web", [err.clone()]);
        b.push("web", [line("a", 10, "out")]);
        assert_eq!(texts(&b), ["out", "err"], "in time order, both held");
        b.push("web", [err, line("a", 10, "out")]);
        assert_eq!(b.line_count(), 2, "repeats of either stream are dropped");
        assert_eq!(b.resume_cursors().len(), 2, "a cursor for each stream");
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

    /// A Java error as it is logged: a line, the exception, its frames, its cause.
    fn trace(container: &str, ts: i64, n: u32) -> Vec<LogLine> {
        [
            format!("request {n} failed"),
            "java.lang.IllegalStateException: no items".into(),
            "\tat com.example.Shop.place(Shop.java:88)".into(),
            "Caused by: java.sql.SQLException: connection closed".into(),
            "\t... 12 more".into(),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, t)| line(container, ts + i as i64, &t))
        .collect()
    }

    #[test]
    fn a_stack_trace_is_one_entry_to_the_counter_and_the_filter() {
        let mut b = LineBuffer::new(100);
        b.push("web", trace("a", 10, 1));
        b.push("web", [line("a", 100, "request 2 handled")]);
        assert_eq!(b.len(), 6);
        assert_eq!((b.visible_line_count(), b.line_count()), (2, 2));
        let first = b.all_visible()[0].clone();
        assert_eq!(
            b.entry(&first),
            Some(Entry {
                more: 4,
                collapsed: false
            })
        );
        assert_eq!(b.entry(&b.all_visible()[1]), None);
        assert_eq!(b.entry(&b.all_visible()[5]), None);

        // A match in any line keeps the whole entry; the counter counts it once.
        b.set_filter(filter("SQLException"));
        assert_eq!(texts(&b).len(), 5);
        assert_eq!(texts(&b)[0], "request 1 failed");
        assert_eq!(b.visible_line_count(), 1);
        // Inverted, a match in any line hides the whole entry.
        b.set_filter(
            Filter::compile(&FilterSpec {
                text: "SQLException".into(),
                invert: true,
                ..Default::default()
            })
            .unwrap(),
        );
        assert_eq!(texts(&b), vec!["request 2 handled"]);
    }

    #[test]
    fn a_json_line_or_one_stating_its_level_is_never_folded_under_another() {
        let mut b = LineBuffer::new(100);
        let mut error = line("a", 12, "   ERROR payment failed");
        error.level = Some(crate::protocol::Level::Error);
        b.push(
            "web",
            [
                line("a", 10, "request 1 started"),
                line("a", 11, r#"{"msg":"   padded message","level":"error"}"#),
                error,
                line("a", 13, "  an indented line continues the one before"),
            ],
        );
        assert_eq!(b.line_count(), 3);
        b.set_filter(
            Filter::compile(&FilterSpec {
                levels: Some("error".parse().unwrap()),
                ..Default::default()
            })
            .unwrap(),
        );
        // The level stated by the JSON line is the server's to find; here only the plain
        // error line states one, and it shows with its continuation.
        assert_eq!(
            texts(&b),
            vec![
                "   ERROR payment failed",
                "  an indented line continues the one before"
            ]
        );
    }

    #[test]
    fn a_collapsed_entry_shows_its_first_line_and_downloads_whole() {
        let mut b = LineBuffer::new(100);
        b.push("web", trace("a", 10, 1));
        b.push("web", trace("a", 1_000_000_000_000, 2));
        let first = b.all_visible()[0].id;
        b.toggle_entry(first);
        assert_eq!(texts(&b)[..2], ["request 1 failed", "request 2 failed"]);
        assert_eq!(b.visible_len(), 6);
        assert_eq!(b.visible_line_count(), 2);
        assert!(b.entry(&b.all_visible()[0]).unwrap().collapsed);
        let downloaded: Vec<String> = b.all_passing().iter().map(|r| r.plain().into()).collect();
        assert_eq!(downloaded.len(), 10);
        // Collapsed stays collapsed under a new filter, and lines that join it stay hidden.
        b.set_filter(filter("request 1"));
        assert_eq!(texts(&b), vec!["request 1 failed"]);
        b.toggle_entry(first);
        assert_eq!(texts(&b).len(), 5);
    }

    #[test]
    fn an_entry_arriving_in_parts_is_shown_whole_once_a_later_part_matches() {
        let mut b = LineBuffer::new(100);
        b.set_filter(filter("sqlexception"));
        let lines = trace("a", 10, 1);
        b.push("web", lines[..2].to_vec());
        assert!(texts(&b).is_empty());
        b.push("web", lines[2..].to_vec());
        assert_eq!(texts(&b).len(), 5);
        assert_eq!(b.visible_line_count(), 1);
        // Another replica's line in between begins an entry of its own.
        let mut other = line("b", 20, "\tindented, but another replica");
        other.replica.number = 2;
        b.push("web", [other]);
        assert_eq!(b.line_count(), 2);
    }

    #[test]
    fn a_line_stamped_before_the_newest_rows_goes_in_its_place() {
        let mut b = LineBuffer::new(100);
        b.push("web", [line("a", 10, "web 10"), line("a", 30, "web 30")]);
        // db's batch comes second, though one of its lines was written between web's.
        assert_eq!(
            b.push("db", [line("b", 20, "db 20"), line("b", 40, "db 40")]),
            2
        );
        assert_eq!(texts(&b), ["web 10", "db 20", "web 30", "db 40"]);
        let services: Vec<String> = b
            .all_visible()
            .iter()
            .map(|r| r.service.to_string())
            .collect();
        assert_eq!(services, ["web", "db", "web", "db"]);
        // A line of the newest time or later is appended as it comes.
        b.push("web", [line("a", 40, "web 40")]);
        assert_eq!(texts(&b).last().map(String::as_str), Some("web 40"));
        assert_eq!(b.line_count(), 5);
    }

    #[test]
    fn a_resume_holds_at_most_the_newest_1024_cursors() {
        let mut b = LineBuffer::new(5000);
        for i in 0..1100 {
            b.push("web", [line(&format!("c{i:04}"), i64::from(i) + 1, "x")]);
        }
        let cursors = b.resume_cursors();
        assert_eq!(cursors.len(), MAX_RESUME_CURSORS);
        assert_eq!(cursors[0].ts_ns, 1100 - 1024 + 1, "the oldest left out");
    }

    #[test]
    fn in_a_view_of_several_services_each_row_keeps_its_service_and_entries_stay_apart() {
        let mut b = LineBuffer::new(100);
        b.push("web", [line("a", 10, "Traceback (most recent call last):")]);
        // Replica 1 of another service, indented, just after: not a frame of web's trace.
        b.push("worker", [line("b", 11, "  File \"job.py\", line 3")]);
        assert_eq!(b.line_count(), 2);
        let rows = b.all_visible();
        let services: Vec<&str> = rows.iter().map(|r| &*r.service).collect();
        assert_eq!(services, ["web", "worker"]);
        assert!(b.push_change("worker", exited(12)));
        assert_eq!(&*b.all_visible().last().unwrap().service, "worker");
    }

    #[test]
    fn the_oldest_entries_fall_off_whole() {
        let mut b = LineBuffer::new(7);
        b.push("web", trace("a", 10, 1));
        b.push("web", trace("a", 1_000_000_000_000, 2));
        // 10 rows for a cap of 7: the first entry went whole, not its first 3 lines.
        assert_eq!(b.len(), 5);
        assert_eq!(texts(&b)[0], "request 2 failed");
        assert_eq!((b.visible_line_count(), b.line_count()), (1, 1));
        assert_eq!(b.evicted(), 5);
    }

    #[test]
    fn older_lines_are_grouped_among_themselves() {
        let mut b = LineBuffer::new(100);
        b.push("web", [line("a", 5_000_000_000_000, "now")]);
        b.set_filter(filter("SQLException"));
        let added = b.prepend("svc", trace("a", 10, 1), Vec::new());
        assert_eq!(added, 5);
        assert_eq!(texts(&b)[0], "request 1 failed");
        assert_eq!((b.visible_line_count(), b.line_count()), (1, 2));
    }

    #[test]
    fn older_lines_go_before_the_first_within_the_cap_and_the_filter() {
        let mut b = LineBuffer::new(6);
        b.set_filter(filter("keep"));
        b.push("web", [line("a", 10, "keep 10"), line("a", 11, "drop 11")]);
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
        b.push("web", [line("a", 12, "keep 12")]);
        assert_eq!(texts(&b).last().map(String::as_str), Some("keep 12"));
        // Resuming goes on after the newest line, not the older ones.
        assert_eq!(b.resume_cursors()[0].ts_ns, 12);
    }

    #[test]
    fn a_json_line_is_shown_and_filtered_readable_and_downloaded_as_written() {
        let mut b = LineBuffer::new(10);
        let written = r#"{"level":"warn","msg":"disk almost full","pct":91}"#;
        b.push(
            "web",
            [
                line("a", 1, written),
                line("a", 2, "\x1b[31m{\"msg\":\"coloured\"}\x1b[0m"),
            ],
        );
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
        assert_eq!(b.push("web", [line("a", 1, "x"), line("a", 2, "y")]), 2);
        assert_eq!(b.push("web", [line("a", 2, "y"), line("a", 3, "z")]), 1);
        assert_eq!(b.push("web", [line("b", 1, "other container")]), 1);
        assert_eq!(b.len(), 4);
    }

    #[test]
    fn oldest_lines_fall_off_at_the_bound() {
        let mut b = LineBuffer::new(3);
        b.push("web", (1..=5).map(|i| line("a", i, &i.to_string())));
        assert_eq!(b.len(), 3);
        assert_eq!(b.evicted(), 2);
        assert_eq!(texts(&b), ["3", "4", "5"]);
    }

    #[test]
    fn wrapped_rows_take_as_many_lines_as_their_text_needs() {
        let mut b = LineBuffer::new(10);
        b.push(
            "web",
            [
                line("a", 1, ""),
                line("a", 2, &"x".repeat(10)),
                line("a", 3, &"é".repeat(11)),
            ],
        );
        assert_eq!(b.wrapped_offsets(10), vec![0, 1, 2, 4]);
        assert_eq!(b.wrapped_offsets(100), vec![0, 1, 2, 3]);
    }

    #[test]
    fn lowering_the_bound_drops_the_oldest_at_once() {
        let mut b = LineBuffer::new(10);
        b.push("web", (1..=10).map(|i| line("a", i, &i.to_string())));
        b.set_cap(4);
        assert_eq!(b.len(), 4);
        assert_eq!(b.evicted(), 6);
        assert_eq!(b.all_visible()[0].plain(), "7");
    }

    #[test]
    fn a_line_row_is_its_text_without_escapes() {
        let mut b = LineBuffer::new(10);
        b.push("web", [line("a", 1, "\x1b[31mred\x1b[0m é")]);
        let row = &b.all_visible()[0];
        assert_eq!(row.plain(), "red é");
        assert_eq!(row.chars, 5);
        assert_eq!(row.spans().len(), 1);
        assert!(!row.is_marker());
    }

    #[test]
    fn filter_applies_to_held_and_new_lines() {
        let mut b = LineBuffer::new(100);
        b.push("web", [line("a", 1, "error one"), line("a", 2, "fine")]);
        let before = b.filter_generation();
        b.set_filter(filter("error"));
        assert_ne!(b.filter_generation(), before);
        assert_eq!(b.filter().highlights("an error"), vec![3..8]);
        assert_eq!(b.visible_len(), 1);
        b.push("web", [line("a", 3, "ERROR two"), line("a", 4, "ok")]);
        assert_eq!(b.visible_len(), 2);
        assert_eq!(b.visible_rows(1, 2)[0].plain(), "ERROR two");
    }

    #[test]
    fn markers_pass_any_text_filter_and_take_no_cursor() {
        let mut b = LineBuffer::new(10);
        b.set_filter(filter("nothing matches this"));
        b.push("web", [line("a", 1, "x")]);
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
        b.push("web", [line("a", 2, "x"), line("a", 3, "y")]);
        assert_eq!((b.len(), b.evicted(), b.line_count()), (2, 0, 2));
        b.push("web", [line("a", 4, "z")]);
        assert_eq!((b.evicted(), texts(&b)), (1, vec!["y".into(), "z".into()]));
    }

    #[test]
    fn a_change_told_again_on_resume_shows_once() {
        let mut b = LineBuffer::new(10);
        b.push("web", [line("a", 1, "x")]);
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
        b.push("web", [line("a", 1, "old run"), line("a", 5, "new run")]);
        b.push_change("web", change(2, LifecycleEvent::Exited { exit_code: None }));
        // The engine's start time can be later than the new run's first line.
        b.push_change("web", change(5, LifecycleEvent::Started));
        b.push("web", [line("a", 6, "new run, later")]);
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
        b.push("web", [err]);
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
        b.push("web", [line("a", 5, "x")]);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.resume_cursors().len(), 1);
        assert_eq!(b.push("web", [line("a", 5, "x")]), 0);
        b.reset();
        assert_eq!(b.push("web", [line("a", 5, "x")]), 1);
    }
}
