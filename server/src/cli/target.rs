//! Which services a command names: `SERVICE`, found in whichever project has it, or
//! `PROJECT/SERVICE`.

use app::protocol::{find_service, ProjectInfo, ServiceInfo, ServiceKey, ServiceState};

use super::client::CliError;

/// The services `names` mean among `projects`, each once, in the order named; with
/// `project`, names are of that project, and no name means each of its services that has
/// containers.
pub fn resolve<'a>(
    project: Option<&str>,
    names: &[String],
    projects: &'a [ProjectInfo],
) -> Result<Vec<&'a ServiceInfo>, CliError> {
    if let (Some(project), []) = (project, names) {
        let p = projects
            .iter()
            .find(|p| p.name == project)
            .ok_or_else(|| CliError::UnknownProject(project.to_owned()))?;
        return Ok(p
            .services
            .iter()
            .filter(|s| s.state != ServiceState::Removed)
            .collect());
    }
    let mut found: Vec<&ServiceInfo> = Vec::new();
    for name in names {
        let service = match project {
            Some(p) if !name.contains('/') => one(&format!("{p}/{name}"), projects)?,
            _ => one(name, projects)?,
        };
        if !found.iter().any(|s| same(s, service)) {
            found.push(service);
        }
    }
    Ok(found)
}

fn one<'a>(name: &str, projects: &'a [ProjectInfo]) -> Result<&'a ServiceInfo, CliError> {
    if let Some((project, service)) = name.split_once('/') {
        let key = ServiceKey {
            project: project.to_owned(),
            service: service.to_owned(),
        };
        return find_service(projects, &key)
            .ok_or_else(|| CliError::UnknownService(key.to_string()));
    }
    let holders: Vec<&ServiceInfo> = projects
        .iter()
        .flat_map(|p| &p.services)
        .filter(|s| s.service == name)
        .collect();
    match holders.as_slice() {
        [one] => Ok(one),
        [] => Err(CliError::UnknownService(name.to_owned())),
        many => Err(CliError::Ambiguous {
            name: name.to_owned(),
            projects: many
                .iter()
                .map(|s| s.project.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn same(a: &ServiceInfo, b: &ServiceInfo) -> bool {
    a.project == b.project && a.service == b.service
}

#[cfg(test)]
mod tests {
    use app::protocol::ServiceState;

    use super::*;

    fn service(project: &str, name: &str) -> ServiceInfo {
        ServiceInfo {
            project: project.into(),
            service: name.into(),
            state: ServiceState::Created,
            replicas: 0,
            containers: Vec::new(),
        }
    }

    fn projects() -> Vec<ProjectInfo> {
        vec![
            ProjectInfo {
                name: "shop".into(),
                services: vec![service("shop", "web"), service("shop", "db")],
            },
            ProjectInfo {
                name: "blog".into(),
                services: vec![service("blog", "web")],
            },
        ]
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_service_is_found_by_its_name_alone_when_one_project_has_it() {
        let p = projects();
        let found = resolve(None, &names(&["db", "blog/web", "shop/db"]), &p).unwrap();
        let keys: Vec<String> = found.iter().map(|s| s.key().to_string()).collect();
        assert_eq!(keys, ["shop/db", "blog/web"]);
    }

    #[test]
    fn a_name_of_several_projects_or_of_none_is_a_clear_error() {
        let p = projects();
        let e = resolve(None, &names(&["web"]), &p).unwrap_err().to_string();
        assert_eq!(
            e,
            "web is a service of several projects (shop, blog): name one as PROJECT/web"
        );
        let e = resolve(None, &names(&["shop/cache"]), &p)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "unknown service shop/cache");
        let e = resolve(None, &names(&["cache"]), &p)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "unknown service cache");
        let e = resolve(Some("news"), &[], &p).unwrap_err().to_string();
        assert_eq!(e, "unknown project news");
    }

    #[test]
    fn a_project_alone_is_each_of_its_services_and_names_its_services() {
        let p = projects();
        let whole = resolve(Some("shop"), &[], &p).unwrap();
        let keys: Vec<String> = whole.iter().map(|s| s.key().to_string()).collect();
        assert_eq!(keys, ["shop/web", "shop/db"]);
        let one = resolve(Some("blog"), &names(&["web"]), &p).unwrap();
        assert_eq!(one[0].key().to_string(), "blog/web");
    }
}
