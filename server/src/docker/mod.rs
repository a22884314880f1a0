//! Everything that talks to the Docker engine, and the only place that does: `bollard` is
//! used nowhere else. Lookout only reads: the calls made here are GET /version,
//! /containers/json, /containers/{id}/json, /containers/{id}/logs and /events.

pub mod discovery;
pub mod engine;
pub mod events;
pub mod frames;
pub mod inspect;
pub mod logs;
pub mod past;

pub use engine::Engine;

/// Why a request to the engine failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("Docker engine unreachable: {0}")]
    Unreachable(String),
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("Docker engine error: {0}")]
    Api(String),
    #[error(transparent)]
    Busy(#[from] crate::permits::Busy),
}

impl From<bollard::errors::Error> for EngineError {
    fn from(e: bollard::errors::Error) -> Self {
        use bollard::errors::Error as E;
        match e {
            E::DockerResponseServerError {
                status_code: 404,
                message,
            } => EngineError::NotFound(message),
            E::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::Api(format!("{status_code}: {message}")),
            E::SocketNotFoundError(path) => {
                EngineError::Unreachable(format!("no socket at {path}"))
            }
            e @ (E::HyperLegacyError { .. }
            | E::HyperResponseError { .. }
            | E::RequestTimeoutError
            | E::IOError { .. }) => EngineError::Unreachable(e.to_string()),
            other => EngineError::Api(other.to_string()),
        }
    }
}
