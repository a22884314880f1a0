//! What a Swarm manager says of stacks beyond their tasks' containers: how many replicas each
//! service should have, and the hostnames of the nodes tasks run on. Asked only of an engine
//! that runs stack tasks; an engine that is no manager (a worker) answers with an error, and
//! the listing goes on without these.

use std::collections::HashMap;

use bollard::query_parameters::{ListNodesOptions, ListServicesOptions};
use bollard::Docker;

use super::discovery::STACK_LABEL;

#[derive(Debug, Default)]
pub struct SwarmFacts {
    /// A replicated service's desired replicas, by its engine name (`shop_ticker`).
    pub desired: HashMap<String, u32>,
    /// Node hostnames by node id.
    pub nodes: HashMap<String, String>,
}

/// The facts of the stacks' services (of `project`'s alone, when given).
pub async fn facts(docker: &Docker, project: Option<&str>) -> SwarmFacts {
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
        .await;
    let nodes = docker.list_nodes(None::<ListNodesOptions>).await;
    let mut facts = SwarmFacts::default();
    for s in services.unwrap_or_default() {
        let spec = s.spec.unwrap_or_default();
        let replicas = spec
            .mode
            .and_then(|m| m.replicated)
            .and_then(|r| r.replicas);
        if let (Some(name), Some(n)) = (spec.name, replicas) {
            facts.desired.insert(name, u32::try_from(n).unwrap_or(0));
        }
    }
    for n in nodes.unwrap_or_default() {
        let host = n.description.and_then(|d| d.hostname);
        if let (Some(id), Some(host)) = (n.id, host) {
            facts.nodes.insert(id, host);
        }
    }
    facts
}
