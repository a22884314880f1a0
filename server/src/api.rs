//! The server side of the server functions declared in `app::api`.

use std::future::Future;
use std::pin::Pin;

use app::api::backend::{ApiError, LogSource};
use app::api::SessionInfo;
use app::protocol::Streams;
use app::protocol::{LogLine, ProjectInfo, ServiceKey, Tail};
use axum::http::StatusCode;

use crate::auth::{Mode, Viewer};
use crate::docker::frames::Timestamp;
use crate::docker::EngineError;
use crate::hub::{engine_tail, Hub, TailQuery};

/// The server functions' view of Lookout for one request: what its viewer may see.
pub struct EngineBackend {
    pub hub: Hub,
    pub viewer: Viewer,
    pub auth: Mode,
    /// `--max-tail-lines`.
    pub max_tail: u32,
}

impl EngineBackend {
    fn may_see(&self, key: &ServiceKey) -> bool {
        self.hub.in_scope(key) && self.viewer.scope.allows(key)
    }
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
            EngineError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        api_error(status, e.to_string())
    }
}

/// `since` as RFC 3339 or as Unix seconds, in nanoseconds.
fn parse_since(since: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = since.parse::<i64>() {
        if let Some(ns) = secs.checked_mul(1_000_000_000) {
            return Ok(ns);
        }
    }
    Timestamp::parse(since).map(|t| t.ns).ok_or_else(|| {
        api_error(
            StatusCode::BAD_REQUEST,
            format!("since must be an RFC 3339 time or Unix seconds, got {since:?}"),
        )
    })
}

impl LogSource for EngineBackend {
    fn projects(&self) -> Fut<'_, Vec<ProjectInfo>> {
        Box::pin(async move { Ok(self.viewer.scope.filter(&self.hub.list().await?)) })
    }

    fn tail(
        &self,
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
            let most = self.max_tail;
            if tail.get() > most {
                return Err(api_error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "tail must be between 0 and {most} lines on this server (--max-tail-lines), got {}",
                        tail.get()
                    ),
                ));
            }
            let streams = match streams.as_deref().map(str::parse::<Streams>) {
                None => Streams::Both,
                Some(Ok(s)) => s,
                Some(Err(e)) => return Err(api_error(StatusCode::BAD_REQUEST, e.to_string())),
            };
            let since_ns = since.as_deref().map(parse_since).transpose()?;
            let key = ServiceKey { project, service };
            let unknown = || api_error(StatusCode::NOT_FOUND, format!("unknown service {key}"));
            if !self.may_see(&key) {
                return Err(unknown());
            }
            let projects = self.hub.list().await?;
            let Some(info) = projects
                .into_iter()
                .filter(|p| p.name == key.project)
                .flat_map(|p| p.services)
                .find(|s| s.service == key.service)
            else {
                return Err(unknown());
            };
            let (stdout, stderr) = match streams {
                Streams::Both => (true, true),
                Streams::Stdout => (true, false),
                Streams::Stderr => (false, true),
            };
            let query = TailQuery {
                lines: tail.get(),
                since_ns,
                stdout,
                stderr,
            };
            let lines = engine_tail(
                self.hub.engine(),
                self.hub.config(),
                &info.containers,
                query,
            )
            .await?;
            Ok(lines)
        })
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
    fn since_accepts_rfc3339_and_seconds() {
        assert_eq!(parse_since("10").unwrap(), 10_000_000_000);
        assert_eq!(
            parse_since("1970-01-01T00:00:01.5Z").unwrap(),
            1_500_000_000
        );
        let err = parse_since("yesterday").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("\"yesterday\""));
    }
}
