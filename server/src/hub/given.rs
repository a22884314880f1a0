//! What a subscriber has been given of each container, so that no line reaches it twice and
//! none is taken for a repeat.
//!
//! The engine stamps a container's stdout and stderr apart (a sequence's low bit says which):
//! each stream is in order, but a line of one may come after a later-stamped line of the
//! other. A repeat is told by its own stream's last line; a stream that has given nothing yet
//! goes by what the subscriber held when it started (its backlog and resume cursors).

use std::sync::Arc;

/// A line's place in its container's log: nanoseconds and sequence.
pub type Position = (i64, u32);

/// Looked up for every line and every subscriber. A subscriber's lines come in runs of one
/// container, and the lines a follower hands on together share one id (`docker::logs::Tag`):
/// the run's container is held apart and told by pointer, so most lines are given without
/// reading their id, which for a hundred subscribers was a cache miss per line and the
/// largest part of the server's time. Other lookups hash the id with foldhash, not std's
/// SipHash (the ids are the engine's, and a client's resume names a bounded few).
#[derive(Clone, Debug, Default)]
pub struct Given {
    containers: foldhash::HashMap<Arc<str>, Marks>,
    /// The container of the run being given, and its marks, out of `containers`.
    current: Option<(Arc<str>, Marks)>,
}

/// What a subscriber has been given of one container.
#[derive(Clone, Copy, Debug, Default)]
struct Marks {
    /// Per stream (a sequence's low bit), the last position given.
    streams: [Option<Position>; 2],
    /// The newest position held at the start, of either stream.
    start: Option<Position>,
}

impl Marks {
    fn is_new(&self, pos: Position) -> bool {
        match self.streams[stream_of(pos)].or(self.start) {
            Some(last) => pos > last,
            None => true,
        }
    }
}

fn stream_of(pos: Position) -> usize {
    (pos.1 & 1) as usize
}

impl Given {
    /// The marks of `container`, made the current run's.
    fn marks(&mut self, container: &Arc<str>) -> &mut Marks {
        let same = match &mut self.current {
            Some((id, _)) if Arc::ptr_eq(id, container) => true,
            Some((id, _)) if **id == **container => {
                // A later batch of the same container: told by its pointer from now on.
                *id = container.clone();
                true
            }
            _ => false,
        };
        if !same {
            if let Some((id, marks)) = self.current.take() {
                self.containers.insert(id, marks);
            }
            let marks = self.containers.remove(&**container).unwrap_or_default();
            self.current = Some((container.clone(), marks));
        }
        &mut self.current.as_mut().expect("just set").1
    }

    /// The marks of `container`, if it was given or held anything.
    fn find(&self, container: &str) -> Option<&Marks> {
        match &self.current {
            Some((id, marks)) if **id == *container => Some(marks),
            _ => self.containers.get(container),
        }
    }

    /// Notes a line the subscriber holds at its start (a resume cursor, a backlog line).
    pub fn hold(&mut self, container: &Arc<str>, pos: Position) {
        let marks = self.marks(container);
        marks.start = marks.start.max(Some(pos));
        let stream = &mut marks.streams[stream_of(pos)];
        *stream = (*stream).max(Some(pos));
    }

    /// Whether the line at `pos` is new to the subscriber.
    pub fn is_new(&self, container: &str, pos: Position) -> bool {
        self.find(container).is_none_or(|marks| marks.is_new(pos))
    }

    /// Gives the line at `pos` if it is new; false for a repeat.
    pub fn give(&mut self, container: &Arc<str>, pos: Position) -> bool {
        let marks = self.marks(container);
        if !marks.is_new(pos) {
            return false;
        }
        marks.streams[stream_of(pos)] = Some(pos);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sequences: even for stdout, odd for stderr.
    const OUT: u32 = 0;
    const ERR: u32 = 1;

    /// A fresh id each call, as each batch of a follower has: told apart by text, not pointer.
    fn id(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn a_stdout_line_after_a_later_stamped_stderr_line_is_still_given() {
        let mut g = Given::default();
        assert!(g.give(&id("c"), (20, ERR)));
        assert!(g.give(&id("c"), (10, OUT)), "stamped earlier, but new");
        assert!(!g.give(&id("c"), (10, OUT)), "twice is a repeat");
        assert!(!g.give(&id("c"), (15, ERR)), "older than its stream's last");
    }

    #[test]
    fn a_stream_that_gave_nothing_goes_by_what_was_held_at_the_start() {
        let mut g = Given::default();
        g.hold(&id("c"), (20, ERR));
        assert!(!g.is_new("c", (10, OUT)), "held before the start");
        assert!(g.give(&id("c"), (30, OUT)));
        assert!(g.give(&id("c"), (25, ERR)));
        assert!(g.is_new("other", (1, OUT)));
    }

    #[test]
    fn held_lines_of_both_streams_each_bound_their_own() {
        let mut g = Given::default();
        g.hold(&id("c"), (10, OUT));
        g.hold(&id("c"), (20, ERR));
        assert!(g.give(&id("c"), (15, OUT)), "after stdout's last held");
        assert!(!g.give(&id("c"), (18, ERR)));
    }

    #[test]
    fn runs_of_containers_in_turn_keep_each_ones_marks() {
        // Two replicas' batches in turn, each batch's lines sharing one id.
        let mut g = Given::default();
        g.hold(&id("b"), (5, OUT));
        for round in 0..3 {
            let (a, b) = (id("a"), id("b"));
            let at = 10 * (round + 1);
            assert!(
                g.give(&a, (at, OUT)) && g.give(&a, (at + 1, OUT)),
                "round {round}"
            );
            assert!(
                !g.give(&a, (at, OUT)),
                "a repeat within a run, round {round}"
            );
            assert!(g.give(&b, (at, OUT)), "round {round}");
            assert!(!g.give(&b, (5, OUT)), "held at the start");
            assert!(!g.is_new("a", (at + 1, OUT)) && g.is_new("a", (at + 2, OUT)));
        }
        assert!(!g.give(&id("a"), (31, OUT)), "given in the last round");
    }
}
