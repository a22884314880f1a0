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
use crate::permits::{Bound, Busy, ReadPermits};
use crate::store::missed::{Missed, Rest, Stretch};
use crate::store::{Owner, Retention, Store, StoreError, View};

/// What a line costs in the queue besides its text.
pub const LINE_OVERHEAD: usize = 64;

/// The queue's room in permits: bytes, as many as a semaphore holds (and a batch asks).
fn room_for(bytes: u64) -> usize {
    usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize))
}

/// A quiet container's lines are written as a block after this long.
const BLOCK_AGE: Duration = Duration::from_secs(30);
/// How long what is known of a container that does not write is kept in memory.
const KNOWN_FOR: Duration = Duration::from_secs(300);
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
    /// `--history-catch-up-bytes`: a container's new lines held while its older log is
    /// stored, before its follower waits.
    pub catch_up_bytes: u64,
    /// `--search-max-lines`: the most lines one search or histogram request reads.
    pub search_max_lines: u64,
    /// `--max-history-reads` and `--history-read-wait`.
    pub reads: Bound,
}

/// Why a read of history gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the writer thread is asked to do.
enum Record {
    /// With the room the lines take in the queue, given back once they are written.
    Lines(Owner, Vec<RawLine>, OwnedSemaphorePermit),
    Event(Owner, i64, LifecycleEvent),
    /// Write what is gathered of one engine's containers.
    FlushEngine(&'static str, oneshot::Sender<()>),
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
    /// The writer's; a read holds it only to take a view.
    store: Arc<Mutex<Store>>,
    reads: ReadPermits,
    cfg: HistoryConfig,
    health: Arc<HistoryHealth>,
}

/// What a blocking task returned. Its panic goes on in the caller; a task the runtime
/// cancelled (it is shutting down, and drops the caller next) is waited for no more.
async fn joined<T>(task: tokio::task::JoinHandle<T>) -> T {
    match task.await {
        Ok(t) => t,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => std::future::pending().await,
    }
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
                reads: ReadPermits::new(cfg.reads),
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
    pub async fn lines(&self, owner: &Owner, lines: Vec<RawLine>) {
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
        let record = Record::Lines(owner.clone(), lines, permit);
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

    /// Writes what is gathered of `engine`'s containers (builds: no engine holds their
    /// lines to read again after a crash), and waits until it is written.
    pub async fn flush_engine(&self, engine: &'static str) {
        let (done, wait) = oneshot::channel();
        if self
            .inner
            .tx
            .send(Record::FlushEngine(engine, done))
            .await
            .is_ok()
        {
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
    ) -> Result<Option<Missed>, ReadError> {
        if !self.health().is_kept() {
            return Ok(None);
        }
        self.settle().await;
        let (container, after, upto) = (gap.container.clone(), gap.after, gap.upto);
        let engine = key.engine.clone();
        let holds = self
            .writer_side(move |store| store.holds_all(&engine, &container, after, upto))
            .await?;
        if !holds {
            return Ok(None);
        }
        let (key, gap) = (key.clone(), gap.clone());
        let container = gap.container.clone();
        let engine = key.engine.clone();
        let wants = move |o: &Owner| o.engine == engine && o.container == container;
        self.read(wants, move |view| {
            let stretch = Stretch {
                engine: &key.engine,
                project: &key.project,
                service: &key.service,
                container: &gap.container,
                after: gap.after,
                upto: gap.upto,
                streams,
            };
            view.missed(&stretch, keep, rest).map(Some)
        })
        .await
    }

    /// Runs `f` on a view of the store (with the lines still gathered of the containers
    /// `wants`), on a blocking thread, among at most `--max-history-reads` at once. The
    /// writer waits only while the view is taken, never while it is read.
    pub async fn read<T: Send + 'static>(
        &self,
        wants: impl Fn(&Owner) -> bool + Send + 'static,
        f: impl FnOnce(&View) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ReadError> {
        let _place = self.inner.reads.acquire().await?;
        let store = self.inner.store.clone();
        let read = tokio::task::spawn_blocking(move || {
            let view = lock(&store).view(wants)?;
            f(&view)
        });
        Ok(joined(read).await?)
    }

    /// Runs `f` on the writer's store, on a blocking thread: brief work only, as the
    /// writer waits meanwhile.
    async fn writer_side<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> T {
        let store = self.inner.store.clone();
        joined(tokio::task::spawn_blocking(move || f(&mut lock(&store)))).await
    }

    /// The services of `engines` history holds lines or changes of; none if it cannot be
    /// read.
    pub async fn services(&self, engines: Vec<String>) -> Vec<ServiceKey> {
        let since = self.oldest_ns();
        let kept = self
            .read(
                |_| true,
                move |view| {
                    let mut keys = Vec::new();
                    for engine in &engines {
                        for (project, service) in view.services(engine, since)? {
                            keys.push(ServiceKey::new(engine, &project, &service));
                        }
                    }
                    Ok(keys)
                },
            )
            .await;
        match kept {
            Ok(keys) => keys,
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
                    let flushed = swept.and_then(|()| store.flush_older_than(BLOCK_AGE));
                    store.forget_idle(KNOWN_FOR);
                    flushed
                }
                Record::Settle(done) => {
                    let _ = done.send(());
                    Ok(())
                }
                Record::FlushEngine(engine, done) => {
                    let flushed = store.flush_engine(engine);
                    let _ = done.send(());
                    flushed
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
            engine: key.engine.clone(),
            project: key.project.clone(),
            service: key.service.clone(),
            container: short_id(&container.id).to_owned(),
            replica: container.replica.clone(),
        };
        Recorder { history, owner }
    }

    pub async fn lines(&self, lines: Vec<RawLine>) {
        self.history.lines(&self.owner, lines).await;
    }

    pub async fn event(&self, ts_ns: i64, event: LifecycleEvent) {
        self.history.event(&self.owner, ts_ns, event).await;
    }

    /// How many bytes of new lines may wait while the older log is stored.
    pub fn catch_up_bytes(&self) -> usize {
        usize::try_from(self.history.config().catch_up_bytes).unwrap_or(usize::MAX)
    }

    /// The newest position kept of this container, if any; None also when the store
    /// cannot say (the whole log is then read again, and repeats are skipped).
    pub async fn last_position(&self) -> Option<(i64, u32)> {
        let owner = self.owner.clone();
        self.history
            .writer_side(move |s| s.last_position(&owner.engine, &owner.container))
            .await
            .ok()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    //! Against a real store in a temporary folder, with its real writer thread.
    use std::sync::mpsc as sync_mpsc;

    use app::protocol::LOCAL_ENGINE;

    use app::protocol::Replica;

    use super::*;
    use crate::store::day::tests::{raw, tempdir};
    use crate::store::{End, ServiceSpan};

    fn history(dir: &std::path::Path, reads: usize) -> History {
        history_with(dir, reads, 1 << 20)
    }

    fn history_with(dir: &std::path::Path, reads: usize, queue_bytes: u64) -> History {
        History::open(HistoryConfig {
            dir: dir.to_owned(),
            retention: Retention {
                age: Duration::from_secs(7 * 86_400),
                bytes: u64::MAX,
            },
            queue: 4,
            queue_bytes,
            catch_up_bytes: 4 << 20,
            search_max_lines: 1000,
            reads: Bound {
                what: "reads of history",
                max: reads,
                max_flag: "--max-history-reads",
                wait: Duration::from_millis(100),
                wait_flag: "--history-read-wait",
            },
        })
        .unwrap()
    }

    fn web() -> Owner {
        Owner {
            engine: LOCAL_ENGINE.into(),
            project: "shop".into(),
            service: "web".into(),
            container: "aaa".into(),
            replica: Replica {
                number: 1,
                name: "shop-web-1".into(),
            },
        }
    }

    const NOW: i64 = 1_796_169_600 * 1_000_000_000;

    /// A release that is given at once.
    fn at_once() -> sync_mpsc::Receiver<()> {
        sync_mpsc::channel().1
    }

    /// Reads the service's lines, holding the read open until `release` says so; `opened`
    /// is told once the lines are read.
    fn held_read(
        h: &History,
        release: sync_mpsc::Receiver<()>,
    ) -> (
        tokio::task::JoinHandle<Result<Vec<String>, ReadError>>,
        oneshot::Receiver<()>,
    ) {
        let h = h.clone();
        let (opened, is_open) = oneshot::channel();
        let read = tokio::spawn(async move {
            h.read(
                |_| true,
                move |view| {
                    let span = ServiceSpan {
                        engine: LOCAL_ENGINE,
                        project: "shop",
                        service: "web",
                        since_ns: 0,
                        until_ns: i64::MAX,
                        levels: None,
                    };
                    let texts = view.lines(&span, 100, End::Oldest)?;
                    let _ = opened.send(());
                    let _ = release.recv();
                    Ok(texts.into_iter().map(|(_, l)| l.text).collect())
                },
            )
            .await
        });
        (read, is_open)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_in_progress_never_holds_up_the_writing() {
        let dir = tempdir();
        let h = history(&dir, 4);
        h.lines(&web(), vec![raw(NOW + 1, "before")]).await;
        h.flush().await;
        let (release, held) = sync_mpsc::channel();
        let (read, is_open) = held_read(&h, held);
        is_open.await.unwrap();
        // The writer takes, gathers and writes new lines while the read is open: with the
        // read holding the store, this would wait for ever.
        let write = async {
            h.lines(&web(), vec![raw(NOW + 2, "during")]).await;
            h.flush().await;
        };
        tokio::time::timeout(Duration::from_secs(30), write)
            .await
            .expect("lines were written while a read was open");
        release.send(()).unwrap();
        assert_eq!(
            read.await.unwrap().unwrap(),
            ["before"],
            "as it was when opened"
        );
        let (after, _) = held_read(&h, at_once());
        assert_eq!(after.await.unwrap().unwrap(), ["before", "during"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_beyond_the_bound_wait_then_are_refused_naming_the_settings() {
        let dir = tempdir();
        let h = history(&dir, 1);
        h.lines(&web(), vec![raw(NOW + 1, "a")]).await;
        // Queued is not yet gathered: a read before the writer took it would not see it.
        h.flush().await;
        let (release, held) = sync_mpsc::channel();
        let (first, is_open) = held_read(&h, held);
        is_open.await.unwrap();
        let (second, _) = held_read(&h, at_once());
        let refused = match second.await.unwrap() {
            Err(ReadError::Busy(busy)) => busy.to_string(),
            other => panic!("a second read while the one place is held: {other:?}"),
        };
        assert!(
            refused.contains("(--max-history-reads)") && refused.contains("(--history-read-wait)"),
            "{refused}"
        );
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), ["a"]);
        let (third, _) = held_read(&h, at_once());
        assert_eq!(
            third.await.unwrap().unwrap(),
            ["a"],
            "a freed place is taken"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_beyond_the_queue_bytes_wait_for_the_writer() {
        let dir = tempdir();
        // Room for one batch of about 2 KiB, not two.
        let h = history_with(&dir, 4, 3000);
        let batch = |from: i64| -> Vec<RawLine> {
            (0..2)
                .map(|i| raw(NOW + from + i, &"x".repeat(1000)))
                .collect()
        };
        // The writer is held: what is handed over stays in the queue.
        let (release, held) = sync_mpsc::channel::<()>();
        let (is_held, holding) = oneshot::channel();
        let hold = tokio::spawn({
            let h = h.clone();
            async move {
                h.writer_side(move |_| {
                    let _ = is_held.send(());
                    let _ = held.recv();
                })
                .await
            }
        });
        holding.await.unwrap();
        h.lines(&web(), batch(0)).await;
        let second = tokio::spawn({
            let h = h.clone();
            async move { h.lines(&web(), batch(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "a second batch waits for room");
        release.send(()).unwrap();
        hold.await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), second)
            .await
            .expect("room is made once the writer goes on")
            .unwrap();
        h.settle().await;
        let (read, _) = held_read(&h, at_once());
        assert_eq!(read.await.unwrap().unwrap().len(), 4, "nothing was lost");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
