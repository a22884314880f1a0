//! What a Swarm manager says of stacks beyond the containers it runs itself: how many
//! replicas each service should have, the hostnames of the nodes, and the tasks whose
//! containers run on other nodes (their logs and states are read through the manager).
//! Asked only of a manager (known from `/info` at each connection) or of an engine that runs
//! stack tasks; a worker answers `/services` with an error, and has none of these.

use std::collections::HashMap;

use bollard::models::Task;
use bollard::query_parameters::{ListNodesOptions, ListServicesOptions, ListTasksOptions};
use bollard::Docker;

use super::discovery::STACK_LABEL;

#[derive(Debug, Default)]
pub struct SwarmFacts {
    /// A replicated service's desired replicas, by its engine name (`shop_ticker`).
    pub desired: HashMap<String, u32>,
    /// Node hostnames by node id.
    pub nodes: HashMap<String, String>,
    /// The tasks of stacks' services that ran or run on another node than this one, each
    /// with a container.
    pub elsewhere: Vec<StackTask>,
}

/// A task of a stack's service, with its stack and the service's engine name.
#[derive(Debug)]
pub struct StackTask {
    pub stack: String,
    pub service: String,
    pub task: Task,
}

/// This engine's node id, if it is a Swarm manager (`GET /info`).
pub async fn manager_node(docker: &Docker) -> Option<String> {
    let swarm = docker.info().await.ok()?.swarm?;
    swarm.control_available.filter(|m| *m)?;
    swarm.node_id.filter(|id| !id.is_empty())
}

/// The facts of the stacks' services (of `project`'s alone, when given), asked of the
/// manager whose node is `here`; None from an engine that is no Swarm manager.
pub async fn facts(
    docker: &Docker,
    project: Option<&str>,
    here: Option<&str>,
) -> Option<SwarmFacts> {
    let label = match project {
        Some(p) => format!("{STACK_LABEL}={p}"),
        None => STACK_LABEL.to_owned(),
    };
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .ok()?;
    let mut facts = SwarmFacts::default();
    if services.is_empty() {
        return Some(facts);
    }
    // Service id → (stack, engine name).
    let mut of_stacks: HashMap<String, (String, String)> = HashMap::new();
    for s in services {
        let spec = s.spec.unwrap_or_default();
        let stack = spec
            .labels
            .as_ref()
            .and_then(|l| l.get(STACK_LABEL))
            .cloned();
        let replicas = spec
            .mode
            .and_then(|m| m.replicated)
            .and_then(|r| r.replicas);
        if let (Some(name), Some(n)) = (&spec.name, replicas) {
            facts
                .desired
                .insert(name.clone(), u32::try_from(n).unwrap_or(0));
        }
        if let (Some(id), Some(name), Some(stack)) = (s.id, spec.name, stack) {
            of_stacks.insert(id, (stack, name));
        }
    }
    let nodes = docker.list_nodes(None::<ListNodesOptions>).await;
    for n in nodes.unwrap_or_default() {
        let host = n.description.and_then(|d| d.hostname);
        if let (Some(id), Some(host)) = (n.id, host) {
            facts.nodes.insert(id, host);
        }
    }
    if let Some(here) = here {
        facts.elsewhere = elsewhere(docker, of_stacks, here).await;
    }
    Some(facts)
}

/// The tasks of these services that have a container on another node than `here`.
async fn elsewhere(
    docker: &Docker,
    services: HashMap<String, (String, String)>,
    here: &str,
) -> Vec<StackTask> {
    let ids: Vec<String> = services.keys().cloned().collect();
    let filters = HashMap::from([("service".to_owned(), ids)]);
    let tasks = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .unwrap_or_default();
    tasks
        .into_iter()
        .filter(|t| t.node_id.as_deref().is_some_and(|n| n != here))
        .filter(|t| container_of(t).is_some())
        .filter_map(|task| {
            let (stack, service) = services.get(task.service_id.as_ref()?)?.clone();
            Some(StackTask {
                stack,
                service,
                task,
            })
        })
        .collect()
}

/// The id of the container a task runs (or ran) in, once it has one.
pub fn container_of(task: &Task) -> Option<&str> {
    let status = task.status.as_ref()?.container_status.as_ref()?;
    status.container_id.as_deref().filter(|id| !id.is_empty())
}
