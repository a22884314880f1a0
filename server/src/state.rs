//! What the request handlers can reach, and the part of it each takes: a handler names only
//! the state it needs (axum's `FromRef`), so no handler depends on the whole.

use std::sync::Arc;

use axum::extract::FromRef;
use tokio::sync::watch;

use crate::api::ApiState;
use crate::auth::{Auth, GuardState, SocketCounts, TrustedProxies};
use crate::builds::Builds;
use crate::config::Config;
use crate::hub::Hub;
use crate::ws::SocketState;

#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    /// Captured builds; None with history off, where they could not be kept.
    pub builds: Option<Builds>,
    pub config: Arc<Config>,
    pub auth: Arc<Auth>,
    pub trusted_proxies: Arc<TrustedProxies>,
    pub sockets: Arc<SocketCounts>,
    /// Becomes true when the server is asked to stop.
    pub shutdown: watch::Receiver<bool>,
}

impl FromRef<AppState> for Hub {
    fn from_ref(s: &AppState) -> Hub {
        s.hub.clone()
    }
}

impl FromRef<AppState> for Option<Builds> {
    fn from_ref(s: &AppState) -> Option<Builds> {
        s.builds.clone()
    }
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(s: &AppState) -> Arc<Auth> {
        s.auth.clone()
    }
}

impl FromRef<AppState> for Arc<TrustedProxies> {
    fn from_ref(s: &AppState) -> Arc<TrustedProxies> {
        s.trusted_proxies.clone()
    }
}

impl FromRef<AppState> for GuardState {
    fn from_ref(s: &AppState) -> GuardState {
        GuardState {
            config: s.config.clone(),
            auth: s.auth.clone(),
            trusted_proxies: s.trusted_proxies.clone(),
        }
    }
}

impl FromRef<AppState> for ApiState {
    fn from_ref(s: &AppState) -> ApiState {
        ApiState {
            hub: s.hub.clone(),
            auth: s.auth.mode(),
            max_tail: s.config.max_tail_lines,
        }
    }
}

impl FromRef<AppState> for SocketState {
    fn from_ref(s: &AppState) -> SocketState {
        SocketState {
            hub: s.hub.clone(),
            config: s.config.clone(),
            auth: s.auth.clone(),
            sockets: s.sockets.clone(),
            shutdown: s.shutdown.clone(),
        }
    }
}
