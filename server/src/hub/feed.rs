//! One service's live state: a follower task per container, and the ring and tape they fill.
//! A feed lives while someone subscribes to its service; when the last subscription is
//! dropped, so is the feed, and its followers stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::protocol::{ContainerInfo, LifecycleEvent, ServiceKey};
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::AbortHandle;

use super::exits::Exits;
use super::follower::{Backfill, Follower};
use super::metrics::Metrics;
use super::ring::RingCaps;
use super::shared::Shared;
use super::HubConfig;
use crate::docker::logs::LineRules;
use crate::docker::Engine;
use crate::history::{History, Recorder};

pub struct Feed {
    pub key: ServiceKey,
    pub shared: Arc<Shared>,
    engine: Engine,
    rules: LineRules,
    exits: Arc<Exits>,
    history: Option<History>,
    followers: Mutex<HashMap<String, Task>>,
    /// Becomes true once every container's recent past is in the ring.
    pub ready: watch::Receiver<bool>,
}

/// A running follower: how to stop it and how to tell it to look again.
struct Task {
    task: AbortHandle,
    wake: Arc<Notify>,
    /// The change in its container's life not read from its log (a health verdict): kept
    /// and shown as the follower's own are.
    recorder: Option<Recorder>,
    container: ContainerInfo,
    /// What the latest listing said of it (None: not listed).
    listed: Option<ContainerInfo>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        for f in self.followers.lock().expect("followers lock").values() {
            f.task.abort();
        }
    }
}

impl Feed {
    pub fn start(
        key: ServiceKey,
        containers: &[ContainerInfo],
        engine: Engine,
        cfg: &HubConfig,
        metrics: Arc<Metrics>,
        exits: Arc<Exits>,
        history: Option<History>,
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
            history,
            followers: Mutex::new(HashMap::new()),
            ready,
        });
        let mut backfills = Vec::new();
        for c in containers {
            let (done, done_rx) = oneshot::channel();
            let backfill = Backfill {
                lines: cfg.ring_lines as u32,
                done,
            };
            feed.spawn_follower(c.clone(), Some(backfill));
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
    pub fn sync(&self, containers: &[ContainerInfo]) {
        let mut followers = self.followers.lock().expect("followers lock");
        // A follower ends when its container is removed. It is forgotten only once the
        // listing no longer holds the container: a listing read just before the removal
        // would otherwise start a second follower, and a second "removed".
        followers.retain(|id, f| !f.task.is_finished() || containers.iter().any(|c| c.id == *id));
        let new: Vec<&ContainerInfo> = containers
            .iter()
            .filter(|c| !followers.contains_key(&c.id))
            .collect();
        for (id, f) in followers.iter_mut() {
            let listed = containers.iter().find(|c| c.id == *id);
            // A container's follower looks again at every event. A Swarm task's on another
            // node only when the manager's listing of it changed: that listing is asked for
            // every 2 s, and each look is a request through the manager.
            let changed = listed != f.listed.as_ref();
            if f.container.task.is_none() || changed {
                f.wake.notify_one();
            }
            f.listed = listed.cloned();
        }
        drop(followers);
        for c in new {
            // A container that appeared after the feed started: all of its lines are new.
            self.spawn_follower(c.clone(), None);
        }
    }

    /// Whether any of its followers still runs.
    pub fn is_following(&self) -> bool {
        let followers = self.followers.lock().expect("followers lock");
        followers.values().any(|f| !f.task.is_finished())
    }

    fn spawn_follower(&self, container: ContainerInfo, backfill: Option<Backfill>) {
        let wake = Arc::new(Notify::new());
        let recorder = self
            .history
            .clone()
            .map(|h| Recorder::new(h, &self.key, &container));
        let follower = Follower::new(
            self.shared.clone(),
            self.engine.clone(),
            container.clone(),
            self.rules.clone(),
            self.exits.clone(),
            wake.clone(),
            recorder.clone(),
        );
        let task = tokio::spawn(follower.run(backfill));
        self.followers.lock().expect("followers lock").insert(
            container.id.clone(),
            Task {
                task: task.abort_handle(),
                wake,
                recorder,
                listed: Some(container.clone()),
                container,
            },
        );
    }

    /// Keeps and shows a change in the life of container `id`, if this feed follows it.
    pub async fn lifecycle(&self, id: &str, ts_ns: i64, event: LifecycleEvent) -> bool {
        let found = {
            let followers = self.followers.lock().expect("followers lock");
            followers
                .get(id)
                .map(|t| (t.recorder.clone(), t.container.clone()))
        };
        let Some((recorder, container)) = found else {
            return false;
        };
        if let Some(r) = recorder {
            r.event(ts_ns, event.clone()).await;
        }
        self.shared.lifecycle(ts_ns, &container, event);
        true
    }
}
