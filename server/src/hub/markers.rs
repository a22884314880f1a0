//! The lifecycle markers a new viewer was not there to see. Changes are told live only, so
//! for a tail or a resume the latest start and exit of each container within the backlog's
//! span are looked up (the engine keeps only the latest of each).

use std::sync::Arc;

use app::protocol::{ContainerInfo, Lifecycle, LifecycleEvent};

use super::shared::marker;
use crate::docker::inspect::run_times;
use crate::docker::source::Source;
use crate::docker::Engine;
use crate::line::Line;
use crate::runs::RunTimes;

/// The latest start and exit of each container from `since` on, in time order.
pub async fn recent_changes(
    engine: &Engine,
    containers: &[ContainerInfo],
    since: i64,
    backlog: &[Arc<Line>],
) -> Vec<Arc<Lifecycle>> {
    let Ok(docker) = engine.docker() else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    for c in containers {
        if let Ok(Some(run)) = run_times(&docker, Source::of(c)).await {
            changes.extend(placed(c, run, since, backlog));
        }
    }
    changes.sort_by_key(|(at, _)| *at);
    changes.into_iter().map(|(_, m)| Arc::new(m)).collect()
}

/// A container's latest start and exit from `since` on, each at its place among the lines.
fn placed(
    c: &ContainerInfo,
    run: RunTimes,
    since: i64,
    backlog: &[Arc<Line>],
) -> Vec<(i64, Lifecycle)> {
    let Some(started) = run.started else {
        return Vec::new();
    };
    let mine = |l: &&Arc<Line>| c.id.starts_with(&*l.cursor.container);
    let mut changes = Vec::new();
    // The engine stamps a start once it has handled it, so a run's first lines can be
    // stamped before it: the marker goes before them. A running container's last exit is
    // its previous run's, so its run's lines are those after that exit.
    let run_first_line = if run.running {
        let previous_exit = run.finished.filter(|f| *f < started).unwrap_or(i64::MIN);
        backlog
            .iter()
            .filter(mine)
            .map(|l| l.cursor.ts_ns)
            .find(|ts| *ts > previous_exit)
    } else {
        None
    };
    let at = run_first_line.map_or(started, |ts| started.min(ts - 1));
    if started >= since {
        changes.push((at, marker(at, c, LifecycleEvent::Started)));
    }
    if let Some(finished) = run.finished.filter(|_| !run.running) {
        // An exit at once can be stamped before its start (see runs.rs), and the engine
        // stamps a line when it reads it, which can be after the process has exited: the
        // exit goes after the container's last line.
        let last_line = backlog
            .iter()
            .rev()
            .find(mine)
            .map_or(i64::MIN, |l| l.cursor.ts_ns);
        let at = finished.max(started).max(last_line);
        if at >= since {
            let event = LifecycleEvent::Exited {
                exit_code: run.exit_code,
            };
            changes.push((at, marker(at, c, event)));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::ring::tests::line;
    use crate::hub::shared::tests::container;

    fn events(changes: &[(i64, Lifecycle)]) -> Vec<(i64, LifecycleEvent)> {
        changes
            .iter()
            .map(|(at, l)| (*at, l.event.clone()))
            .collect()
    }

    #[test]
    fn a_start_goes_before_its_runs_first_line_even_when_stamped_after_it() {
        let c = container("aaaaaaaaaaaaaaaa");
        let backlog = [line("aaaaaaaaaaaa", 100, 0, "first")];
        let run = RunTimes {
            running: true,
            started: Some(150),
            finished: None,
            exit_code: None,
        };
        assert_eq!(
            events(&placed(&c, run, 0, &backlog)),
            [(99, LifecycleEvent::Started)]
        );
    }

    #[test]
    fn an_exit_goes_after_the_last_line_and_changes_before_since_are_left_out() {
        let c = container("aaaaaaaaaaaaaaaa");
        let backlog = [line("aaaaaaaaaaaa", 300, 0, "last words")];
        let run = RunTimes {
            running: false,
            started: Some(100),
            finished: Some(250),
            exit_code: Some(3),
        };
        assert_eq!(
            events(&placed(&c, run, 200, &backlog)),
            [(300, LifecycleEvent::Exited { exit_code: Some(3) })]
        );
    }
}
