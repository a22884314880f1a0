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

#[derive(Clone, Debug, Default)]
pub struct Given {
    /// Per container (short id) and stream, the last position given.
    streams: HashMap<(String, u32), Position>,
    /// Per container, the newest position held at the start, of either stream.
    start: HashMap<String, Position>,
}

fn stream_of(pos: Position) -> u32 {
    pos.1 & 1
}

impl Given {
    /// Notes a line the subscriber holds at its start (a resume cursor, a backlog line).
    pub fn hold(&mut self, container: &str, pos: Position) {
        raise(&mut self.start, container.to_owned(), pos);
        raise(
            &mut self.streams,
            (container.to_owned(), stream_of(pos)),
            pos,
        );
    }

    /// Whether the line at `pos` is new to the subscriber.
    pub fn is_new(&self, container: &str, pos: Position) -> bool {
        let key = (container.to_owned(), stream_of(pos));
        match self.streams.get(&key).or_else(|| self.start.get(container)) {
            Some(last) => pos > *last,
            None => true,
        }
    }

    /// Gives the line at `pos` if it is new; false for a repeat.
    pub fn give(&mut self, container: &str, pos: Position) -> bool {
        if !self.is_new(container, pos) {
            return false;
        }
        self.streams
            .insert((container.to_owned(), stream_of(pos)), pos);
        true
    }
}

fn raise<K: std::hash::Hash + Eq>(marks: &mut HashMap<K, Position>, key: K, pos: Position) {
    let mark = marks.entry(key).or_insert(pos);
    *mark = (*mark).max(pos);
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
