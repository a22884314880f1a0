//! The engine's container events, and a Swarm manager's service events (`GET /events`):
//! what tells the hub that its listing and its followers may be out of date, and how a
//! container ended.

use std::collections::HashMap;

use app::protocol::Health;
use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use bollard::Docker;
use futures::{Stream, StreamExt};

use super::discovery::{PROJECT_LABEL, STACK_LABEL};
use super::EngineError;
use crate::clock::now_ns;

/// The container events that change what the listing shows. The engine matches
/// `health_status` to its `health_status: <verdict>` events. Not exec events: every health
/// check is an exec, and each would mean a listing.
const WATCHED: [&str; 13] = [
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "kill",
    "destroy",
    "rename",
    "pause",
    "unpause",
    "health_status",
    // A Swarm service's (`create` and these).
    "update",
    "remove",
];

/// Something happened to a Compose container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerEvent {
    /// Its process ended: the engine's `die`, which outlives the container's removal.
    Died {
        id: String,
        ts_ns: i64,
        exit_code: Option<i64>,
    },
    /// Its health check's verdict changed.
    Health {
        id: String,
        ts_ns: i64,
        health: Health,
    },
    /// A Swarm service was created, changed or removed: the engine is a Swarm manager, and
    /// its stacks' tasks, wherever they run, may have changed.
    Stacks,
    /// Anything else that may change the listing.
    Changed,
}

/// The container events of `project` (or of every Compose project and stack) from now on. The stream
/// ends, or yields an error, when the engine's event stream does.
pub fn container_events(
    docker: &Docker,
    project: Option<&str>,
) -> impl Stream<Item = Result<ContainerEvent, EngineError>> + Send + 'static {
    let filters = HashMap::from([
        ("type", vec!["container".to_owned(), "service".to_owned()]),
        ("event", WATCHED.map(str::to_owned).to_vec()),
    ]);
    // Filtered here, not by the engine, which ANDs label filters: a container is of a
    // Compose project or of a stack. An event carries its container's labels.
    let project = project.map(str::to_owned);
    docker
        .events(Some(EventsOptionsBuilder::new().filters(&filters).build()))
        .filter_map(move |e| {
            let kept = match e {
                Ok(e) if !of_ours(&e, project.as_deref()) => None,
                Ok(e) => Some(Ok(event(e))),
                Err(e) => Some(Err(EngineError::from(e))),
            };
            std::future::ready(kept)
        })
}

/// Whether the event is of a container of a Compose project or a stack (of `project`), or
/// of a Swarm service (of `project`'s stack: its name begins `PROJECT_`).
fn of_ours(e: &EventMessage, project: Option<&str>) -> bool {
    let attributes = e.actor.as_ref().and_then(|a| a.attributes.as_ref());
    if e.typ == Some(EventMessageTypeEnum::SERVICE) {
        let name = attributes.and_then(|a| a.get("name"));
        return project.is_none_or(|p| name.is_some_and(|n| n.starts_with(&format!("{p}_"))));
    }
    let Some(labels) = attributes else {
        return false;
    };
    [PROJECT_LABEL, STACK_LABEL]
        .iter()
        .filter_map(|l| labels.get(*l))
        .any(|p| project.is_none_or(|want| p == want))
}

fn event(e: EventMessage) -> ContainerEvent {
    if e.typ == Some(EventMessageTypeEnum::SERVICE) {
        return ContainerEvent::Stacks;
    }
    let (Some(action), Some(actor)) = (e.action.as_deref(), e.actor) else {
        return ContainerEvent::Changed;
    };
    let Some(id) = actor.id else {
        return ContainerEvent::Changed;
    };
    let ts_ns = e.time_nano.unwrap_or_else(now_ns);
    // The engine names the verdict in the action: `health_status: unhealthy`.
    if let Some(verdict) = action.strip_prefix("health_status:") {
        let health = match verdict.trim() {
            "healthy" => Health::Healthy,
            "unhealthy" => Health::Unhealthy,
            "starting" => Health::Starting,
            _ => return ContainerEvent::Changed,
        };
        return ContainerEvent::Health { id, ts_ns, health };
    }
    if action != "die" {
        return ContainerEvent::Changed;
    }
    let exit_code = actor
        .attributes
        .as_ref()
        .and_then(|a| a.get("exitCode"))
        .and_then(|c| c.parse().ok());
    ContainerEvent::Died {
        id,
        ts_ns,
        exit_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    #[test]
    fn a_die_tells_how_the_container_ended_and_other_events_only_that_something_changed() {
        let die = EventMessage {
            action: Some("die".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(HashMap::from([("exitCode".into(), "137".into())])),
            }),
            time_nano: Some(42),
            ..Default::default()
        };
        assert_eq!(
            event(die),
            ContainerEvent::Died {
                id: "abc".into(),
                ts_ns: 42,
                exit_code: Some(137)
            }
        );
        let start = EventMessage {
            action: Some("start".into()),
            ..Default::default()
        };
        assert_eq!(event(start), ContainerEvent::Changed);
        let unhealthy = EventMessage {
            action: Some("health_status: unhealthy".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: None,
            }),
            time_nano: Some(43),
            ..Default::default()
        };
        assert_eq!(
            event(unhealthy),
            ContainerEvent::Health {
                id: "abc".into(),
                ts_ns: 43,
                health: Health::Unhealthy
            }
        );
    }
}
