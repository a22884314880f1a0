//! Everything that talks to the Docker engine, and the only place that does: `bollard` is
//! used nowhere else. Lookout only reads: the calls made here are GET /version, /info
//! (whether it is a Swarm manager, at each connection), /containers/json,
//! /containers/{id}/json, /containers/{id}/logs and /events, and, of a Swarm manager or an
//! engine that runs stack tasks, GET /services, /nodes, /tasks, /tasks/{id} and
//! /tasks/{id}/logs (other nodes' tasks).

pub mod address;
pub mod discovery;
pub mod engine;
mod engines;
pub mod events;
pub mod frames;
pub mod inspect;
pub mod logs;
mod pace;
pub mod past;
mod pump;
pub mod source;
mod ssh;
mod swarm;
mod tls;

/// A client of one engine (`Engine::docker`), handed back to this module's reads.
pub use bollard::Docker;
pub use engine::Engine;
pub use engines::Engines;

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
            | E::IOError { .. }) => EngineError::Unreachable(with_causes(&e)),
            other => EngineError::Api(other.to_string()),
        }
    }
}

/// An error with every cause under it: a refused certificate is said deep in the chain
/// ("invalid peer certificate: UnknownIssuer"), under a connector's vague "client error".
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}
