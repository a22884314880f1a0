//! How a follow stream is opened again without the engine reading the whole log.
//!
//! A follow goes on from `since`: whole seconds a little before the last line delivered
//! (`Seen::reread_from_secs`). To find those lines the engine reads the container's log from
//! its first line: 0.8 s for a 32 MB json-file log here, while the stream's new lines wait,
//! and a log that is never rotated grows without bound. Asked for the last lines as well
//! (`tail`), it reads them from the end instead. Enough are asked for to reach back to lines
//! already delivered, and the read's first lines say whether they did; if not, the follow is
//! opened again from `since` alone.
//!
//! What they must say, for each stream: lines stamped alike are told apart by their rank
//! among their stream's lines stamped alike (`frames::sequence`). A read that begins inside
//! such a run ranks its lines from 0 where a whole read would not, so a new line of the run
//! could take a delivered line's position and be skipped as a repeat. A stream's first line
//! in the read is safe if stamped before the newest line delivered of its stream (its whole
//! run was delivered), or if it is that very line and the first of its stamp. The read's
//! first line must be safe, or the tail may have begun after lines not yet delivered.

use crate::docker::frames::{stream_bit, RawLine};
use crate::seen::Seen;

/// Lines asked for beyond twice those delivered in the last seconds (`Seen::recent_lines`):
/// for the lines written since the last one delivered.
const MARGIN: usize = 10_000;

/// The newest line delivered of each stream (stdout, stderr), to know it again when a read
/// begins with it. `Seen` knows the same positions, for repeats; this knows the lines, and
/// is all a reopen's read is checked against.
#[derive(Debug, Default)]
pub struct Newest {
    of: [Option<RawLine>; 2],
}

impl Newest {
    /// Notes `lines`, just delivered.
    pub fn delivered(&mut self, lines: &[RawLine]) {
        let mut of: [Option<&RawLine>; 2] = [None, None];
        for line in lines {
            let newest = &mut of[stream_bit(line.stream) as usize];
            if newest.is_none_or(|n| position(line) > position(n)) {
                *newest = Some(line);
            }
        }
        // One copy per stream and batch, not per line.
        for (kept, line) in self.of.iter_mut().zip(of) {
            if let Some(line) = line {
                if kept.as_ref().is_none_or(|k| position(line) > position(k)) {
                    *kept = Some(line.clone());
                }
            }
        }
    }
}

fn position(line: &RawLine) -> (i64, u32) {
    (line.ts.ns, line.seq)
}

/// The tail of a follow opened from `since`, and what its first lines have said so far.
#[derive(Debug)]
pub struct TailBound {
    lines: u32,
    /// Whether each stream's first line (stdout, stderr) has been looked at.
    looked: [bool; 2],
}

impl TailBound {
    /// The tail to ask for, reopening a follow after the lines `seen` holds; None to read
    /// from `since` alone: nothing delivered yet, so nothing to reach back to.
    pub fn new(seen: &Seen) -> Option<TailBound> {
        seen.newest()?;
        let lines = seen.recent_lines().saturating_mul(2).saturating_add(MARGIN);
        Some(TailBound {
            lines: u32::try_from(lines).unwrap_or(u32::MAX),
            looked: [false, false],
        })
    }

    pub fn lines(&self) -> u32 {
        self.lines
    }

    /// Whether the read is whole so far, given the next `lines` it sent (in the engine's
    /// order, before `Seen` takes them), after the lines `newest` noted; false: the tail may
    /// have left lines out.
    pub fn holds(&mut self, lines: &[RawLine], newest: &Newest) -> bool {
        for line in lines {
            if self.looked == [true, true] {
                return true;
            }
            let s = stream_bit(line.stream) as usize;
            if self.looked[s] {
                continue;
            }
            let first_of_read = self.looked == [false, false];
            self.looked[s] = true;
            let delivered = newest.of[s].as_ref();
            let newest_ns = delivered.map(|n| n.ts.ns);
            let safe = newest_ns.is_some_and(|ns| line.ts.ns < ns)
                || (line.seq >> 1 == 0
                    && delivered
                        .is_some_and(|n| position(n) == position(line) && n.text == line.text));
            // Stamped after its stream's newest delivered, a line begins a run of its own:
            // safe unless it is the read's first, which must reach back to lines delivered.
            let own_run = newest_ns.is_none_or(|ns| line.ts.ns > ns);
            if !(safe || (own_run && !first_of_read)) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    //! On made-up lines: no engine.
    use super::*;
    use crate::hub::shared::tests::raw;
    use app::protocol::Stream;

    fn err(ns: i64, text: &str) -> RawLine {
        RawLine {
            seq: 1,
            stream: Stream::Stderr,
            ..raw(ns, text)
        }
    }

    /// Delivered: stdout at 10, 20, 30; stderr at 15.
    fn seen() -> (Seen, Newest) {
        let lines = vec![raw(10, "a"), err(15, "x"), raw(20, "b"), raw(30, "c")];
        let mut newest = Newest::default();
        newest.delivered(&lines);
        let mut seen = Seen::default();
        let _ = seen.fresh(lines);
        (seen, newest)
    }

    #[test]
    fn a_tail_reaching_back_to_delivered_lines_holds() {
        let (seen, newest) = seen();
        let mut bound = TailBound::new(&seen).expect("lines delivered");
        assert_eq!(bound.lines(), 4 * 2 + MARGIN as u32);
        assert!(bound.holds(&[raw(20, "b"), raw(30, "c")], &newest));
        assert!(
            bound.holds(&[raw(40, "d"), err(35, "y")], &newest),
            "stderr's first stamped after its newest: a run of its own"
        );
    }

    #[test]
    fn a_tail_beginning_with_the_newest_delivered_line_holds() {
        // A quiet container: the read from `since` begins with the last line delivered.
        let (seen, newest) = seen();
        let mut bound = TailBound::new(&seen).expect("lines delivered");
        assert!(bound.holds(&[raw(30, "c"), raw(40, "d")], &newest));
    }

    #[test]
    fn a_tail_beginning_after_the_newest_delivered_line_does_not_hold() {
        let (seen, newest) = seen();
        let mut bound = TailBound::new(&seen).expect("lines delivered");
        assert!(
            !bound.holds(&[raw(40, "d")], &newest),
            "lines may lie before it"
        );
        // Stamped like the newest delivered, but another line: the run's second, ranked 0.
        let mut bound = TailBound::new(&seen).expect("lines delivered");
        assert!(!bound.holds(&[raw(30, "c2"), raw(40, "d")], &newest));
    }

    #[test]
    fn a_newest_delivered_line_that_is_not_the_first_of_its_stamp_is_not_known_again() {
        let second = RawLine {
            seq: 2,
            ..raw(30, "c2")
        };
        let lines = vec![raw(10, "a"), raw(30, "c"), second.clone()];
        let mut newest = Newest::default();
        newest.delivered(&lines);
        let mut seen = Seen::default();
        let _ = seen.fresh(lines);
        // A tail beginning with `c2` ranks it 0: the line after it would take its place.
        let mut bound = TailBound::new(&seen).expect("lines delivered");
        assert!(!bound.holds(&[raw(30, "c2")], &newest));
    }

    #[test]
    fn a_stream_s_first_line_stamped_like_its_newest_delivered_holds_only_if_it_is_that_line() {
        let (seen, newest) = seen();
        let mut bound = TailBound::new(&seen).expect("lines delivered");
        assert!(bound.holds(&[raw(20, "b")], &newest));
        assert!(
            !bound.holds(&[raw(30, "c"), err(15, "x2")], &newest),
            "stderr's run at 15 may go on past what was delivered"
        );
        for first_err in [err(15, "x"), err(12, "w")] {
            let mut bound = TailBound::new(&seen).expect("lines delivered");
            assert!(bound.holds(&[raw(20, "b"), first_err], &newest));
        }
    }

    #[test]
    fn nothing_delivered_reads_from_since_alone() {
        assert!(TailBound::new(&Seen::default()).is_none());
    }
}
