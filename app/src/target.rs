//! What the view follows: one service, or several services of a project on one timeline
//! (every one, or those chosen), as the URL says and the socket asks for it.

use crate::asks::{ServiceNames, MAX_SERVICES};
use crate::protocol::{ClientMessage, Cursor, ServiceKey, Tail};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Service(ServiceKey),
    /// Several services of `project`, merged in time order: those named, or (`None`) every
    /// one the viewer may see.
    Project {
        engine: String,
        project: String,
        services: Option<ServiceNames>,
    },
}

impl Target {
    /// A project view of the services chosen: each once, in the order given, at most
    /// [`MAX_SERVICES`]; none chosen is the whole project.
    pub fn chosen(engine: String, project: String, mut services: Vec<String>) -> Target {
        let mut seen = std::collections::HashSet::new();
        services.retain(|s| !s.is_empty() && seen.insert(s.clone()));
        services.truncate(MAX_SERVICES);
        Target::Project {
            engine,
            project,
            services: ServiceNames::try_from(services).ok(),
        }
    }

    pub fn engine(&self) -> &str {
        match self {
            Target::Service(key) => &key.engine,
            Target::Project { engine, .. } => engine,
        }
    }

    pub fn project(&self) -> &str {
        match self {
            Target::Service(key) => &key.project,
            Target::Project { project, .. } => project,
        }
    }

    /// The one service followed, if only one is.
    pub fn single(&self) -> Option<&ServiceKey> {
        match self {
            Target::Service(key) => Some(key),
            Target::Project { .. } => None,
        }
    }

    /// Whether the lines of this service belong in the view.
    pub fn includes(&self, engine: &str, project: &str, service: &str) -> bool {
        match self {
            Target::Service(key) => {
                key.engine == engine && key.project == project && key.service == service
            }
            Target::Project {
                engine: e,
                project: p,
                ..
            } if e != engine || p != project => false,
            Target::Project { services: None, .. } => true,
            Target::Project {
                services: Some(s), ..
            } => s.get().iter().any(|s| s == service),
        }
    }

    /// The services named, or None for a single service or a whole project.
    pub fn named(&self) -> Option<&[String]> {
        match self {
            Target::Project {
                services: Some(s), ..
            } => Some(s.get()),
            _ => None,
        }
    }

    /// The request that follows it; `id` comes back on the answer.
    pub fn subscribe(&self, tail: u32, resume: Option<Vec<Cursor>>, id: u32) -> ClientMessage {
        let tail = Tail::try_from(i64::from(tail)).unwrap_or_default();
        match self.clone() {
            Target::Service(key) => ClientMessage::Subscribe {
                engine: Some(key.engine),
                project: key.project,
                service: key.service,
                tail,
                resume,
                id: Some(id),
            },
            Target::Project {
                engine,
                project,
                services,
            } => ClientMessage::SubscribeProject {
                engine: Some(engine),
                project,
                services,
                tail,
                resume,
                id: Some(id),
            },
        }
    }

    /// What a download of the view is named after, besides the project: the service, the
    /// services chosen, or `all`.
    pub fn file_part(&self) -> String {
        match self {
            Target::Service(key) => key.service.clone(),
            Target::Project { services: None, .. } => "all".to_owned(),
            Target::Project {
                services: Some(s), ..
            } => s.get().join("+"),
        }
    }
}

/// One of eight colours for a service, the same in every view and on every reload.
pub fn colour_of(service: &str) -> u32 {
    // FNV-1a: small, stable across builds, and spreads short names well enough.
    let hash = service.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash % 8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &str) -> ServiceKey {
        ServiceKey::local("shop", service)
    }

    #[test]
    fn a_view_includes_its_services_only() {
        let one = Target::Service(key("web"));
        assert!(one.includes("local", "shop", "web") && !one.includes("local", "shop", "db"));
        let all = Target::chosen("local".into(), "shop".into(), vec![]);
        assert!(all.includes("local", "shop", "db") && !all.includes("local", "other", "db"));
        assert_eq!(all.file_part(), "all");
        let some = Target::chosen(
            "local".into(),
            "shop".into(),
            vec!["web".into(), "db".into(), "web".into()],
        );
        assert!(some.includes("local", "shop", "db") && !some.includes("local", "shop", "cache"));
        assert_eq!(some.named(), Some(&["web".to_owned(), "db".to_owned()][..]));
        assert_eq!(some.file_part(), "web+db");
    }

    #[test]
    fn a_choice_of_too_many_services_keeps_the_first_64() {
        let many = (0..100).map(|i| format!("s{i}")).collect();
        let t = Target::chosen("local".into(), "shop".into(), many);
        assert_eq!(t.named().map(<[String]>::len), Some(MAX_SERVICES));
    }

    #[test]
    fn a_subscription_asks_for_what_the_view_shows() {
        let msg = Target::chosen("local".into(), "shop".into(), vec!["web".into()])
            .subscribe(500, None, 3);
        let text = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            text,
            r#"{"type":"subscribe_project","engine":"local","project":"shop","services":["web"],"tail":500,"id":3}"#
        );
    }

    #[test]
    fn a_service_keeps_its_colour() {
        assert_eq!(colour_of("web"), colour_of("web"));
        let colours: std::collections::HashSet<u32> = ["web", "db", "cache", "worker", "api"]
            .iter()
            .map(|s| colour_of(s))
            .collect();
        assert!(colours.len() >= 3, "{colours:?}");
        assert!(colours.iter().all(|c| *c < 8));
    }
}
