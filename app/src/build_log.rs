//! A build's lines as the web app holds them (`ui/builds.rs`, `ui/build_view.rs`): pages in
//! order, bounded, the oldest let go first, and the cursor the next request goes on from;
//! what to ask after a page; how a build's result and duration are shown.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::builds::{describe_duration, BuildInfo, BuildPage, BuildResult};
use crate::protocol::LogLine;

/// The most lines of one build the page keeps (the server bounds a build anyway).
pub const MAX_BUILD_LINES: usize = 100_000;

/// Lines that came together, drawn together: the view keys them by `id`, so a new page adds
/// its own rows and leaves the others alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub id: u64,
    pub lines: Arc<[LogLine]>,
}

/// A build's lines, oldest first, at most `cap`.
#[derive(Clone, Debug)]
pub struct BuildLog {
    chunks: VecDeque<Chunk>,
    len: usize,
    cap: usize,
    next_id: u64,
    dropped: u64,
    /// The newest line's place, `(ts_ns, seq)`: the next page starts after it.
    after: Option<(i64, u32)>,
}

impl Default for BuildLog {
    fn default() -> Self {
        BuildLog::new(MAX_BUILD_LINES)
    }
}

impl BuildLog {
    pub fn new(cap: usize) -> BuildLog {
        BuildLog {
            chunks: VecDeque::new(),
            len: 0,
            cap: cap.max(1),
            next_id: 0,
            dropped: 0,
            after: None,
        }
    }

    /// Adds a page's lines after those held. A line at or before the newest one held (a
    /// page asked twice) is left out; beyond the bound, the oldest lines go.
    pub fn push(&mut self, lines: Vec<LogLine>) {
        let fresh: Vec<LogLine> = lines
            .into_iter()
            .filter(|l| self.after.is_none_or(|a| l.cursor.position() > a))
            .collect();
        let Some(last) = fresh.last() else {
            return;
        };
        self.after = Some(last.cursor.position());
        self.len += fresh.len();
        let id = self.take_id();
        self.chunks.push_back(Chunk {
            id,
            lines: fresh.into(),
        });
        self.trim();
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn trim(&mut self) {
        while self.len > self.cap {
            let Some(first) = self.chunks.pop_front() else {
                break;
            };
            let over = self.len - self.cap;
            if first.lines.len() > over {
                // Part of it stays: a chunk of its own, drawn anew.
                let rest: Arc<[LogLine]> = first.lines[over..].into();
                let id = self.take_id();
                self.chunks.push_front(Chunk { id, lines: rest });
                self.len -= over;
                self.dropped += over as u64;
            } else {
                self.len -= first.lines.len();
                self.dropped += first.lines.len() as u64;
            }
        }
    }

    /// Where the next page starts: after this `(ts_ns, seq)`.
    pub fn after(&self) -> Option<(i64, u32)> {
        self.after
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Lines let go to keep within the bound.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.chunks.iter()
    }

    /// Every line held, oldest first.
    pub fn lines(&self) -> impl Iterator<Item = &LogLine> {
        self.chunks.iter().flat_map(|c| c.lines.iter())
    }
}

/// What to ask after a page of a build's lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// More lines are there already: ask again at once.
    Now,
    /// The build runs: ask again, the server holding the question until a line comes.
    Wait,
    /// The build is over and every line was read.
    Done,
}

pub fn next_ask(page: &BuildPage) -> Next {
    if page.more {
        Next::Now
    } else if page.build.result == BuildResult::Running {
        Next::Wait
    } else {
        Next::Done
    }
}

/// The class a result is coloured by: `ok`, `failed` or `running`.
pub fn result_class(result: &BuildResult) -> &'static str {
    match result {
        BuildResult::Running => "running",
        r if r.succeeded() => "ok",
        _ => "failed",
    }
}

/// How long a build took, or has taken so far while it runs; an interrupted one's end is
/// not known ("–").
pub fn shown_duration(build: &BuildInfo, now_ns: i64) -> String {
    if build.ended_ns.is_none() && build.result != BuildResult::Running {
        return "–".into();
    }
    describe_duration(build.duration_ns(now_ns))
}

/// "services web, db", or "the whole project" when its lines named no service.
pub fn shown_services(build: &BuildInfo) -> String {
    match build.services.as_slice() {
        [] => "the whole project".into(),
        [one] => format!("service {one}"),
        many => format!("services {}", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::Cursor;
    use crate::protocol::{Replica, Stream};

    fn line(ts_ns: i64, seq: u32, text: &str) -> LogLine {
        LogLine {
            cursor: Cursor {
                ts_ns,
                seq,
                container: "build".into(),
            },
            ts: String::new(),
            stream: Stream::Stdout,
            replica: Replica {
                number: 1,
                name: "build".into(),
            },
            text: text.into(),
            truncated: false,
            level: None,
        }
    }

    fn texts(log: &BuildLog) -> Vec<String> {
        log.lines().map(|l| l.text.clone()).collect()
    }

    fn info(result: BuildResult, ended_ns: Option<i64>) -> BuildInfo {
        BuildInfo {
            project: "p".into(),
            number: 1,
            services: vec![],
            started_ns: 1_000_000_000,
            ended_ns,
            result,
        }
    }

    #[test]
    fn pages_follow_one_another_and_the_cursor_moves_to_the_newest_line() {
        let mut log = BuildLog::default();
        assert_eq!(log.after(), None);
        log.push(vec![line(10, 0, "a"), line(10, 1, "b")]);
        log.push(vec![]);
        log.push(vec![line(11, 0, "c")]);
        assert_eq!(texts(&log), ["a", "b", "c"]);
        assert_eq!(log.after(), Some((11, 0)));
        assert_eq!(log.chunks().count(), 2);
        let ids: Vec<u64> = log.chunks().map(|c| c.id).collect();
        assert!(ids[0] < ids[1]);
    }

    #[test]
    fn a_page_asked_twice_adds_nothing_twice() {
        let mut log = BuildLog::default();
        log.push(vec![line(10, 0, "a"), line(10, 1, "b")]);
        log.push(vec![line(10, 1, "b"), line(10, 2, "c")]);
        assert_eq!(texts(&log), ["a", "b", "c"]);
        assert_eq!(log.len(), 3);
    }

    #[test]
    fn beyond_the_bound_the_oldest_lines_go_whole_chunks_or_part_of_one() {
        let mut log = BuildLog::new(3);
        log.push(vec![line(1, 0, "a"), line(2, 0, "b")]);
        log.push(vec![line(3, 0, "c")]);
        assert_eq!(log.dropped(), 0);
        log.push(vec![line(4, 0, "d"), line(5, 0, "e")]);
        assert_eq!(texts(&log), ["c", "d", "e"]);
        assert_eq!((log.len(), log.dropped()), (3, 2));
        log.push(vec![line(6, 0, "f"), line(7, 0, "g")]);
        assert_eq!(texts(&log), ["e", "f", "g"]);
        assert_eq!((log.len(), log.dropped()), (3, 4));
        // The chunk cut in part is a new one, so that it is drawn again.
        let ids: Vec<u64> = log.chunks().map(|c| c.id).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids[0] > ids[1]);
        assert_eq!(log.after(), Some((7, 0)));
    }

    #[test]
    fn a_page_longer_than_the_bound_keeps_its_newest_lines() {
        let mut log = BuildLog::new(2);
        log.push((0..5).map(|i| line(i, 0, &i.to_string())).collect());
        assert_eq!(texts(&log), ["3", "4"]);
        assert_eq!(log.dropped(), 3);
    }

    #[test]
    fn more_is_asked_at_once_a_running_build_is_waited_for_an_ended_one_is_done() {
        let page = |more, result| BuildPage {
            build: info(result, None),
            lines: vec![],
            more,
        };
        assert_eq!(next_ask(&page(true, BuildResult::Running)), Next::Now);
        assert_eq!(
            next_ask(&page(true, BuildResult::Exited { code: 0 })),
            Next::Now
        );
        assert_eq!(next_ask(&page(false, BuildResult::Running)), Next::Wait);
        assert_eq!(
            next_ask(&page(false, BuildResult::Exited { code: 3 })),
            Next::Done
        );
        assert_eq!(next_ask(&page(false, BuildResult::Interrupted)), Next::Done);
    }

    #[test]
    fn results_are_coloured_by_how_they_went() {
        assert_eq!(result_class(&BuildResult::Running), "running");
        assert_eq!(result_class(&BuildResult::Exited { code: 0 }), "ok");
        assert_eq!(result_class(&BuildResult::Exited { code: 3 }), "failed");
        assert_eq!(result_class(&BuildResult::Interrupted), "failed");
    }

    #[test]
    fn a_running_build_counts_up_an_ended_one_stands_an_interrupted_one_is_unknown() {
        let now = 3_500_000_000;
        assert_eq!(
            shown_duration(&info(BuildResult::Running, None), now),
            "2.5 s"
        );
        let ended = info(BuildResult::Exited { code: 0 }, Some(2_200_000_000));
        assert_eq!(shown_duration(&ended, now), "1.2 s");
        assert_eq!(
            shown_duration(&info(BuildResult::Interrupted, None), now),
            "–"
        );
    }

    #[test]
    fn services_are_named_or_the_project_is() {
        let mut b = info(BuildResult::Running, None);
        assert_eq!(shown_services(&b), "the whole project");
        b.services = vec!["web".into()];
        assert_eq!(shown_services(&b), "service web");
        b.services = vec!["db".into(), "web".into()];
        assert_eq!(shown_services(&b), "services db, web");
    }
}
