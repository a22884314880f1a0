//! `lookout ps`: the projects and services a running Lookout shows, with state, replicas,
//! health and exit codes, as `docker compose ps` lists them.

use std::fmt::Write as _;

use app::protocol::{Health, ProjectInfo, ServiceInfo, ServiceState};

use super::print::printable;

/// One row a service, columns aligned; an ENGINE column first when several engines show.
pub fn table(projects: &[ProjectInfo]) -> String {
    let engines = projects.iter().any(|p| p.engine != projects[0].engine);
    let header = [
        "ENGINE", "PROJECT", "SERVICE", "STATE", "REPLICAS", "HEALTH", "EXIT",
    ];
    let skip = usize::from(!engines);
    let mut rows = vec![header[skip..]
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()];
    for s in projects.iter().flat_map(|p| &p.services) {
        rows.push(row(s).split_off(skip));
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (cell, width) in r.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(s: &ServiceInfo) -> Vec<String> {
    let (state, exit) = match &s.state {
        ServiceState::Running { .. } => ("running", None),
        ServiceState::Restarting { exit_code } => ("restarting", *exit_code),
        ServiceState::Exited { exit_code } => ("exited", *exit_code),
        ServiceState::Created => ("created", None),
        ServiceState::Removed => ("removed", None),
    };
    let running = match s.state {
        ServiceState::Running { running } => running,
        _ => 0,
    };
    let health = match s.health() {
        Some(Health::Healthy) => "healthy",
        Some(Health::Starting) => "starting",
        Some(Health::Unhealthy) => "unhealthy",
        None => "",
    };
    vec![
        printable(&s.engine),
        printable(&s.project),
        printable(&s.service),
        state.to_owned(),
        format!("{running}/{}", s.desired.unwrap_or(s.replicas)),
        health.to_owned(),
        exit.map(|c| c.to_string()).unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use app::protocol::{ContainerInfo, ContainerState, Replica};

    use super::*;

    fn container(n: u32, state: ContainerState, health: Option<Health>) -> ContainerInfo {
        ContainerInfo {
            id: format!("{n:012}"),
            replica: Replica {
                number: n,
                name: format!("shop-web-{n}"),
            },
            state,
            exit_code: None,
            health,
            node: None,
            task: None,
        }
    }

    #[test]
    fn each_service_is_a_row_with_its_state_replicas_health_and_exit() {
        let web = ServiceInfo {
            engine: "local".into(),
            project: "shop".into(),
            service: "web".into(),
            state: ServiceState::Running { running: 1 },
            replicas: 2,
            desired: None,
            containers: vec![
                container(1, ContainerState::Running, Some(Health::Unhealthy)),
                container(2, ContainerState::Exited, None),
            ],
        };
        let migrate = ServiceInfo {
            engine: "local".into(),
            project: "shop".into(),
            service: "migrate".into(),
            state: ServiceState::Exited { exit_code: Some(3) },
            replicas: 1,
            desired: None,
            containers: vec![container(1, ContainerState::Exited, None)],
        };
        let projects = [ProjectInfo {
            engine: "local".into(),
            name: "shop".into(),
            services: vec![migrate, web],
        }];
        assert_eq!(
            table(&projects),
            "PROJECT  SERVICE  STATE    REPLICAS  HEALTH     EXIT\n\
             shop     migrate  exited   0/1                  3\n\
             shop     web      running  1/2       unhealthy\n"
        );
    }
}
