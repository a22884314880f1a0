//! The hub: exactly one engine log stream per container, whatever the number of viewers; a
//! bounded ring of recent lines per service; fan-out to subscribers through one bounded
//! tape per service.
//!
//! Lines flow one way: a `Follower` per container reads the engine and pushes lines into its
//! service's `Shared` (the `Ring` and the `Tape`); each `Subscription` reads the tape from
//! its own place. A `Feed` (a service's followers and shared state) lives while someone
//! subscribes to its service. The rooms:
//!
//! - `feed`: a service's followers, started and woken as its containers come and go;
//! - `follower`: one container's log, followed through stops, restarts and outages;
//!   `stall` says when its stream has stalled, `reopen` how it opens one again;
//! - `shared`, `ring`, `tape`: what followers write and subscribers read, under one lock;
//! - `subscription`: a subscriber's backlog, then its batches from the tape;
//! - `markers`: the starts and exits a new subscriber was not there to see;
//! - `missed`: what a resuming subscriber missed beyond the ring, from history or the engine;
//! - `exits`, `events`: the engine's events, the listing they keep current, and how
//!   containers ended;
//! - `metrics`: the counters on /metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use app::protocol::{
    Cursor, ProjectInfo, ServiceInfo, ServiceKey, ServiceState, Streams, UnknownService,
};
use tokio::sync::watch;

use crate::auth::scope::Scope;
use crate::docker::discovery;
use crate::docker::logs::LineRules;
use crate::docker::past::{Filled, PastReads};
use crate::docker::{Engine, EngineError, Engines};
use crate::history::History;
use crate::line::Line;
use crate::permits::ReadPermits;

mod events;
mod exits;
mod feed;
mod follower;
mod given;
mod keeper;
mod markers;
mod metrics;
mod missed;
mod order;
mod reopen;
mod ring;
mod shared;
mod stall;
mod subscription;
mod tape;

/// How long a viewer that comes before any engine was listed waits for a listing.
const FIRST_LISTING_WAIT: Duration = Duration::from_secs(2);

use exits::Exits;
use feed::Feed;
pub use metrics::Metrics;
use shared::Snapshot;
use subscription::Opening;
pub use subscription::{Batch, Delivery, Subscription};
pub use tape::Bounds;

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

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
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
    engines: Engines,
    cfg: HubConfig,
    feeds: Mutex<HashMap<ServiceKey, Weak<Feed>>>,
    /// Each engine's latest listing; an engine that cannot be reached keeps its last.
    listings: Mutex<BTreeMap<String, Vec<ProjectInfo>>>,
    /// Every engine's listing together, in engine then project order.
    services: watch::Sender<Vec<ProjectInfo>>,
    /// Whether some engine has been listed yet: until then the listing's emptiness says
    /// nothing.
    listed: watch::Sender<bool>,
    metrics: Arc<Metrics>,
    exits: Arc<Exits>,
    /// Where every line read is kept, unless `--history off`.
    history: Option<History>,
    /// With history on, the feed of every listed service, kept while nobody looks.
    kept: Mutex<HashMap<ServiceKey, Arc<Feed>>>,
}

impl Hub {
    /// Creates the hub and starts watching each engine's container events.
    pub fn start(engines: Engines, cfg: HubConfig, history: Option<History>) -> Hub {
        let (services, _) = watch::channel(Vec::new());
        let hub = Hub {
            inner: Arc::new(HubInner {
                engines,
                cfg,
                feeds: Mutex::new(HashMap::new()),
                listings: Mutex::new(BTreeMap::new()),
                services,
                listed: watch::channel(false).0,
                metrics: Arc::new(Metrics::default()),
                exits: Arc::new(Exits::default()),
                history,
                kept: Mutex::new(HashMap::new()),
            }),
        };
        for engine in hub.inner.engines.iter() {
            tokio::spawn(hub.clone().watch_events(engine.clone()));
        }
        hub
    }

    pub fn engines(&self) -> &Engines {
        &self.inner.engines
    }

    /// The service a request names: on the engine it names, or on the default one.
    pub fn key(&self, engine: Option<String>, project: String, service: String) -> ServiceKey {
        ServiceKey {
            engine: self.inner.engines.name_or_default(engine),
            project,
            service,
        }
    }

    /// The engine of `key`, if this server reads one of that name.
    fn engine_of(&self, key: &ServiceKey) -> Result<&Engine, HubError> {
        self.inner
            .engines
            .get(&key.engine)
            .ok_or_else(|| UnknownService(key.clone()).into())
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.cfg
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// History on disk, unless `--history off`.
    pub fn history(&self) -> Option<&History> {
        self.inner.history.as_ref()
    }

    /// One-off reads of what `key`'s engine holds: tails and whole logs.
    pub fn past(&self, key: &ServiceKey) -> Result<PastReads, HubError> {
        Ok(PastReads {
            engine: self.engine_of(key)?.clone(),
            permits: self.inner.cfg.reads.clone(),
            rules: self.inner.cfg.lines.clone(),
        })
    }

    /// The latest listing of projects; changes whenever a container does.
    pub fn services(&self) -> watch::Receiver<Vec<ProjectInfo>> {
        self.inner.services.subscribe()
    }

    /// Waits, for a moment at most, until some engine has been listed: a viewer that comes
    /// as the server starts is then told the projects there are, not that there are none.
    pub async fn first_listing(&self) {
        let mut listed = self.inner.listed.subscribe();
        let _ = tokio::time::timeout(FIRST_LISTING_WAIT, listed.wait_for(|l| *l)).await;
    }

    /// Lists the projects of every engine now. An engine that cannot answer is listed as
    /// it was last seen, so that one down never hides the others; only when none answers
    /// is it an error.
    pub async fn list(&self) -> Result<Vec<ProjectInfo>, EngineError> {
        let engines: Vec<&Engine> = self.inner.engines.iter().collect();
        let lists = futures::future::join_all(engines.iter().map(|e| self.list_engine(e))).await;
        let (mut first_error, mut failures) = (None, 0);
        let mut all = Vec::new();
        for (engine, listed) in engines.iter().zip(lists) {
            match listed {
                Ok(projects) => all.extend(projects),
                Err(e) => {
                    let listings = self.inner.listings.lock().expect("listings lock");
                    all.extend(listings.get(engine.name()).cloned().unwrap_or_default());
                    first_error.get_or_insert(e);
                    failures += 1;
                }
            }
        }
        // Every engine failed: as with one engine, an error, not a listing that may be stale.
        match first_error.filter(|_| failures == engines.len()) {
            Some(e) => Err(e),
            None => Ok(all),
        }
    }

    /// Lists the projects of the engine named `name` now: none of an engine this server does
    /// not read.
    pub async fn list_of(&self, name: &str) -> Result<Vec<ProjectInfo>, EngineError> {
        match self.inner.engines.get(name) {
            Some(engine) => self.list_engine(engine).await,
            None => Ok(Vec::new()),
        }
    }

    /// Lists one engine's projects now; with history, the services whose containers are
    /// all gone too, as removed, while their lines are kept.
    pub(super) async fn list_engine(
        &self,
        engine: &Engine,
    ) -> Result<Vec<ProjectInfo>, EngineError> {
        let docker = engine.client().await?;
        let project = self.inner.cfg.project.as_deref();
        let node = engine.manager_node();
        let listing = discovery::list_projects(&docker, engine.name(), project, node.as_deref())
            .await
            .inspect_err(|e| engine.report(e))?;
        engine.set_has_stacks(listing.has_stacks);
        let mut projects = listing.projects;
        if let Some(history) = &self.inner.history {
            let shown = |k: &ServiceKey| self.may_see(k, &Scope::All);
            let kept = history.services(vec![engine.name().to_owned()]).await;
            add_removed(&mut projects, kept.into_iter().filter(shown));
        }
        Ok(projects)
    }

    /// Whether this server shows the service (`--project`) and `scope` lets its viewer see
    /// it, whether or not it still exists: the one rule, for the live and the stored alike.
    pub fn may_see(&self, key: &ServiceKey, scope: &Scope) -> bool {
        let project = self.inner.cfg.project.as_ref();
        // An engine this server does not read (`@build`, a typo) holds nothing to see.
        self.inner.engines.get(&key.engine).is_some()
            && project.is_none_or(|p| *p == key.project)
            && scope.allows(key)
    }

    /// The service `key` names, if this server shows it (`--project`) and `scope` lets its
    /// viewer see it: the one check every route makes. A service out of sight reads as one
    /// that does not exist.
    pub async fn service(&self, key: &ServiceKey, scope: &Scope) -> Result<ServiceInfo, HubError> {
        if !self.may_see(key, scope) {
            return Err(UnknownService(key.clone()).into());
        }
        let engine = self.engine_of(key)?;
        let docker = engine.client().await?;
        discovery::find_service(&docker, key, engine.manager_node().as_deref())
            .await
            .inspect_err(|e| engine.report(e))?
            .ok_or_else(|| UnknownService(key.clone()).into())
    }

    /// Follows a service for a viewer with `scope`.
    pub async fn subscribe(
        &self,
        key: ServiceKey,
        scope: &Scope,
        start: Start,
    ) -> Result<Subscription, HubError> {
        let info = self.service(&key, scope).await?;
        let engine = self.engine_of(&key)?.clone();
        let feed = self.feed(&engine, &key, &info);
        let mut ready = feed.ready.clone();
        // The backfill of a fresh feed is a few engine requests; don't wait on a stuck engine
        // for ever: the lines will still arrive live.
        let _ = tokio::time::timeout(Duration::from_secs(15), ready.wait_for(|r| *r)).await;
        let mut snapshot = feed.shared.snapshot(&start);
        let containers = info.containers;
        let mut lost = 0;
        let mut unread = None;
        let gaps = std::mem::take(&mut snapshot.gaps);
        if !gaps.is_empty() {
            let keep = self.inner.cfg.ring_lines;
            match self.missed(&key, &containers, gaps, keep).await {
                Ok(Filled { lines, left_out }) => {
                    lost = left_out;
                    let backlog = &mut snapshot.backlog;
                    backlog.extend(lines);
                    backlog.sort_by(|a, b| a.cursor.cmp(&b.cursor));
                    // The engine stamps stdout and stderr apart, so a line written after the
                    // ring's first line can be stamped before it: the gap then holds it too.
                    backlog.dedup_by(|a, b| a.cursor == b.cursor);
                }
                Err(e) => unread = Some(e),
            }
            self.inner.metrics.dropped(lost);
        }
        let older = std::mem::take(&mut snapshot.older);
        if let Start::Tail(n) = start {
            // As many as the whole tail: a late-stamped line may be in the ring and history
            // both, and is kept once.
            let wanted = if snapshot.backlog.len() < n as usize {
                n as usize
            } else {
                0
            };
            let mut earlier = self.older(&key, older, wanted, Streams::Both).await;
            if !earlier.is_empty() {
                earlier.append(&mut snapshot.backlog);
                snapshot.backlog = in_order_once(earlier, n as usize);
            }
        }
        let markers = match markers_since(&start, &snapshot) {
            Some(since) => {
                markers::recent_changes(&engine, &containers, since, &snapshot.backlog).await
            }
            None => Vec::new(),
        };
        let opening = Opening {
            containers,
            lost,
            unread,
            markers,
        };
        Ok(Subscription::new(feed, snapshot, opening))
    }

    /// The live feed of a service of `engine`, created if nobody follows it yet.
    fn feed(&self, engine: &Engine, key: &ServiceKey, info: &ServiceInfo) -> Arc<Feed> {
        let mut feeds = self.inner.feeds.lock().expect("feeds lock");
        if let Some(feed) = feeds.get(key).and_then(Weak::upgrade) {
            feed.sync(&info.containers);
            return feed;
        }
        let feed = Feed::start(
            key.clone(),
            &info.containers,
            engine.clone(),
            &self.inner.cfg,
            self.inner.metrics.clone(),
            self.inner.exits.clone(),
            self.inner.history.clone(),
        );
        feeds.retain(|_, f| f.strong_count() > 0);
        feeds.insert(key.clone(), Arc::downgrade(&feed));
        feed
    }
}

/// The newest `n` of `lines`, in cursor order, each once: a line stamped before the ring's
/// first line (the engine stamps stdout and stderr apart) is in the ring and in history.
pub(super) fn in_order_once(mut lines: Vec<Arc<Line>>, n: usize) -> Vec<Arc<Line>> {
    lines.sort_by(|a, b| a.cursor.cmp(&b.cursor));
    lines.dedup_by(|a, b| a.cursor == b.cursor);
    lines.drain(..lines.len().saturating_sub(n));
    lines
}

/// From when a new subscriber is shown the starts and exits it missed: none for an empty
/// tail, all for a tail that holds the whole log.
fn markers_since(start: &Start, snapshot: &Snapshot) -> Option<i64> {
    match start {
        Start::Tail(0) => None,
        Start::Tail(_) if snapshot.whole => Some(i64::MIN),
        Start::Tail(_) => Some(
            snapshot
                .backlog
                .first()
                .map_or(i64::MIN, |l| l.cursor.ts_ns),
        ),
        Start::Resume(cursors) => cursors.iter().map(|c| c.ts_ns).min(),
    }
}

/// Lists `kept` services that `projects` does not, as removed, in name order.
fn add_removed(projects: &mut Vec<ProjectInfo>, kept: impl Iterator<Item = ServiceKey>) {
    for key in kept {
        if app::protocol::find_service(projects, &key).is_some() {
            continue;
        }
        let removed = ServiceInfo {
            engine: key.engine.clone(),
            project: key.project.clone(),
            service: key.service,
            state: ServiceState::Removed,
            replicas: 0,
            desired: None,
            containers: Vec::new(),
        };
        match projects
            .iter_mut()
            .find(|p| p.engine == key.engine && p.name == key.project)
        {
            Some(p) => {
                p.services.push(removed);
                p.services.sort_by(|a, b| a.service.cmp(&b.service));
            }
            None => projects.push(ProjectInfo {
                engine: key.engine,
                name: key.project,
                services: vec![removed],
            }),
        }
    }
    projects.sort_by(|a, b| (&a.engine, &a.name).cmp(&(&b.engine, &b.name)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::shared::tests::container;
    use crate::hub::shared::tests::raw;

    #[test]
    fn a_tail_made_of_history_and_ring_is_in_order_with_each_line_once() {
        let c = container("abc");
        let line = |ns| Line::shared(crate::docker::logs::log_line(raw(ns, "x"), &c));
        // History's lines before the ring; one stamped late is in both.
        let lines = vec![line(1), line(3), line(5), line(2), line(3), line(4)];
        let got: Vec<i64> = in_order_once(lines, 4)
            .iter()
            .map(|l| l.cursor.ts_ns)
            .collect();
        assert_eq!(got, [2, 3, 4, 5]);
    }
}
