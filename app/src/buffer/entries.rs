//! Entries: a line and the lines that continue it, kept or hidden whole by the filter,
//! counted once, collapsed to their first line.

use std::sync::Arc;

use super::{LineBuffer, Row, RowKind};
use crate::buffer::Entry;

impl LineBuffer {
    /// Pushes the ids an entry shows (its first row's, and the rest's unless collapsed) to
    /// `ids`; returns how many of them continue it.
    pub(super) fn shown_of<'a>(
        &self,
        mut entry: impl Iterator<Item = &'a Arc<Row>>,
        ids: &mut Vec<u64>,
    ) -> usize {
        let Some(first) = entry.next() else {
            return 0;
        };
        ids.push(first.id);
        if !self.collapsed.is_empty() && self.collapsed.contains(&first.id) {
            return 0;
        }
        let before = ids.len();
        ids.extend(entry.map(|r| r.id));
        ids.len() - before
    }

    /// A line joins the last entry: the entry may now pass the filter, or (inverted) no
    /// longer, and it is shown or hidden whole.
    pub(super) fn append_continuation(&mut self, row: &Row) {
        self.continuations += 1;
        let first = self.rows.len() - self.entry_tail_len();
        let head = &self.rows[first];
        let head_id = head.id;
        let shown = self.visible.back().is_some_and(|&id| id >= head_id);
        let RowKind::Line { line, .. } = &head.kind else {
            return;
        };
        if !self
            .filter
            .admits(line.stream, line.replica.number, line.level)
            || !self.filter.shows_fields(head.json())
        {
            return;
        }
        // The entry passed if its texts did: with a pattern, `shown` tells whether it was
        // found in them before (inverted: not found).
        let found_before = shown != self.filter.is_inverted();
        let found = found_before || self.filter.finds(row.plain());
        let passes = found != self.filter.is_inverted();
        let collapsed = self.collapsed.contains(&head_id);
        match (shown, passes) {
            (true, true) if !collapsed => {
                self.visible.push_back(row.id);
                self.visible_continuations += 1;
            }
            (false, true) => {
                self.visible.push_back(head_id);
                if !collapsed {
                    let rest: Vec<u64> = self.rows.range(first + 1..).map(|r| r.id).collect();
                    self.visible_continuations += rest.len() + 1;
                    self.visible.extend(rest);
                    self.visible.push_back(row.id);
                }
            }
            (true, false) => {
                while self.visible.back().is_some_and(|&id| id >= head_id) {
                    let id = self.visible.pop_back().expect("a last id");
                    self.visible_continuations -= usize::from(id != head_id);
                }
            }
            _ => {}
        }
    }

    /// How many of the last rows make up the last entry.
    pub(super) fn entry_tail_len(&self) -> usize {
        let continuing = self.rows.iter().rev().take_while(|r| r.continues).count();
        (continuing + 1).min(self.rows.len())
    }

    /// Whether an entry (its rows in order) passes: a marker unless its replica is hidden;
    /// lines by their first line's stream, replica and level, and all their texts as one.
    pub(super) fn entry_passes<'a>(&self, entry: impl Iterator<Item = &'a Row> + Clone) -> bool {
        let Some(first) = entry.clone().next() else {
            return false;
        };
        match &first.kind {
            // A restart explains the lines around it whatever they say; only hiding its
            // replica hides it.
            RowKind::Marker { replica, .. } => self.filter.shows_replica(replica.number),
            RowKind::Line { line, .. } => {
                self.filter
                    .admits(line.stream, line.replica.number, line.level)
                    && self.filter.shows_fields(first.json())
                    && self.filter.keeps_texts(entry.map(Row::plain))
            }
        }
    }

    /// Shows an entry (by its first row's id) collapsed to its first line, or whole again.
    pub fn toggle_entry(&mut self, first: u64) {
        if !self.collapsed.remove(&first) {
            self.collapsed.insert(first);
        }
        self.refilter();
    }

    /// Works out the visible rows anew.
    pub(super) fn refilter(&mut self) {
        if self.filter.is_everything() && self.collapsed.is_empty() {
            self.visible = self.rows.iter().map(|r| r.id).collect();
            self.visible_markers = self.markers;
            self.visible_continuations = self.continuations;
            return;
        }
        let mut ids = Vec::with_capacity(self.rows.len());
        let (mut markers, mut continuations) = (0, 0);
        let mut at = 0;
        while at < self.rows.len() {
            let len = 1 + self
                .rows
                .range(at + 1..)
                .take_while(|r| r.continues)
                .count();
            let entry = self.rows.range(at..at + len);
            if self.entry_passes(entry.clone().map(|r| &**r)) {
                markers += usize::from(self.rows[at].is_marker());
                continuations += self.shown_of(entry, &mut ids);
            }
            at += len;
        }
        self.visible = ids.into();
        self.visible_markers = markers;
        self.visible_continuations = continuations;
    }

    /// The entry a row begins, when lines continue it; None for any other row.
    pub fn entry(&self, row: &Row) -> Option<Entry> {
        if row.continues {
            return None;
        }
        let first = self.rows.front()?.id;
        let at = usize::try_from(row.id.checked_sub(first)?).ok()?;
        let more = self
            .rows
            .range(at + 1..)
            .take_while(|r| r.continues)
            .count();
        (more > 0).then(|| Entry {
            more: more as u32,
            collapsed: self.collapsed.contains(&row.id),
        })
    }

    /// Every row of the entries that pass the filter, collapsed ones whole: what a download
    /// of the view holds.
    pub fn all_passing(&self) -> Vec<Arc<Row>> {
        let Some(first) = self.rows.front().map(|r| r.id) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(self.visible.len());
        for id in &self.visible {
            let at = (id - first) as usize;
            out.extend(self.rows.get(at).cloned());
            if self.collapsed.contains(id) {
                out.extend(
                    self.rows
                        .range(at + 1..)
                        .take_while(|r| r.continues)
                        .cloned(),
                );
            }
        }
        out
    }
}
