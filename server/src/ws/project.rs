//! A subscription to several services of a project: which services (named, or every one
//! the viewer may see), where each resumes, the newest of their tails, and the services
//! that join a whole project's view after it began.

use app::protocol::{
    Cursor, ErrorCode, ProjectInfo, ServiceInfo, ServiceKey, ServiceNames, UnknownService,
    MAX_SERVICES,
};

use super::send::{send_error, Closed};
use super::Session;
use crate::clock;
use crate::hub::{Start, Subscription};

/// How long before a whole project's subscription a service that joins it later is followed
/// from.
const JOIN_MARGIN_NS: i64 = 1_000_000_000;

/// One service a subscription follows, with its containers' ids when it is one of several.
pub(super) struct Part {
    pub(super) key: ServiceKey,
    pub(super) containers: Vec<String>,
}

impl Part {
    fn holds(&self, c: &Cursor) -> bool {
        self.containers
            .iter()
            .any(|id| id.starts_with(&*c.container))
    }

    /// Of a resume for several services, the cursors this one goes on from: those of its
    /// own containers and of containers no service holds now (removed or recreated while
    /// the client was away). Another service's cursors would set its floor, and send again
    /// changes the client has; a service the client holds no line of takes them all.
    pub(super) fn cursors(&self, all: &[Cursor], parts: &[Part]) -> Vec<Cursor> {
        let own: Vec<Cursor> = all
            .iter()
            .filter(|c| self.holds(c) || !parts.iter().any(|p| p.holds(c)))
            .cloned()
            .collect();
        if all.iter().any(|c| self.holds(c)) {
            own
        } else {
            all.to_vec()
        }
    }
}

/// Leaves in the backlogs only the newest `n` lines of them all: each service's tail is of
/// `n`, and holding them all at once would cost services × `n`.
pub(super) fn keep_newest(subs: &mut [Subscription], n: usize) {
    let mut all: Vec<&Cursor> = subs
        .iter()
        .flat_map(|s| s.backlog.iter().map(|l| &l.cursor))
        .collect();
    if all.len() <= n {
        return;
    }
    if n == 0 {
        subs.iter_mut().for_each(|s| s.backlog.clear());
        return;
    }
    let at = all.len() - n;
    let (_, cut, _) = all.select_nth_unstable(at);
    let cut = (*cut).clone();
    for s in subs {
        s.backlog.retain(|l| l.cursor >= cut);
    }
}

/// A view of a whole project: which, since when, and the request that asked for it.
#[derive(Clone)]
pub(super) struct Whole {
    engine: String,
    project: String,
    since_ns: i64,
    id: Option<u32>,
}

impl Session<'_> {
    /// A project's services, those named or (none named) every one, followed as one view.
    pub(super) async fn subscribe_project(
        &mut self,
        engine: String,
        project: String,
        named: Option<ServiceNames>,
        start: Start,
        id: Option<u32>,
    ) -> Result<(), Closed> {
        let whole = named.is_none();
        // Before the listing, and a second early: a service that starts meanwhile, or an
        // engine whose clock is a little behind this one's, loses no line when it joins.
        let since_ns = clock::now_ns().saturating_sub(JOIN_MARGIN_NS);
        let parts = match self.project_services(&engine, &project, named).await {
            Ok(parts) => parts,
            Err((code, message)) => return send_error(self.tx, code, message, id).await,
        };
        if self.subscribe(parts, start, id).await? {
            self.whole = whole.then_some(Whole {
                engine,
                project,
                since_ns,
                id,
            });
        }
        Ok(())
    }

    /// The services of `project` a project subscription follows, with their containers:
    /// those named, or every one with containers that its viewer may see. Named services are
    /// all checked against one listing before any is followed.
    async fn project_services(
        &self,
        engine: &str,
        project: &str,
        named: Option<ServiceNames>,
    ) -> Result<Vec<Part>, (ErrorCode, String)> {
        let hub = &self.state.hub;
        let projects = hub
            .list_of(engine)
            .await
            .map_err(|e| (ErrorCode::EngineUnreachable, e.to_string()))?;
        let shown: Vec<&ServiceInfo> = projects
            .iter()
            .filter(|p| p.engine == engine && p.name == project)
            .flat_map(|p| &p.services)
            .filter(|s| !s.containers.is_empty() && hub.may_see(&s.key(), &self.viewer.scope))
            .collect();
        let part = |s: &ServiceInfo| Part {
            key: s.key(),
            containers: s.containers.iter().map(|c| c.id.clone()).collect(),
        };
        let Some(named) = named else {
            if shown.is_empty() {
                let name: String = project.chars().take(64).collect();
                return Err((
                    ErrorCode::UnknownService,
                    format!("unknown project {name:?}: no Compose project of that name with a running or stopped service"),
                ));
            }
            return Ok(shown.into_iter().map(part).collect());
        };
        named
            .get()
            .iter()
            .map(|name| {
                let found = shown.iter().find(|s| s.service == *name);
                found.map(|s| part(s)).ok_or_else(|| {
                    let key = ServiceKey::new(engine, project, name);
                    (ErrorCode::UnknownService, UnknownService(key).to_string())
                })
            })
            .collect()
    }

    /// A whole project's view takes in the services that come to it after it began: each is
    /// followed from that moment, announced with the view's request's `id`.
    pub(super) async fn join_new_services(
        &mut self,
        projects: &[ProjectInfo],
    ) -> Result<(), Closed> {
        let Some(Whole {
            engine,
            project,
            since_ns,
            id,
        }) = self.whole.clone()
        else {
            return Ok(());
        };
        let hub = &self.state.hub;
        let new: Vec<ServiceKey> = projects
            .iter()
            .filter(|p| p.engine == engine && p.name == project)
            .flat_map(|p| &p.services)
            .filter(|s| !s.containers.is_empty() && hub.may_see(&s.key(), &self.viewer.scope))
            .map(ServiceInfo::key)
            .filter(|k| !self.subs.iter().any(|s| s.key() == k))
            .collect();
        // Each join is a listing and a feed: a view grows to at most as many services as a
        // subscription may name.
        let room = MAX_SERVICES.saturating_sub(self.subs.len());
        for key in new.into_iter().take(room) {
            let since = Start::Resume(vec![Cursor::start_of(since_ns)]);
            match hub.subscribe(key.clone(), &self.viewer.scope, since).await {
                Ok(s) => {
                    let mut one = [s];
                    self.announce(&mut one, None, id).await?;
                    self.subs.extend(one);
                }
                // Gone again, or the engine did not answer: the next listing tries again.
                Err(e) => tracing::debug!(%key, error = %e, "a new service was not joined"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(service: &str, ids: &[&str]) -> Part {
        Part {
            key: ServiceKey::local("p", service),
            containers: ids.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn cursor(container: &str) -> Cursor {
        Cursor {
            ts_ns: 1,
            seq: 0,
            container: container.into(),
        }
    }

    #[test]
    fn each_service_resumes_from_its_own_cursors_and_those_of_containers_gone() {
        let parts = [
            part("web", &["aaaa1111", "aaaa2222"]),
            part("db", &["bbbb1111"]),
            part("quiet", &["cccc1111"]),
        ];
        let all = [cursor("aaaa1"), cursor("bbbb1"), cursor("dddd1")];
        let names = |cs: Vec<Cursor>| {
            cs.into_iter()
                .map(|c| c.container.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(parts[0].cursors(&all, &parts)), ["aaaa1", "dddd1"]);
        assert_eq!(names(parts[1].cursors(&all, &parts)), ["bbbb1", "dddd1"]);
        assert_eq!(
            names(parts[2].cursors(&all, &parts)),
            ["aaaa1", "bbbb1", "dddd1"],
            "a service the client holds no line of takes them all"
        );
    }
}
