//! Which services a command names: `SERVICE`, found in whichever project has it,
//! `PROJECT/SERVICE`, or `ENGINE/PROJECT/SERVICE` where several engines hold the project.

use app::protocol::{ProjectInfo, ServiceInfo, ServiceState};

use super::client::CliError;

/// The services `names` mean among `projects`, each once, in the order named; with
/// `project` (`[ENGINE/]PROJECT`), names are of that project, and no name means each of its
/// services that has containers.
pub fn resolve<'a>(
    project: Option<&str>,
    names: &[String],
    projects: &'a [ProjectInfo],
) -> Result<Vec<&'a ServiceInfo>, CliError> {
    if let (Some(project), []) = (project, names) {
        let (engine, name) = match project.split_once('/') {
            Some((e, p)) => (Some(e), p),
            None => (None, project),
        };
        let held: Vec<&ProjectInfo> = projects
            .iter()
            .filter(|p| p.name == name && engine.is_none_or(|e| p.engine == e))
            .collect();
        let p = match held.as_slice() {
            [one] => one,
            [] => return Err(CliError::UnknownProject(project.to_owned())),
            many => {
                return Err(CliError::OnSeveralEngines {
                    name: project.to_owned(),
                    engines: engines_of(many.iter().map(|p| p.engine.as_str())),
                })
            }
        };
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
        if !found.iter().any(|s| s.key() == service.key()) {
            found.push(service);
        }
    }
    Ok(found)
}

fn one<'a>(name: &str, projects: &'a [ProjectInfo]) -> Result<&'a ServiceInfo, CliError> {
    let parts: Vec<&str> = name.split('/').collect();
    let (engine, project, service) = match parts[..] {
        [s] => (None, None, s),
        [p, s] => (None, Some(p), s),
        [e, p, s] => (Some(e), Some(p), s),
        _ => return Err(CliError::UnknownService(name.to_owned())),
    };
    let holders: Vec<&ServiceInfo> = projects
        .iter()
        .filter(|p| engine.is_none_or(|e| p.engine == e) && project.is_none_or(|n| p.name == n))
        .flat_map(|p| &p.services)
        .filter(|s| s.service == service)
        .collect();
    match holders.as_slice() {
        [one] => Ok(one),
        [] => Err(CliError::UnknownService(name.to_owned())),
        many if project.is_none() && !many.iter().all(|s| s.project == many[0].project) => {
            Err(CliError::Ambiguous {
                name: name.to_owned(),
                projects: many
                    .iter()
                    .map(|s| s.project.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
        many => Err(CliError::OnSeveralEngines {
            name: name.to_owned(),
            engines: engines_of(many.iter().map(|s| s.engine.as_str())),
        }),
    }
}

fn engines_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use app::protocol::ServiceState;

    use super::*;

    fn service(project: &str, name: &str) -> ServiceInfo {
        ServiceInfo {
            engine: "local".into(),
            project: project.into(),
            service: name.into(),
            state: ServiceState::Created,
            replicas: 0,
            desired: None,
            containers: Vec::new(),
        }
    }

    fn projects() -> Vec<ProjectInfo> {
        vec![
            ProjectInfo {
                engine: "local".into(),
                name: "shop".into(),
                services: vec![service("shop", "web"), service("shop", "db")],
            },
            ProjectInfo {
                engine: "local".into(),
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

    #[test]
    fn a_project_on_several_engines_is_named_with_its_engine() {
        let mut p = projects();
        let mut far = p[0].clone();
        far.engine = "prod".into();
        far.services
            .iter_mut()
            .for_each(|s| s.engine = "prod".into());
        p.push(far);
        let e = resolve(None, &names(&["shop/web"]), &p)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "shop/web is on several engines (local, prod): name one as ENGINE/shop/web"
        );
        let e = resolve(Some("shop"), &[], &p).unwrap_err().to_string();
        assert!(e.contains("several engines"), "{e}");
        let found = resolve(None, &names(&["prod/shop/web", "local/shop/db"]), &p).unwrap();
        let keys: Vec<String> = found.iter().map(|s| s.key().to_string()).collect();
        assert_eq!(keys, ["prod/shop/web", "shop/db"]);
        let whole = resolve(Some("prod/shop"), &[], &p).unwrap();
        assert!(whole.iter().all(|s| s.engine == "prod"));
    }
}
