//! One day of history: an SQLite file (through `rusqlite`, with SQLite built in) holding the
//! blocks of lines and the lifecycle events whose time falls on that UTC day. One file a day
//! means retention drops whole files, never rows of a live one.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use app::levels::Levels;
use app::protocol::{Cursor, Health, Level, LifecycleEvent, LogLine, Replica, Streams};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::block::{self, Records, Sealed};
use super::End;
use crate::docker::frames::RawLine;

/// Why the store could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("history file {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("history file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Block(#[from] super::block::BlockError),
}

/// Whose lines: the engine's name is in every key, so that several engines need no
/// migration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    pub engine: String,
    pub project: String,
    pub service: String,
    /// The container's short id, as in cursors.
    pub container: String,
    pub replica: Replica,
}

impl Owner {
    /// A stored line as the protocol's.
    pub fn log_line(&self, raw: RawLine) -> LogLine {
        LogLine {
            cursor: Cursor {
                ts_ns: raw.ts.ns,
                seq: raw.seq,
                container: self.container.as_str().into(),
            },
            ts: raw.ts.to_rfc3339(),
            stream: raw.stream,
            replica: self.replica.clone(),
            level: raw.level,
            text: raw.text,
            truncated: raw.truncated,
        }
    }
}

/// A stored block's row: its span and size, not its data, which is read only when its
/// lines are (`DayFile::records`): a read that only counts or skips blocks stays cheap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRow {
    pub id: i64,
    pub first: (i64, u32),
    pub last: (i64, u32),
    pub lines: u32,
    /// Unknown for blocks written before the count was kept.
    pub stderr_lines: Option<u32>,
    /// The levels its lines state (`block::level_mask`); unknown for blocks written
    /// before levels were kept.
    pub levels: Option<u8>,
    pub raw_bytes: u32,
}

impl BlockRow {
    /// Whether the block surely holds no line of `streams`: it need not be read.
    pub fn lacks(&self, streams: Streams) -> bool {
        match (streams, self.stderr_lines) {
            (Streams::Both, _) | (_, None) => false,
            (Streams::Stderr, Some(e)) => e == 0,
            (Streams::Stdout, Some(e)) => e >= self.lines,
        }
    }

    /// The one level all its lines state (`None` within: they state none), when that is
    /// known from the row.
    pub fn only_level(&self) -> Option<Option<Level>> {
        self.levels.and_then(block::only_level)
    }

    /// Whether the block surely holds no line stating one of `levels`.
    pub fn lacks_levels(&self, levels: Levels) -> bool {
        self.levels
            .is_some_and(|m| m & block::level_mask(levels) == 0)
    }
}

/// A block as stored, with its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    pub owner: Owner,
    pub block: BlockRow,
}

/// Whose blocks a read wants: a service's, or one container's of it.
#[derive(Clone, Copy, Debug)]
pub struct Which<'a> {
    pub engine: &'a str,
    pub project: &'a str,
    pub service: &'a str,
    pub container: Option<&'a str>,
}

/// A lifecycle event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub owner: Owner,
    pub ts_ns: i64,
    pub event: LifecycleEvent,
}

/// What a block read back selects, in the order `visit_blocks` reads it.
const BLOCK_COLUMNS: &str = "project, service, container, replica_number, replica_name, \
     first_ns, first_seq, last_ns, last_seq, lines, raw_bytes, id, stderr_lines, levels";

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS blocks (
    id INTEGER PRIMARY KEY,
    engine TEXT NOT NULL, project TEXT NOT NULL, service TEXT NOT NULL,
    container TEXT NOT NULL, replica_number INTEGER NOT NULL, replica_name TEXT NOT NULL,
    first_ns INTEGER NOT NULL, first_seq INTEGER NOT NULL,
    last_ns INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    lines INTEGER NOT NULL, raw_bytes INTEGER NOT NULL, data BLOB NOT NULL,
    stderr_lines INTEGER, levels INTEGER
);
CREATE INDEX IF NOT EXISTS blocks_by_service ON blocks (engine, project, service, last_ns);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    engine TEXT NOT NULL, project TEXT NOT NULL, service TEXT NOT NULL,
    container TEXT NOT NULL, replica_number INTEGER NOT NULL, replica_name TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, event TEXT NOT NULL, exit_code INTEGER
);
CREATE INDEX IF NOT EXISTS events_by_service ON events (engine, project, service, ts_ns);
";

pub struct DayFile {
    path: PathBuf,
    conn: Connection,
}

impl DayFile {
    /// Opens the file, creating it and its tables if need be.
    pub fn open(path: &Path) -> Result<DayFile, StoreError> {
        let wrap = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        conn.execute_batch(SCHEMA).map_err(wrap)?;
        // Files written before blocks counted their stderr lines, or kept their levels,
        // gain the columns, empty.
        for column in ["stderr_lines", "levels"] {
            let has: bool = conn
                .query_row(
                    "SELECT count(*) FROM pragma_table_info('blocks') WHERE name = ?1",
                    [column],
                    |r| r.get(0),
                )
                .map_err(wrap)?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE blocks ADD COLUMN {column} INTEGER"))
                    .map_err(wrap)?;
            }
        }
        Ok(DayFile {
            path: path.to_owned(),
            conn,
        })
    }

    /// Opens the file for reading, as it is now: the connection holds one read transaction,
    /// so that what it reads is what the file held at this moment, while the writer goes
    /// on (SQLite's write-ahead log lets one writer and readers work at once).
    pub fn open_snapshot(path: &Path) -> Result<DayFile, StoreError> {
        let wrap = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(wrap)?;
        conn.execute_batch("PRAGMA query_only = ON; BEGIN")
            .map_err(wrap)?;
        // The transaction's view of the file is fixed by its first read.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(wrap)?;
        Ok(DayFile {
            path: path.to_owned(),
            conn,
        })
    }

    /// Makes every later write fail, as a full disk would.
    #[cfg(test)]
    pub fn refuse_writes(&self) {
        self.conn.execute_batch("PRAGMA query_only = ON").unwrap();
    }

    fn wrap(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn insert_block(&self, owner: &Owner, b: &Sealed) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO blocks (engine, project, service, container, replica_number,
                 replica_name, first_ns, first_seq, last_ns, last_seq, lines, raw_bytes, data,
                 stderr_lines, levels)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    owner.engine,
                    owner.project,
                    owner.service,
                    owner.container,
                    owner.replica.number,
                    owner.replica.name,
                    b.first.0,
                    b.first.1,
                    b.last.0,
                    b.last.1,
                    b.lines,
                    b.raw_bytes,
                    b.data,
                    b.stderr_lines,
                    b.levels,
                ])
            })
            .map(drop)
            .map_err(|e| self.wrap(e))
    }

    pub fn insert_event(
        &self,
        owner: &Owner,
        ts_ns: i64,
        event: &LifecycleEvent,
    ) -> Result<(), StoreError> {
        let (name, code) = match event {
            LifecycleEvent::Started => ("started", None),
            LifecycleEvent::Exited { exit_code } => ("exited", *exit_code),
            LifecycleEvent::Removed => ("removed", None),
            LifecycleEvent::Health { health } => (
                match health {
                    Health::Healthy => "healthy",
                    Health::Starting => "starting",
                    Health::Unhealthy => "unhealthy",
                },
                None,
            ),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO events (engine, project, service, container, replica_number,
                 replica_name, ts_ns, event, exit_code)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    owner.engine,
                    owner.project,
                    owner.service,
                    owner.container,
                    owner.replica.number,
                    owner.replica.name,
                    ts_ns,
                    name,
                    code,
                ])
            })
            .map(drop)
            .map_err(|e| self.wrap(e))
    }

    /// A service's blocks (of one container, if `which` names one) with lines in
    /// `[since, until)`, handed to `visit` one at a time from `end`: by newest line, newest
    /// first (`Newest`), or by oldest line, oldest first (`Oldest`), until it says to stop.
    pub fn each_service_block(
        &self,
        which: &Which<'_>,
        since_ns: i64,
        until_ns: i64,
        end: End,
        visit: impl FnMut(StoredBlock) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<ControlFlow<()>, StoreError> {
        let order = match end {
            End::Newest => "last_ns DESC, id DESC",
            End::Oldest => "first_ns, id",
        };
        let sql = format!(
            "SELECT {BLOCK_COLUMNS} FROM blocks WHERE engine = ?1 AND project = ?2
             AND service = ?3 AND last_ns >= ?4 AND first_ns < ?5
             AND (?6 IS NULL OR container = ?6) ORDER BY {order}"
        );
        let Which {
            engine,
            project,
            service,
            container,
        } = *which;
        let params = params![engine, project, service, since_ns, until_ns, container];
        self.visit_blocks(&sql, params, engine, visit)
    }

    /// A stored block's records, read from the file and decompressed.
    pub fn records(&self, b: &BlockRow) -> Result<Records, StoreError> {
        let data = self.data(b)?;
        Ok(Records::decompress(&data, b.raw_bytes)?)
    }

    /// A stored block's lines.
    pub fn lines(&self, b: &BlockRow) -> Result<Vec<RawLine>, StoreError> {
        let data = self.data(b)?;
        Ok(block::read(&data, b.raw_bytes)?)
    }

    fn data(&self, b: &BlockRow) -> Result<Vec<u8>, StoreError> {
        self.conn
            .prepare_cached("SELECT data FROM blocks WHERE id = ?1")
            .and_then(|mut q| q.query_row(params![b.id], |r| r.get(0)))
            .map_err(|e| self.wrap(e))
    }

    /// Every block of `engine` with lines in `[since, until)`, the newest last line first,
    /// handed to `visit` one at a time until it says to stop: a search reads a day without
    /// holding it all.
    pub fn each_block_newest_first(
        &self,
        engine: &str,
        since_ns: i64,
        until_ns: i64,
        visit: impl FnMut(StoredBlock) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<ControlFlow<()>, StoreError> {
        let sql = format!(
            "SELECT {BLOCK_COLUMNS} FROM blocks WHERE engine = ?1 AND last_ns >= ?2
             AND first_ns < ?3 ORDER BY last_ns DESC, id DESC"
        );
        self.visit_blocks(&sql, params![engine, since_ns, until_ns], engine, visit)
    }

    /// Runs `sql` (selecting `BLOCK_COLUMNS`) and hands each block to `visit` until it
    /// says to stop.
    fn visit_blocks(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        engine: &str,
        mut visit: impl FnMut(StoredBlock) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<ControlFlow<()>, StoreError> {
        let mut query = self.conn.prepare_cached(sql).map_err(|e| self.wrap(e))?;
        let mut rows = query.query(params).map_err(|e| self.wrap(e))?;
        while let Some(r) = rows.next().map_err(|e| self.wrap(e))? {
            let block = (|| {
                Ok(StoredBlock {
                    owner: Owner {
                        engine: engine.to_owned(),
                        project: r.get(0)?,
                        service: r.get(1)?,
                        container: r.get(2)?,
                        replica: Replica {
                            number: r.get(3)?,
                            name: r.get(4)?,
                        },
                    },
                    block: BlockRow {
                        first: (r.get(5)?, r.get(6)?),
                        last: (r.get(7)?, r.get(8)?),
                        lines: r.get(9)?,
                        raw_bytes: r.get(10)?,
                        id: r.get(11)?,
                        stderr_lines: r.get(12)?,
                        levels: r.get(13)?,
                    },
                })
            })()
            .map_err(|e| self.wrap(e))?;
            if visit(block)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The services of `engine` this day holds lines or events of.
    pub fn services(&self, engine: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT project, service FROM blocks WHERE engine = ?1
                 UNION SELECT DISTINCT project, service FROM events WHERE engine = ?1",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = query
            .query_map(params![engine], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.wrap(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.wrap(e))
    }

    /// The newest position stored for a container, if any: where a restart goes on from.
    pub fn last_position(
        &self,
        engine: &str,
        container: &str,
    ) -> Result<Option<(i64, u32)>, StoreError> {
        self.conn
            .query_row(
                "SELECT last_ns, last_seq FROM blocks WHERE engine = ?1 AND container = ?2
                 ORDER BY last_ns DESC, last_seq DESC LIMIT 1",
                params![engine, container],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.wrap(e))
    }

    /// The positions of a container's lines stored in blocks that end at or after
    /// `since_ns`: what is known of its newest lines when Lookout starts again.
    pub fn positions_since(
        &self,
        engine: &str,
        container: &str,
        since_ns: i64,
    ) -> Result<Vec<(i64, u32)>, StoreError> {
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT data, raw_bytes FROM blocks WHERE engine = ?1 AND container = ?2
                 AND last_ns >= ?3",
            )
            .map_err(|e| self.wrap(e))?;
        let mut rows = query
            .query(params![engine, container, since_ns])
            .map_err(|e| self.wrap(e))?;
        let mut positions = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.wrap(e))? {
            let data: Vec<u8> = r.get(0).map_err(|e| self.wrap(e))?;
            let raw_bytes: u32 = r.get(1).map_err(|e| self.wrap(e))?;
            // A block that cannot be read must not stop the container's history: its lines
            // are then not known as stored, and may be stored again.
            match Records::decompress(&data, raw_bytes) {
                Ok(records) => positions.extend(records.iter().map(|l| (l.ts_ns, l.seq))),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), container, "a stored block cannot be read: {e}")
                }
            }
        }
        Ok(positions)
    }

    /// A service's events in `[since, until)`, in time order.
    pub fn events(
        &self,
        engine: &str,
        project: &str,
        service: &str,
        since_ns: i64,
        until_ns: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT container, replica_number, replica_name, ts_ns, event, exit_code
                 FROM events WHERE engine = ?1 AND project = ?2 AND service = ?3
                 AND ts_ns >= ?4 AND ts_ns < ?5 ORDER BY ts_ns, id",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = query
            .query_map(params![engine, project, service, since_ns, until_ns], |r| {
                let event: String = r.get(4)?;
                let event = match event.as_str() {
                    "started" => LifecycleEvent::Started,
                    "exited" => LifecycleEvent::Exited {
                        exit_code: r.get(5)?,
                    },
                    "healthy" => LifecycleEvent::Health {
                        health: Health::Healthy,
                    },
                    "starting" => LifecycleEvent::Health {
                        health: Health::Starting,
                    },
                    "unhealthy" => LifecycleEvent::Health {
                        health: Health::Unhealthy,
                    },
                    _ => LifecycleEvent::Removed,
                };
                Ok(StoredEvent {
                    owner: Owner {
                        engine: engine.to_owned(),
                        project: project.to_owned(),
                        service: service.to_owned(),
                        container: r.get(0)?,
                        replica: Replica {
                            number: r.get(1)?,
                            name: r.get(2)?,
                        },
                    },
                    ts_ns: r.get(3)?,
                    event,
                })
            })
            .map_err(|e| self.wrap(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.wrap(e))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Against real SQLite files in a temporary folder.
    use super::*;
    use crate::clock::Timestamp;
    use crate::docker::frames::RawLine;
    use crate::store::block::BlockWriter;
    use app::protocol::{Level, Stream};

    pub fn raw(ts_ns: i64, text: &str) -> RawLine {
        RawLine {
            ts: Timestamp { ns: ts_ns },
            seq: 0,
            stream: Stream::Stdout,
            text: text.into(),
            truncated: false,
            level: None,
        }
    }

    fn owner(service: &str) -> Owner {
        Owner {
            engine: "local".into(),
            project: "shop".into(),
            service: service.into(),
            container: "abc123abc123".into(),
            replica: Replica {
                number: 1,
                name: format!("shop-{service}-1"),
            },
        }
    }

    fn sealed(times: &[i64]) -> Sealed {
        let mut w = BlockWriter::default();
        for t in times {
            w.push(&raw(*t, &format!("line at {t}")));
        }
        w.seal().unwrap()
    }

    #[test]
    fn every_kind_of_lifecycle_event_reads_back_as_it_was_kept() {
        let dir = tempdir();
        let day = DayFile::open(&dir.join("2026-12-02.sqlite")).unwrap();
        let kept = [
            LifecycleEvent::Started,
            LifecycleEvent::Exited { exit_code: Some(3) },
            LifecycleEvent::Exited { exit_code: None },
            LifecycleEvent::Health {
                health: Health::Starting,
            },
            LifecycleEvent::Health {
                health: Health::Healthy,
            },
            LifecycleEvent::Health {
                health: Health::Unhealthy,
            },
            LifecycleEvent::Removed,
        ];
        for (ts, e) in kept.iter().enumerate() {
            day.insert_event(&owner("web"), ts as i64, e).unwrap();
        }
        let read: Vec<LifecycleEvent> = day
            .events("local", "shop", "web", 0, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(read, kept);
    }

    #[test]
    fn blocks_and_events_read_back_by_service_and_span_across_a_reopen() {
        let dir = tempdir();
        let path = dir.join("2026-12-02.sqlite");
        {
            let day = DayFile::open(&path).unwrap();
            day.insert_block(&owner("web"), &sealed(&[10, 20])).unwrap();
            day.insert_block(&owner("web"), &sealed(&[30, 40])).unwrap();
            day.insert_block(&owner("db"), &sealed(&[15])).unwrap();
            day.insert_event(
                &owner("web"),
                25,
                &LifecycleEvent::Exited {
                    exit_code: Some(137),
                },
            )
            .unwrap();
        }
        let day = DayFile::open(&path).unwrap();
        let blocks = |since, until| {
            let mut all = Vec::new();
            let web = Which {
                engine: "local",
                project: "shop",
                service: "web",
                container: None,
            };
            let flow = day.each_service_block(&web, since, until, End::Oldest, |b| {
                all.push(b);
                Ok(ControlFlow::Continue(()))
            });
            assert!(flow.unwrap().is_continue());
            all
        };
        let web = blocks(25, 100);
        assert_eq!(web.len(), 1, "the block ending at 20 is before the span");
        let lines = day.lines(&web[0].block).unwrap();
        assert_eq!(lines[0].text, "line at 30");
        assert_eq!(blocks(0, 100).len(), 2);
        let events = day.events("local", "shop", "web", 0, 100).unwrap();
        assert_eq!(
            events[0].event,
            LifecycleEvent::Exited {
                exit_code: Some(137)
            }
        );
        assert_eq!(
            day.last_position("local", "abc123abc123").unwrap(),
            Some((40, 0))
        );
        assert_eq!(day.last_position("other", "abc123abc123").unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A day file as it was before `column` was kept: one block, written then, in it;
    /// opened again as today's code opens it.
    fn a_file_without(dir: &Path, column: &str) -> DayFile {
        let path = dir.join("2026-12-02.sqlite");
        {
            let day = DayFile::open(&path).unwrap();
            day.insert_block(&owner("web"), &sealed(&[10, 20])).unwrap();
            day.conn
                .execute_batch(&format!("ALTER TABLE blocks DROP COLUMN {column}"))
                .unwrap();
        }
        DayFile::open(&path).unwrap()
    }

    /// The rows of the `web` service's blocks, oldest first.
    fn web_rows(day: &DayFile) -> Vec<BlockRow> {
        let web = Which {
            engine: "local",
            project: "shop",
            service: "web",
            container: None,
        };
        let mut rows = Vec::new();
        let flow = day.each_service_block(&web, 0, 100, End::Oldest, |b| {
            rows.push(b.block);
            Ok(ControlFlow::Continue(()))
        });
        assert!(flow.unwrap().is_continue());
        rows
    }

    #[test]
    fn a_file_from_before_stderr_was_counted_is_read_and_counts_new_blocks() {
        let dir = tempdir();
        let day = a_file_without(&dir, "stderr_lines");
        let mut err = raw(40, "on stderr");
        err.stream = app::protocol::Stream::Stderr;
        let mut w = BlockWriter::default();
        w.push(&raw(30, "on stdout"));
        w.push(&err);
        day.insert_block(&owner("web"), &w.seal().unwrap()).unwrap();
        let counts: Vec<_> = web_rows(&day).iter().map(|b| b.stderr_lines).collect();
        assert_eq!(counts, [None, Some(1)]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_block_knows_its_levels_and_one_from_before_may_hold_any() {
        let dir = tempdir();
        let day = a_file_without(&dir, "levels");
        let mut w = BlockWriter::default();
        for (ts, level) in [
            (30, Some(Level::Warn)),
            (31, None),
            (32, Some(Level::Error)),
        ] {
            let mut l = raw(ts, "x");
            l.level = level;
            w.push(&l);
        }
        day.insert_block(&owner("web"), &w.seal().unwrap()).unwrap();
        let rows = web_rows(&day);
        let lacks = |row: &BlockRow, levels: &str| row.lacks_levels(levels.parse().unwrap());
        assert!(
            !lacks(&rows[0], "fatal"),
            "a block from before may hold any level"
        );
        assert!(!lacks(&rows[1], "warn"));
        assert!(!lacks(&rows[1], ">=error"));
        assert!(lacks(&rows[1], "fatal"));
        assert!(lacks(&rows[1], "trace,debug,info"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_an_error_naming_it() {
        let dir = tempdir();
        let path = dir.join("2026-12-01.sqlite");
        std::fs::write(
            &path,
            b"this is not a database, and it is long enough to tell",
        )
        .unwrap();
        let e = DayFile::open(&path).err().expect("refused");
        assert!(e.to_string().contains("2026-12-01.sqlite"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    pub fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lookout-store-{}-{}",
            std::process::id(),
            crate::clock::now_ns()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
