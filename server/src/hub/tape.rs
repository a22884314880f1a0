//! The fan-out queue of one service: what its followers produce, in the order they produce
//! it, bounded in items and in bytes. There is one tape per service whatever the number of
//! viewers; each subscriber reads it at its own pace from its own position. A subscriber that
//! falls behind the oldest item still held has lost what lay between, and learns how many
//! lines that was. So a slow viewer costs no memory: the tape's bounds are the only queue.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::line::Line;
use app::protocol::Lifecycle;

/// What travels from the followers to the subscribers, in order.
#[derive(Clone, Debug)]
pub enum Item {
    Line(Arc<Line>),
    Lifecycle(Arc<Lifecycle>),
}

impl Item {
    fn bytes(&self) -> usize {
        match self {
            Item::Line(l) => l.bytes(),
            Item::Lifecycle(l) => l.ts.len() + l.replica.name.len() + OVERHEAD,
        }
    }
}

/// What a change takes in memory beyond its strings: the `Arc`, the struct, allocator slack.
const OVERHEAD: usize = 96;

/// A place on the tape: the sequence number of the next item to read, and how many lines
/// came before it (so that a loss is counted in lines, not items).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    seq: u64,
    lines: u64,
}

/// The tape's bounds: a push beyond either drops the oldest items.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub items: usize,
    pub bytes: usize,
}

struct Entry {
    item: Item,
    bytes: usize,
}

pub struct Tape {
    entries: VecDeque<Entry>,
    /// Where `entries[0]` stands.
    first: Pos,
    bytes: usize,
    bounds: Bounds,
    /// The position after the newest item.
    end: Pos,
}

/// What a reader does with the item it is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Takes it and reads on.
    More,
    /// Takes it and stops.
    Last,
    /// Leaves it on the tape for the next read, and stops.
    Leave,
}

/// How a read ended: with lines lost (the reader was behind the tape's start), or at the
/// tape's end, or where the reader stopped.
#[derive(Debug, Default)]
pub struct Taken {
    pub lost: u64,
    /// The read stopped because the tape had nothing more (not at a bound of the read).
    pub exhausted: bool,
}

impl Tape {
    pub fn new(bounds: Bounds) -> Tape {
        let start = Pos { seq: 0, lines: 0 };
        Tape {
            entries: VecDeque::new(),
            first: start,
            bytes: 0,
            bounds: Bounds {
                items: bounds.items.max(1),
                bytes: bounds.bytes,
            },
            end: start,
        }
    }

    /// The position after the newest item: a new subscriber starts here.
    pub fn end(&self) -> Pos {
        self.end
    }

    pub fn push(&mut self, item: Item) {
        let bytes = item.bytes();
        self.end.seq += 1;
        self.end.lines += matches!(item, Item::Line(_)) as u64;
        self.entries.push_back(Entry { item, bytes });
        self.bytes += bytes;
        // The newest item always stays, whatever its size: a subscriber that keeps up loses
        // nothing.
        while self.entries.len() > 1
            && (self.entries.len() > self.bounds.items || self.bytes > self.bounds.bytes)
        {
            let old = self.entries.pop_front().expect("more than one entry");
            self.bytes -= old.bytes;
            self.first.seq += 1;
            self.first.lines += matches!(old.item, Item::Line(_)) as u64;
        }
    }

    /// Moves the tape past `item` without holding it, and lets go of what it held: with no
    /// subscriber, nothing is kept for no one (a new subscriber starts at the end, from the
    /// ring's snapshot). A service nobody watches then costs its ring alone.
    pub fn pass(&mut self, item: &Item) {
        self.end.seq += 1;
        self.end.lines += matches!(item, Item::Line(_)) as u64;
        self.entries.clear();
        self.bytes = 0;
        self.first = self.end;
    }

    /// Reads from `pos` on, moving it past each item `take` takes. A reader behind the
    /// tape's start reads nothing this time: it is moved to the start and told how many
    /// lines it lost, so that it can say so before what follows.
    pub fn read(&self, pos: &mut Pos, mut take: impl FnMut(&Item) -> Take) -> Taken {
        if pos.seq < self.first.seq {
            let lost = self.first.lines - pos.lines;
            *pos = self.first;
            return Taken {
                lost,
                exhausted: false,
            };
        }
        let start = (pos.seq - self.first.seq) as usize;
        for entry in self.entries.iter().skip(start) {
            let answer = take(&entry.item);
            if answer == Take::Leave {
                return Taken::default();
            }
            pos.seq += 1;
            pos.lines += matches!(entry.item, Item::Line(_)) as u64;
            if answer == Take::Last {
                return Taken::default();
            }
        }
        Taken {
            lost: 0,
            exhausted: true,
        }
    }

    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        (self.entries.len(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    //! Plain unit tests of the tape with made-up lines.
    use super::*;
    use app::protocol::{Cursor, LogLine, Replica, Stream};

    fn line(n: i64, text: &str) -> Item {
        Item::Line(Line::shared(LogLine {
            cursor: Cursor {
                ts_ns: n,
                seq: 0,
                container: "c".into(),
            },
            ts: String::new(),
            stream: Stream::Stdout,
            replica: Replica {
                number: 1,
                name: "r".into(),
            },
            text: text.into(),
            truncated: false,
            level: None,
        }))
    }

    fn texts(tape: &Tape, pos: &mut Pos) -> (u64, Vec<String>) {
        let mut out = Vec::new();
        let mut lost = 0;
        loop {
            let taken = tape.read(pos, |item| {
                if let Item::Line(l) = item {
                    out.push(l.text.clone());
                }
                Take::More
            });
            lost += taken.lost;
            if taken.exhausted {
                return (lost, out);
            }
        }
    }

    #[test]
    fn a_subscriber_reads_what_came_after_its_start() {
        let mut tape = Tape::new(Bounds {
            items: 10,
            bytes: 1 << 20,
        });
        tape.push(line(1, "before"));
        let mut pos = tape.end();
        tape.push(line(2, "a"));
        tape.push(line(3, "b"));
        assert_eq!(texts(&tape, &mut pos), (0, vec!["a".into(), "b".into()]));
        assert_eq!(texts(&tape, &mut pos), (0, vec![]));
        tape.push(line(4, "c"));
        assert_eq!(texts(&tape, &mut pos), (0, vec!["c".into()]));
    }

    #[test]
    fn the_item_bound_drops_the_oldest_and_a_late_reader_is_told_how_many_lines() {
        let mut tape = Tape::new(Bounds {
            items: 3,
            bytes: 1 << 20,
        });
        let mut pos = tape.end();
        for n in 0..10 {
            tape.push(line(n, &n.to_string()));
        }
        assert_eq!(tape.held().0, 3);
        assert_eq!(
            texts(&tape, &mut pos),
            (7, vec!["7".into(), "8".into(), "9".into()])
        );
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_but_keeps_the_newest_item() {
        let big = "x".repeat(1000);
        let one = line(0, &big).bytes();
        let bound = one * 5 / 2;
        let mut tape = Tape::new(Bounds {
            items: 1000,
            bytes: bound,
        });
        let mut pos = tape.end();
        for n in 0..10 {
            tape.push(line(n, &big));
        }
        let (items, bytes) = tape.held();
        assert_eq!(items, 2, "two lines fit in two and a half lines' bytes");
        assert!(bytes <= bound);
        assert_eq!(texts(&tape, &mut pos).0, 8);
        // A single item larger than the bound is still delivered, and what it pushed out had
        // been read already: nothing is lost.
        tape.push(line(11, &"y".repeat(10_000)));
        assert_eq!(tape.held().0, 1);
        let (lost, got) = texts(&tape, &mut pos);
        assert_eq!((lost, got.len(), got[0].len()), (0, 1, 10_000));
    }

    #[test]
    fn a_left_item_stays_for_the_next_read() {
        let mut tape = Tape::new(Bounds {
            items: 10,
            bytes: 1 << 20,
        });
        let mut pos = tape.end();
        for n in 0..4 {
            tape.push(line(n, &n.to_string()));
        }
        let mut got = 0;
        let taken = tape.read(&mut pos, |_| {
            got += 1;
            if got < 2 {
                Take::More
            } else {
                Take::Last
            }
        });
        assert!(!taken.exhausted);
        let taken = tape.read(&mut pos, |_| Take::Leave);
        assert!(!taken.exhausted);
        assert_eq!(texts(&tape, &mut pos), (0, vec!["2".into(), "3".into()]));
    }

    #[test]
    fn lifecycle_items_are_not_counted_as_lost_lines() {
        let mut tape = Tape::new(Bounds {
            items: 2,
            bytes: 1 << 20,
        });
        let mut pos = tape.end();
        tape.push(line(1, "a"));
        tape.push(Item::Lifecycle(Arc::new(Lifecycle {
            ts_ns: 0,
            ts: String::new(),
            replica: Replica {
                number: 1,
                name: "r".into(),
            },
            event: app::protocol::LifecycleEvent::Removed,
        })));
        tape.push(line(2, "b"));
        tape.push(line(3, "c"));
        assert_eq!(texts(&tape, &mut pos), (1, vec!["b".into(), "c".into()]));
    }

    #[test]
    fn a_tape_passed_holds_nothing_and_a_reader_from_its_end_reads_what_comes_next() {
        let mut tape = Tape::new(Bounds {
            items: 10,
            bytes: 1 << 20,
        });
        tape.push(line(1, "a"));
        tape.pass(&line(2, "b"));
        assert_eq!(tape.held(), (0, 0));
        let mut pos = tape.end();
        tape.push(line(3, "c"));
        assert_eq!(texts(&tape, &mut pos), (0, vec!["c".to_owned()]));
    }
}
