//! Keeps the listing of projects current and tells feeds about new and restarted
//! containers, from the engine's container events.

use std::sync::{Arc, Weak};
use std::time::Duration;

use app::protocol::{Health, LifecycleEvent, ProjectInfo, ServiceInfo, ServiceState};
use futures::StreamExt;

use super::exits::Exit;
use super::feed::Feed;
use super::Hub;
use crate::docker::events::{container_events, ContainerEvent};
use crate::docker::Engine;

/// How often a Swarm manager's listing is asked for again (its other nodes' tasks).
const SWARM_POLL: Duration = Duration::from_secs(2);

impl Hub {
    /// Runs for as long as the server does, through `engine`'s outages.
    pub(super) async fn watch_events(self, engine: Engine) {
        // Health verdicts are handed on by one task, in the order they came: a container's
        // `unhealthy` never overtakes the `starting` before it.
        let (verdicts, mut to_tell) = tokio::sync::mpsc::channel(1024);
        let teller = self.clone();
        tokio::spawn(async move {
            while let Some((id, ts_ns, health)) = to_tell.recv().await {
                teller.health_changed(id, ts_ns, health).await;
            }
        });
        loop {
            engine.wait_reachable().await;
            let Ok(docker) = engine.docker() else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let mut events = container_events(&docker, self.inner.cfg.project.as_deref());
            // Events may have been missed while the stream was down: refresh first. A listing
            // the engine failed to give is asked for again, or the last one would stay.
            let mut dirty = !self.refresh(&engine).await;
            loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(Ok(event)) => {
                            match event {
                                ContainerEvent::Died { id, ts_ns, exit_code } => {
                                    self.inner.exits.record(id, Exit { ts_ns, code: exit_code });
                                }
                                ContainerEvent::Health { id, ts_ns, health } => {
                                    let _ = verdicts.send((id, ts_ns, health)).await;
                                }
                                // A swarm made or joined since the connection.
                                ContainerEvent::Stacks if engine.manager_node().is_none() => {
                                    engine.learn_swarm_role().await;
                                }
                                ContainerEvent::Stacks | ContainerEvent::Changed => {}
                            }
                            dirty = true;
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "event stream ended");
                            engine.report(&e);
                            break;
                        }
                        None => break,
                    },
                    // Events come in bursts (create, start, attach...): refresh once per burst.
                    _ = tokio::time::sleep(Duration::from_millis(100)), if dirty => {
                        dirty = !self.refresh(&engine).await;
                    }
                    // A manager's other nodes' tasks start and end without an event here.
                    _ = tokio::time::sleep(SWARM_POLL), if !dirty && engine.has_stacks() => {
                        dirty = !self.refresh(&engine).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Tells the feed that follows container `id` (with history on, every container has
    /// one) of its new health verdict, to be kept and shown among its lines.
    async fn health_changed(&self, id: String, ts_ns: i64, health: Health) {
        for feed in self.live_feeds() {
            if feed
                .lifecycle(&id, ts_ns, LifecycleEvent::Health { health })
                .await
            {
                return;
            }
        }
    }

    /// The feeds someone still holds.
    fn live_feeds(&self) -> Vec<Arc<Feed>> {
        let feeds = self.inner.feeds.lock().expect("feeds lock");
        feeds.values().filter_map(Weak::upgrade).collect()
    }

    /// Lists `engine`'s projects again, and tells its feeds and viewers what changed; false
    /// if the engine could not list them.
    async fn refresh(&self, engine: &Engine) -> bool {
        let Ok(projects) = self.list_engine(engine).await else {
            return false;
        };
        self.keep_feeds(engine, &projects);
        for feed in self.live_feeds() {
            if feed.key.engine != engine.name() {
                continue;
            }
            let containers = app::protocol::find_service(&projects, &feed.key)
                .map(|s| s.containers.as_slice())
                .unwrap_or_default();
            feed.sync(containers);
        }
        let all: Vec<ProjectInfo> = {
            let mut listings = self.inner.listings.lock().expect("listings lock");
            listings.insert(engine.name().to_owned(), projects);
            listings.values().flatten().cloned().collect()
        };
        self.inner.services.send_if_modified(|old| {
            let changed = *old != all;
            *old = all;
            changed
        });
        self.inner.listed.send_replace(true);
        true
    }

    /// With history on, every listed service has a feed whether or not anyone looks, so
    /// that every line is kept. A service no longer listed is let go once its followers
    /// have ended: they end when they have seen their containers removed (and kept that).
    fn keep_feeds(&self, engine: &Engine, projects: &[ProjectInfo]) {
        if self.inner.history.is_none() {
            return;
        }
        let listed: Vec<&ServiceInfo> = projects
            .iter()
            .flat_map(|p| &p.services)
            .filter(|s| s.state != ServiceState::Removed)
            .collect();
        let mut kept = self.inner.kept.lock().expect("kept feeds lock");
        kept.retain(|key, feed| {
            key.engine != engine.name()
                || listed.iter().any(|s| s.key() == *key)
                || feed.is_following()
        });
        for service in listed {
            let key = service.key();
            if let std::collections::hash_map::Entry::Vacant(place) = kept.entry(key) {
                let feed = self.feed(engine, place.key(), service);
                place.insert(feed);
            }
        }
    }
}
