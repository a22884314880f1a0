//! The connection to the Docker engine: made lazily, watched, and made again with backoff
//! whenever the engine stops answering. Everyone else asks `Engine::docker()` for a client
//! and reports failures back, so there is one truth about whether the engine is reachable.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use app::protocol::EngineStatus;
use bollard::Docker;
use tokio::sync::{watch, Notify};

use super::address::{Address, EngineSpec};
use super::EngineError;

/// How often a reachable engine is pinged.
const PING_INTERVAL: Duration = Duration::from_secs(2);
/// Backoff between attempts to reach an unreachable engine.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Requests other than log and event streams give up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request that came before the engine's first check waits for it: a local
/// engine answers within milliseconds, and a slow remote one must not hold up the listing
/// of the others for long (the web app asks again once an engine is reachable).
const FIRST_CHECK_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    spec: EngineSpec,
    /// Places for an ssh engine's connections being set up, kept across its clients: a
    /// connection made before a reconnection still counts.
    ssh_handshakes: Arc<tokio::sync::Semaphore>,
    docker: RwLock<Option<Docker>>,
    status: watch::Sender<EngineStatus>,
    /// Whether the engine has been tried once: until then its status says only that it was
    /// not tried yet.
    checked: watch::Sender<bool>,
    /// Wakes the monitor early when a caller saw the engine fail.
    recheck: Notify,
    reconnects: std::sync::atomic::AtomicU64,
    /// Whether its last listing found it a Swarm manager with stacks.
    has_stacks: std::sync::atomic::AtomicBool,
    /// Its node's id when it is a Swarm manager: learnt at each connection, and again when a
    /// Swarm service changes.
    manager_node: RwLock<Option<String>>,
}

fn unreachable(name: &str, error: impl Into<String>) -> EngineStatus {
    EngineStatus {
        name: name.to_owned(),
        reachable: false,
        api_version: None,
        engine_version: None,
        error: Some(error.into()),
    }
}

impl Engine {
    /// Creates the handle and starts watching the engine in the background.
    pub fn start(spec: EngineSpec, ssh_handshakes: usize) -> Engine {
        let (status, _) = watch::channel(unreachable(&spec.name, "not yet connected"));
        let engine = Engine {
            inner: Arc::new(Inner {
                spec,
                ssh_handshakes: Arc::new(tokio::sync::Semaphore::new(ssh_handshakes.max(1))),
                docker: RwLock::new(None),
                status,
                checked: watch::channel(false).0,
                recheck: Notify::new(),
                reconnects: Default::default(),
                has_stacks: Default::default(),
                manager_node: RwLock::new(None),
            }),
        };
        tokio::spawn(engine.clone().monitor());
        engine
    }

    /// The name it goes by (`--engine NAME=URL`).
    pub fn name(&self) -> &str {
        &self.inner.spec.name
    }

    /// The current status; `changed()` on the receiver wakes on every change.
    pub fn status(&self) -> watch::Receiver<EngineStatus> {
        self.inner.status.subscribe()
    }

    pub fn is_reachable(&self) -> bool {
        self.inner.status.borrow().reachable
    }

    /// How many times the engine became reachable again after being lost.
    pub fn reconnects(&self) -> u64 {
        self.inner
            .reconnects
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the engine's last listing found it a Swarm manager with stacks: its other
    /// nodes' tasks come and go without an event, so its listing is asked for again every
    /// few seconds.
    pub fn has_stacks(&self) -> bool {
        self.inner
            .has_stacks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_has_stacks(&self, stacks: bool) {
        self.inner
            .has_stacks
            .store(stacks, std::sync::atomic::Ordering::Relaxed);
    }

    /// This engine's node id, when it is a Swarm manager.
    pub fn manager_node(&self) -> Option<String> {
        self.inner.manager_node.read().expect("engine lock").clone()
    }

    /// Asks the engine again whether it is a Swarm manager (`GET /info`).
    pub async fn learn_swarm_role(&self) {
        if let Ok(docker) = self.docker() {
            self.learn_swarm_role_of(&docker).await;
        }
    }

    async fn learn_swarm_role_of(&self, docker: &Docker) {
        let node = tokio::time::timeout(Duration::from_secs(5), super::swarm::manager_node(docker))
            .await
            .ok()
            .flatten();
        *self.inner.manager_node.write().expect("engine lock") = node;
    }

    /// A client for the engine, or why there is none.
    pub fn docker(&self) -> Result<Docker, EngineError> {
        if let Some(d) = self.inner.docker.read().expect("engine lock").as_ref() {
            if self.is_reachable() {
                return Ok(d.clone());
            }
        }
        let status = self.inner.status.borrow();
        Err(EngineError::Unreachable(
            status
                .error
                .clone()
                .unwrap_or_else(|| "not connected".into()),
        ))
    }

    /// A client for the engine, once it has been tried: a request that comes while a server
    /// is starting is answered as the engine is, not refused for not being tried yet.
    pub async fn client(&self) -> Result<Docker, EngineError> {
        let mut checked = self.inner.checked.subscribe();
        let _ = tokio::time::timeout(FIRST_CHECK_WAIT, checked.wait_for(|c| *c)).await;
        self.docker()
    }

    /// Waits until the engine is reachable.
    pub async fn wait_reachable(&self) {
        let mut rx = self.status();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|s| s.reachable).await;
    }

    /// Tells the monitor that a request failed in a way that suggests the engine is gone.
    pub fn report(&self, err: &EngineError) {
        if matches!(err, EngineError::Unreachable(_)) {
            self.inner.recheck.notify_one();
        }
    }

    async fn monitor(self) {
        let mut backoff = RETRY_MIN;
        let mut was_reachable = false;
        let mut ever_reachable = false;
        loop {
            match self.check().await {
                Ok(status) => {
                    if !was_reachable && ever_reachable {
                        self.inner
                            .reconnects
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if !was_reachable {
                        tracing::info!(
                            engine_name = self.name(),
                            api = status.api_version.as_deref().unwrap_or("?"),
                            engine = status.engine_version.as_deref().unwrap_or("?"),
                            "Docker engine reachable"
                        );
                    }
                    self.inner.status.send_if_modified(|s| {
                        let changed = *s != status;
                        *s = status;
                        changed
                    });
                    self.inner.checked.send_replace(true);
                    was_reachable = true;
                    ever_reachable = true;
                    backoff = RETRY_MIN;
                    tokio::select! {
                        _ = tokio::time::sleep(PING_INTERVAL) => {}
                        _ = self.inner.recheck.notified() => {}
                    }
                }
                Err(error) => {
                    if was_reachable || backoff == RETRY_MIN {
                        tracing::warn!(
                            engine_name = self.name(),
                            url = self.inner.spec.url(),
                            %error,
                            "Docker engine unreachable; retrying"
                        );
                    }
                    was_reachable = false;
                    *self.inner.docker.write().expect("engine lock") = None;
                    let status = unreachable(self.name(), error.to_string());
                    self.inner.status.send_if_modified(|s| {
                        let changed = *s != status;
                        *s = status;
                        changed
                    });
                    self.inner.checked.send_replace(true);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Connects if need be, and asks the engine for its version.
    async fn check(&self) -> Result<EngineStatus, EngineError> {
        let existing = self.inner.docker.read().expect("engine lock").clone();
        let docker = match existing {
            Some(d) => d,
            None => {
                let d = connect(&self.inner.spec, &self.inner.ssh_handshakes)?
                    .with_timeout(REQUEST_TIMEOUT);
                let d = tokio::time::timeout(REQUEST_TIMEOUT, d.negotiate_version())
                    .await
                    .map_err(|_| EngineError::Unreachable("no answer to /version".into()))?
                    .map_err(EngineError::from)?;
                *self.inner.docker.write().expect("engine lock") = Some(d.clone());
                self.learn_swarm_role_of(&d).await;
                d
            }
        };
        let version = tokio::time::timeout(Duration::from_secs(5), docker.version())
            .await
            .map_err(|_| EngineError::Unreachable("no answer to /version within 5 s".into()))?
            .map_err(EngineError::from)?;
        Ok(EngineStatus {
            name: self.name().to_owned(),
            reachable: true,
            api_version: version.api_version,
            engine_version: version.version,
            error: None,
        })
    }
}

/// A client for the engine at `spec`'s address; it connects on its first request.
fn connect(
    spec: &EngineSpec,
    ssh_handshakes: &Arc<tokio::sync::Semaphore>,
) -> Result<Docker, EngineError> {
    let timeout = REQUEST_TIMEOUT.as_secs();
    let version = bollard::API_DEFAULT_VERSION;
    let docker = match (&spec.address, &spec.tls) {
        // DOCKER_HOST, or the default unix socket.
        (Address::Default, _) => Docker::connect_with_defaults(),
        (Address::Unix(path), _) => {
            Docker::connect_with_unix(&path.to_string_lossy(), timeout, version)
        }
        (Address::Tcp { host, port }, Some(tls)) => {
            return super::tls::connect(host, *port, tls, timeout)
                .map_err(|e| EngineError::Unreachable(format!("{}: {e}", spec.url())));
        }
        (Address::Tcp { host, port }, None) => {
            Docker::connect_with_http(&format!("tcp://{host}:{port}"), timeout, version)
        }
        (Address::Ssh(target), _) => {
            return super::ssh::connect(target, timeout, ssh_handshakes.clone())
                .map_err(|e| EngineError::Unreachable(format!("{}: {e}", spec.url())));
        }
    };
    docker.map_err(|e| EngineError::Unreachable(format!("{}: {e}", spec.url())))
}
