//! History while Lookout runs: the followers hand every line and lifecycle change they read
//! to one writer thread that owns the disk, and the routes read the store on blocking
//! threads. The followers wait when the writer is behind (the engine keeps the log
//! meanwhile), so history loses nothing to a slow disk; a failing disk is counted and
//! reported, and live streaming goes on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use app::protocol::{ContainerInfo, HistoryStatus, LifecycleEvent, ServiceKey, Streams};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::clock::now_ns;
use crate::docker::frames::RawLine;
use crate::docker::logs::short_id;
use crate::docker::past::Gap;
use crate::store::missed::{Missed, Rest, Stretch};
use crate::store::{Owner, Retention, Store, StoreError};

/// What a line costs in the queue besides its text.
const LINE_OVERHEAD: usize = 64;

/// The queue's room in permits: bytes, as many as a semaphore holds (and a batch asks).
fn room_for(bytes: u64) -> usize {
    usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize))
}

/// The only engine today; its name is in every stored key so that more need no migration.
pub const LOCAL_ENGINE: &str = "local";

/// A quiet container's lines are written as a block after this long.
const BLOCK_AGE: Duration = Duration::from_secs(30);
/// How often old days are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
pub struct HistoryConfig {
    /// `--data-dir`.
    pub dir: PathBuf,
    /// `--retention` and `--retention-size`.
    pub retention: Retention,
    /// `--history-queue`: batches waiting for the writer before followers wait.
    pub queue: usize,
    /// `--history-queue-bytes`: bytes of lines waiting for the writer before followers
    /// wait.
    pub queue_bytes: u64,
    /// `--search-max-lines`: the most lines one search request reads.
    pub search_max_lines: u64,
}

/// What the writer thread is asked to do.
enum Record {
    /// With the room the lines take in the queue, given back once they are written.
    Lines(Owner, Vec<RawLine>, OwnedSemaphorePermit),
    Event(Owner, i64, LifecycleEvent),
    Tick,
    Flush(oneshot::Sender<()>),
    /// Answered once everything sent before it is in the store (written or gathered).
    Settle(oneshot::Sender<()>),
}

/// How long after a failed write history counts as not kept. A block is written at least
/// every `BLOCK_AGE` while lines come, so a disk that stays full fails again within it.
const FAILING_FOR: Duration = Duration::from_secs(60);

/// How the writing goes, for `/metrics` and for viewers.
pub struct HistoryHealth {
    pub lines_written: AtomicU64,
    pub write_errors: AtomicU64,
    status: watch::Sender<HistoryStatus>,
}

impl HistoryHealth {
    fn new() -> HistoryHealth {
        HistoryHealth {
            lines_written: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            status: watch::Sender::new(HistoryStatus {
                kept: true,
                error: None,
            }),
        }
    }

    /// Whether history is kept, told again when it changes.
    pub fn status(&self) -> watch::Receiver<HistoryStatus> {
        self.status.subscribe()
    }

    pub fn is_kept(&self) -> bool {
        self.status.borrow().kept
    }
}

#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Record>,
    /// Bytes of lines the queue may still take.
    room: Arc<Semaphore>,
    store: Arc<Mutex<Store>>,
    cfg: HistoryConfig,
    health: Arc<HistoryHealth>,
}

impl History {
    /// Opens the store (a file that cannot be read fails here, naming it), drops what is
    /// past the retention, and starts the writer.
    pub fn open(cfg: HistoryConfig) -> Result<History, StoreError> {
        let mut store = Store::open(&cfg.dir, cfg.retention)?;
        store.sweep(now_ns())?;
        let store = Arc::new(Mutex::new(store));
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let health = Arc::new(HistoryHealth::new());
        let writer = Writer {
            store: store.clone(),
            health: health.clone(),
        };
        std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Io {
                path: cfg.dir.clone(),
                source,
            })?;
        let ticks = tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                if ticks.send(Record::Tick).await.is_err() {
                    return;
                }
            }
        });
        let room = Arc::new(Semaphore::new(room_for(cfg.queue_bytes)));
        Ok(History {
            inner: Arc::new(Inner {
                tx,
                room,
                store,
                cfg,
                health,
            }),
        })
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.inner.cfg
    }

    pub fn health(&self) -> &HistoryHealth {
        &self.inner.health
    }

    /// Keeps a container's lines; waits while the writer is behind, by batches or bytes.
    pub async fn lines(&self, owner: &Owner, lines: &[RawLine]) {
        if lines.is_empty() {
            return;
        }
        let room = &self.inner.room;
        // A batch larger than the whole room takes all of it, and goes alone.
        let bytes: usize = lines.iter().map(|l| l.text.len() + LINE_OVERHEAD).sum();
        let wanted = bytes.min(room_for(self.inner.cfg.queue_bytes)) as u32;
        let Ok(permit) = room.clone().acquire_many_owned(wanted).await else {
            return;
        };
        let record = Record::Lines(owner.clone(), lines.to_vec(), permit);
        let _ = self.inner.tx.send(record).await;
    }

    /// Keeps a change in a container's life.
    pub async fn event(&self, owner: &Owner, ts_ns: i64, event: LifecycleEvent) {
        let _ = self
            .inner
            .tx
            .send(Record::Event(owner.clone(), ts_ns, event))
            .await;
    }

    /// Writes everything handed over so far: at shutdown, so that a restart goes on from
    /// the last line read.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.tx.send(Record::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Waits until everything handed over so far can be read back.
    pub async fn settle(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.tx.send(Record::Settle(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// One container of `key` beyond the ring (what a resume missed, or what came before
    /// the ring for a tail): the newest `keep` lines of `streams` in `gap`, if history
    /// holds all of it (it may not yet, while a container's older lines are being stored).
    pub async fn missed(
        &self,
        key: &ServiceKey,
        gap: &Gap,
        keep: usize,
        (streams, rest): (Streams, Rest),
    ) -> Result<Option<Missed>, StoreError> {
        if !self.health().is_kept() {
            return Ok(None);
        }
        self.settle().await;
        let (key, gap) = (key.clone(), gap.clone());
        self.read(move |store| {
            let reached = store.last_position(LOCAL_ENGINE, &gap.container)?;
            if reached.is_none_or(|p| p < gap.upto) {
                return Ok(None);
            }
            let stretch = Stretch {
                engine: LOCAL_ENGINE,
                project: &key.project,
                service: &key.service,
                container: &gap.container,
                after: gap.after,
                upto: gap.upto,
                streams,
            };
            store.missed(&stretch, keep, rest).map(Some)
        })
        .await
    }

    /// Runs `f` on the store on a blocking thread.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> T {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&store)))
            .await
            .expect("a history read panicked")
    }

    /// The services history holds lines or changes of; none if it cannot be read.
    pub async fn services(&self) -> Vec<ServiceKey> {
        let since = self.oldest_ns();
        let kept = self.read(move |s| s.services(LOCAL_ENGINE, since)).await;
        match kept {
            Ok(keys) => keys
                .into_iter()
                .map(|(project, service)| ServiceKey { project, service })
                .collect(),
            Err(e) => {
                tracing::warn!("could not list the services in history: {e}");
                Vec::new()
            }
        }
    }

    /// The oldest time history still shows: the retention's age back from now.
    pub fn oldest_ns(&self) -> i64 {
        let age = i64::try_from(self.inner.cfg.retention.age.as_nanos()).unwrap_or(i64::MAX);
        now_ns().saturating_sub(age)
    }
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    // A panic while holding the lock leaves the store as it was before the statement that
    // failed: SQLite rolls it back. Keep serving.
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The thread that owns the writing.
struct Writer {
    store: Arc<Mutex<Store>>,
    health: Arc<HistoryHealth>,
}

impl Writer {
    fn run(self, mut rx: mpsc::Receiver<Record>) {
        let mut since_sweep = std::time::Instant::now();
        let mut last_failure: Option<std::time::Instant> = None;
        while let Some(record) = rx.blocking_recv() {
            let mut store = lock(&self.store);
            let done = match record {
                // The permit goes with the lines: their room is free once they are in.
                Record::Lines(owner, lines, _room) => {
                    let n = lines.len() as u64;
                    let wrote = store.append(&owner, &lines);
                    if wrote.is_ok() {
                        self.health.lines_written.fetch_add(n, Ordering::Relaxed);
                    }
                    wrote
                }
                Record::Event(owner, ts_ns, event) => store.event(&owner, ts_ns, &event),
                Record::Tick => {
                    let swept = if since_sweep.elapsed() >= SWEEP_EVERY {
                        since_sweep = std::time::Instant::now();
                        store.sweep(now_ns()).map(drop)
                    } else {
                        Ok(())
                    };
                    swept.and_then(|()| store.flush_older_than(BLOCK_AGE))
                }
                Record::Settle(done) => {
                    let _ = done.send(());
                    Ok(())
                }
                Record::Flush(done) => {
                    let flushed = store.flush();
                    let _ = done.send(());
                    flushed
                }
            };
            drop(store);
            if let Err(e) = &done {
                self.health.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("history is not being kept: {e}");
            }
            self.tell(done.err(), &mut last_failure);
        }
    }
}

impl Writer {
    /// Tells viewers when history stops or starts again being kept: not kept from a failed
    /// write until `FAILING_FOR` has passed without one.
    fn tell(&self, failed: Option<StoreError>, last_failure: &mut Option<std::time::Instant>) {
        if failed.is_some() {
            *last_failure = Some(std::time::Instant::now());
        }
        let kept = last_failure.is_none_or(|t| t.elapsed() >= FAILING_FOR);
        self.health.status.send_if_modified(|s| {
            let error = failed.map(|e| e.to_string());
            let changed = s.kept != kept || (error.is_some() && s.error != error);
            if kept {
                *s = HistoryStatus { kept, error: None };
            } else if let Some(e) = error {
                *s = HistoryStatus {
                    kept,
                    error: Some(e),
                };
            }
            changed
        });
    }
}

/// One container's way into history: its lines and changes, under its owner's key.
#[derive(Clone)]
pub struct Recorder {
    history: History,
    owner: Owner,
}

impl Recorder {
    pub fn new(history: History, key: &ServiceKey, container: &ContainerInfo) -> Recorder {
        let owner = Owner {
            engine: LOCAL_ENGINE.to_owned(),
            project: key.project.clone(),
            service: key.service.clone(),
            container: short_id(&container.id).to_owned(),
            replica: container.replica.clone(),
        };
        Recorder { history, owner }
    }

    pub async fn lines(&self, lines: &[RawLine]) {
        self.history.lines(&self.owner, lines).await;
    }

    pub async fn event(&self, ts_ns: i64, event: LifecycleEvent) {
        self.history.event(&self.owner, ts_ns, event).await;
    }

    /// The newest position kept of this container, if any; None also when the store
    /// cannot say (the whole log is then read again, and repeats are skipped).
    pub async fn last_position(&self) -> Option<(i64, u32)> {
        let owner = self.owner.clone();
        self.history
            .read(move |s| s.last_position(&owner.engine, &owner.container))
            .await
            .ok()
            .flatten()
    }
}
