//! What a resuming viewer missed of one container: its stored lines after one position and
//! up to another, the newest first. Blocks wholly inside the span that are not needed are
//! counted from their row, never decompressed, so a cursor from days ago costs a few rows.

use std::ops::ControlFlow;

use app::protocol::{LogLine, Streams};

use super::day::Which;
use super::{End, Owner, RawLine, StoreError, View};

/// One container's stretch of history, by position (nanoseconds, sequence): the lines
/// after `after`, up to and including `upto`.
#[derive(Clone, Copy, Debug)]
pub struct Stretch<'a> {
    pub engine: &'a str,
    pub project: &'a str,
    pub service: &'a str,
    /// The container's short id, as in cursors.
    pub container: &'a str,
    pub after: (i64, u32),
    pub upto: (i64, u32),
    pub streams: Streams,
}

impl Stretch<'_> {
    /// Its container's blocks.
    fn which(&self) -> Which<'_> {
        Which {
            engine: self.engine,
            project: self.project,
            service: self.service,
            container: Some(self.container),
        }
    }

    fn holds(&self, pos: (i64, u32)) -> bool {
        pos > self.after && pos <= self.upto
    }

    fn has(&self, l: &RawLine) -> bool {
        self.holds(pos(l)) && self.streams.allows(l.stream)
    }
}

/// What becomes of a stretch's lines beyond the newest asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rest {
    /// Counted: a resume is told how many lines it lost.
    Counted,
    /// Not read at all: a tail has what it asked for.
    Unread,
}

/// The newest lines of a stretch, oldest first, and how many older ones it also holds.
#[derive(Debug, Default)]
pub struct Missed {
    pub lines: Vec<LogLine>,
    pub left_out: u64,
}

impl View {
    /// The newest `keep` lines of `s`, and, if asked, the number of the others.
    pub fn missed(&self, s: &Stretch<'_>, keep: usize, rest: Rest) -> Result<Missed, StoreError> {
        let mut lines: Vec<RawLine> = Vec::new();
        let mut counted = 0u64;
        // The replica is the same in every block of a container.
        let mut owner: Option<Owner> = None;
        // Newer lines are not yet in a block.
        let gathered = self
            .pending
            .iter()
            .find(|p| p.owner.engine == s.engine && p.owner.container == s.container);
        if let Some(p) = gathered {
            lines.extend(p.writer.lines().into_iter().filter(|l| s.has(l)));
            owner = Some(p.owner.clone());
        }
        let until_ns = s.upto.0.saturating_add(1);
        // A cursor after `upto` (made up by a client) reads no day, rather than a backwards
        // range.
        for file in self.days_of(s.after.0, until_ns).rev() {
            let flow =
                file.each_service_block(&s.which(), s.after.0, until_ns, End::Newest, |stored| {
                    let b = &stored.block;
                    owner.get_or_insert_with(|| stored.owner.clone());
                    if b.lacks(s.streams) {
                        return Ok(ControlFlow::Continue(()));
                    }
                    if lines.len() >= keep {
                        let inside = s.holds(b.first) && s.holds(b.last);
                        match rest {
                            Rest::Counted if inside && s.streams == Streams::Both => {
                                counted += u64::from(b.lines);
                                return Ok(ControlFlow::Continue(()));
                            }
                            Rest::Counted => {}
                            // Blocks come newest last line first: once one ends before the
                            // newest `keep` lines held, none after it has a newer line.
                            Rest::Unread => {
                                newest_first(&mut lines, keep);
                                if lines.last().is_some_and(|l| b.last < pos(l)) {
                                    return Ok(ControlFlow::Break(()));
                                }
                            }
                        }
                    }
                    lines.extend(file.lines(b)?.into_iter().filter(|l| s.has(l)));
                    Ok(ControlFlow::Continue(()))
                })?;
            if flow.is_break() {
                break;
            }
        }
        Ok(newest(lines, keep, owner, rest, counted))
    }
}

/// The newest `keep` of `lines`, each once, as `owner`'s; the others counted with
/// `counted` if asked.
fn newest(
    mut lines: Vec<RawLine>,
    keep: usize,
    owner: Option<Owner>,
    rest: Rest,
    counted: u64,
) -> Missed {
    lines.sort_by_key(pos);
    lines.dedup_by_key(|l| pos(l));
    let excess = lines.len().saturating_sub(keep);
    lines.drain(..excess);
    let lines = match owner {
        Some(o) => lines.into_iter().map(|l| o.log_line(l)).collect(),
        None => Vec::new(),
    };
    Missed {
        lines,
        left_out: match rest {
            Rest::Counted => counted + excess as u64,
            Rest::Unread => 0,
        },
    }
}

fn pos(l: &RawLine) -> (i64, u32) {
    (l.ts.ns, l.seq)
}

/// Keeps the newest `keep` lines, newest first.
fn newest_first(lines: &mut Vec<RawLine>, keep: usize) {
    lines.sort_by_key(|l| std::cmp::Reverse(pos(l)));
    lines.truncate(keep);
}

#[cfg(test)]
mod tests {
    //! Against real SQLite files in a temporary folder.
    use std::time::Duration;

    use app::protocol::Replica;

    use super::super::day::tests::{raw, tempdir};
    use super::super::{Retention, Store};
    use super::*;

    const D2: i64 = 1_796_169_600 * 1_000_000_000;

    fn owner(container: &str) -> Owner {
        Owner {
            engine: "local".into(),
            project: "shop".into(),
            service: "web".into(),
            container: container.into(),
            replica: Replica {
                number: 1,
                name: "shop-web-1".into(),
            },
        }
    }

    fn stretch<'a>(container: &'a str, after: i64, upto: i64) -> Stretch<'a> {
        Stretch {
            engine: "local",
            project: "shop",
            service: "web",
            container,
            after: (after, 0),
            upto: (upto, 0),
            streams: Streams::Both,
        }
    }

    #[test]
    fn the_newest_lines_of_one_container_are_given_and_the_rest_counted() {
        let dir = tempdir();
        let week = Retention {
            age: Duration::from_secs(7 * 86_400),
            bytes: u64::MAX,
        };
        let mut store = Store::open(&dir, week).unwrap();
        // Three blocks of `aaa` (1-10, 11-20, 21-30), lines 31-35 still gathered, and a
        // neighbour whose lines are never given.
        for block in 0..3 {
            let lines: Vec<RawLine> = (1..=10)
                .map(|i| raw(D2 + block * 10 + i, &format!("a{}", block * 10 + i)))
                .collect();
            store.append(&owner("aaa"), &lines).unwrap();
            store.seal_for_tests("local/aaa");
        }
        let gathered: Vec<RawLine> = (31..=35).map(|i| raw(D2 + i, &format!("a{i}"))).collect();
        store.append(&owner("aaa"), &gathered).unwrap();
        store.append(&owner("bbb"), &[raw(D2 + 33, "b33")]).unwrap();

        let m = store
            .view_all()
            .missed(&stretch("aaa", D2 + 4, D2 + 33), 7, Rest::Counted)
            .unwrap();
        let texts: Vec<&str> = m.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a27", "a28", "a29", "a30", "a31", "a32", "a33"]);
        assert_eq!(m.left_out, 22, "a5 to a26 are in the stretch and not given");
        assert!(m.lines.iter().all(|l| &*l.cursor.container == "aaa"));

        let none = store
            .view_all()
            .missed(&stretch("ccc", D2, D2 + 40), 7, Rest::Counted)
            .unwrap();
        assert!(none.lines.is_empty() && none.left_out == 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stretch_that_ends_before_it_begins_gives_nothing() {
        let dir = tempdir();
        let week = Retention {
            age: Duration::from_secs(7 * 86_400),
            bytes: u64::MAX,
        };
        let mut store = Store::open(&dir, week).unwrap();
        store.append(&owner("aaa"), &[raw(D2 + 1, "a1")]).unwrap();
        // A resume cursor a client made up, days after the newest line it asks up to.
        let m = store
            .view_all()
            .missed(
                &stretch("aaa", D2 + 3 * 86_400_000_000_000, D2 + 1),
                7,
                Rest::Counted,
            )
            .unwrap();
        assert!(m.lines.is_empty() && m.left_out == 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tail_of_one_stream_takes_its_newest_lines_and_counts_nothing() {
        let dir = tempdir();
        let week = Retention {
            age: Duration::from_secs(7 * 86_400),
            bytes: u64::MAX,
        };
        let mut store = Store::open(&dir, week).unwrap();
        // Blocks of ten lines; every third line is stderr.
        for block in 0..4 {
            let lines: Vec<RawLine> = (1..=10)
                .map(|i| {
                    let n = block * 10 + i;
                    let mut l = raw(D2 + n, &format!("a{n}"));
                    if n % 3 == 0 {
                        l.stream = app::protocol::Stream::Stderr;
                    }
                    l
                })
                .collect();
            store.append(&owner("aaa"), &lines).unwrap();
            store.seal_for_tests("local/aaa");
        }
        let tail = Stretch {
            streams: Streams::Stderr,
            ..stretch("aaa", i64::MIN, D2 + 40)
        };
        let m = store.view_all().missed(&tail, 4, Rest::Unread).unwrap();
        let texts: Vec<&str> = m.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a30", "a33", "a36", "a39"]);
        assert_eq!(m.left_out, 0, "a tail counts nothing");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tail_of_one_stream_never_reads_the_blocks_without_it() {
        let dir = tempdir();
        let week = Retention {
            age: Duration::from_secs(7 * 86_400),
            bytes: u64::MAX,
        };
        let mut store = Store::open(&dir, week).unwrap();
        // An old block with two stderr lines, then nine blocks of stdout only.
        let mut first: Vec<RawLine> = (1..=10).map(|i| raw(D2 + i, &format!("a{i}"))).collect();
        for l in &mut first[4..6] {
            l.stream = app::protocol::Stream::Stderr;
        }
        store.append(&owner("aaa"), &first).unwrap();
        store.seal_for_tests("local/aaa");
        for block in 1..10 {
            let lines: Vec<RawLine> = (1..=10).map(|i| raw(D2 + block * 10 + i, "out")).collect();
            store.append(&owner("aaa"), &lines).unwrap();
            store.seal_for_tests("local/aaa");
        }
        // Spoil the data of the stdout blocks: a read of them would fail.
        let file = dir.join("2026-12-02.sqlite");
        let spoil = rusqlite::Connection::open(&file).unwrap();
        let spoiled = spoil
            .execute("UPDATE blocks SET data = x'00' WHERE stderr_lines = 0", [])
            .unwrap();
        assert_eq!(spoiled, 9);
        let tail = Stretch {
            streams: Streams::Stderr,
            ..stretch("aaa", i64::MIN, D2 + 100)
        };
        let m = store.view_all().missed(&tail, 10, Rest::Unread).unwrap();
        let texts: Vec<&str> = m.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a5", "a6"]);
        let both = Stretch {
            streams: Streams::Both,
            ..tail
        };
        assert!(
            store.view_all().missed(&both, 100, Rest::Unread).is_err(),
            "the spoiled blocks are read for both streams"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
