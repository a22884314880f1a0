//! The lines of the followed service (or services) and the filter over them, as the view's state. They
//! live apart from the socket: a reconnect keeps them (and resumes after them), and the view
//! reads the one filter that chose the visible rows to highlight its matches.

use leptos::prelude::*;

use crate::buffer::{LineBuffer, DEFAULT_MAX_LINES};
use crate::filter::Filter;
use crate::protocol::{Cursor, Lifecycle, LogLine};
use crate::ui::connection::{Delivery, Feed};

/// Where the view stands once a window of the past is shown. The view's scroll position
/// otherwise stays where the live end left it, which in a longer window is neither end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landing {
    /// At the first line: a window read from its From.
    Start,
    /// At the last line: a window read back from its To (or from now).
    End,
    /// Wherever the marked line is: the view brings it into view itself.
    Marked,
}

/// Handles to the lines' state; `Copy`, so every component can hold one.
#[derive(Clone, Copy)]
pub struct Lines {
    buffer: RwSignal<LineBuffer>,
    /// Lines the server skipped because this tab fell behind.
    pub dropped: RwSignal<u64>,
    /// Rows added since the service was chosen; the view counts new lines with it.
    pub appended: RwSignal<u64>,
    /// Visible rows last put before the first (older lines from history), counted each
    /// time: the view keeps its place by them.
    pub prepended: RwSignal<(u64, usize)>,
    /// Where the view should stand after each window of the past is shown, counted each time.
    pub shown: RwSignal<(u64, Landing)>,
    /// What arrived since the last frame: the buffer (and so the view) changes at most once
    /// per frame, however many messages arrive.
    pending: StoredValue<Vec<Delivery>>,
}

impl Lines {
    pub fn new() -> Lines {
        Lines {
            buffer: RwSignal::new(LineBuffer::new(DEFAULT_MAX_LINES)),
            dropped: RwSignal::new(0),
            appended: RwSignal::new(0),
            prepended: RwSignal::new((0, 0)),
            shown: RwSignal::new((0, Landing::Marked)),
            pending: StoredValue::new(Vec::new()),
        }
    }

    /// What the connection needs of the lines: somewhere to put them, and where to resume.
    pub fn feed(self) -> Feed {
        Feed {
            deliver: Callback::new(move |d| self.receive(d)),
            cursors: Callback::new(move |()| self.resume_cursors()),
        }
    }

    /// Reads the buffer, tracked.
    pub fn with<R>(&self, f: impl FnOnce(&LineBuffer) -> R) -> R {
        self.buffer.with(f)
    }

    pub fn with_untracked<R>(&self, f: impl FnOnce(&LineBuffer) -> R) -> R {
        self.buffer.with_untracked(f)
    }

    pub fn set_filter(&self, filter: Filter) {
        self.buffer.update(|b| b.set_filter(filter));
    }

    /// Collapses the entry that begins with row `first`, or shows it whole again.
    pub fn toggle_entry(&self, first: u64) {
        self.buffer.update(|b| b.toggle_entry(first));
    }

    pub fn set_cap(&self, cap: usize) {
        self.buffer.update(|b| b.set_cap(cap));
    }

    /// Empties the view; the server is not asked again for what was cleared.
    pub fn clear(&self) {
        self.buffer.update(|b| b.clear());
    }

    /// Forgets the lines of what was followed before, and what was on its way.
    pub fn reset(&self) {
        self.pending.update_value(|p| p.clear());
        self.buffer.update(|b| b.reset());
        self.dropped.set(0);
        self.appended.set(0);
    }

    /// Shows a window of the past in place of what was held: `lines` in time order, with
    /// the changes in `service`'s containers among them; the view then stands at `landing`.
    pub fn show(
        &self,
        service: &str,
        lines: Vec<LogLine>,
        changes: Vec<Lifecycle>,
        landing: Landing,
    ) {
        self.reset();
        self.buffer.update(|b| {
            let mut changes = changes.into_iter().peekable();
            for line in lines {
                while let Some(c) = changes.next_if(|c| c.ts_ns <= line.cursor.ts_ns) {
                    b.push_change(service, c);
                }
                b.push(service, [line]);
            }
            for c in changes {
                b.push_change(service, c);
            }
        });
        self.shown.update(|(n, l)| {
            *n += 1;
            *l = landing;
        });
    }

    /// Puts older lines from history before the first row, within the cap; returns how
    /// many rows the buffer took.
    pub fn prepend(&self, service: &str, lines: Vec<LogLine>, changes: Vec<Lifecycle>) -> usize {
        let before = self.buffer.with_untracked(|b| b.len());
        let mut shown = 0;
        self.buffer
            .update(|b| shown = b.prepend(service, lines, changes));
        self.prepended.update(|(n, rows)| {
            *n += 1;
            *rows = shown;
        });
        self.buffer.with_untracked(|b| b.len()) - before
    }

    pub fn oldest_cursor(&self) -> Option<Cursor> {
        self.buffer.with_untracked(|b| b.oldest_cursor().cloned())
    }

    fn resume_cursors(&self) -> Vec<Cursor> {
        self.buffer.with_untracked(|b| b.resume_cursors())
    }

    fn receive(&self, d: Delivery) {
        if let Delivery::Dropped(n) = d {
            self.dropped.update(|d| *d += n);
            return;
        }
        let first = self.pending.with_value(|p| p.is_empty());
        self.pending.update_value(|p| p.push(d));
        if first {
            let lines = *self;
            request_animation_frame(move || lines.flush());
        }
    }

    /// Moves what arrived since the last frame into the buffer, in order.
    fn flush(&self) {
        let items = self
            .pending
            .try_update_value(std::mem::take)
            .unwrap_or_default();
        if items.is_empty() {
            return;
        }
        let mut added = 0;
        self.buffer.update(|b| {
            for item in items {
                match item {
                    Delivery::Lines { service, lines } => added += b.push(&service, lines),
                    Delivery::Change { service, change } => {
                        // Counted even when told before, as it always was: the count of
                        // new lines is a hint, and a resume's repeats are rare.
                        b.push_change(&service, change);
                        added += 1;
                    }
                    // Counted on arrival, never queued.
                    Delivery::Dropped(_) => {}
                }
            }
        });
        if added > 0 {
            self.appended.update(|n| *n += added as u64);
        }
    }
}
