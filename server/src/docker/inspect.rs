//! A container's state as the engine reports it (`GET /containers/{id}/json`).

use bollard::Docker;

use super::EngineError;
use crate::clock::Timestamp;
use crate::runs::RunTimes;

/// The container's run times, or None if it no longer exists.
pub async fn run_times(docker: &Docker, id: &str) -> Result<Option<RunTimes>, EngineError> {
    match docker.inspect_container(id, None).await {
        Ok(info) => {
            let state = info.state.unwrap_or_default();
            // The engine says "0001-01-01T00:00:00Z" for "never".
            let time = |t: Option<String>| {
                t.as_deref()
                    .and_then(Timestamp::parse)
                    .map(|t| t.ns)
                    .filter(|ns| *ns > 0)
            };
            // While it waits to be restarted, the engine says both running and restarting.
            let running = state.running.unwrap_or(false) && !state.restarting.unwrap_or(false);
            Ok(Some(RunTimes {
                running,
                started: time(state.started_at),
                finished: time(state.finished_at),
                exit_code: state.exit_code,
            }))
        }
        Err(e) => match EngineError::from(e) {
            EngineError::NotFound(_) => Ok(None),
            e => Err(e),
        },
    }
}
