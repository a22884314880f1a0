//! A container's runs as the engine reports them, and how the lines read after a look at it
//! interleave with its starts and exits on the service's timeline.
//!
//! The engine keeps only a container's latest start and latest exit. Its exit time is the
//! process's real exit, while its start time is stamped once the start has been handled: a
//! process that exits at once (a crash loop, a failing `docker start`) can show an exit
//! before its own start, and lines stamped before it. So a start and an exit are placed by
//! what must be true, not by the engine's clock alone.

use app::protocol::LifecycleEvent;

use crate::docker::frames::RawLine;

/// When a container last started and exited, as the engine says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunTimes {
    pub running: bool,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    pub exit_code: Option<i64>,
}

/// One thing to add to the timeline, in the order given.
#[derive(Debug, PartialEq)]
pub enum Step {
    Lines(Vec<RawLine>),
    Marker(i64, LifecycleEvent),
}

/// What the timeline gets from a look at a container: `told` is what the last look saw (and
/// the timeline was told), `now` what this one sees, `delivered` the time of the container's
/// last line already on the timeline, `fresh` the lines written since, in order, read before
/// this look.
pub fn after_look(
    told: RunTimes,
    now: RunTimes,
    delivered: Option<i64>,
    mut fresh: Vec<RawLine>,
) -> Vec<Step> {
    let new_exit = now.finished.filter(|f| Some(*f) != told.finished);
    let Some(start) = now.started.filter(|s| Some(*s) != told.started) else {
        // The same run: its last lines, then its end if it ended.
        let last = fresh.last().map(|l| l.ts.ns).or(delivered);
        let mut steps = vec![Step::Lines(fresh)];
        if let Some(f) = new_exit.filter(|_| !now.running) {
            let code = now.exit_code;
            steps.push(Step::Marker(f.max(last.unwrap_or(f)), exited(code)));
        }
        return steps;
    };

    // A new run began. The old run's exit is known when the last look saw it, or while the
    // engine still holds it because the new run goes on.
    let old_exit = match (told.running, now.running) {
        (false, _) => told.finished,
        (true, true) => new_exit,
        (true, false) => None,
    };
    let new_run = fresh.split_off(run_boundary(&fresh, old_exit, start));
    let last_old = fresh.last().map(|l| l.ts.ns).or(delivered);
    let mut steps = vec![Step::Lines(fresh)];
    let started = new_run.first().map_or(start, |l| l.ts.ns.min(start));
    if told.running {
        // The run being followed ended. Its exit is the one the engine holds only while the
        // new run still goes; after the new run's own exit, how the old one ended is lost.
        let (at, code) = match new_exit.filter(|_| now.running) {
            Some(f) => (f.max(last_old.unwrap_or(f)).min(started), now.exit_code),
            None => (started, None),
        };
        steps.push(Step::Marker(at, exited(code)));
    }
    steps.push(Step::Marker(started, LifecycleEvent::Started));
    let last = new_run.last().map_or(started, |l| l.ts.ns);
    steps.push(Step::Lines(new_run));
    if !now.running {
        if let Some(f) = now.finished {
            steps.push(Step::Marker(f.max(last), exited(now.exit_code)));
        }
    }
    steps
}

/// Where, in `fresh`, the old run's lines end and the new run's begin.
///
/// The engine stamps a line when it reads it from the process, so an old run's last lines
/// can be stamped a little after its exit, and a new run's first lines a little before its
/// start; but every old line is read before the new process begins. A line stamped before
/// the old exit is the old run's, one stamped after the new start is the new run's, and the
/// few in between fall on the side of the widest pause between exit and start: the engine
/// stops one process and starts the next between the two bursts.
fn run_boundary(fresh: &[RawLine], old_exit: Option<i64>, start: i64) -> usize {
    let Some(exit) = old_exit.filter(|f| *f < start) else {
        // No usable exit: the new run's start is the best boundary there is.
        let cut = old_exit.map_or(start, |f| f.saturating_add(1).min(start));
        return fresh.partition_point(|l| l.ts.ns < cut);
    };
    let first = fresh.partition_point(|l| l.ts.ns <= exit);
    let end = fresh.partition_point(|l| l.ts.ns < start);
    let points: Vec<i64> = std::iter::once(exit)
        .chain(fresh[first..end].iter().map(|l| l.ts.ns))
        .chain(std::iter::once(start))
        .collect();
    let widest = points
        .windows(2)
        .enumerate()
        .max_by_key(|(i, w)| (w[1] - w[0], std::cmp::Reverse(*i)))
        .map_or(0, |(i, _)| i);
    first + widest
}

fn exited(exit_code: Option<i64>) -> LifecycleEvent {
    LifecycleEvent::Exited { exit_code }
}

#[cfg(test)]
mod tests {
    //! Pure unit tests: run times and lines are made up, no engine.
    use super::*;
    use crate::clock::Timestamp;
    use app::protocol::Stream;

    fn line(ns: i64, text: &str) -> RawLine {
        RawLine {
            ts: Timestamp { ns },
            seq: 0,
            stream: Stream::Stdout,
            text: text.to_owned(),
            truncated: false,
            level: None,
        }
    }

    fn runs(running: bool, started: i64, finished: Option<i64>, code: i64) -> RunTimes {
        RunTimes {
            running,
            started: Some(started),
            finished,
            exit_code: Some(code),
        }
    }

    /// The steps as text, e.g. ["a", "b", "exited 3 @40"].
    fn said(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .flat_map(|s| match s {
                Step::Lines(lines) => lines.iter().map(|l| l.text.clone()).collect(),
                Step::Marker(at, LifecycleEvent::Started) => vec![format!("started @{at}")],
                Step::Marker(at, LifecycleEvent::Exited { exit_code: Some(c) }) => {
                    vec![format!("exited {c} @{at}")]
                }
                Step::Marker(at, LifecycleEvent::Exited { exit_code: None }) => {
                    vec![format!("exited @{at}")]
                }
                Step::Marker(at, LifecycleEvent::Removed) => vec![format!("removed @{at}")],
                Step::Marker(at, LifecycleEvent::Health { health }) => {
                    vec![format!("{health:?} @{at}")]
                }
            })
            .collect()
    }

    #[test]
    fn the_followed_run_ends_after_its_last_lines() {
        let steps = after_look(
            runs(true, 10, None, 0),
            runs(false, 10, Some(50), 1),
            None,
            vec![line(40, "a"), line(45, "b")],
        );
        assert_eq!(said(&steps), ["a", "b", "exited 1 @50"]);
    }

    #[test]
    fn an_exit_stamped_before_the_last_line_is_shown_after_it() {
        let steps = after_look(
            runs(true, 10, None, 0),
            runs(false, 10, Some(44), 0),
            None,
            vec![line(45, "last")],
        );
        assert_eq!(said(&steps), ["last", "exited 0 @45"]);
    }

    #[test]
    fn nothing_changed_nothing_told() {
        let stopped = runs(false, 10, Some(50), 1);
        assert_eq!(
            said(&after_look(stopped, stopped, None, vec![])),
            Vec::<String>::new()
        );
    }

    // `docker start` of a container that fails at once, between two looks: the engine's exit
    // time can come before its start time, and its lines before both.
    #[test]
    fn a_whole_run_between_two_looks_is_start_lines_exit() {
        let steps = after_look(
            runs(false, 10, Some(50), 3),
            runs(false, 100, Some(98), 3),
            None,
            vec![line(97, "start 3"), line(97, "line 4")],
        );
        assert_eq!(
            said(&steps),
            ["started @97", "start 3", "line 4", "exited 3 @98"]
        );
    }

    #[test]
    fn a_restart_seen_running_shows_the_old_exit_then_the_start() {
        // The new run's first line is stamped before the engine's start time.
        let steps = after_look(
            runs(true, 10, None, 0),
            runs(true, 100, Some(90), 0),
            None,
            vec![line(80, "stop 7"), line(97, "start 7"), line(101, "line 8")],
        );
        assert_eq!(
            said(&steps),
            ["stop 7", "exited 0 @90", "started @97", "start 7", "line 8"]
        );
    }

    // The engine read the old run's last line after its exit: the line is still the old
    // run's, and the exit goes after it.
    #[test]
    fn a_line_stamped_after_the_exit_stays_with_its_run() {
        let steps = after_look(
            runs(true, 10, None, 0),
            runs(true, 100, Some(90), 0),
            None,
            vec![
                line(80, "line 6"),
                line(91, "stop 6"),
                line(99, "start 6"),
                line(101, "line 7"),
            ],
        );
        assert_eq!(
            said(&steps),
            [
                "line 6",
                "stop 6",
                "exited 0 @91",
                "started @99",
                "start 6",
                "line 7"
            ]
        );
    }

    // Seen stopped by the last look, started again by this one: the same split applies.
    #[test]
    fn a_late_line_of_a_stopped_run_comes_before_the_next_start() {
        let steps = after_look(
            runs(false, 10, Some(90), 0),
            runs(true, 200, Some(90), 0),
            None,
            vec![line(92, "stop 6"), line(195, "start 6")],
        );
        assert_eq!(said(&steps), ["stop 6", "started @195", "start 6"]);
    }

    // The follow stream gave the run's last line, stamped after its exit, before it ended.
    #[test]
    fn an_exit_goes_after_a_late_line_already_delivered() {
        let steps = after_look(
            runs(true, 10, None, 0),
            runs(true, 100, Some(90), 0),
            Some(93),
            vec![line(99, "start 6")],
        );
        assert_eq!(said(&steps), ["exited 0 @93", "started @99", "start 6"]);
        let steps = after_look(
            runs(true, 10, None, 0),
            runs(false, 10, Some(90), 0),
            Some(93),
            vec![],
        );
        assert_eq!(said(&steps), ["exited 0 @93"]);
    }

    // The run being followed ended, another started and ended before this look: the engine no
    // longer says how the first ended, and the timeline does not make it up.
    #[test]
    fn two_exits_between_looks_leave_the_first_without_a_code() {
        let steps = after_look(
            runs(true, 10, None, 0),
            runs(false, 100, Some(120), 3),
            None,
            vec![line(20, "old"), line(110, "new")],
        );
        assert_eq!(
            said(&steps),
            ["old", "exited @100", "started @100", "new", "exited 3 @120"]
        );
    }

    #[test]
    fn a_new_run_still_going_gets_its_start_only() {
        let steps = after_look(
            runs(false, 10, Some(50), 2),
            runs(true, 100, Some(50), 2),
            None,
            vec![line(101, "hello")],
        );
        assert_eq!(said(&steps), ["started @100", "hello"]);
    }
}
