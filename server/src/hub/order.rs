//! The order the lines of one read go on in: the engine writes stdout and stderr to the log
//! as each stream's copier gets to it, so a line can follow one stamped after it.

use crate::docker::frames::RawLine;

/// `lines` in the order the engine stamped them. It writes stdout and stderr to the log as
/// each stream's copier gets to it, so a stderr line can follow a stdout line stamped after
/// it; a replica's lines go out in time order (PROTOCOL.md), at least within one read.
pub fn in_stamp_order(mut lines: Vec<RawLine>) -> Vec<RawLine> {
    // Nearly always in order already, which a stable sort checks in one pass.
    lines.sort_by_key(|l| (l.ts.ns, l.seq));
    lines
}

/// The last `lines` lines of `read` (in the engine's order), and the lines before them that
/// are stamped after their first: the engine stamps stdout and stderr apart, so such a line
/// lies above the gap the ring starts with (`not_held_upto` just before the tail's first),
/// and is the ring's to hold, or no one's.
pub fn split_tail(read: &[RawLine], lines: usize) -> (Vec<RawLine>, Vec<RawLine>) {
    let (before, tail) = read.split_at(read.len().saturating_sub(lines));
    let Some(first) = tail.first().map(|l| (l.ts.ns, l.seq)) else {
        return (tail.to_vec(), Vec::new());
    };
    let late = before.iter().filter(|l| (l.ts.ns, l.seq) > first);
    (tail.to_vec(), late.cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::shared::tests::raw as line;

    #[test]
    fn lines_go_on_in_the_order_the_engine_stamped_them() {
        let read = vec![
            line(10, "line 12"),
            line(5, "crash 12, on stderr"),
            line(20, "x"),
        ];
        let texts: Vec<String> = in_stamp_order(read).into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["crash 12, on stderr", "line 12", "x"]);
    }

    #[test]
    fn a_line_read_before_the_tail_but_stamped_after_its_first_goes_with_it() {
        let read = vec![
            line(10, "a"),
            line(25, "x, on stderr, stamped late"),
            line(20, "b"),
            line(30, "c"),
            line(40, "d"),
        ];
        let texts = |l: &[RawLine]| l.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
        let (tail, late) = split_tail(&read, 3);
        assert_eq!(texts(&tail), ["b", "c", "d"]);
        assert_eq!(texts(&late), ["x, on stderr, stamped late"]);
        let (tail, late) = split_tail(&read, 10);
        assert_eq!(
            (tail.len(), late.len()),
            (5, 0),
            "the whole log is the tail"
        );
        assert_eq!(split_tail(&read, 0).0.len(), 0);
    }
}
