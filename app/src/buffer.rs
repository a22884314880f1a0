//! The client's bounded buffer of lines and the filtered view over it, kept up to date
//! incrementally: appending a batch filters only the new lines.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::ansi::{self, Styled};
use crate::filter::Filter;
use crate::protocol::{Cursor, LogLine, Replica, Stream};

/// Lines kept in the browser by default.
pub const DEFAULT_MAX_LINES: usize = 100_000;
/// The range a user may choose (URL parameter `keep`).
pub const MAX_LINES_RANGE: std::ops::RangeInclusive<usize> = 1_000..=1_000_000;

/// One line as the view needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Position in this buffer since it was created; never reused.
    pub id: u64,
    pub line: LogLine,
    /// The text with its ANSI escapes parsed.
    pub styled: Styled,
    /// Characters of visible text, to lay the row out when lines wrap.
    pub chars: u32,
    /// A container's start, exit or removal rather than a line of its log; `line.text` says
    /// what happened and `line.cursor` holds only its time.
    pub lifecycle: bool,
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
    /// Ids of the rows that pass the filter, oldest first.
    visible: VecDeque<u64>,
    /// Lines that fell off the front because the buffer was full.
    evicted: u64,
    /// The last cursor per container, to resume after a reconnect and to refuse repeats.
    last: HashMap<String, Cursor>,
    /// Lifecycle markers among `rows`, and among the visible ones: the counter counts lines.
    markers: usize,
    visible_markers: usize,
}

impl LineBuffer {
    pub fn new(cap: usize) -> LineBuffer {
        LineBuffer {
            cap: cap.max(1),
            rows: VecDeque::new(),
            next_id: 0,
            filter: Filter::default(),
            visible: VecDeque::new(),
            evicted: 0,
            last: HashMap::new(),
            markers: 0,
            visible_markers: 0,
        }
    }

    /// Changes how many lines are kept; the oldest fall off at once if there are more.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.push(std::iter::empty());
    }

    /// Appends lines the server sent; a line at or before the last one seen from its container
    /// is a repeat and is dropped. Returns how many were added.
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
            let styled = ansi::parse(&line.text);
            let chars = styled.plain.chars().count() as u32;
            self.append(Row {
                id: self.next_id,
                line,
                styled,
                chars,
                lifecycle: false,
            });
            added += 1;
        }
        self.evict_over_cap();
        added
    }

    /// Appends a marker of a container's life: `text` says what happened, `ts_ns` when;
    /// `starts` for a start, which goes right after the replica's exit just before it.
    pub fn push_lifecycle(
        &mut self,
        text: String,
        ts: String,
        ts_ns: i64,
        replica: Replica,
        starts: bool,
    ) {
        // A resumed subscription tells again of changes the viewer may have been shown.
        let told = self.rows.iter().rev().take(1000).any(|r| {
            r.lifecycle
                && r.line.ts == ts
                && r.line.replica.number == replica.number
                && r.line.text == text
        });
        if told {
            return;
        }
        let styled = ansi::Styled {
            plain: text.clone(),
            spans: Vec::new(),
        };
        let chars = text.chars().count() as u32;
        // A new run's first lines can be stamped before the engine's start time, and they can
        // arrive before the news of the restart: lines after the marker's place go below it.
        // A start's place is the exit just before it, if the timeline shows one.
        let place = if starts {
            self.rows
                .iter()
                .rev()
                .take(1000)
                .find(|r| r.lifecycle)
                .filter(|r| r.line.replica.number == replica.number)
                .map_or(ts_ns, |r| r.line.cursor.ts_ns.min(ts_ns))
        } else {
            ts_ns
        };
        let mut later = Vec::new();
        while let Some(last) = self.rows.back() {
            if last.lifecycle || last.line.cursor.ts_ns <= place || later.len() >= 1000 {
                break;
            }
            let row = self.rows.pop_back().expect("a last row");
            if self.visible.back() == Some(&row.id) {
                self.visible.pop_back();
            }
            self.next_id -= 1;
            later.push(row);
        }
        self.append(Row {
            id: self.next_id,
            line: LogLine {
                cursor: Cursor {
                    ts_ns,
                    seq: 0,
                    container: String::new(),
                },
                ts,
                stream: Stream::Stdout,
                replica,
                text,
                truncated: false,
            },
            styled,
            chars,
            lifecycle: true,
        });
        for row in later.into_iter().rev() {
            let mut row = Arc::unwrap_or_clone(row);
            row.id = self.next_id;
            self.append(row);
        }
    }

    fn append(&mut self, row: Row) {
        let row = Arc::new(row);
        self.next_id += 1;
        let passes = self.passes(&row);
        if passes {
            self.visible.push_back(row.id);
        }
        if row.lifecycle {
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
                if old.lifecycle {
                    self.markers -= 1;
                    self.visible_markers -= usize::from(was_visible);
                } else {
                    self.evicted += 1;
                }
            }
        }
    }

    fn passes(&self, row: &Row) -> bool {
        if row.lifecycle {
            // Markers stay in view whatever the text filter, unless their replica is hidden.
            return self.filter.shows_replica(row.line.replica.number);
        }
        self.filter
            .matches(&row.styled.plain, row.line.stream, row.line.replica.number)
    }

    /// Applies a new filter to every line held.
    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = filter;
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
            .filter(|r| r.lifecycle && self.passes(r))
            .count();
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
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

    /// Forgets everything, cursors included (another service was chosen).
    pub fn reset(&mut self) {
        self.clear();
        self.last.clear();
    }

    /// Lines held.
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

    fn line(container: &str, ts: i64, text: &str) -> LogLine {
        LogLine {
            cursor: Cursor {
                ts_ns: ts,
                seq: 0,
                container: container.into(),
            },
            ts: String::new(),
            stream: Stream::Stdout,
            replica: Replica {
                number: 1,
                name: "r".into(),
            },
            text: text.into(),
            truncated: false,
        }
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
        let texts: Vec<_> = b
            .all_visible()
            .iter()
            .map(|r| r.line.text.clone())
            .collect();
        assert_eq!(texts, ["3", "4", "5"]);
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
        assert_eq!(b.all_visible()[0].line.text, "7");
    }

    #[test]
    fn filter_applies_to_held_and_new_lines() {
        let mut b = LineBuffer::new(100);
        b.push([line("a", 1, "error one"), line("a", 2, "fine")]);
        b.set_filter(
            Filter::compile(&FilterSpec {
                text: "error".into(),
                ..Default::default()
            })
            .unwrap(),
        );
        assert_eq!(b.visible_len(), 1);
        b.push([line("a", 3, "ERROR two"), line("a", 4, "ok")]);
        assert_eq!(b.visible_len(), 2);
        assert_eq!(b.visible_rows(1, 2)[0].line.text, "ERROR two");
    }

    #[test]
    fn lifecycle_markers_pass_any_text_filter_and_take_no_cursor() {
        let mut b = LineBuffer::new(10);
        b.set_filter(
            Filter::compile(&FilterSpec {
                text: "nothing matches this".into(),
                ..Default::default()
            })
            .unwrap(),
        );
        b.push([line("a", 1, "x")]);
        b.push_lifecycle(
            "web #1 exited with code 3".into(),
            String::new(),
            2,
            Replica {
                number: 1,
                name: "r".into(),
            },
            false,
        );
        assert_eq!(b.visible_len(), 1);
        assert!(b.all_visible()[0].lifecycle);
        assert_eq!(b.resume_cursors().len(), 1);
        // The counter counts lines: none of the one held matches.
        assert_eq!((b.visible_line_count(), b.line_count()), (0, 1));
        b.set_filter(Filter::default());
        assert_eq!((b.visible_line_count(), b.line_count()), (1, 1));
    }

    #[test]
    fn a_change_told_again_on_resume_shows_once() {
        let mut b = LineBuffer::new(10);
        let replica = Replica {
            number: 1,
            name: "r".into(),
        };
        let ts = "2026-11-22T02:32:11.000000002Z".to_owned();
        b.push([line("a", 1, "x")]);
        b.push_lifecycle("exited".into(), ts.clone(), 2, replica.clone(), false);
        b.push_lifecycle("exited".into(), ts.clone(), 2, replica.clone(), false);
        assert_eq!(b.visible_len(), 2);
        // The same words at another time are another change.
        b.push_lifecycle("exited".into(), "later".into(), 3, replica, false);
        assert_eq!(b.visible_len(), 3);
    }

    #[test]
    fn a_marker_goes_before_lines_written_after_it() {
        let mut b = LineBuffer::new(10);
        b.push([line("a", 1, "old run"), line("a", 5, "new run")]);
        let replica = Replica {
            number: 1,
            name: "r".into(),
        };
        b.push_lifecycle("exited".into(), String::new(), 2, replica.clone(), false);
        // The engine's start time can be later than the new run's first line.
        b.push_lifecycle("started".into(), String::new(), 5, replica, true);
        b.push([line("a", 6, "new run, later")]);
        let texts: Vec<_> = b
            .all_visible()
            .iter()
            .map(|r| r.line.text.clone())
            .collect();
        assert_eq!(
            texts,
            ["old run", "exited", "started", "new run", "new run, later"]
        );
        let ids: Vec<_> = b.all_visible().iter().map(|r| r.id).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
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
