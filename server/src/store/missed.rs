//! What a resuming viewer missed of one container: its stored lines after one position and
//! up to another, the newest first. Blocks wholly inside the span that are not needed are
//! counted from their row, never decompressed, so a cursor from days ago costs a few rows.

use std::ops::ControlFlow;

use app::protocol::LogLine;

use super::{block, day_of, End, Owner, RawLine, Store, StoreError};

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
}

impl Stretch<'_> {
    fn holds(&self, pos: (i64, u32)) -> bool {
        pos > self.after && pos <= self.upto
    }
}

/// The newest lines of a stretch, oldest first, and how many older ones it also holds.
#[derive(Debug, Default)]
pub struct Missed {
    pub lines: Vec<LogLine>,
    pub left_out: u64,
}

impl Store {
    /// The newest `keep` lines of `s`, and the number of the others.
    pub fn missed(&self, s: &Stretch<'_>, keep: usize) -> Result<Missed, StoreError> {
        let mut lines: Vec<RawLine> = Vec::new();
        let mut counted = 0u64;
        // The replica is the same in every block of a container.
        let mut owner: Option<Owner> = None;
        // Newer lines are not yet in a block.
        if let Some(p) = self.pending.get(&format!("{}/{}", s.engine, s.container)) {
            lines.extend(p.writer.lines().into_iter().filter(|l| s.holds(pos(l))));
            owner = Some(p.owner.clone());
        }
        let until_ns = s.upto.0.saturating_add(1);
        let days = self.days.range(day_of(s.after.0)..=day_of(s.upto.0)).rev();
        for (_, file) in days {
            let mut failed = None;
            // Every block of the span is read or counted: none is left unvisited.
            let _ = file.each_service_block(
                s.engine,
                s.project,
                s.service,
                s.after.0,
                until_ns,
                End::Newest,
                |stored| {
                    if stored.owner.container != s.container {
                        return ControlFlow::Continue(());
                    }
                    let b = &stored.block;
                    owner.get_or_insert_with(|| stored.owner.clone());
                    let inside = s.holds(b.first) && s.holds(b.last);
                    if inside && lines.len() >= keep {
                        counted += u64::from(b.lines);
                        return ControlFlow::Continue(());
                    }
                    match block::read(&b.data, b.raw_bytes) {
                        Ok(read) => {
                            lines.extend(read.into_iter().filter(|l| s.holds(pos(l))));
                            ControlFlow::Continue(())
                        }
                        Err(e) => {
                            failed = Some(e);
                            ControlFlow::Break(())
                        }
                    }
                },
            )?;
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        lines.sort_by_key(pos);
        lines.dedup_by_key(|l| pos(l));
        let excess = lines.len().saturating_sub(keep);
        lines.drain(..excess);
        let lines = match owner {
            Some(o) => lines.into_iter().map(|l| o.log_line(l)).collect(),
            None => Vec::new(),
        };
        Ok(Missed {
            lines,
            left_out: counted + excess as u64,
        })
    }
}

fn pos(l: &RawLine) -> (i64, u32) {
    (l.ts.ns, l.seq)
}

#[cfg(test)]
mod tests {
    //! Against real SQLite files in a temporary folder.
    use std::time::Duration;

    use app::protocol::Replica;

    use super::super::day::tests::{raw, tempdir};
    use super::super::Retention;
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

        let m = store.missed(&stretch("aaa", D2 + 4, D2 + 33), 7).unwrap();
        let texts: Vec<&str> = m.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a27", "a28", "a29", "a30", "a31", "a32", "a33"]);
        assert_eq!(m.left_out, 22, "a5 to a26 are in the stretch and not given");
        assert!(m.lines.iter().all(|l| l.cursor.container == "aaa"));

        let none = store.missed(&stretch("ccc", D2, D2 + 40), 7).unwrap();
        assert!(none.lines.is_empty() && none.left_out == 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
