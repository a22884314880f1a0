//! Server functions: the request/response questions (which services exist, a one-off tail,
//! history, search, a histogram of history).
//! Each has a fixed endpoint so that clients built elsewhere, curl and tests can call it.
//! The WebSocket carries everything live.

// A server function's arguments are its query's parameters, however many it has.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::history::{Histogram, HistoryPage, SearchPage};
use crate::protocol::{LogLine, ProjectInfo};

/// Who the page is shown to, for the header: the way Lookout authenticates, and the user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// `none`, `users` or `forward-proxy`.
    pub auth: String,
    /// The signed-in user; None without authentication.
    pub user: Option<String>,
}

/// What the server side of the server functions needs; the `lookout` binary provides it as
/// context, so this crate never depends on Docker.
#[cfg(feature = "ssr")]
pub mod backend {
    use std::sync::Arc;

    use futures::future::BoxFuture;

    use super::SessionInfo;
    use crate::history::{Histogram, HistoryPage, SearchPage};
    use crate::protocol::{LogLine, ProjectInfo};

    /// The parameters of `/api/history`, as text so that a bad one gets a clear 400.
    #[derive(Clone, Debug, Default)]
    pub struct HistoryAsk {
        /// The engine; without it, the server's default.
        pub engine: Option<String>,
        pub project: String,
        pub service: String,
        pub since: Option<String>,
        pub until: Option<String>,
        pub limit: Option<String>,
        pub before: Option<String>,
        pub after: Option<String>,
        /// Only lines stating these levels (`warn`, `>=warn`, `warn,error`).
        pub level: Option<String>,
    }

    /// The parameters of `/api/search`, as text.
    #[derive(Clone, Debug, Default)]
    pub struct SearchAsk {
        pub q: String,
        /// The engine searched; without it, every one.
        pub engine: Option<String>,
        pub project: Option<String>,
        pub service: Option<String>,
        pub since: Option<String>,
        pub until: Option<String>,
        pub limit: Option<String>,
        pub before: Option<String>,
    }

    /// The parameters of `/api/histogram`, as text.
    #[derive(Clone, Debug, Default)]
    pub struct HistogramAsk {
        /// The engine; without it, the server's default.
        pub engine: Option<String>,
        /// With `service`, the one service counted; without both, every service the viewer
        /// may see, which `q` must then be given for.
        pub project: Option<String>,
        pub service: Option<String>,
        pub since: Option<String>,
        pub until: Option<String>,
        pub buckets: Option<String>,
        /// Only lines matching this search query are counted.
        pub q: Option<String>,
    }

    /// A failed request: an HTTP status and a message for the user.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{message}")]
    pub struct ApiError {
        pub status: u16,
        pub message: String,
    }

    pub trait LogSource: Send + Sync {
        fn projects(&self) -> BoxFuture<'_, Result<Vec<ProjectInfo>, ApiError>>;
        fn tail(
            &self,
            engine: Option<String>,
            project: String,
            service: String,
            tail: Option<String>,
            since: Option<String>,
            streams: Option<String>,
        ) -> BoxFuture<'_, Result<Vec<LogLine>, ApiError>>;
        fn history(&self, ask: HistoryAsk) -> BoxFuture<'_, Result<HistoryPage, ApiError>>;
        fn search(&self, ask: SearchAsk) -> BoxFuture<'_, Result<SearchPage, ApiError>>;
        fn histogram(&self, ask: HistogramAsk) -> BoxFuture<'_, Result<Histogram, ApiError>>;
        fn session(&self) -> SessionInfo;
        /// Sets the HTTP status of the response being built.
        fn set_status(&self, status: u16);
    }

    /// The context every server function reads.
    #[derive(Clone)]
    pub struct Backend(pub Arc<dyn LogSource>);
}

#[cfg(feature = "ssr")]
fn fail(backend: &backend::Backend, e: backend::ApiError) -> ServerFnError {
    backend.0.set_status(e.status);
    ServerFnError::new(e.message)
}

/// All Compose projects with their services and containers. `GET /api/projects`.
#[server(endpoint = "projects", input = GetUrl)]
pub async fn list_projects() -> Result<Vec<ProjectInfo>, ServerFnError> {
    let backend = expect_context::<backend::Backend>();
    backend.0.projects().await.map_err(|e| fail(&backend, e))
}

/// A one-off tail of a service, from the engine, replicas merged in time order.
/// `GET /api/tail?project=P&service=S[&tail=N][&since=RFC3339|SECONDS][&streams=stdout|stderr|both][&engine=E]`.
/// Numbers and choices arrive as text so that a bad one gets a clear 400, not a decoding error.
#[server(endpoint = "tail", input = GetUrl)]
pub async fn tail(
    project: String,
    service: String,
    tail: Option<String>,
    since: Option<String>,
    streams: Option<String>,
    engine: Option<String>,
) -> Result<Vec<LogLine>, ServerFnError> {
    let backend = expect_context::<backend::Backend>();
    backend
        .0
        .tail(engine, project, service, tail, since, streams)
        .await
        .map_err(|e| fail(&backend, e))
}

/// A page of a service's stored past, kept after its containers are gone.
/// `GET /api/history?project=P&service=S[&since=T][&until=T][&limit=N][&before=CURSOR|&after=CURSOR][&level=LEVELS][&engine=E]`.
/// Without `since`, `after` or `before`: the newest lines up to `until` (or now). `level`
/// keeps only lines stating those levels (`warn`, `>=warn`, `warn,error`).
#[server(endpoint = "history", input = GetUrl)]
pub async fn history(
    project: String,
    service: String,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    before: Option<String>,
    after: Option<String>,
    level: Option<String>,
    engine: Option<String>,
) -> Result<HistoryPage, ServerFnError> {
    let backend = expect_context::<backend::Backend>();
    let ask = backend::HistoryAsk {
        engine,
        project,
        service,
        since,
        until,
        limit,
        before,
        after,
        level,
    };
    backend.0.history(ask).await.map_err(|e| fail(&backend, e))
}

/// Stored lines of every service the viewer may see that match a query, newest first.
/// `GET /api/search?q=QUERY[&project=P][&service=S][&since=T][&until=T][&limit=N][&before=CURSOR][&engine=E]`.
/// Every engine is searched, or `engine` alone.
#[server(endpoint = "search", input = GetUrl)]
pub async fn search(
    q: String,
    project: Option<String>,
    service: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    before: Option<String>,
    engine: Option<String>,
) -> Result<SearchPage, ServerFnError> {
    let backend = expect_context::<backend::Backend>();
    let ask = backend::SearchAsk {
        q,
        engine,
        project,
        service,
        since,
        until,
        limit,
        before,
    };
    backend.0.search(ask).await.map_err(|e| fail(&backend, e))
}

/// A picture of a service's stored past: its lines counted in `buckets` stretches of time
/// (default 60, at most 500), by level and by stream; with `q`, only the lines matching
/// that search query.
/// `GET /api/histogram?project=P&service=S[&since=T][&until=T][&buckets=N][&q=QUERY][&engine=E]`.
/// Without `until`: now; without `since`: the older of the service's oldest stored line and
/// an hour before `until`. Without `project` and `service`, `q`'s matches in every service
/// the viewer may see: a picture of search results.
// The server function's own type would be named `Histogram` too, as its answer is.
#[server(name = HistogramFn, endpoint = "histogram", input = GetUrl)]
pub async fn histogram(
    project: Option<String>,
    service: Option<String>,
    since: Option<String>,
    until: Option<String>,
    buckets: Option<String>,
    q: Option<String>,
    engine: Option<String>,
) -> Result<Histogram, ServerFnError> {
    let backend = expect_context::<backend::Backend>();
    let ask = backend::HistogramAsk {
        engine,
        project,
        service,
        since,
        until,
        buckets,
        q,
    };
    backend
        .0
        .histogram(ask)
        .await
        .map_err(|e| fail(&backend, e))
}

/// Who is signed in. `GET /api/session`.
#[server(endpoint = "session", input = GetUrl)]
pub async fn session() -> Result<SessionInfo, ServerFnError> {
    let backend = expect_context::<backend::Backend>();
    Ok(backend.0.session())
}
