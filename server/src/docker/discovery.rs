//! Finds Compose projects, services and containers from the `com.docker.compose.*` labels,
//! and Swarm stacks' tasks from `com.docker.stack.namespace` and `com.docker.swarm.*`: a stack
//! is a project, its services named as in the stack file (`ticker`, not `shop_ticker`), a
//! task's slot its replica number. Container names are never parsed: Compose v1 and v2 name
//! containers differently.

use std::collections::{BTreeMap, HashMap};

use app::protocol::{
    ContainerInfo, ContainerState, Health, ProjectInfo, Replica, ServiceInfo, ServiceKey,
    ServiceState,
};
use bollard::models::{
    ContainerStateStatusEnum, ContainerSummary, ContainerSummaryHealth,
    ContainerSummaryStateEnum as S,
};
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;

use super::swarm::{StackTask, SwarmFacts};
use super::EngineError;
use crate::clock::Timestamp;

pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const NUMBER_LABEL: &str = "com.docker.compose.container-number";
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";
pub const STACK_LABEL: &str = "com.docker.stack.namespace";
pub const SWARM_SERVICE_LABEL: &str = "com.docker.swarm.service.name";
pub const TASK_NAME_LABEL: &str = "com.docker.swarm.task.name";
pub const NODE_LABEL: &str = "com.docker.swarm.node.id";

/// The label filter that selects containers of `label`, of one project or of all.
fn label_filter(label: &str, project: Option<&str>) -> String {
    match project {
        Some(p) => format!("{label}={p}"),
        None => label.to_owned(),
    }
}

/// Where a container belongs: a replica of a Compose service, or a task of a stack's service.
#[derive(Debug, PartialEq, Eq)]
struct Member {
    project: String,
    service: String,
    number: u32,
    /// A task's name without its id (`shop_ticker.1`): the same for the tasks that replace
    /// one another in a slot, so a rescheduled task goes on its replica's timeline.
    task: Option<String>,
}

impl Member {
    /// A task's service as the engine names it (`shop_ticker`).
    fn swarm_service(&self) -> Option<&str> {
        self.task.as_deref()?.rsplit_once('.').map(|(s, _)| s)
    }
}

fn member(labels: &HashMap<String, String>) -> Option<Member> {
    if let (Some(project), Some(service)) = (labels.get(PROJECT_LABEL), labels.get(SERVICE_LABEL)) {
        // `docker-compose run` containers are one-off tasks, not replicas of the service.
        if labels
            .get(ONEOFF_LABEL)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return None;
        }
        let number = labels.get(NUMBER_LABEL).and_then(|n| n.parse().ok());
        return Some(Member {
            project: project.clone(),
            service: service.clone(),
            number: number.unwrap_or(0),
            task: None,
        });
    }
    let stack = labels.get(STACK_LABEL)?;
    let full = labels.get(SWARM_SERVICE_LABEL)?;
    let service = full.strip_prefix(&format!("{stack}_")).unwrap_or(full);
    // `shop_ticker.1.<task id>`; a global service's tasks are named by node, not slot.
    let task = labels.get(TASK_NAME_LABEL)?;
    let slot = task.strip_prefix(&format!("{full}."))?.split('.').next()?;
    Some(Member {
        project: stack.clone(),
        service: service.to_owned(),
        number: slot.parse().unwrap_or(0),
        task: Some(format!("{full}.{slot}")),
    })
}

/// The containers of Compose projects and of stacks (or of `project` alone): two listings,
/// as the engine ANDs label filters.
async fn members(
    docker: &Docker,
    project: Option<&str>,
) -> Result<Vec<bollard::models::ContainerSummary>, EngineError> {
    let mut all = Vec::new();
    for label in [PROJECT_LABEL, STACK_LABEL] {
        let filters = HashMap::from([("label", vec![label_filter(label, project)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        for s in docker.list_containers(Some(options)).await? {
            if !all
                .iter()
                .any(|a: &bollard::models::ContainerSummary| a.id == s.id)
            {
                all.push(s);
            }
        }
    }
    Ok(all)
}

/// What an engine holds: its projects and stacks, and whether it is a Swarm manager with
/// stacks (whose other nodes' tasks change without telling it: the listing is asked for
/// again now and then).
#[derive(Debug, Default)]
pub struct Listing {
    pub projects: Vec<ProjectInfo>,
    pub has_stacks: bool,
}

/// Containers gathered by service, with what the listing says of each service as a whole.
#[derive(Default)]
struct Gathered {
    services: BTreeMap<(String, String), Vec<ContainerInfo>>,
    /// Per service, the container that stopped last.
    last_exits: HashMap<(String, String), Ending>,
    desired: HashMap<(String, String), u32>,
}

impl Gathered {
    fn add(&mut self, m: &Member, c: ContainerInfo, end: Option<Ending>, desired: Option<u32>) {
        let key = (m.project.clone(), m.service.clone());
        if let Some(end) = end {
            let last = self.last_exits.entry(key.clone()).or_default();
            *last = (*last).max(end);
        }
        if let Some(n) = desired {
            self.desired.insert(key.clone(), n);
        }
        self.services.entry(key).or_default().push(c);
    }
}

/// All Compose projects and stacks the engine named `engine` holds (or just `project`),
/// stopped containers included; of a Swarm manager (its node `manager_node`), its stacks'
/// tasks on other nodes too.
pub async fn list_projects(
    docker: &Docker,
    engine: &str,
    project: Option<&str>,
    manager_node: Option<&str>,
) -> Result<Listing, EngineError> {
    let summaries = members(docker, project).await?;
    // A manager's node, or the node its stack tasks say: a swarm joined since the connection.
    let here = manager_node.map(str::to_owned).or_else(|| {
        summaries
            .iter()
            .find_map(|s| s.labels.as_ref()?.get(NODE_LABEL).cloned())
    });
    let swarm = match here {
        Some(_) => super::swarm::facts(docker, project, here.as_deref()).await,
        None => None,
    };
    let has_stacks = swarm.as_ref().is_some_and(|f| !f.desired.is_empty());
    let swarm = swarm.unwrap_or_default();
    let mut gathered = Gathered::default();
    for s in summaries {
        if let Some((m, c, end, desired)) = local_member(docker, s, &swarm).await? {
            gathered.add(&m, c, end, desired);
        }
    }
    for t in &swarm.elsewhere {
        if let Some((m, c, end)) = task_elsewhere(t, &swarm.nodes) {
            let desired = swarm.desired.get(&t.service).copied();
            gathered.add(&m, c, end, desired);
        }
    }
    let mut projects = grouped(engine, gathered.services, &gathered.last_exits);
    for s in projects.iter_mut().flat_map(|p| &mut p.services) {
        s.desired = gathered
            .desired
            .get(&(s.project.clone(), s.service.clone()))
            .copied();
    }
    Ok(Listing {
        projects,
        has_stacks,
    })
}

/// A container of this engine, as the listing shows it: its service, and how it ended.
async fn local_member(
    docker: &Docker,
    s: ContainerSummary,
    swarm: &SwarmFacts,
) -> Result<Option<(Member, ContainerInfo, Option<Ending>, Option<u32>)>, EngineError> {
    let labels = s.labels.unwrap_or_default();
    let (Some(mut m), Some(id)) = (member(&labels), s.id.clone()) else {
        return Ok(None);
    };
    let node_id = labels.get(NODE_LABEL);
    if m.task.is_some() && m.number == 0 {
        m.number = node_id.map_or(0, |n| global_number(n, &swarm.nodes));
        m.task = m.swarm_service().map(|s| format!("{s}.{}", m.number));
    }
    let state = container_state(s.state);
    let end = match state {
        ContainerState::Exited | ContainerState::Restarting | ContainerState::Dead => {
            ending(docker, &id).await?
        }
        _ => None,
    };
    let name = m.task.clone().unwrap_or_else(|| {
        s.names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_else(|| id.chars().take(12).collect())
    });
    let desired = m
        .swarm_service()
        .and_then(|s| swarm.desired.get(s))
        .copied();
    let c = ContainerInfo {
        id,
        replica: Replica {
            number: m.number,
            name,
        },
        state,
        exit_code: end.and_then(|e| e.exit_code),
        health: match state {
            ContainerState::Running => health(s.health.as_ref(), s.status.as_deref()),
            _ => None,
        },
        node: node_id.map(|id| swarm.nodes.get(id).unwrap_or(id).clone()),
        task: None,
    };
    Ok(Some((m, c, end, desired)))
}

/// A global service's task has no slot: its replica is its node's place among the nodes.
fn global_number(node: &str, nodes: &HashMap<String, String>) -> u32 {
    let mut all: Vec<(&String, &String)> = nodes.iter().map(|(id, host)| (host, id)).collect();
    all.sort();
    all.iter()
        .position(|(_, id)| *id == node)
        .map_or(0, |at| at as u32 + 1)
}

/// A stack's task whose container runs on another node, as the manager tells of it.
fn task_elsewhere(
    t: &StackTask,
    nodes: &HashMap<String, String>,
) -> Option<(Member, ContainerInfo, Option<Ending>)> {
    let id = super::swarm::container_of(&t.task)?.to_owned();
    let node_id = t.task.node_id.clone()?;
    let number = match t.task.slot {
        Some(n) if n > 0 => u32::try_from(n).ok()?,
        _ => global_number(&node_id, nodes),
    };
    let run = super::inspect::task_run(&t.task);
    let state = match (run.running, run.started) {
        (true, _) => ContainerState::Running,
        (false, Some(_)) => ContainerState::Exited,
        (false, None) => ContainerState::Created,
    };
    let end = run.finished.map(|finished_ns| Ending {
        finished_ns,
        exit_code: run.exit_code,
    });
    let m = Member {
        project: t.stack.clone(),
        service: t
            .service
            .strip_prefix(&format!("{}_", t.stack))
            .unwrap_or(&t.service)
            .to_owned(),
        number,
        task: Some(format!("{}.{number}", t.service)),
    };
    let c = ContainerInfo {
        id,
        replica: Replica {
            number,
            name: m.task.clone().unwrap_or_default(),
        },
        state,
        exit_code: run.exit_code,
        health: None,
        node: Some(nodes.get(&node_id).unwrap_or(&node_id).clone()),
        task: t.task.id.clone(),
    };
    Some((m, c, end))
}

fn container_state(state: Option<S>) -> ContainerState {
    match state {
        Some(S::RUNNING) => ContainerState::Running,
        Some(S::PAUSED) => ContainerState::Paused,
        Some(S::RESTARTING) => ContainerState::Restarting,
        Some(S::REMOVING) => ContainerState::Removing,
        Some(S::EXITED) | Some(S::STOPPING) => ContainerState::Exited,
        Some(S::DEAD) => ContainerState::Dead,
        _ => ContainerState::Created,
    }
}

/// Projects of services of containers, each sorted by name, replicas by number.
fn grouped(
    engine: &str,
    services: BTreeMap<(String, String), Vec<ContainerInfo>>,
    last_exits: &HashMap<(String, String), Ending>,
) -> Vec<ProjectInfo> {
    let mut projects: Vec<ProjectInfo> = Vec::new();
    for ((project, service), mut containers) in services {
        let last_exit = last_exits
            .get(&(project.clone(), service.clone()))
            .and_then(|e| e.exit_code);
        containers.sort_by(|a, b| {
            (a.replica.number, &a.replica.name).cmp(&(b.replica.number, &b.replica.name))
        });
        // A stack's slot keeps its stopped tasks (their lines are the slot's too): a replica
        // is a number, not a container.
        let mut numbers: Vec<u32> = containers.iter().map(|c| c.replica.number).collect();
        numbers.dedup();
        let info = ServiceInfo {
            engine: engine.to_owned(),
            state: ServiceState::of(&containers, last_exit),
            replicas: numbers.len() as u32,
            desired: None,
            project: project.clone(),
            service,
            containers,
        };
        match projects.last_mut() {
            Some(last) if last.name == project => last.services.push(info),
            _ => projects.push(ProjectInfo {
                engine: engine.to_owned(),
                name: project,
                services: vec![info],
            }),
        }
    }
    projects
}

/// One service, if the engine has it.
pub async fn find_service(
    docker: &Docker,
    key: &ServiceKey,
    manager_node: Option<&str>,
) -> Result<Option<ServiceInfo>, EngineError> {
    let listing = list_projects(docker, &key.engine, Some(&key.project), manager_node).await?;
    Ok(app::protocol::find_service(&listing.projects, key).cloned())
}

/// How a stopped container ended: when (nanoseconds; the listing does not say) and with
/// which code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Ending {
    finished_ns: i64,
    exit_code: Option<i64>,
}

async fn ending(docker: &Docker, id: &str) -> Result<Option<Ending>, EngineError> {
    match docker.inspect_container(id, None).await {
        Ok(info) => Ok(info.state.map(|s| Ending {
            finished_ns: s
                .finished_at
                .as_deref()
                .and_then(Timestamp::parse)
                .map_or(0, |t| t.ns),
            // Started again since the listing: the engine has reset the code to 0, and the
            // code of the run that ended is not known here.
            exit_code: s
                .exit_code
                .filter(|_| s.status != Some(ContainerStateStatusEnum::RUNNING)),
        })),
        // Removed between the listing and now: no exit code to tell.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A running container's health check verdict: the listing's own field from API 1.52 on,
/// or else its status text.
fn health(field: Option<&ContainerSummaryHealth>, status: Option<&str>) -> Option<Health> {
    use bollard::models::ContainerSummaryHealthStatusEnum as H;
    match field.and_then(|h| h.status) {
        Some(H::HEALTHY) => Some(Health::Healthy),
        Some(H::STARTING) => Some(Health::Starting),
        Some(H::UNHEALTHY) => Some(Health::Unhealthy),
        Some(H::NONE) => None,
        Some(H::EMPTY) | None => status.and_then(health_of),
    }
}

/// Reads a health check's verdict from the engine's status text, e.g. "Up 2 minutes
/// (unhealthy)".
fn health_of(status: &str) -> Option<Health> {
    if status.ends_with("(healthy)") {
        Some(Health::Healthy)
    } else if status.ends_with("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status.ends_with("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_stacks_task_is_a_replica_of_its_service_by_slot() {
        let task = labels(&[
            (STACK_LABEL, "shop"),
            (SWARM_SERVICE_LABEL, "shop_ticker"),
            (TASK_NAME_LABEL, "shop_ticker.2.x1y2z3"),
        ]);
        assert_eq!(
            member(&task),
            Some(Member {
                project: "shop".into(),
                service: "ticker".into(),
                number: 2,
                task: Some("shop_ticker.2".into()),
            })
        );
        let compose = labels(&[
            (PROJECT_LABEL, "shop"),
            (SERVICE_LABEL, "web"),
            (NUMBER_LABEL, "3"),
        ]);
        assert_eq!(
            member(&compose).map(|m| (m.service, m.number)),
            Some(("web".into(), 3))
        );
        let mut oneoff = compose.clone();
        oneoff.insert(ONEOFF_LABEL.into(), "True".into());
        assert_eq!(member(&oneoff), None);
        // A global service's task is named by its node: no slot, replica 0.
        let global = labels(&[
            (STACK_LABEL, "shop"),
            (SWARM_SERVICE_LABEL, "shop_agent"),
            (TASK_NAME_LABEL, "shop_agent.n0de1d.t4sk"),
        ]);
        assert_eq!(member(&global).map(|m| m.number), Some(0));
        assert_eq!(member(&labels(&[(STACK_LABEL, "shop")])), None);
    }

    #[test]
    fn a_services_exit_code_is_that_of_the_container_that_stopped_last() {
        let exited = |number: u32, code: i64| ContainerInfo {
            id: format!("c{number}"),
            replica: Replica {
                number,
                name: format!("p_s_{number}"),
            },
            state: ContainerState::Exited,
            exit_code: Some(code),
            health: None,
            node: None,
            task: None,
        };
        let key = ("p".to_owned(), "s".to_owned());
        let services = BTreeMap::from([(key.clone(), vec![exited(1, 137), exited(2, 1)])]);
        // Replica 1 stopped first, replica 2 last: the service ended as replica 2 did.
        let last = Ending {
            finished_ns: 20,
            exit_code: Some(1),
        };
        let projects = grouped("local", services, &HashMap::from([(key, last)]));
        assert_eq!(
            projects[0].services[0].state,
            ServiceState::Exited { exit_code: Some(1) }
        );
    }

    #[test]
    fn health_is_read_from_the_engine_status() {
        assert_eq!(health_of("Up 3 minutes (healthy)"), Some(Health::Healthy));
        assert_eq!(
            health_of("Up 1 second (health: starting)"),
            Some(Health::Starting)
        );
        assert_eq!(health_of("Up 2 hours (unhealthy)"), Some(Health::Unhealthy));
        assert_eq!(health_of("Up 2 hours"), None);
        assert_eq!(health_of("Exited (1) 2 minutes ago"), None);
    }
}
