//! The server side of the server functions declared in `app::api`.

use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;

use app::api::backend::{ApiError, Backend, HistogramAsk, HistoryAsk, LogSource, SearchAsk};
use app::api::SessionInfo;
use app::history::{Histogram, HistoryPage, SearchPage};
use app::protocol::{LogLine, ProjectInfo, Streams, Tail, TailOverLimit};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Extension;

use crate::auth::{Mode, Viewer};
use crate::clock::{now_ns, parse_when};
use crate::docker::past::TailQuery;
use crate::docker::EngineError;
use crate::hub::{Hub, HubError};

/// What the server functions need.
#[derive(Clone)]
pub struct ApiState {
    pub hub: Hub,
    pub auth: Mode,
    /// `--max-tail-lines`.
    pub max_tail: u32,
}

/// `/api/{fn}`: the server functions, each answered for the viewer who asks.
pub async fn route(
    State(state): State<ApiState>,
    Extension(viewer): Extension<Viewer>,
    req: Request<Body>,
) -> impl IntoResponse {
    let backend = Backend(Arc::new(EngineBackend {
        hub: state.hub,
        viewer,
        auth: state.auth,
        max_tail: state.max_tail,
    }));
    leptos_axum::handle_server_fns_with_context(
        move || leptos::prelude::provide_context(backend.clone()),
        req,
    )
    .await
}

/// The server functions' view of Lookout for one request: what its viewer may see.
pub struct EngineBackend {
    pub hub: Hub,
    pub viewer: Viewer,
    pub auth: Mode,
    /// `--max-tail-lines`.
    pub max_tail: u32,
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

fn api_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status: status.as_u16(),
        message: message.into(),
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match e {
            EngineError::Unreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
            EngineError::NotFound(_) => StatusCode::NOT_FOUND,
            EngineError::Api(_) => StatusCode::BAD_GATEWAY,
            EngineError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        api_error(status, e.to_string())
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::UnknownService(e) => api_error(StatusCode::NOT_FOUND, e.to_string()),
            HubError::Engine(e) => e.into(),
        }
    }
}

/// `since` as RFC 3339, Unix seconds, or a duration back from now, in nanoseconds.
fn parse_since(since: &str) -> Result<i64, ApiError> {
    parse_when(since, now_ns())
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, format!("since: {e}")))
}

impl LogSource for EngineBackend {
    fn projects(&self) -> Fut<'_, Vec<ProjectInfo>> {
        Box::pin(async move { Ok(self.viewer.scope.filter(&self.hub.list().await?)) })
    }

    fn tail(
        &self,
        engine: Option<String>,
        project: String,
        service: String,
        tail: Option<String>,
        since: Option<String>,
        streams: Option<String>,
    ) -> Fut<'_, Vec<LogLine>> {
        Box::pin(async move {
            let tail = match tail.as_deref() {
                None => Tail::DEFAULT,
                Some(t) => t
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| {
                        api_error(
                            StatusCode::BAD_REQUEST,
                            format!("tail must be a whole number of lines, got {t:?}"),
                        )
                    })
                    .and_then(|n| {
                        Tail::try_from(n)
                            .map_err(|e| api_error(StatusCode::BAD_REQUEST, e.to_string()))
                    })?,
            };
            if tail.get() > self.max_tail {
                let over = TailOverLimit {
                    most: self.max_tail,
                    got: tail.get(),
                };
                return Err(api_error(StatusCode::BAD_REQUEST, over.to_string()));
            }
            let streams = match streams.as_deref().map(str::parse::<Streams>) {
                None => Streams::Both,
                Some(Ok(s)) => s,
                Some(Err(e)) => return Err(api_error(StatusCode::BAD_REQUEST, e.to_string())),
            };
            let since_ns = since.as_deref().map(parse_since).transpose()?;
            let key = self.hub.key(engine, project, service);
            let query = TailQuery {
                lines: tail.get(),
                since_ns,
                streams,
            };
            Ok(self.hub.tail(&key, &self.viewer.scope, query).await?)
        })
    }

    fn history(&self, ask: HistoryAsk) -> Fut<'_, HistoryPage> {
        Box::pin(crate::recall::history(&self.hub, &self.viewer.scope, ask))
    }

    fn search(&self, ask: SearchAsk) -> Fut<'_, SearchPage> {
        Box::pin(crate::recall::search(&self.hub, &self.viewer.scope, ask))
    }

    fn histogram(&self, ask: HistogramAsk) -> Fut<'_, Histogram> {
        Box::pin(crate::histogram::histogram(
            &self.hub,
            &self.viewer.scope,
            ask,
        ))
    }

    fn session(&self) -> SessionInfo {
        let auth = match self.auth {
            Mode::None => "none",
            Mode::Users => "users",
            Mode::ForwardProxy => "forward-proxy",
        };
        SessionInfo {
            auth: auth.to_owned(),
            user: self.viewer.name.clone(),
        }
    }

    fn set_status(&self, status: u16) {
        if let (Some(opts), Ok(status)) = (
            leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
            StatusCode::from_u16(status),
        ) {
            opts.set_status(status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_rfc3339_seconds_and_durations() {
        assert_eq!(parse_since("10").unwrap(), 10_000_000_000);
        assert_eq!(
            parse_since("1970-01-01T00:00:01.5Z").unwrap(),
            1_500_000_000
        );
        let err = parse_since("yesterday").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("\"yesterday\""));
        let an_hour_ago = parse_since("1h").unwrap();
        assert!((now_ns() - an_hour_ago - 3_600_000_000_000).abs() < 60_000_000_000);
    }
}
