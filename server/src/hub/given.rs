//! What a subscriber has been given of each container, so that no line reaches it twice and
//! none is taken for a repeat.
//!
//! The engine stamps a container's stdout and stderr apart (a sequence's low bit says which):
//! each stream is in order, but a line of one may come after a later-stamped line of the
//! other. A repeat is told by its own stream's last line; a stream that has given nothing yet
//! goes by what the subscriber held when it started (its backlog and resume cursors).

use std::collections::HashMap;

/// A line's place in its container's log: nanoseconds and sequence.
pub type Position = (i64, u32);

/// Looked up for every line and every subscriber: one lookup by the container's id, with no
/// key made, per line.
#[derive(Clone, Debug, Default)]
pub struct Given {
    containers: HashMap<String, Marks>,
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
    fn marks(&mut self, container: &str) -> &mut Marks {
        if !self.containers.contains_key(container) {
            self.containers
                .insert(container.to_owned(), Marks::default());
        }
        self.containers.get_mut(container).expect("just made")
    }

    /// Notes a line the subscriber holds at its start (a resume cursor, a backlog line).
    pub fn hold(&mut self, container: &str, pos: Position) {
        let marks = self.marks(container);
        marks.start = marks.start.max(Some(pos));
        let stream = &mut marks.streams[stream_of(pos)];
        *stream = (*stream).max(Some(pos));
    }

    /// Whether the line at `pos` is new to the subscriber.
    pub fn is_new(&self, container: &str, pos: Position) -> bool {
        self.containers
            .get(container)
            .is_none_or(|marks| marks.is_new(pos))
    }

    /// Gives the line at `pos` if it is new; false for a repeat.
    pub fn give(&mut self, container: &str, pos: Position) -> bool {
        match self.containers.get_mut(container) {
            Some(marks) if !marks.is_new(pos) => false,
            Some(marks) => {
                marks.streams[stream_of(pos)] = Some(pos);
                true
            }
            None => {
                self.marks(container).streams[stream_of(pos)] = Some(pos);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sequences: even for stdout, odd for stderr.
    const OUT: u32 = 0;
    const ERR: u32 = 1;

    #[test]
    fn a_stdout_line_after_a_later_stamped_stderr_line_is_still_given() {
        let mut g = Given::default();
        assert!(g.give("c", (20, ERR)));
        assert!(g.give("c", (10, OUT)), "stamped earlier, but new");
        assert!(!g.give("c", (10, OUT)), "twice is a repeat");
        assert!(!g.give("c", (15, ERR)), "older than its stream's last");
    }

    #[test]
    fn a_stream_that_gave_nothing_goes_by_what_was_held_at_the_start() {
        let mut g = Given::default();
        g.hold("c", (20, ERR));
        assert!(!g.is_new("c", (10, OUT)), "held before the start");
        assert!(g.give("c", (30, OUT)));
        assert!(g.give("c", (25, ERR)));
        assert!(g.is_new("other", (1, OUT)));
    }

    #[test]
    fn held_lines_of_both_streams_each_bound_their_own() {
        let mut g = Given::default();
        g.hold("c", (10, OUT));
        g.hold("c", (20, ERR));
        assert!(g.give("c", (15, OUT)), "after stdout's last held");
        assert!(!g.give("c", (18, ERR)));
    }
}
