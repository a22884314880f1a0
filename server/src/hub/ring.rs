//! A service's recent lines, in cursor order, bounded in lines and bytes: what new viewers'
//! tails and resumes are served from.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::line::Line;

/// Per container (short id), a position: nanoseconds and sequence.
pub type Marks = HashMap<String, (i64, u32)>;

#[derive(Clone, Copy, Debug)]
pub struct RingCaps {
    pub lines: usize,
    pub bytes: usize,
}

#[derive(Default)]
pub struct Ring {
    pub lines: VecDeque<Arc<Line>>,
    /// What `lines` hold, as `Line::bytes` counts it.
    bytes: usize,
    /// Per container, the newest position of a line the ring may not hold (pushed out, or
    /// older than a fresh feed's tail): a client resuming from before it misses lines that
    /// only the engine still has.
    pub evicted: Marks,
}

impl Ring {
    /// Inserts in cursor order (lines of several replicas arrive interleaved), then drops
    /// the oldest lines beyond the caps, always keeping the newest one.
    pub fn insert(&mut self, line: Arc<Line>, caps: RingCaps) {
        let at = self
            .lines
            .iter()
            .rposition(|l| l.cursor <= line.cursor)
            .map_or(0, |p| p + 1);
        self.bytes += line.bytes();
        self.lines.insert(at, line);
        while self.lines.len() > caps.lines || (self.bytes > caps.bytes && self.lines.len() > 1) {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.bytes();
            raise(
                &mut self.evicted,
                &old.cursor.container,
                old.cursor.position(),
            );
        }
    }

    /// Notes that lines of `container` up to `upto` may exist that the ring does not hold.
    pub fn not_held_upto(&mut self, container: &str, upto: (i64, u32)) {
        raise(&mut self.evicted, container, upto);
    }
}

/// Moves `container`'s mark up to `pos`, never down.
pub fn raise(marks: &mut Marks, container: &str, pos: (i64, u32)) {
    match marks.get_mut(container) {
        Some(mark) => *mark = (*mark).max(pos),
        None => {
            marks.insert(container.to_owned(), pos);
        }
    }
}

/// The greatest position before `pos`: no line lies strictly between the two.
pub fn before((ts, seq): (i64, u32)) -> (i64, u32) {
    match seq.checked_sub(1) {
        Some(seq) => (ts, seq),
        None => (ts - 1, u32::MAX),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use app::protocol::{Cursor, LogLine, Replica, Stream};

    pub fn line(container: &str, ts_ns: i64, seq: u32, text: &str) -> Arc<Line> {
        Line::shared(LogLine {
            cursor: Cursor {
                ts_ns,
                seq,
                container: container.into(),
            },
            ts: String::new(),
            stream: Stream::Stdout,
            replica: Replica {
                number: 1,
                name: container.into(),
            },
            text: text.into(),
            truncated: false,
            level: None,
        })
    }

    fn texts(ring: &Ring) -> Vec<&str> {
        ring.lines.iter().map(|l| l.text.as_str()).collect()
    }

    const ROOMY: RingCaps = RingCaps {
        lines: 100,
        bytes: 1 << 20,
    };

    #[test]
    fn lines_of_replicas_arriving_interleaved_are_kept_in_cursor_order() {
        let mut ring = Ring::default();
        ring.insert(line("a", 30, 0, "a30"), ROOMY);
        ring.insert(line("b", 10, 0, "b10"), ROOMY);
        ring.insert(line("a", 20, 0, "a20"), ROOMY);
        ring.insert(line("b", 40, 0, "b40"), ROOMY);
        assert_eq!(texts(&ring), ["b10", "a20", "a30", "b40"]);
        assert!(ring.evicted.is_empty());
    }

    #[test]
    fn the_oldest_lines_go_at_the_line_cap_and_each_container_marks_what_it_lost() {
        let caps = RingCaps {
            lines: 2,
            bytes: 1 << 20,
        };
        let mut ring = Ring::default();
        for (c, ts) in [("a", 1), ("b", 2), ("a", 3), ("b", 4)] {
            ring.insert(line(c, ts, 0, &format!("{c}{ts}")), caps);
        }
        assert_eq!(texts(&ring), ["a3", "b4"]);
        assert_eq!(ring.evicted["a"], (1, 0));
        assert_eq!(ring.evicted["b"], (2, 0));
    }

    #[test]
    fn the_byte_cap_drops_old_lines_but_always_keeps_the_newest() {
        let one = line("a", 1, 0, "x").bytes();
        let caps = RingCaps {
            lines: 100,
            bytes: one * 2,
        };
        let mut ring = Ring::default();
        for ts in 1..=5 {
            ring.insert(line("a", ts, 0, "x"), caps);
        }
        assert_eq!(ring.lines.len(), 2);
        // A line larger than the cap alone is still held: the newest is never dropped.
        ring.insert(line("a", 6, 0, &"y".repeat(one * 4)), caps);
        assert_eq!(ring.lines.len(), 1);
        assert_eq!(ring.evicted["a"], (5, 0));
    }

    #[test]
    fn marks_only_move_up_and_before_is_the_position_just_under() {
        let mut marks = Marks::new();
        raise(&mut marks, "a", (5, 1));
        raise(&mut marks, "a", (4, 9));
        assert_eq!(marks["a"], (5, 1));
        assert_eq!(before((5, 1)), (5, 0));
        assert_eq!(before((5, 0)), (4, u32::MAX));
    }
}
