//! Builds read back from history: a project's builds from their lifecycle events (a start
//! under every service a build touched, and under the project's own empty service; an end
//! likewise), a build's lines from its services' blocks.

use std::collections::{BTreeMap, BTreeSet};

use app::builds::{BuildInfo, BuildPage, BuildResult, MAX_LISTED_BUILDS, MAX_PAGE_LINES};
use app::protocol::{LifecycleEvent, LogLine};

use super::id::number_of;
use super::{BuildId, Builds, BUILD_ENGINE};
use crate::history::{History, ReadError};
use crate::store::{End, Owner, ServiceSpan, StoreError, View};

fn span<'a>(project: &'a str, service: &'a str, since_ns: i64, until_ns: i64) -> ServiceSpan<'a> {
    ServiceSpan {
        engine: BUILD_ENGINE,
        project,
        service,
        since_ns,
        until_ns,
        levels: None,
    }
}

/// What history says of one build.
#[derive(Default)]
struct Told {
    started_ns: Option<i64>,
    /// When it ended, and its exit code (None: interrupted).
    ended: Option<(i64, Option<i64>)>,
    services: BTreeSet<String>,
    /// Where its lines are: each part's service and container id.
    parts: BTreeSet<(String, String)>,
}

/// Every build of `project` history holds, by number.
fn told(view: &View, project: &str, since_ns: i64) -> Result<BTreeMap<u64, Told>, StoreError> {
    let mut builds: BTreeMap<u64, Told> = BTreeMap::new();
    let mut services: BTreeSet<String> = view
        .services(BUILD_ENGINE, since_ns)?
        .into_iter()
        .filter(|(p, _)| p == project)
        .map(|(_, s)| s)
        .collect();
    services.insert(String::new());
    for service in services {
        for e in view.events(&span(project, &service, since_ns, i64::MAX))? {
            let Some(number) = number_of(&e.owner.container) else {
                continue;
            };
            let b = builds.entry(number).or_default();
            b.parts.insert((service.clone(), e.owner.container.clone()));
            if !service.is_empty() {
                b.services.insert(service.clone());
            }
            match e.event {
                LifecycleEvent::Started => {
                    b.started_ns = Some(b.started_ns.map_or(e.ts_ns, |s| s.min(e.ts_ns)));
                }
                LifecycleEvent::Exited { exit_code } => b.ended = Some((e.ts_ns, exit_code)),
                _ => {}
            }
        }
    }
    Ok(builds)
}

fn info(project: &str, number: u64, t: Told, running: bool) -> Option<BuildInfo> {
    let result = match (running, t.ended) {
        (true, _) => BuildResult::Running,
        (false, Some((_, Some(code)))) => BuildResult::Exited { code },
        (false, _) => BuildResult::Interrupted,
    };
    Some(BuildInfo {
        project: project.to_owned(),
        number,
        services: t.services.into_iter().collect(),
        started_ns: t.started_ns?,
        ended_ns: t.ended.filter(|_| !running).map(|(ts, _)| ts),
        result,
    })
}

/// Whether a build shows among `service`'s: it touched the service, or no service at all.
fn belongs(b: &BuildInfo, service: &str) -> bool {
    b.services.is_empty() || b.services.iter().any(|s| s == service)
}

fn wants(project: &str) -> impl Fn(&Owner) -> bool + Send + 'static {
    let project = project.to_owned();
    move |o: &Owner| o.engine == BUILD_ENGINE && o.project == project
}

/// The highest number a build of `project` was given within the retention (0: none).
pub(super) async fn last_number(history: &History, project: &str) -> Result<u64, ReadError> {
    let since = history.oldest_ns();
    let p = project.to_owned();
    history
        .read(wants(project), move |view| {
            let events = view.events(&span(&p, "", since, i64::MAX))?;
            Ok(events
                .iter()
                .filter_map(|e| number_of(&e.owner.container))
                .max()
                .unwrap_or(0))
        })
        .await
}

/// `service`'s builds of `project`, newest first.
pub async fn list(
    builds: &Builds,
    project: &str,
    service: &str,
) -> Result<Vec<BuildInfo>, ReadError> {
    let history = builds.history();
    let since = history.oldest_ns();
    let running = builds.running_in(project);
    let (p, s) = (project.to_owned(), service.to_owned());
    history
        .read(wants(project), move |view| {
            let told = told(view, &p, since)?;
            Ok(told
                .into_iter()
                .rev()
                .filter_map(|(n, t)| info(&p, n, t, running.contains(&n)))
                .filter(|b| belongs(b, &s))
                .take(MAX_LISTED_BUILDS)
                .collect())
        })
        .await
}

/// A page of build `id`'s lines shown with `service` (its own and the project's), after
/// `after` (a line's time and sequence); None when there is no such build of the service.
pub async fn page(
    builds: &Builds,
    id: &BuildId,
    service: &str,
    after: Option<(i64, u32)>,
) -> Result<Option<BuildPage>, ReadError> {
    let history = builds.history();
    let since = history.oldest_ns();
    let running = builds.running_in(&id.project).contains(&id.number);
    let (id, s) = (id.clone(), service.to_owned());
    history
        .read(wants(&id.project), move |view| {
            let Some(t) = told(view, &id.project, since)?.remove(&id.number) else {
                return Ok(None);
            };
            let parts = t.parts.clone();
            let Some(build) = info(&id.project, id.number, t, running).filter(|b| belongs(b, &s))
            else {
                return Ok(None);
            };
            let (lines, more) = lines_of(view, &id.project, &build, &parts, &s, after)?;
            Ok(Some(BuildPage { build, lines, more }))
        })
        .await
}

/// The most bytes of text one page holds: a page of long lines ends early (`more`).
const MAX_PAGE_BYTES: usize = 4 << 20;

/// A page of a build's lines shown with `service`: those of its parts under the service
/// and under the project's own, each part read alone (another build's lines never count
/// against a page), merged in order.
fn lines_of(
    view: &View,
    project: &str,
    build: &BuildInfo,
    parts: &BTreeSet<(String, String)>,
    service: &str,
    after: Option<(i64, u32)>,
) -> Result<(Vec<LogLine>, bool), StoreError> {
    let since = after.map_or(build.started_ns, |(ts, _)| ts.max(build.started_ns));
    let until = build
        .ended_ns
        .map_or(i64::MAX, |e| e.saturating_add(1_000_000_000));
    let mut lines = Vec::new();
    for (s, container) in parts.iter().filter(|(s, _)| s == service || s.is_empty()) {
        // Lines at the cursor's own instant come again and are left out: a few more.
        let limit = MAX_PAGE_LINES + 17;
        let read = view.lines_of(
            &span(project, s, since, until),
            Some(container),
            limit,
            End::Oldest,
        )?;
        lines.extend(
            read.into_iter()
                .filter(|(_, l)| after.is_none_or(|a| (l.ts.ns, l.seq) > a))
                .map(|(o, l)| o.log_line(l)),
        );
    }
    lines.sort_by_key(|l: &LogLine| (l.cursor.ts_ns, l.cursor.seq));
    let mut bytes = 0;
    let fit = lines
        .iter()
        .take(MAX_PAGE_LINES)
        .take_while(|l| {
            bytes += l.text.len();
            bytes <= MAX_PAGE_BYTES
        })
        .count()
        .max(1);
    let more = lines.len() > fit;
    lines.truncate(fit);
    Ok((lines, more))
}
