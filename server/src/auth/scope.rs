//! What a viewer may see: every service, or those matching `project/service` patterns.
//! One check, `Scope::allows`, stands before listing, streaming, tails, downloads and status
//! messages alike.

use app::protocol::{ProjectInfo, ServiceKey};
use globset::{Glob, GlobMatcher};

#[derive(Clone, Debug)]
pub enum Scope {
    All,
    Only(Vec<Pattern>),
}

/// `project/service`, each half a glob (`*`, `?`, `[abc]`).
#[derive(Clone, Debug)]
pub struct Pattern {
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
            return Err("a scope names at least one project/service pattern".into());
        }
        Ok(Scope::Only(patterns))
    }

    pub fn allows(&self, key: &ServiceKey) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(patterns) => patterns.iter().any(|p| p.matches(key)),
        }
    }

    /// Whether every service of `project`, whatever its name, is within: what writing a
    /// project's own lines (no service named) needs.
    pub fn allows_whole(&self, project: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(patterns) => patterns
                .iter()
                .any(|p| p.project.is_match(project) && p.service.glob().glob() == "*"),
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
                    name: p.name.clone(),
                    services,
                })
            })
            .collect()
    }
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        let (project, service) = text
            .split_once('/')
            .ok_or_else(|| format!("a scope pattern is project/service, got {text:?}"))?;
        let glob = |g: &str| {
            Glob::new(g)
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("scope pattern {text:?}: {e}"))
        };
        Ok(Pattern {
            project: glob(project)?,
            service: glob(service)?,
        })
    }

    fn matches(&self, key: &ServiceKey) -> bool {
        self.project.is_match(&key.project) && self.service.is_match(&key.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str, s: &str) -> ServiceKey {
        ServiceKey {
            project: p.into(),
            service: s.into(),
        }
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
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Scope::parse("shop")
            .unwrap_err()
            .contains("project/service"));
        assert!(Scope::parse("").is_err());
        assert!(Scope::parse("shop/[").is_err());
    }
}
