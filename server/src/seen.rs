//! Which lines of one container were already taken, by position (nanoseconds, sequence).
//!
//! The engine stamps stdout and stderr apart, so a line can be stamped a little before one
//! it follows: positions are not in the order lines come. A line is new if it is newer than
//! every line taken, or, within `JITTER` of the newest, if its own position was not taken;
//! older than that, it is a repeat. Re-reads start `JITTER` before the newest line, so a
//! late-stamped line is read again and found new, and every other line is found a repeat.

use std::collections::VecDeque;

use app::protocol::Stream;

use crate::clock::Timestamp;
use crate::docker::frames::{stream_bit, RawLine};

/// How far apart in time the engine may stamp two lines written one after the other.
pub const JITTER_NS: i64 = 2_000_000_000;

#[derive(Clone, Debug, Default)]
pub struct Seen {
    newest: Option<(i64, u32)>,
    /// The newest position taken of each stream, stdout then stderr (a sequence's low bit).
    newest_of: [Option<(i64, u32)>; 2],
    /// The newest position of each stream that a read has gone through, taken or left out on
    /// purpose (the lines before a tail): nothing of that stream at or before it is new.
    read_to: [Option<(i64, u32)>; 2],
    /// The positions taken within `JITTER_NS` of the newest, per stream, in order. Each
    /// stream is stamped in order, so a position is added at the back and let go from the
    /// front: no hashing per line (a hash set of them was a tenth of the server's work at
    /// full speed), and a stream that lags the other costs nothing more.
    recent: [VecDeque<(i64, u32)>; 2],
}

impl Seen {
    /// What is known of lines taken before: their newest position and those near it.
    pub fn from_positions(positions: impl IntoIterator<Item = (i64, u32)>) -> Seen {
        let mut seen = Seen::default();
        for p in positions {
            seen.take(p);
        }
        seen
    }

    pub fn newest(&self) -> Option<(i64, u32)> {
        self.newest
    }

    /// The newest position taken of `stream`.
    pub fn newest_of(&self, stream: Stream) -> Option<(i64, u32)> {
        self.newest_of[stream_bit(stream) as usize]
    }

    /// How many lines were taken within `JITTER_NS` of the newest.
    pub fn recent_lines(&self) -> usize {
        self.recent.iter().map(VecDeque::len).sum()
    }

    /// A line is new if newer than every line of its stream taken (each stream is stamped in
    /// order, so an older line of it is a repeat), else if within `JITTER` of the newest and
    /// not taken. Under load the engine's stderr copier may lag its stdout by more than
    /// `JITTER`: the newest of all cannot tell its lines from repeats.
    pub fn is_new(&self, pos: (i64, u32)) -> bool {
        if self.read_to[stream_of(pos)].is_some_and(|r| pos <= r) {
            return false;
        }
        if self.newest_of[stream_of(pos)].is_none_or(|n| pos > n) {
            return true;
        }
        match self.newest {
            None => true,
            Some(n) => pos > n || (pos.0 >= floor(n) && !self.has_recent(pos)),
        }
    }

    /// Takes `pos`; false if it was taken before.
    pub fn take(&mut self, pos: (i64, u32)) -> bool {
        if !self.is_new(pos) {
            return false;
        }
        let recent = &mut self.recent[stream_of(pos)];
        match recent.back() {
            Some(last) if *last > pos => {
                let at = recent.partition_point(|p| *p < pos);
                recent.insert(at, pos);
            }
            _ => recent.push_back(pos),
        }
        if self.newest.is_none_or(|n| pos > n) {
            self.newest = Some(pos);
        }
        let own = &mut self.newest_of[stream_of(pos)];
        if own.is_none_or(|n| pos > n) {
            *own = Some(pos);
        }
        // Older than the window: never looked for again (`is_new`).
        let f = floor(self.newest.expect("a line was taken"));
        for recent in &mut self.recent {
            while recent.front().is_some_and(|p| p.0 < f) {
                recent.pop_front();
            }
        }
        true
    }

    fn has_recent(&self, pos: (i64, u32)) -> bool {
        let recent = &self.recent[stream_of(pos)];
        let at = recent.partition_point(|p| *p < pos);
        recent.get(at) == Some(&pos)
    }

    /// Every line of `read` has been dealt with, taken before this or not: a tail read
    /// leaves out the lines before it, and a re-read from `JITTER` before the newest line
    /// must not find them new. Each stream is stamped in order, so a line of a stream
    /// stamped before the newest read of it was in the read.
    pub fn read_through(&mut self, read: &[RawLine]) {
        for l in read {
            let pos = (l.ts.ns, l.seq);
            let to = &mut self.read_to[stream_of(pos)];
            if to.is_none_or(|t| pos > t) {
                *to = Some(pos);
            }
        }
    }

    /// The lines of `lines` not taken before, in the order they came; takes them.
    pub fn fresh(&mut self, lines: Vec<RawLine>) -> Vec<RawLine> {
        lines
            .into_iter()
            .filter(|l| self.take((l.ts.ns, l.seq)))
            .collect()
    }

    /// Where a re-read starts, in the engine's whole seconds: far enough back to find a line
    /// stamped before the newest taken.
    pub fn reread_from_secs(&self) -> i64 {
        self.newest
            .map_or(0, |n| Timestamp { ns: floor(n) }.whole_seconds())
    }
}

/// Which stream a position is of: its sequence's low bit (see `docker::frames::sequence`).
fn stream_of(pos: (i64, u32)) -> usize {
    (pos.1 & 1) as usize
}

fn floor(newest: (i64, u32)) -> i64 {
    newest.0.saturating_sub(JITTER_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn a_line_stamped_before_the_newest_is_new_once_and_old_lines_are_repeats() {
        let mut seen = Seen::default();
        assert!(seen.take((10 * S, 0)));
        // stderr stamped 5 ms before the stdout line it follows.
        assert!(seen.take((10 * S - 5_000_000, 0)), "late-stamped: new");
        assert!(
            !seen.take((10 * S - 5_000_000, 0)),
            "the same line again: a repeat"
        );
        assert!(!seen.take((10 * S, 0)));
        assert!(seen.take((10 * S, 1)), "the next line at the same instant");
        assert!(!seen.take((7 * S, 0)), "older than the window: a repeat");
        assert_eq!(seen.newest(), Some((10 * S, 1)));
        assert_eq!(seen.reread_from_secs(), 8, "a re-read starts 2 s back");
    }

    #[test]
    fn a_stderr_line_stamped_longer_ago_than_the_window_is_new_if_its_stream_is_behind() {
        let mut seen = Seen::default();
        assert!(seen.take((10 * S, 1)), "stderr");
        assert!(seen.take((20 * S, 0)), "stdout, 10 s on");
        // The stderr copier lagged: its next line is stamped 4 s before the newest.
        assert!(seen.take((16 * S, 3)), "newer than every stderr line: new");
        assert!(!seen.take((16 * S, 3)), "the same line again: a repeat");
        assert!(!seen.take((10 * S, 1)), "an older stderr line: a repeat");
        assert!(!seen.take((12 * S, 0)), "an old stdout line: a repeat");
    }

    #[test]
    fn the_lines_a_tail_left_out_are_not_new_when_read_again() {
        use app::protocol::Stream;
        let raw = |ns: i64, seq: u32| RawLine {
            ts: Timestamp { ns },
            seq,
            stream: [Stream::Stdout, Stream::Stderr][(seq & 1) as usize],
            text: String::new(),
            truncated: false,
            level: None,
        };
        // 3,000 lines written within a second, on stdout and stderr; the tail is the last 10.
        let read: Vec<RawLine> = (0..3000)
            .map(|i| raw(S + i * 300_000, (i % 2) as u32))
            .collect();
        let mut seen = Seen::default();
        let tail = read[2990..].to_vec();
        assert_eq!(seen.fresh(tail).len(), 10);
        seen.read_through(&read);
        // A follow re-reads from 2 s before the newest: only what comes after is new.
        let mut again = read.clone();
        again.extend([raw(3 * S, 0), raw(3 * S, 1)]);
        let fresh: Vec<(i64, u32)> = seen.fresh(again).iter().map(|l| (l.ts.ns, l.seq)).collect();
        assert_eq!(fresh, [(3 * S, 0), (3 * S, 1)]);
    }

    #[test]
    fn lines_out_of_order_within_the_window_are_each_new_once() {
        // 2,000 positions on both streams within 1 ms, in a scrambled order, each given twice.
        let positions: Vec<(i64, u32)> = (0..2000u32)
            .map(|i| (10 * S + i64::from(i * 7919 % 1000) * 1000, i))
            .collect();
        let mut order: Vec<(i64, u32)> = positions.iter().chain(&positions).copied().collect();
        order.sort_by_key(|p| (p.0 * 31 + i64::from(p.1)) % 977);
        let mut seen = Seen::default();
        let mut taken = std::collections::HashSet::new();
        for p in order {
            assert_eq!(seen.take(p), taken.insert(p), "{p:?}");
        }
        assert_eq!(taken.len(), 2000);
    }

    #[test]
    fn lines_read_again_from_the_window_start_are_repeats_and_only_new_ones_pass() {
        let mut seen = Seen::default();
        let first: Vec<(i64, u32)> = (0..5000).map(|i| (i * S / 1000, 0)).collect();
        for p in &first {
            assert!(seen.take(*p));
        }
        // Read again from 2 s before the newest, with two new lines after.
        let from = seen.reread_from_secs() * S;
        let again: Vec<(i64, u32)> = first
            .iter()
            .copied()
            .filter(|p| p.0 >= from)
            .chain([(5 * S, 0), (5 * S, 1)])
            .collect();
        let fresh: Vec<(i64, u32)> = again.into_iter().filter(|p| seen.take(*p)).collect();
        assert_eq!(fresh, [(5 * S, 0), (5 * S, 1)]);
        let kept: usize = seen.recent.iter().map(VecDeque::len).sum();
        assert!(kept < 5000, "old positions are let go");
    }
}
