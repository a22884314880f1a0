//! What a viewer may see: every service, or those matching `engine/project/service` or
//! `project/service` patterns (the latter on any engine: a name means the same project
//! wherever it runs; name the engine for less).
//! One check, `Scope::allows`, stands before listing, streaming, tails, downloads and status
//! messages alike.

use app::protocol::{ProjectInfo, ServiceKey};
use globset::{Glob, GlobMatcher};

#[derive(Clone, Debug)]
pub enum Scope {
    All,
    Only(Vec<Pattern>),
}

/// `[engine/]project/service`, each part a glob (`*`, `?`, `[abc]`).
#[derive(Clone, Debug)]
pub struct Pattern {
    /// None: any engine.
    engine: Option<GlobMatcher>,
    project: GlobMatcher,
    service: GlobMatcher,
}

impl Scope {
    /// A comma-separated list of patterns.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let patterns = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Pattern::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.is_empty() {
            return Err("a scope names at least one [engine/]project/service pattern".into());
        }
        Ok(Scope::Only(patterns))
    }

    pub fn allows(&self, key: &ServiceKey) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(patterns) => patterns.iter().any(|p| p.matches(key)),
        }
    }

    /// Whether `project/service` is within on some engine: for what is the project's on no
    /// engine in particular, such as its builds.
    /// Only patterns of every engine count: a pattern of one engine grants nothing beyond it.
    pub fn allows_anywhere(&self, project: &str, service: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(patterns) => patterns.iter().any(|p| {
                p.of_every_engine() && p.project.is_match(project) && p.service.is_match(service)
            }),
        }
    }

    /// Whether some service of the engine `name` may be within: which engines' states a
    /// viewer is told.
    pub fn may_see_engine(&self, name: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(patterns) => patterns
                .iter()
                .any(|p| p.engine.as_ref().is_none_or(|e| e.is_match(name))),
        }
    }

    /// Whether every service of `project`, whatever its name, is within: what writing a
    /// project's own lines (no service named) needs.
    pub fn allows_whole(&self, project: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(patterns) => patterns.iter().any(|p| {
                p.of_every_engine() && p.project.is_match(project) && p.service.glob().glob() == "*"
            }),
        }
    }

    /// The listing as this viewer may see it: other services left out, and projects left
    /// with none.
    pub fn filter(&self, projects: &[ProjectInfo]) -> Vec<ProjectInfo> {
        if matches!(self, Scope::All) {
            return projects.to_vec();
        }
        projects
            .iter()
            .filter_map(|p| {
                let services: Vec<_> = p
                    .services
                    .iter()
                    .filter(|s| self.allows(&s.key()))
                    .cloned()
                    .collect();
                (!services.is_empty()).then(|| ProjectInfo {
                    engine: p.engine.clone(),
                    name: p.name.clone(),
                    services,
                })
            })
            .collect()
    }
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let (engine, project, service) = match parts[..] {
            [project, service] => (None, project, service),
            [engine, project, service] => (Some(engine), project, service),
            _ => {
                return Err(format!(
                    "a scope pattern is [engine/]project/service, got {text:?}"
                ))
            }
        };
        let glob = |g: &str| {
            Glob::new(g)
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("scope pattern {text:?}: {e}"))
        };
        Ok(Pattern {
            engine: engine.map(glob).transpose()?,
            project: glob(project)?,
            service: glob(service)?,
        })
    }

    fn of_every_engine(&self) -> bool {
        self.engine.as_ref().is_none_or(|e| e.glob().glob() == "*")
    }

    fn matches(&self, key: &ServiceKey) -> bool {
        self.engine.as_ref().is_none_or(|e| e.is_match(&key.engine))
            && self.project.is_match(&key.project)
            && self.service.is_match(&key.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str, s: &str) -> ServiceKey {
        ServiceKey::local(p, s)
    }

    #[test]
    fn patterns_match_project_and_service() {
        let scope = Scope::parse("shop/*, billing/api").unwrap();
        assert!(scope.allows(&key("shop", "web")));
        assert!(scope.allows(&key("billing", "api")));
        assert!(!scope.allows(&key("billing", "db")));
        assert!(!scope.allows(&key("shopping", "web")));
        assert!(!scope.allows(&key("other", "api")));
        assert!(Scope::All.allows(&key("anything", "at-all")));
        // Two parts: any engine.
        assert!(scope.allows(&ServiceKey::new("prod", "shop", "web")));
    }

    #[test]
    fn three_parts_name_the_engine() {
        let scope = Scope::parse("prod/*/*, */billing/api").unwrap();
        assert!(scope.allows(&ServiceKey::new("prod", "shop", "web")));
        assert!(!scope.allows(&ServiceKey::new("staging", "shop", "web")));
        assert!(!scope.allows(&key("shop", "web")));
        assert!(scope.allows(&ServiceKey::new("staging", "billing", "api")));
        // Builds are no engine's: an engine's pattern grants none.
        assert!(!scope.allows_anywhere("shop", "web"));
        assert!(scope.allows_anywhere("billing", "api"));
        assert!(scope.may_see_engine("prod") && scope.may_see_engine("staging"));
        let prod = Scope::parse("prod/*/*").unwrap();
        assert!(prod.may_see_engine("prod") && !prod.may_see_engine("staging"));
        assert!(Scope::parse("a/b/c/d")
            .unwrap_err()
            .contains("[engine/]project/service"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Scope::parse("shop")
            .unwrap_err()
            .contains("[engine/]project/service"));
        assert!(Scope::parse("").is_err());
        assert!(Scope::parse("shop/[").is_err());
    }
}
