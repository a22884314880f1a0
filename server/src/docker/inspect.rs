//! A container's state as the engine reports it (`GET /containers/{id}/json`), or a Swarm
//! task's as its manager does (`GET /tasks/{id}`).

use bollard::models::{Task, TaskState};
use bollard::Docker;

use super::source::Source;
use super::EngineError;
use crate::clock::Timestamp;
use crate::runs::RunTimes;

/// The engine says "0001-01-01T00:00:00Z" for "never".
fn time(t: Option<&str>) -> Option<i64> {
    t.and_then(Timestamp::parse)
        .map(|t| t.ns)
        .filter(|ns| *ns > 0)
}

/// The run times of what `source` names, or None if it no longer exists.
pub async fn run_times(
    docker: &Docker,
    source: Source<'_>,
) -> Result<Option<RunTimes>, EngineError> {
    let id = match source {
        Source::Container(id) => id,
        Source::Task(id) => {
            return match docker.inspect_task(id).await {
                Ok(task) => Ok(Some(task_run(&task))),
                Err(e) => match EngineError::from(e) {
                    EngineError::NotFound(_) => Ok(None),
                    e => Err(e),
                },
            }
        }
    };
    match docker.inspect_container(id, None).await {
        Ok(info) => {
            let state = info.state.unwrap_or_default();
            // While it waits to be restarted, the engine says both running and restarting.
            let running = state.running.unwrap_or(false) && !state.restarting.unwrap_or(false);
            Ok(Some(RunTimes {
                running,
                started: time(state.started_at.as_deref()),
                finished: time(state.finished_at.as_deref()),
                exit_code: state.exit_code,
            }))
        }
        Err(e) => match EngineError::from(e) {
            EngineError::NotFound(_) => Ok(None),
            e => Err(e),
        },
    }
}

/// Whether what `source` names runs now; not if it is gone.
pub async fn runs(docker: &Docker, source: Source<'_>) -> Result<bool, EngineError> {
    Ok(run_times(docker, source).await?.is_some_and(|r| r.running))
}

/// A task runs once (a rescheduled task is another task). The manager does not say when its
/// container started: the task's creation stands for it, the same at every look, so that a
/// look never takes it for another run; its last state change is its end.
pub fn task_run(task: &Task) -> RunTimes {
    let status = task.status.clone().unwrap_or_default();
    let state = status.state.unwrap_or(TaskState::NEW);
    let ran = matches!(
        state,
        TaskState::RUNNING
            | TaskState::COMPLETE
            | TaskState::SHUTDOWN
            | TaskState::FAILED
            | TaskState::ORPHANED
            | TaskState::REMOVE
    );
    let ended = ran && state != TaskState::RUNNING;
    RunTimes {
        running: state == TaskState::RUNNING,
        started: time(task.created_at.as_deref()).filter(|_| ran),
        finished: time(status.timestamp.as_deref()).filter(|_| ended),
        exit_code: status
            .container_status
            .and_then(|c| c.exit_code)
            .filter(|_| ended),
    }
}
