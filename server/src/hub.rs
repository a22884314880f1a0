//! The hub: exactly one engine log stream per container, whatever the number of viewers; a
//! bounded ring of recent lines per service; fan-out to subscribers through bounded queues.
//!
//! Lines flow one way: a follower task per container reads the engine and pushes lines into
//! its service's `Shared` (ring + tape); each `Subscription` reads the tape. A feed
//! lives while someone subscribes to its service; when the last subscription is dropped the
//! followers stop.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use app::protocol::{
    ContainerInfo, Cursor, Lifecycle, LifecycleEvent, LogLine, ProjectInfo, ServiceKey,
};
use futures::StreamExt;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::AbortHandle;

use crate::docker::discovery::{self, label_filter};
use crate::docker::frames::{RawLine, Timestamp};
use crate::docker::logs::{log_line, short_id, LineRules, LogQuery, LogStream};
use crate::docker::reads::ReadPermits;
use crate::docker::{Engine, EngineError};
use crate::runs::{after_look, run_times, RunTimes, Step};

mod tape;
pub use tape::{line_bytes, Bounds};
use tape::{Item, Pos, Take, Taken, Tape};

/// The hub's bounds; every one has a command-line setting.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Recent lines kept per service for new subscribers' tails, at most this many...
    pub ring_lines: usize,
    /// ...and at most this many bytes.
    pub ring_bytes: usize,
    /// How far a subscriber may fall behind, in lines and bytes, before it loses lines.
    pub queue: Bounds,
    /// The most lines and bytes of one batch handed to a subscriber (one WebSocket message).
    pub batch: Batch,
    /// One-off engine reads (tails, downloads, gap fills) at once.
    pub reads: ReadPermits,
    /// Line length bound and secret redaction, applied to every line read.
    pub lines: LineRules,
    /// Only this Compose project, when set.
    pub project: Option<String>,
}

/// Counters exported on /metrics.
#[derive(Default)]
pub struct Metrics {
    pub engine_streams: AtomicI64,
    pub subscribers: AtomicI64,
    pub lines_in: AtomicU64,
    pub lines_out: AtomicU64,
    pub lines_dropped: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("unknown service {0}")]
    UnknownService(ServiceKey),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Where a new subscription starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// The last N lines of the service.
    Tail(u32),
    /// Exactly the lines after these cursors (one per container the client has lines of).
    Resume(Vec<Cursor>),
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    engine: Engine,
    cfg: HubConfig,
    feeds: Mutex<HashMap<ServiceKey, Weak<Feed>>>,
    services: watch::Sender<Vec<ProjectInfo>>,
    metrics: Arc<Metrics>,
    exits: Arc<Exits>,
}

/// The engine's latest `die` events: how a container ended, still known after Compose has
/// removed it, which it does right after stopping it.
#[derive(Default)]
struct Exits(Mutex<VecDeque<(String, Exit)>>);

#[derive(Clone, Copy, Debug)]
struct Exit {
    ts_ns: i64,
    code: Option<i64>,
}

impl Exits {
    /// Containers whose exit is remembered; the oldest is forgotten first.
    const KEPT: usize = 1024;

    fn record(&self, id: String, exit: Exit) {
        let mut exits = self.0.lock().expect("exits lock");
        if exits.len() >= Self::KEPT {
            exits.pop_front();
        }
        exits.push_back((id, exit));
    }

    fn latest(&self, id: &str) -> Option<Exit> {
        let exits = self.0.lock().expect("exits lock");
        exits.iter().rev().find(|(i, _)| i == id).map(|(_, e)| *e)
    }

    /// The exit of `id` at or after `since`, waiting a moment for its event to be read.
    async fn wait_for(&self, id: &str, since: Option<i64>) -> Option<Exit> {
        for _ in 0..20 {
            if let Some(e) = self
                .latest(id)
                .filter(|e| since.is_none_or(|s| e.ts_ns >= s))
            {
                return Some(e);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Hub {
    /// Creates the hub and starts watching the engine's container events.
    pub fn start(engine: Engine, cfg: HubConfig) -> Hub {
        let (services, _) = watch::channel(Vec::new());
        let hub = Hub {
            inner: Arc::new(HubInner {
                engine,
                cfg,
                feeds: Mutex::new(HashMap::new()),
                services,
                metrics: Arc::new(Metrics::default()),
                exits: Arc::new(Exits::default()),
            }),
        };
        tokio::spawn(hub.clone().watch_events());
        hub
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.cfg
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The latest listing of projects; changes whenever a container does.
    pub fn services(&self) -> watch::Receiver<Vec<ProjectInfo>> {
        self.inner.services.subscribe()
    }

    /// Lists the projects now, from the engine.
    pub async fn list(&self) -> Result<Vec<ProjectInfo>, EngineError> {
        let docker = self.inner.engine.docker()?;
        let projects = discovery::list_projects(&docker, self.inner.cfg.project.as_deref())
            .await
            .inspect_err(|e| self.inner.engine.report(e))?;
        Ok(projects)
    }

    /// Whether `key` lies within what this server shows (`--project`).
    pub fn in_scope(&self, key: &ServiceKey) -> bool {
        self.inner
            .cfg
            .project
            .as_ref()
            .is_none_or(|p| *p == key.project)
    }

    /// Follows a service.
    pub async fn subscribe(&self, key: ServiceKey, start: Start) -> Result<Subscription, HubError> {
        let (feed, containers) = self.feed(&key).await?;
        let mut ready = feed.ready.clone();
        // The backfill of a fresh feed is a few engine requests; don't wait on a stuck engine
        // for ever: the lines will still arrive live.
        let _ = tokio::time::timeout(Duration::from_secs(15), ready.wait_for(|r| *r)).await;
        let Snapshot {
            mut backlog,
            pos,
            tape,
            marks,
            gaps,
            whole,
        } = feed.shared.snapshot(&start);
        let mut lost = 0;
        let mut unread = None;
        if !gaps.is_empty() {
            match self.fill(&containers, gaps).await {
                Ok((filled, left_out)) => {
                    lost = left_out;
                    backlog.extend(filled);
                    backlog.sort_by(|a, b| a.cursor.cmp(&b.cursor));
                    // The engine stamps stdout and stderr apart, so a line written after the
                    // ring's first line can be stamped before it: the gap then holds it too.
                    backlog.dedup_by(|a, b| a.cursor == b.cursor);
                }
                Err(e) => unread = Some(e),
            }
            self.inner
                .metrics
                .lines_dropped
                .fetch_add(lost, Ordering::Relaxed);
        }
        // Changes are broadcast live only; the latest start and exit of each container
        // within the backlog's span are looked up for a viewer who was not there.
        let since = match &start {
            Start::Tail(0) => None,
            Start::Tail(_) if whole => Some(i64::MIN),
            Start::Tail(_) => Some(backlog.first().map_or(i64::MIN, |l| l.cursor.ts_ns)),
            Start::Resume(cursors) => cursors.iter().map(|c| c.ts_ns).min(),
        };
        let markers = match since {
            Some(since) => self.recent_changes(&containers, since, &backlog).await,
            None => Vec::new(),
        };
        self.inner
            .metrics
            .subscribers
            .fetch_add(1, Ordering::Relaxed);
        Ok(Subscription {
            containers,
            lost,
            unread,
            markers,
            backlog,
            feed,
            pos,
            tape,
            marks,
            pending_drop: 0,
            pending_lifecycle: None,
            gathered: Vec::new(),
            gathered_bytes: 0,
            gather_until: tokio::time::Instant::now(),
            metrics: self.inner.metrics.clone(),
        })
    }

    /// The latest start and exit of each container from `since` on, in time order. An exit
    /// goes after the container's last line in `backlog`: the engine stamps a line when it
    /// reads it, which can be after the process has exited.
    async fn recent_changes(
        &self,
        containers: &[ContainerInfo],
        since: i64,
        backlog: &[Arc<LogLine>],
    ) -> Vec<Arc<Lifecycle>> {
        let Ok(docker) = self.inner.engine.docker() else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        for c in containers {
            let Ok(Some(run)) = run_times(&docker, &c.id).await else {
                continue;
            };
            let Some(started) = run.started else {
                continue;
            };
            // The engine stamps a start once it has handled it, so a run's first lines can be
            // stamped before it: the marker goes before them. A running container's last exit
            // is its previous run's, so its run's lines are those after that exit.
            let run_first_line = if run.running {
                let previous_exit = run.finished.filter(|f| *f < started).unwrap_or(i64::MIN);
                backlog
                    .iter()
                    .filter(|l| c.id.starts_with(&l.cursor.container))
                    .map(|l| l.cursor.ts_ns)
                    .find(|ts| *ts > previous_exit)
            } else {
                None
            };
            let at = run_first_line.map_or(started, |ts| started.min(ts - 1));
            if started >= since {
                changes.push((at, marker(at, c, LifecycleEvent::Started)));
            }
            if let Some(finished) = run.finished.filter(|_| !run.running) {
                // An exit at once can be stamped before its start (see runs.rs).
                let last_line = backlog
                    .iter()
                    .rev()
                    .find(|l| c.id.starts_with(&l.cursor.container))
                    .map_or(i64::MIN, |l| l.cursor.ts_ns);
                let at = finished.max(started).max(last_line);
                if at >= since {
                    let event = LifecycleEvent::Exited {
                        exit_code: run.exit_code,
                    };
                    changes.push((at, marker(at, c, event)));
                }
            }
        }
        changes.sort_by_key(|(at, _)| *at);
        changes.into_iter().map(|(_, m)| Arc::new(m)).collect()
    }

    /// Reads from the engine the lines a resuming client misses that the ring no longer
    /// holds: at most a ring's worth, the most recent; the number left out is returned. Each
    /// read covers only its gap and keeps at most a ring's worth while it reads, so a cursor
    /// from long ago costs a pass over the log, never its size in memory. A gap that cannot
    /// be read fails the whole fill: the viewer must be told, not given a silent hole.
    async fn fill(
        &self,
        containers: &[ContainerInfo],
        gaps: Vec<Gap>,
    ) -> Result<(Vec<Arc<LogLine>>, u64), EngineError> {
        let engine = &self.inner.engine;
        let cfg = &self.inner.cfg;
        let keep = cfg.ring_lines;
        let mut filled = Vec::new();
        let mut left_out = 0;
        for gap in gaps {
            // A container removed since has nothing left to read.
            let Some(c) = containers.iter().find(|c| c.id.starts_with(&gap.container)) else {
                continue;
            };
            let _permit = cfg.reads.acquire().await?;
            let docker = engine.docker()?;
            let query = LogQuery {
                since_secs: Timestamp { ns: gap.after.0 }.whole_seconds(),
                // The engine's `until` is whole seconds and excludes its second.
                until_secs: Some(Timestamp { ns: gap.upto.0 }.whole_seconds() + 1),
                tail: None,
                follow: false,
                stdout: true,
                stderr: true,
            };
            let in_gap = |l: &RawLine| (l.ts.ns, l.seq) > gap.after && (l.ts.ns, l.seq) <= gap.upto;
            match LogStream::open(&docker, &c.id, query, &cfg.lines)
                .keep_last(keep, in_gap)
                .await
            {
                Ok((lines, skipped)) => {
                    left_out += skipped;
                    filled.extend(lines.into_iter().map(|l| Arc::new(log_line(l, c))));
                }
                // Removed while we read: it has nothing more to give.
                Err(EngineError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(container = %c.id, error = %e, "could not read the lines a resuming client missed");
                    engine.report(&e);
                    return Err(e);
                }
            }
        }
        filled.sort_by(|a, b| a.cursor.cmp(&b.cursor));
        let excess = filled.len().saturating_sub(keep);
        filled.drain(..excess);
        Ok((filled, left_out + excess as u64))
    }

    /// The live feed of a service, created if nobody follows it yet.
    async fn feed(&self, key: &ServiceKey) -> Result<(Arc<Feed>, Vec<ContainerInfo>), HubError> {
        if !self.in_scope(key) {
            return Err(HubError::UnknownService(key.clone()));
        }
        let engine = &self.inner.engine;
        let docker = engine.docker()?;
        let info = discovery::find_service(&docker, key)
            .await
            .inspect_err(|e| engine.report(e))?
            .ok_or_else(|| HubError::UnknownService(key.clone()))?;
        let mut feeds = self.inner.feeds.lock().expect("feeds lock");
        if let Some(feed) = feeds.get(key).and_then(Weak::upgrade) {
            feed.sync(&info.containers);
            return Ok((feed, info.containers));
        }
        let feed = Feed::start(
            key.clone(),
            &info.containers,
            engine.clone(),
            &self.inner.cfg,
            self.inner.metrics.clone(),
            self.inner.exits.clone(),
        );
        feeds.retain(|_, f| f.strong_count() > 0);
        feeds.insert(key.clone(), Arc::downgrade(&feed));
        Ok((feed, info.containers))
    }

    /// Keeps the listing current and tells feeds about new and restarted containers.
    async fn watch_events(self) {
        let engine = self.inner.engine.clone();
        loop {
            engine.wait_reachable().await;
            let Ok(docker) = engine.docker() else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let mut filters = HashMap::new();
            filters.insert("type", vec!["container".to_owned()]);
            // Not exec events: every health check is an exec, and each would mean a listing.
            filters.insert("event", WATCHED_EVENTS.map(str::to_owned).to_vec());
            filters.insert(
                "label",
                vec![label_filter(self.inner.cfg.project.as_deref())],
            );
            let mut events = docker.events(Some(
                bollard::query_parameters::EventsOptionsBuilder::new()
                    .filters(&filters)
                    .build(),
            ));
            // Events may have been missed while the stream was down: refresh first.
            self.refresh().await;
            let mut dirty = false;
            loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(Ok(event)) => {
                            self.note_exit(&event);
                            dirty = true;
                        }
                        Some(Err(e)) => {
                            let e = EngineError::from(e);
                            tracing::debug!(error = %e, "event stream ended");
                            engine.report(&e);
                            break;
                        }
                        None => break,
                    },
                    // Events come in bursts (create, start, attach...): refresh once per burst.
                    _ = tokio::time::sleep(Duration::from_millis(100)), if dirty => {
                        dirty = false;
                        self.refresh().await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn note_exit(&self, event: &bollard::models::EventMessage) {
        if event.action.as_deref() != Some("die") {
            return;
        }
        let Some(actor) = &event.actor else { return };
        let Some(id) = actor.id.clone() else { return };
        let code = actor
            .attributes
            .as_ref()
            .and_then(|a| a.get("exitCode"))
            .and_then(|c| c.parse().ok());
        let ts_ns = event.time_nano.unwrap_or_else(now_ns);
        self.inner.exits.record(id, Exit { ts_ns, code });
    }

    async fn refresh(&self) {
        let Ok(projects) = self.list().await else {
            return;
        };
        let feeds: Vec<Arc<Feed>> = self
            .inner
            .feeds
            .lock()
            .expect("feeds lock")
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for feed in feeds {
            let containers = projects
                .iter()
                .filter(|p| p.name == feed.key.project)
                .flat_map(|p| &p.services)
                .find(|s| s.service == feed.key.service)
                .map(|s| s.containers.as_slice())
                .unwrap_or_default();
            feed.sync(containers);
        }
        self.inner.services.send_if_modified(|old| {
            let changed = *old != projects;
            *old = projects;
            changed
        });
    }
}

/// The container events that change what the listing shows. The engine matches
/// `health_status` to its `health_status: <verdict>` events.
const WATCHED_EVENTS: [&str; 11] = [
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "kill",
    "destroy",
    "rename",
    "pause",
    "unpause",
    "health_status",
];

/// One service's live state: its followers, ring and tape.
struct Feed {
    key: ServiceKey,
    shared: Arc<Shared>,
    engine: Engine,
    rules: LineRules,
    exits: Arc<Exits>,
    followers: Mutex<HashMap<String, Follower>>,
    ready: watch::Receiver<bool>,
}

struct Follower {
    task: AbortHandle,
    wake: Arc<Notify>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        for f in self.followers.lock().expect("followers lock").values() {
            f.task.abort();
        }
    }
}

impl Feed {
    fn start(
        key: ServiceKey,
        containers: &[ContainerInfo],
        engine: Engine,
        cfg: &HubConfig,
        metrics: Arc<Metrics>,
        exits: Arc<Exits>,
    ) -> Arc<Feed> {
        let ring_caps = RingCaps {
            lines: cfg.ring_lines,
            bytes: cfg.ring_bytes,
        };
        let shared = Arc::new(Shared::new(ring_caps, cfg.queue, metrics));
        let (ready_tx, ready) = watch::channel(false);
        let feed = Arc::new(Feed {
            key,
            shared,
            engine,
            rules: cfg.lines.clone(),
            exits,
            followers: Mutex::new(HashMap::new()),
            ready,
        });
        let mut backfills = Vec::new();
        for c in containers {
            let (done_tx, done_rx) = oneshot::channel();
            feed.spawn_follower(c.clone(), Some((cfg.ring_lines as u32, done_tx)));
            backfills.push(done_rx);
        }
        tokio::spawn(async move {
            for done in backfills {
                let _ = done.await;
            }
            let _ = ready_tx.send(true);
        });
        feed
    }

    /// Starts followers for containers it does not follow yet and wakes the others, which may
    /// have been restarted.
    fn sync(&self, containers: &[ContainerInfo]) {
        let mut followers = self.followers.lock().expect("followers lock");
        // A follower ends when its container is removed. It is forgotten only once the
        // listing no longer holds the container: a listing read just before the removal
        // would otherwise start a second follower, and a second "removed".
        followers.retain(|id, f| !f.task.is_finished() || containers.iter().any(|c| c.id == *id));
        let new: Vec<&ContainerInfo> = containers
            .iter()
            .filter(|c| !followers.contains_key(&c.id))
            .collect();
        for f in followers.values() {
            f.wake.notify_one();
        }
        drop(followers);
        for c in new {
            // A container that appeared after the feed started: all of its lines are new.
            self.spawn_follower(c.clone(), None);
        }
    }

    fn spawn_follower(
        &self,
        container: ContainerInfo,
        backfill: Option<(u32, oneshot::Sender<()>)>,
    ) {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(follow(
            self.shared.clone(),
            self.engine.clone(),
            container.clone(),
            backfill,
            wake.clone(),
            self.rules.clone(),
            self.exits.clone(),
        ));
        self.followers.lock().expect("followers lock").insert(
            container.id,
            Follower {
                task: task.abort_handle(),
                wake,
            },
        );
    }
}

/// What the followers of a service write to and subscribers read from.
struct Shared {
    /// The ring and the tape under one lock, so that a snapshot of the ring plus the tape
    /// after it hold every line exactly once.
    state: Mutex<State>,
    /// Told after each push, once the lock is released: subscribers woken by it find the
    /// new items without waiting for the pusher.
    pushed: watch::Sender<()>,
    ring_caps: RingCaps,
    metrics: Arc<Metrics>,
}

struct State {
    ring: Ring,
    tape: Tape,
}

#[derive(Clone, Copy, Debug)]
struct RingCaps {
    lines: usize,
    bytes: usize,
}

type Marks = HashMap<String, (i64, u32)>;

/// A service's recent lines, in cursor order.
#[derive(Default)]
struct Ring {
    lines: VecDeque<Arc<LogLine>>,
    /// What `lines` hold, as `line_bytes` counts it.
    bytes: usize,
    /// Per container, the newest position of a line the ring may not hold (pushed out, or
    /// older than a fresh feed's tail): a client resuming from before it misses lines that
    /// only the engine still has.
    evicted: Marks,
}

impl Ring {
    fn insert(&mut self, line: Arc<LogLine>, caps: RingCaps) {
        let at = self
            .lines
            .iter()
            .rposition(|l| l.cursor <= line.cursor)
            .map_or(0, |p| p + 1);
        self.bytes += line_bytes(&line);
        self.lines.insert(at, line);
        while self.lines.len() > caps.lines || (self.bytes > caps.bytes && self.lines.len() > 1) {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= line_bytes(&old);
            let mark = self
                .evicted
                .entry(old.cursor.container.clone())
                .or_insert(old.cursor.position());
            *mark = (*mark).max(old.cursor.position());
        }
    }
}

/// What a new subscriber starts from.
struct Snapshot {
    backlog: Vec<Arc<LogLine>>,
    /// Where on the tape the items after the backlog begin.
    pos: Pos,
    tape: watch::Receiver<()>,
    marks: Marks,
    gaps: Vec<Gap>,
    /// The backlog is every line the engine holds of the service.
    whole: bool,
}

/// Lines of one container that a resuming client misses and the ring no longer holds: those
/// after `after`, up to and including `upto`.
#[derive(Debug)]
struct Gap {
    container: String,
    after: (i64, u32),
    upto: (i64, u32),
}

impl Shared {
    fn new(ring_caps: RingCaps, queue: Bounds, metrics: Arc<Metrics>) -> Shared {
        Shared {
            state: Mutex::new(State {
                ring: Ring::default(),
                tape: Tape::new(queue),
            }),
            pushed: watch::channel(()).0,
            ring_caps,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("ring lock")
    }

    /// Adds lines to the ring (kept in cursor order) and to the tape every subscriber reads.
    fn push(&self, lines: Vec<RawLine>, container: &ContainerInfo) {
        if lines.is_empty() {
            return;
        }
        let mut state = self.lock();
        self.metrics
            .lines_in
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        for raw in lines {
            let line = Arc::new(log_line(raw, container));
            state.ring.insert(line.clone(), self.ring_caps);
            state.tape.push(Item::Line(line));
        }
        drop(state);
        self.pushed.send_replace(());
    }

    /// Notes that lines of `container` up to `upto` may exist that the ring does not hold.
    fn not_held_upto(&self, container: &ContainerInfo, upto: (i64, u32)) {
        let mut state = self.lock();
        let mark = state
            .ring
            .evicted
            .entry(short_id(&container.id).to_owned())
            .or_insert(upto);
        *mark = (*mark).max(upto);
    }

    /// Tells subscribers about a container's start, exit or removal, in order with its lines.
    fn lifecycle(&self, ts_ns: i64, container: &ContainerInfo, event: LifecycleEvent) {
        let change = Arc::new(marker(ts_ns, container, event));
        self.lock().tape.push(Item::Lifecycle(change));
        self.pushed.send_replace(());
    }

    fn snapshot(&self, start: &Start) -> Snapshot {
        let state = self.lock();
        let ring = &state.ring;
        let mut marks = Marks::new();
        let mut gaps = Vec::new();
        let backlog: Vec<Arc<LogLine>> = match start {
            Start::Tail(n) => {
                let skip = ring.lines.len().saturating_sub(*n as usize);
                ring.lines.iter().skip(skip).cloned().collect()
            }
            Start::Resume(cursors) => {
                for c in cursors {
                    let mark = marks.entry(c.container.clone()).or_insert(c.position());
                    *mark = (*mark).max(c.position());
                }
                // A container the client has no line of: everything since its oldest cursor.
                let floor = cursors.iter().map(|c| c.ts_ns).min().unwrap_or(i64::MIN);
                for (container, upto) in &ring.evicted {
                    let after = marks.get(container).copied().unwrap_or((floor, u32::MAX));
                    if after < *upto {
                        gaps.push(Gap {
                            container: container.clone(),
                            after,
                            upto: *upto,
                        });
                    }
                }
                ring.lines
                    .iter()
                    .filter(|l| match marks.get(&l.cursor.container) {
                        Some(mark) => l.cursor.position() > *mark,
                        None => l.cursor.ts_ns > floor,
                    })
                    .cloned()
                    .collect()
            }
        };
        for l in &backlog {
            let mark = marks
                .entry(l.cursor.container.clone())
                .or_insert(l.cursor.position());
            *mark = (*mark).max(l.cursor.position());
        }
        Snapshot {
            whole: ring.evicted.is_empty() && backlog.len() == ring.lines.len(),
            backlog,
            pos: state.tape.end(),
            tape: self.pushed.subscribe(),
            marks,
            gaps,
        }
    }
}

/// Reads one container's log for as long as the container exists: through stops, restarts
/// and engine outages, resuming after the last line it delivered.
async fn follow(
    shared: Arc<Shared>,
    engine: Engine,
    container: ContainerInfo,
    backfill: Option<(u32, oneshot::Sender<()>)>,
    wake: Arc<Notify>,
    rules: LineRules,
    exits: Arc<Exits>,
) {
    let id = container.id.clone();
    let mut last: Option<(i64, u32)> = None;
    // The container's last start and exit that the timeline has been told of (or that
    // happened before the feed began).
    let mut told = RunTimes::default();
    let mut keys = crate::redact::KeyState::default();
    let is_new = backfill.is_none();
    let both = |since_secs, tail, follow| LogQuery {
        since_secs,
        until_secs: None,
        tail,
        follow,
        stdout: true,
        stderr: true,
    };

    if let Ok(docker) = engine.docker() {
        if let Ok(Some(now)) = run_times(&docker, &id).await {
            // A container that appeared while the feed runs: its start is news.
            if is_new {
                if let Some(started) = now.started {
                    shared.lifecycle(started, &container, LifecycleEvent::Started);
                }
            }
            told = now;
        }
    }

    // First the recent past, without follow, so the feed knows when its tail is complete.
    if let Some((cap, done)) = backfill {
        loop {
            engine.wait_reachable().await;
            let Ok(docker) = engine.docker() else {
                continue;
            };
            match LogStream::open_with(&docker, &id, both(0, Some(cap), false), &rules, &mut keys)
                .collect()
                .await
            {
                Ok(lines) => {
                    last = lines.last().map(|l| (l.ts.ns, l.seq));
                    // The engine may hold older lines than the tail: the ring starts with a
                    // gap only the engine can fill.
                    if lines.len() >= cap as usize {
                        if let Some(first) = lines.first() {
                            shared.not_held_upto(&container, before((first.ts.ns, first.seq)));
                        }
                    }
                    shared.push(lines, &container);
                    break;
                }
                Err(EngineError::NotFound(_)) => {
                    let _ = done.send(());
                    return;
                }
                Err(e) => {
                    engine.report(&e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        let _ = done.send(());
    }

    loop {
        engine.wait_reachable().await;
        let Ok(docker) = engine.docker() else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        // The engine's `since` is whole seconds: ask from the start of the last line's second
        // and skip what was already delivered.
        let since = last.map_or(0, |(ns, _)| Timestamp { ns }.whole_seconds());
        let mut stream =
            LogStream::open_with(&docker, &id, both(since, None, true), &rules, &mut keys);
        // Counted for as long as the stream lives, also when the feed aborts this task.
        let open = OpenStream::count(&shared.metrics);
        let outcome = loop {
            match stream.next_lines().await {
                Some(Ok(lines)) => shared.push(after_last(&mut last, lines), &container),
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            }
        };
        drop(open);
        match outcome {
            Err(EngineError::NotFound(_)) => {
                let delivered = last.map(|(ns, _)| ns);
                removed(&shared, &container, told, None, delivered, &exits).await;
                return;
            }
            Err(e) => {
                engine.report(&e);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            // The container stopped. The engine may end a follow stream before its very last
            // entry (a line without newline written on exit), and a run that starts and ends
            // while we wait here (a crash loop, a `docker start` of a container that fails at
            // once) is seen by no follow stream: read without follow now and at every wake,
            // until it runs again (an event wakes us; the timer is a safety net) or is removed.
            Ok(()) => {
                // Compose removes a container right after stopping it: what the engine says
                // of the stop now may be gone by the look below.
                let mut at_stop = match engine.docker() {
                    Ok(docker) => run_times(&docker, &id).await.ok().flatten(),
                    Err(_) => None,
                };
                loop {
                    let Ok(docker) = engine.docker() else {
                        break;
                    };
                    // Read, then look: every line read was written before the look, so a run
                    // that the look does not show has no line among them.
                    let since = last.map_or(0, |(ns, _)| Timestamp { ns }.whole_seconds());
                    let no_follow = both(since, None, false);
                    let lines =
                        match LogStream::open_with(&docker, &id, no_follow, &rules, &mut keys)
                            .collect()
                            .await
                        {
                            Ok(lines) => lines,
                            // Removed: the look below says so.
                            Err(EngineError::NotFound(_)) => Vec::new(),
                            Err(e) => {
                                engine.report(&e);
                                break;
                            }
                        };
                    let delivered = last.map(|(ns, _)| ns);
                    let now = match run_times(&docker, &id).await {
                        Ok(Some(now)) => now,
                        Ok(None) => {
                            removed(&shared, &container, told, at_stop, delivered, &exits).await;
                            return;
                        }
                        Err(e) => {
                            engine.report(&e);
                            break;
                        }
                    };
                    let fresh = after_last(&mut last, lines);
                    for step in after_look(told, now, delivered, fresh) {
                        match step {
                            Step::Lines(lines) => shared.push(lines, &container),
                            Step::Marker(at, event) => shared.lifecycle(at, &container, event),
                        }
                    }
                    told = now;
                    at_stop = None;
                    if now.running {
                        break;
                    }
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        }
    }
}

/// The lines after `last` (the position of the last line delivered), which moves on to the
/// newest of them: a stream reopened from the start of a second repeats what came before.
fn after_last(last: &mut Option<(i64, u32)>, lines: Vec<RawLine>) -> Vec<RawLine> {
    let fresh: Vec<RawLine> = lines
        .into_iter()
        .filter(|l| last.is_none_or(|p| (l.ts.ns, l.seq) > p))
        .collect();
    if let Some(l) = fresh.last() {
        *last = Some((l.ts.ns, l.seq));
    }
    fresh
}

/// A container is gone. If the timeline still holds it running, its exit goes first: as the
/// engine said it right after the stop (`at_stop`), or as its `die` event said.
async fn removed(
    shared: &Shared,
    container: &ContainerInfo,
    told: RunTimes,
    at_stop: Option<RunTimes>,
    delivered: Option<i64>,
    exits: &Exits,
) {
    if told.running {
        let exit = match at_stop.filter(|s| !s.running && s.started == told.started) {
            Some(s) => s.finished.map(|ts_ns| Exit {
                ts_ns,
                code: s.exit_code,
            }),
            None => exits.wait_for(&container.id, told.started).await,
        };
        if let Some(exit) = exit {
            let at = exit.ts_ns.max(delivered.unwrap_or(exit.ts_ns));
            let event = LifecycleEvent::Exited {
                exit_code: exit.code,
            };
            shared.lifecycle(at, container, event);
        }
    }
    shared.lifecycle(now_ns(), container, LifecycleEvent::Removed);
}

fn marker(ts_ns: i64, container: &ContainerInfo, event: LifecycleEvent) -> Lifecycle {
    Lifecycle {
        ts_ns,
        ts: Timestamp { ns: ts_ns }.to_rfc3339(),
        replica: container.replica.clone(),
        event,
    }
}

/// The greatest position before `pos`: no line lies strictly between the two.
fn before((ts, seq): (i64, u32)) -> (i64, u32) {
    match seq.checked_sub(1) {
        Some(seq) => (ts, seq),
        None => (ts - 1, u32::MAX),
    }
}

fn now_ns() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0)
}

/// An engine log stream, counted on /metrics while it is open.
struct OpenStream(Arc<Metrics>);

impl OpenStream {
    fn count(metrics: &Arc<Metrics>) -> OpenStream {
        metrics.engine_streams.fetch_add(1, Ordering::Relaxed);
        OpenStream(metrics.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.engine_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A subscriber's view of a feed: the backlog it starts with, then live lines.
pub struct Subscription {
    /// The service's containers when the subscription started.
    pub containers: Vec<ContainerInfo>,
    /// Lines after the resume cursors that could not be given: more than a ring's worth.
    pub lost: u64,
    /// Why lines after the resume cursors could not be read, if some could not: the viewer
    /// is told, since they are missing from its view.
    pub unread: Option<EngineError>,
    /// The latest start and exit of each container within the backlog's span, in time order.
    pub markers: Vec<Arc<Lifecycle>>,
    /// The tail (or the lines after the resume cursors), oldest first.
    pub backlog: Vec<Arc<LogLine>>,
    feed: Arc<Feed>,
    /// This subscriber's place on the feed's tape, and what tells it of new items.
    pos: Pos,
    tape: watch::Receiver<()>,
    /// A lifecycle change read while a batch of lines was being gathered; it goes next.
    pending_lifecycle: Option<Arc<Lifecycle>>,
    /// Per container, the position of the last line this subscriber was given, so that no
    /// line is given twice whatever order containers' lines arrive in.
    marks: Marks,
    pending_drop: u64,
    /// Lines taken from the tape and not yet delivered, their bytes, and until when to
    /// gather more.
    gathered: Vec<Arc<LogLine>>,
    gathered_bytes: usize,
    gather_until: tokio::time::Instant,
    metrics: Arc<Metrics>,
}

/// How long a subscriber gathers lines that come one by one before it sends them.
const GATHER: Duration = Duration::from_millis(10);

/// The most a subscriber is handed at once: one WebSocket message.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    pub lines: usize,
    pub bytes: usize,
}

/// What a subscriber receives next.
#[derive(Debug)]
pub enum Delivery {
    Lines(Vec<Arc<LogLine>>),
    /// The subscriber fell further behind than its queue holds: this many lines were skipped.
    Dropped(u64),
    /// A container of the service started, exited or was removed.
    Lifecycle(Arc<Lifecycle>),
}

impl Subscription {
    pub fn key(&self) -> &ServiceKey {
        &self.feed.key
    }

    /// Waits for the next lines, at most a `batch` at a time, or the next lifecycle change.
    ///
    /// Lines that come one by one are gathered for up to `GATHER` first, so that a busy
    /// service makes one message of many lines rather than one per line, and a subscriber is
    /// woken once per batch. Cancel-safe: what was gathered stays for the next call.
    pub async fn next(&mut self, batch: Batch) -> Delivery {
        loop {
            if self.pending_drop > 0 && self.gathered.is_empty() {
                let n = std::mem::take(&mut self.pending_drop);
                self.metrics.lines_dropped.fetch_add(n, Ordering::Relaxed);
                return Delivery::Dropped(n);
            }
            if self.gathered.is_empty() {
                if let Some(l) = self.pending_lifecycle.take() {
                    return Delivery::Lifecycle(l);
                }
                // Seen before the read, so a push after the read wakes the wait below.
                self.tape.borrow_and_update();
                self.take(batch);
                if self.gathered.is_empty() {
                    if self.pending_lifecycle.is_none() && self.pending_drop == 0 {
                        // The feed outlives its subscriptions, so the tape never closes first.
                        if self.tape.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                    continue;
                }
                self.gather_until = tokio::time::Instant::now() + GATHER;
            }
            if self.take(batch) {
                tokio::time::sleep_until(self.gather_until).await;
                self.take(batch);
            }
            let lines = std::mem::take(&mut self.gathered);
            self.gathered_bytes = 0;
            self.metrics
                .lines_out
                .fetch_add(lines.len() as u64, Ordering::Relaxed);
            return Delivery::Lines(lines);
        }
    }

    /// Takes what the tape holds now into `gathered`, up to a batch; true if it stopped
    /// because the tape had no more (more may come), false at a change, a loss, or a full
    /// batch.
    fn take(&mut self, batch: Batch) -> bool {
        if self.pending_lifecycle.is_some() || self.pending_drop > 0 {
            return false;
        }
        let mut gathered = std::mem::take(&mut self.gathered);
        let mut bytes = self.gathered_bytes;
        let mut lifecycle = None;
        let Taken { lost, exhausted } = {
            let state = self.feed.shared.lock();
            state.tape.read(&mut self.pos, |item| {
                if gathered.len() >= batch.lines || (bytes >= batch.bytes && !gathered.is_empty()) {
                    return Take::Leave;
                }
                match item {
                    Item::Line(line) => {
                        if accept(&mut self.marks, line) {
                            bytes += line_bytes(line);
                            gathered.push(line.clone());
                        }
                        Take::More
                    }
                    // A change ends a batch: it goes after the lines before it.
                    Item::Lifecycle(l) => {
                        lifecycle = Some(l.clone());
                        Take::Last
                    }
                }
            })
        };
        self.pending_lifecycle = lifecycle;
        self.pending_drop += lost;
        self.gathered = gathered;
        self.gathered_bytes = bytes;
        exhausted
    }
}

/// Whether `line` is new to a subscriber whose last lines per container are `marks`.
fn accept(marks: &mut Marks, line: &LogLine) -> bool {
    let pos = line.cursor.position();
    match marks.get_mut(&line.cursor.container) {
        Some(mark) if pos <= *mark => false,
        Some(mark) => {
            *mark = pos;
            true
        }
        None => {
            marks.insert(line.cursor.container.clone(), pos);
            true
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.metrics.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a one-off tail asks of a service's log.
#[derive(Clone, Copy, Debug)]
pub struct TailQuery {
    pub lines: u32,
    /// Only lines at or after this time (nanoseconds since the epoch).
    pub since_ns: Option<i64>,
    pub stdout: bool,
    pub stderr: bool,
}

/// Reads a service's last lines straight from the engine, merged across replicas in time
/// order. It holds at most `q.lines` lines per container while it reads, however long the
/// log, and counts as one of the engine reads `--max-engine-reads` bounds.
pub async fn engine_tail(
    engine: &Engine,
    cfg: &HubConfig,
    containers: &[ContainerInfo],
    q: TailQuery,
) -> Result<Vec<LogLine>, EngineError> {
    let _permit = cfg.reads.acquire().await?;
    let docker = engine.docker()?;
    let since_secs = q.since_ns.map_or(0, |ns| Timestamp { ns }.whole_seconds());
    let keep = q.lines as usize;
    let mut all = Vec::new();
    for c in containers {
        // The engine cuts its tail before it picks streams, so a tail of one stream may need
        // a wider window: widen until it holds enough lines, reaches `since`, or holds all.
        let mut window = q.lines.max(1);
        let lines = loop {
            let read_all = window >= 1 << 20;
            let query = LogQuery {
                since_secs,
                until_secs: None,
                tail: (!read_all).then_some(window),
                follow: false,
                stdout: q.stdout,
                stderr: q.stderr,
            };
            let mut before_since = false;
            let wanted = |l: &RawLine| {
                let keep = q.since_ns.is_none_or(|ns| l.ts.ns >= ns);
                before_since |= !keep;
                keep
            };
            match LogStream::open(&docker, &c.id, query, &cfg.lines)
                .keep_last(keep, wanted)
                .await
            {
                Ok((lines, _)) => {
                    let enough = lines.len() >= keep;
                    if read_all || enough || before_since || (q.stdout && q.stderr) {
                        break lines;
                    }
                    window = window.saturating_mul(8);
                }
                // Removed since it was listed: it has nothing more to say.
                Err(EngineError::NotFound(_)) => break Default::default(),
                Err(e) => {
                    engine.report(&e);
                    return Err(e);
                }
            }
        };
        all.extend(lines.into_iter().map(|l| log_line(l, c)));
    }
    all.sort_by(|a, b| a.cursor.cmp(&b.cursor));
    let skip = all.len().saturating_sub(keep);
    all.drain(..skip);
    Ok(all)
}
