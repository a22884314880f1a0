//! History on disk (issue 10): every line Lookout reads, kept for days in compressed blocks,
//! so that logs outlive their containers. Built room by room:
//!
//! - `block`: consecutive lines of one container, one zstd blob;
//! - `day`: one UTC day of blocks and lifecycle events, one SQLite file;
//! - here, `Store`: lines gathered per container into blocks, written to the file of their
//!   day, read back by service and span, and old days dropped whole (`--retention`,
//!   `--retention-size`);
//! - `view`: the store at one moment, read (by service and span, or scanned newest first)
//!   while the writer goes on;
//! - `missed`: one container's lines between two positions, for a resuming viewer.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::protocol::LifecycleEvent;

use time::{Date, OffsetDateTime};

pub mod block;
pub mod day;
pub mod missed;
pub mod view;

use block::BlockWriter;
use day::DayFile;
pub use day::{Owner, StoreError, StoredBlock, StoredEvent};
pub use view::{End, Scanned, ServiceSpan, View};

use crate::docker::frames::RawLine;
use crate::seen::{Seen, JITTER_NS};

/// How long history is kept: days, and bytes on disk; whichever is reached first.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub age: Duration,
    pub bytes: u64,
}

/// The UTC day `ts_ns` falls on.
fn day_of(ts_ns: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(ts_ns.div_euclid(1_000_000_000))
        .map_or(OffsetDateTime::UNIX_EPOCH.date(), |t| t.date())
}

fn file_name(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}.sqlite",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// `YYYY-MM-DD.sqlite` back to its day; other files are not the store's.
fn parse_file_name(name: &str) -> Option<Date> {
    let mut parts = name.strip_suffix(".sqlite")?.splitn(3, '-');
    let year = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, month.try_into().ok()?, day).ok()
}

/// Lines of one container being gathered, and whose they are.
struct Pending {
    owner: Owner,
    /// Shared with the views taken while it gathers; copied only if one still reads it
    /// when a line is added.
    writer: Arc<BlockWriter>,
    day: Date,
    /// When its first line came: a quiet container's block is written after a while.
    opened: Instant,
}

/// The first and last position of some lines of one container.
type Span = ((i64, u32), (i64, u32));

/// What is known of one container's stored lines, and when it last wrote.
struct Known {
    seen: Seen,
    used: Instant,
}

impl Known {
    fn new(seen: Seen) -> Known {
        Known {
            seen,
            used: Instant::now(),
        }
    }
}

pub struct Store {
    dir: PathBuf,
    retention: Retention,
    days: BTreeMap<Date, DayFile>,
    pending: HashMap<String, Pending>,
    /// Per container, the lines stored (or being gathered) by position: a re-read of the
    /// engine never repeats a line, and a line stamped before one stored is still kept.
    /// A container not written to for a while is let go (`forget_idle`), and known again
    /// from its stored lines if it writes again: the map holds only the busy ones.
    seen: HashMap<String, Known>,
    /// Per container, the span of the lines whose block could not be written (a full or
    /// failing disk): history lacks them, so a read across the span goes to the engine.
    lost: HashMap<String, Span>,
}

impl Store {
    /// Opens the store in `dir` (made if missing). A day file that cannot be read fails
    /// the opening, naming the file: history is not silently lost.
    pub fn open(dir: &Path, retention: Retention) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut days = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(day) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_file_name)
            else {
                continue;
            };
            days.insert(day, DayFile::open(&path)?);
        }
        Ok(Store {
            dir: dir.to_owned(),
            retention,
            days,
            pending: HashMap::new(),
            seen: HashMap::new(),
            lost: HashMap::new(),
        })
    }

    fn day_file(&mut self, day: Date) -> Result<&DayFile, StoreError> {
        if !self.days.contains_key(&day) {
            let file = DayFile::open(&self.dir.join(file_name(day)))?;
            self.days.insert(day, file);
        }
        Ok(&self.days[&day])
    }

    /// The newest position stored for a container: where reading it again goes on from.
    pub fn last_position(
        &mut self,
        engine: &str,
        container: &str,
    ) -> Result<Option<(i64, u32)>, StoreError> {
        let key = format!("{engine}/{container}");
        if let Some(known) = self.seen.get(&key) {
            return Ok(known.seen.newest());
        }
        for file in self.days.values().rev() {
            if let Some(p) = file.last_position(engine, container)? {
                // The window may begin on the day before (just after midnight UTC).
                let from = p.0.saturating_sub(JITTER_NS);
                let mut near = Vec::new();
                for f in self.days.range(day_of(from)..=day_of(p.0)).map(|(_, f)| f) {
                    near.extend(f.positions_since(engine, container, from)?);
                }
                self.seen
                    .insert(key, Known::new(Seen::from_positions(near)));
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// Adds a container's lines, in order; those stored before are skipped (`Seen`). A
    /// block is written when it is full or its day ends; `flush` writes what is gathered.
    pub fn append(&mut self, owner: &Owner, lines: &[RawLine]) -> Result<(), StoreError> {
        self.last_position(&owner.engine, &owner.container)?;
        let key = format!("{}/{}", owner.engine, owner.container);
        let known = self
            .seen
            .entry(key.clone())
            .or_insert_with(|| Known::new(Seen::default()));
        known.used = Instant::now();
        let seen = &mut known.seen;
        let fresh: Vec<&RawLine> = lines
            .iter()
            .filter(|l| seen.take((l.ts.ns, l.seq)))
            .collect();
        for line in fresh {
            let day = day_of(line.ts.ns);
            let starts_new_day = self.pending.get(&key).is_some_and(|p| p.day != day);
            if starts_new_day {
                self.seal(&key)?;
            }
            let pending = self.pending.entry(key.clone()).or_insert_with(|| Pending {
                owner: owner.clone(),
                writer: Arc::default(),
                day,
                opened: Instant::now(),
            });
            if Arc::make_mut(&mut pending.writer).push(line) {
                self.seal(&key)?;
            }
        }
        Ok(())
    }

    /// Writes the block being gathered for one `engine/container`.
    #[cfg(test)]
    pub fn seal_for_tests(&mut self, key: &str) {
        self.seal(key).unwrap();
    }

    /// Writes every block being gathered.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let keys: Vec<String> = self.pending.keys().cloned().collect();
        for key in keys {
            self.seal(&key)?;
        }
        Ok(())
    }

    /// Writes the blocks being gathered of one engine's containers: builds, whose lines no
    /// engine could give again after a crash.
    pub fn flush_engine(&mut self, engine: &str) -> Result<(), StoreError> {
        let prefix = format!("{engine}/");
        let keys: Vec<String> = self
            .pending
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for key in keys {
            self.seal(&key)?;
        }
        Ok(())
    }

    /// Writes the blocks that have been gathering for longer than `age`.
    pub fn flush_older_than(&mut self, age: Duration) -> Result<(), StoreError> {
        let old: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.opened.elapsed() >= age)
            .map(|(k, _)| k.clone())
            .collect();
        for key in old {
            self.seal(&key)?;
        }
        Ok(())
    }

    /// Lets go of what is known of containers that have not written for `idle` and have no
    /// lines being gathered: removed ones, and quiet ones (known again from their stored
    /// lines when they write).
    pub fn forget_idle(&mut self, idle: Duration) {
        let pending = &self.pending;
        self.seen
            .retain(|key, k| pending.contains_key(key) || k.used.elapsed() < idle);
    }

    /// The containers whose stored lines are known.
    #[cfg(test)]
    pub fn known(&self) -> usize {
        self.seen.len()
    }

    /// Keeps a change in a container's life, in the file of its day.
    pub fn event(
        &mut self,
        owner: &Owner,
        ts_ns: i64,
        event: &LifecycleEvent,
    ) -> Result<(), StoreError> {
        self.day_file(day_of(ts_ns))?
            .insert_event(owner, ts_ns, event)
    }

    fn seal(&mut self, container: &str) -> Result<(), StoreError> {
        let Some(pending) = self.pending.remove(container) else {
            return Ok(());
        };
        let Some(sealed) = pending.writer.seal() else {
            return Ok(());
        };
        let written = self
            .day_file(pending.day)
            .and_then(|file| file.insert_block(&pending.owner, &sealed));
        if written.is_err() {
            let (first, last) = (sealed.first, sealed.last);
            self.lost
                .entry(container.to_owned())
                .and_modify(|(f, l)| (*f, *l) = ((*f).min(first), (*l).max(last)))
                .or_insert((first, last));
        }
        written
    }

    /// Whether history holds every line of a container after `after` up to `upto`: it
    /// has stored lines that far, and none of them was lost to a failed write.
    pub fn holds_all(
        &mut self,
        engine: &str,
        container: &str,
        after: (i64, u32),
        upto: (i64, u32),
    ) -> Result<bool, StoreError> {
        let reached = self.last_position(engine, container)?;
        let lost = self.lost.get(&format!("{engine}/{container}"));
        let lost_inside = lost.is_some_and(|&(first, last)| last > after && first <= upto);
        Ok(reached.is_some_and(|p| p >= upto) && !lost_inside)
    }

    /// The store as it is now, for reading while the writer goes on: the days' files, each
    /// through a connection of its own, and the lines of the containers `wants` still being
    /// gathered.
    pub fn view(&self, wants: impl Fn(&Owner) -> bool) -> Result<View, StoreError> {
        let mut days = BTreeMap::new();
        for &day in self.days.keys() {
            days.insert(day, DayFile::open_snapshot(&self.dir.join(file_name(day)))?);
        }
        let pending = self
            .pending
            .values()
            .filter(|p| wants(&p.owner))
            .map(|p| view::Gathered {
                owner: p.owner.clone(),
                writer: p.writer.clone(),
            })
            .collect();
        Ok(View { days, pending })
    }

    /// The whole store as it is now, for tools and tests; panics if a file cannot be read.
    pub fn view_all(&self) -> View {
        self.view(|_| true).expect("the store's files can be read")
    }

    /// Drops the days older than the retention, then the oldest days while the store is
    /// larger than its bound; today's file is never dropped. Returns the days dropped.
    pub fn sweep(&mut self, now_ns: i64) -> Result<Vec<Date>, StoreError> {
        let age = i64::try_from(self.retention.age.as_nanos()).unwrap_or(i64::MAX);
        let oldest_kept = day_of(now_ns.saturating_sub(age));
        let today = day_of(now_ns);
        let mut dropped = Vec::new();
        while let Some((&day, _)) = self.days.first_key_value() {
            let too_old = day < oldest_kept;
            let too_big = day < today && self.bytes()? > self.retention.bytes;
            if !too_old && !too_big {
                break;
            }
            self.drop_day(day)?;
            dropped.push(day);
        }
        Ok(dropped)
    }

    /// The bytes the store's files take on disk (with SQLite's journal files).
    pub fn bytes(&self) -> Result<u64, StoreError> {
        let io = |source| StoreError::Io {
            path: self.dir.clone(),
            source,
        };
        let mut total = 0;
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let meta = entry.map_err(io)?.metadata().map_err(io)?;
            if meta.is_file() {
                total += meta.len();
            }
        }
        Ok(total)
    }

    fn drop_day(&mut self, day: Date) -> Result<(), StoreError> {
        self.days.remove(&day);
        self.pending.retain(|_, p| p.day != day);
        let base = self.dir.join(file_name(day));
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", base.display()));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Io { path, source }),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Against real SQLite files in a temporary folder.
    use super::*;
    use app::protocol::Replica;
    use day::tests::{raw, tempdir};

    const DAY: i64 = 86_400 * 1_000_000_000;
    /// 2026-12-02T00:00:00Z.
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

    fn week() -> Retention {
        Retention {
            age: Duration::from_secs(7 * 86_400),
            bytes: u64::MAX,
        }
    }

    fn web_span(service: &str, since_ns: i64, until_ns: i64) -> ServiceSpan<'_> {
        ServiceSpan {
            engine: "local",
            project: "shop",
            service,
            since_ns,
            until_ns,
            levels: None,
        }
    }

    fn texts(lines: &[(Owner, RawLine)]) -> Vec<&str> {
        lines.iter().map(|(_, l)| l.text.as_str()).collect()
    }

    #[test]
    fn lines_read_again_after_a_reopen_across_midnight_are_stored_once() {
        let dir = tempdir();
        // Two lines just before midnight UTC, two just after, one stamped late.
        let lines = [
            raw(D2 - 500_000_000, "a"),
            raw(D2 - 1, "b"),
            raw(D2 + 300_000_000, "c"),
            raw(D2 + 200_000_000, "late"),
        ];
        {
            let mut store = Store::open(&dir, week()).unwrap();
            store.append(&owner("aaa"), &lines).unwrap();
            store.flush().unwrap();
        }
        let mut store = Store::open(&dir, week()).unwrap();
        // After a restart, the engine is read again from 2 s before the newest line.
        let mut again = lines.to_vec();
        again.push(raw(D2 + 400_000_000, "d"));
        store.append(&owner("aaa"), &again).unwrap();
        store.flush().unwrap();
        let all = store
            .view_all()
            .lines(&web_span("web", 0, i64::MAX), 100, End::Oldest)
            .unwrap();
        assert_eq!(texts(&all), ["a", "b", "late", "c", "d"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn containers_gone_quiet_are_let_go_and_repeat_nothing_when_read_again() {
        let dir = tempdir();
        let mut store = Store::open(&dir, week()).unwrap();
        let first = [raw(D2 + 1, "a"), raw(D2 + 2, "b")];
        store.append(&owner("aaa"), &first).unwrap();
        store.flush().unwrap();
        store
            .append(&owner("bbb"), &[raw(D2 + 3, "gathered")])
            .unwrap();
        store.forget_idle(Duration::ZERO);
        assert_eq!(
            store.known(),
            1,
            "only the container with lines being gathered"
        );
        // The quiet container writes again, read from 2 s back as after a reconnect.
        let again = [raw(D2 + 1, "a"), raw(D2 + 2, "b"), raw(D2 + 4, "c")];
        store.append(&owner("aaa"), &again).unwrap();
        store.flush().unwrap();
        let all = store
            .view_all()
            .lines(&web_span("web", 0, i64::MAX), 100, End::Oldest)
            .unwrap();
        assert_eq!(texts(&all), ["a", "b", "gathered", "c"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lines_lost_to_a_failed_write_are_known_as_not_held() {
        let dir = tempdir();
        let mut store = Store::open(&dir, week()).unwrap();
        let numbered = |from: i64| -> Vec<RawLine> {
            (from..from + 10)
                .map(|i| raw(D2 + i, &i.to_string()))
                .collect()
        };
        store.append(&owner("aaa"), &numbered(1)).unwrap();
        store.flush().unwrap();
        store.days[&day_of(D2)].refuse_writes();
        store.append(&owner("aaa"), &numbered(11)).unwrap();
        assert!(store.flush().is_err(), "the write failed");
        let holds = |store: &mut Store, after: i64, upto: i64| {
            store
                .holds_all("local", "aaa", (D2 + after, 0), (D2 + upto, 0))
                .unwrap()
        };
        assert!(holds(&mut store, 0, 10), "the lines written before");
        assert!(!holds(&mut store, 5, 15), "a span across the lost lines");
        assert!(!holds(&mut store, 15, 25), "lines not yet read");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lines_of_replicas_read_back_merged_in_time_order_after_a_reopen() {
        let dir = tempdir();
        {
            let mut store = Store::open(&dir, week()).unwrap();
            store
                .append(&owner("aaa"), &[raw(D2 + 1, "a1"), raw(D2 + 3, "a3")])
                .unwrap();
            store.append(&owner("bbb"), &[raw(D2 + 2, "b2")]).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(&dir, week()).unwrap();
        let all = store
            .view_all()
            .lines(&web_span("web", 0, i64::MAX), 100, End::Oldest)
            .unwrap();
        assert_eq!(texts(&all), ["a1", "b2", "a3"]);
        let span = store
            .view_all()
            .lines(&web_span("web", D2 + 2, D2 + 3), 100, End::Oldest)
            .unwrap();
        assert_eq!(texts(&span), ["b2"]);
        let first = store
            .view_all()
            .lines(&web_span("web", 0, i64::MAX), 2, End::Oldest)
            .unwrap();
        assert_eq!(texts(&first), ["a1", "b2"]);
        assert!(store
            .view_all()
            .lines(&web_span("db", 0, i64::MAX), 100, End::Oldest)
            .unwrap()
            .is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lines_go_to_the_file_of_their_day_and_old_days_are_dropped_whole() {
        let dir = tempdir();
        let mut store = Store::open(&dir, week()).unwrap();
        for d in 0..10 {
            store
                .append(&owner("aaa"), &[raw(D2 + d * DAY, &format!("day {d}"))])
                .unwrap();
        }
        store.flush().unwrap();
        assert!(dir.join("2026-12-02.sqlite").exists());
        assert!(dir.join("2026-12-11.sqlite").exists());
        let dropped = store.sweep(D2 + 9 * DAY + 1).unwrap();
        assert_eq!(
            dropped.len(),
            2,
            "days 0 and 1 are more than 7 days old: {dropped:?}"
        );
        assert!(!dir.join("2026-12-02.sqlite").exists());
        let left = store
            .view_all()
            .lines(&web_span("web", 0, i64::MAX), 100, End::Oldest)
            .unwrap();
        assert_eq!(left.len(), 8);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_size_bound_drops_the_oldest_days_but_never_today() {
        let dir = tempdir();
        let mut store = Store::open(&dir, week()).unwrap();
        for d in 0..3 {
            store
                .append(&owner("aaa"), &[raw(D2 + d * DAY, "x")])
                .unwrap();
        }
        store.flush().unwrap();
        store.retention.bytes = 1;
        let dropped = store.sweep(D2 + 2 * DAY + 1).unwrap();
        assert_eq!(dropped.len(), 2);
        assert!(dir.join("2026-12-04.sqlite").exists(), "today stays");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_day_file_that_cannot_be_read_fails_the_opening_and_names_it() {
        let dir = tempdir();
        std::fs::write(dir.join("2026-12-01.sqlite"), vec![7u8; 4096]).unwrap();
        std::fs::write(dir.join("notes.txt"), b"not the store's").unwrap();
        let e = Store::open(&dir, week()).err().expect("refused");
        assert!(e.to_string().contains("2026-12-01.sqlite"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
