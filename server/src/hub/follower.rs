//! The follower of one container: it reads the container's log for as long as the container
//! exists, through stops, restarts and engine outages, resuming after the last line it
//! delivered, and places the container's starts and exits among its lines.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use app::protocol::{ContainerInfo, LifecycleEvent};
use tokio::sync::{oneshot, Notify};

use super::exits::{Exit, Exits};
use super::keeper::Keeper;
use super::metrics::OpenStream;
use super::ring::before;
use super::shared::Shared;
use super::stall::{StallWatch, Verdict};
use crate::clock::now_ns;
use crate::docker::frames::{from_whole_stamp, RawLine};
use crate::docker::inspect::{run_times, runs};
use crate::docker::logs::{LineRules, LogQuery, LogStream};
use crate::docker::source::Source;
use crate::docker::{Engine, EngineError};
use crate::history::Recorder;
use crate::redact::KeyState;
use crate::runs::{after_look, RunTimes, Step};
use crate::seen::Seen;

/// Lines read beyond a tail, so that it can begin where a run of lines stamped alike
/// begins (a coarse clock stamps several lines alike; lines are told apart by their rank
/// among those) and still hold as many as asked.
const STAMP_SLACK: u32 = 1000;

/// How long the engine has to say what its newest line is (`stall.rs`).
const ASK_WAIT: Duration = Duration::from_secs(10);

/// The recent past a follower reads first, without follow, so that its feed knows when its
/// tail is complete.
pub struct Backfill {
    pub lines: u32,
    pub done: oneshot::Sender<()>,
}

/// The lines a backfill read, and whether the engine holds older ones.
struct Tail {
    lines: Vec<RawLine>,
    engine_holds_more: bool,
    /// The position of the read's last line in the engine's order: history takes every
    /// line up to it from a read of the whole log (`catch_up`), and the lines that the tail
    /// left out with them.
    read_end: Option<(i64, u32)>,
}

pub struct Follower {
    shared: Arc<Shared>,
    engine: Engine,
    container: ContainerInfo,
    rules: LineRules,
    exits: Arc<Exits>,
    wake: Arc<Notify>,
    /// The position of the last line delivered.
    /// The lines delivered, by position: a re-read gives only what is new.
    seen: Seen,
    /// The container's last start and exit that the timeline has been told of (or that
    /// happened before the feed began).
    told: RunTimes,
    /// Private key blocks, carried from one read of the log to the next.
    keys: KeyState,
    /// Where the lines and changes are kept on disk, unless `--history off`.
    keeper: Option<Keeper>,
    /// When to ask whether the follow stream has stalled; kept across the streams it opens.
    stall: StallWatch,
}

/// Why a follow stream ended.
enum Ended {
    /// The container stopped: its log is complete for now.
    Stopped,
    Removed,
    Failed(EngineError),
    /// The engine has no client yet: try again.
    NotReady,
    /// The engine holds newer lines than the stream sends (`stall.rs`): open it again.
    Stalled,
}

/// What woke a follow.
enum Woke {
    Lines(Option<Result<Vec<RawLine>, EngineError>>),
    /// Time to look whether a task still runs.
    Look,
    /// The engine's answer to what its newest line is (None: no line, or no answer).
    Asked(Option<i64>),
}

/// All of a container's log from `since_secs` on, both streams.
pub(super) fn both(since_secs: i64, tail: Option<u32>, follow: bool) -> LogQuery {
    LogQuery {
        since_secs,
        until_secs: None,
        tail,
        follow,
        stdout: true,
        stderr: true,
    }
}

impl Follower {
    pub fn new(
        shared: Arc<Shared>,
        engine: Engine,
        container: ContainerInfo,
        rules: LineRules,
        exits: Arc<Exits>,
        wake: Arc<Notify>,
        recorder: Option<Recorder>,
    ) -> Follower {
        Follower {
            shared,
            engine,
            container,
            rules,
            exits,
            wake,
            seen: Seen::default(),
            told: RunTimes::default(),
            keys: KeyState::default(),
            keeper: recorder.map(Keeper::new),
            stall: StallWatch::new(),
        }
    }

    /// Hands lines to history, then to the live view.
    async fn deliver(&mut self, lines: Vec<RawLine>) {
        if let Some(k) = &mut self.keeper {
            k.lines(&lines).await;
        }
        self.shared.push(lines, &self.container);
    }

    /// Hands a change in the container's life to history, then to the live view.
    async fn mark(&mut self, ts_ns: i64, event: LifecycleEvent) {
        if let Some(k) = &mut self.keeper {
            k.event(ts_ns, event.clone()).await;
        }
        self.shared.lifecycle(ts_ns, &self.container, event);
    }

    /// Before the follower ends: history gets what waited for the older log.
    async fn settle(&mut self) {
        if let Some(k) = &mut self.keeper {
            k.settle().await;
        }
    }

    pub async fn run(mut self, backfill: Option<Backfill>) {
        self.first_look(backfill.is_none()).await;
        if let Some(backfill) = backfill {
            let Some(tail) = self.backfill(backfill.lines).await else {
                return;
            };
            // The view is ready with the tail; history then takes what came before it, and
            // the tail, in order, while the follow goes on (its lines wait for them).
            let _ = backfill.done.send(());
            self.store_older(tail);
        }
        loop {
            match self.follow().await {
                Ended::Removed => {
                    self.removed(None).await;
                    self.settle().await;
                    return;
                }
                Ended::Failed(e) => {
                    self.engine.report(&e);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Ended::NotReady | Ended::Stalled => {}
                Ended::Stopped => {
                    if self.while_stopped().await {
                        self.settle().await;
                        return;
                    }
                }
            }
        }
    }

    /// Learns the container's run; a container that appeared while the feed runs has a
    /// start that is news.
    async fn first_look(&mut self, is_new: bool) {
        let Ok(docker) = self.engine.docker() else {
            return;
        };
        if let Ok(Some(now)) = run_times(&docker, Source::of(&self.container)).await {
            self.told = now;
            if let Some(started) = now.started.filter(|_| is_new) {
                self.mark(started, LifecycleEvent::Started).await;
                // A run that began and ended before this look (a task that failed between two
                // of the manager's listings): its exit is news too, told after its lines.
                self.told = RunTimes {
                    running: true,
                    finished: None,
                    exit_code: None,
                    ..now
                };
            }
        }
    }

    /// Reads the last `lines` lines into the ring; None if the container is gone.
    /// The read takes `STAMP_SLACK` more, and begins where a run of lines stamped alike
    /// does: each line then has the position any later read gives it.
    async fn backfill(&mut self, lines: u32) -> Option<Tail> {
        loop {
            self.engine.wait_reachable().await;
            if self.engine.docker().is_err() {
                continue;
            }
            let asked = lines.saturating_add(STAMP_SLACK);
            match self.read(both(0, Some(asked), false)).await {
                Ok(mut read) => {
                    let whole = read.len() < asked as usize;
                    if !whole {
                        from_whole_stamp(&mut read, STAMP_SLACK as usize);
                    }
                    let engine_holds_more = !whole || read.len() > lines as usize;
                    let read_end = read.last().map(|l| (l.ts.ns, l.seq));
                    let before_tail = read.len().saturating_sub(lines as usize);
                    let (tail, late) = split_tail(&read, lines as usize);
                    // The late lines are taken first: they are older than most of the tail.
                    let late: Vec<RawLine> = late
                        .into_iter()
                        .filter(|l| self.seen.take((l.ts.ns, l.seq)))
                        .collect();
                    let mut tail = self.seen.fresh(tail);
                    tail.extend(late);
                    // The lines before the tail are not for the follow to find new. Only
                    // those: the read's last line may be a part of one still being written,
                    // stamped as the other stream's last entry.
                    self.seen.read_through(&read[..before_tail]);
                    let read = tail;
                    // The engine may hold older lines than the tail: the ring starts with a
                    // gap only the engine can fill.
                    if engine_holds_more {
                        if let Some(first) = read.first() {
                            let upto = before((first.ts.ns, first.seq));
                            self.shared.not_held_upto(&self.container, upto);
                        }
                    }
                    self.shared.push(read.clone(), &self.container);
                    return Some(Tail {
                        lines: read,
                        engine_holds_more,
                        read_end,
                    });
                }
                Err(EngineError::NotFound(_)) => return None,
                Err(e) => {
                    self.engine.report(&e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Stores, on a task of its own, what the engine holds before the tail read at the
    /// start, then the tail (`store_older`).
    fn store_older(&mut self, tail: Tail) {
        let Some(keeper) = &mut self.keeper else {
            return;
        };
        let catch_up_to = tail.read_end.filter(|_| tail.engine_holds_more);
        let older = super::keeper::store_older(
            self.engine.clone(),
            self.container.clone(),
            self.rules.clone(),
            keeper.recorder().clone(),
            (catch_up_to, tail.lines),
        );
        keeper.behind(older);
    }

    /// Follows the log from after the last line delivered until the stream ends.
    async fn follow(&mut self) -> Ended {
        self.engine.wait_reachable().await;
        let Ok(docker) = self.engine.docker() else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ended::NotReady;
        };
        let source = Source::of(&self.container);
        let ends_with_its_run = source.ends_with_its_run();
        if !ends_with_its_run {
            match runs(&docker, source).await {
                Ok(true) => {}
                Ok(false) => return Ended::Stopped,
                Err(e) => return Ended::Failed(e),
            }
        }
        let query = both(self.since(), None, true);
        let mut stream = LogStream::open_with(&docker, source, query, &self.rules, &mut self.keys);
        let _open = OpenStream::count(self.shared.metrics());
        // The engine's newest line, asked for beside the stream: a slow answer holds up no line.
        let mut asking: Option<Pin<Box<dyn Future<Output = Option<i64>> + Send + '_>>> = None;
        loop {
            // A task's stream outlives its run: its state is looked at when the listing
            // changes (the manager's tasks are polled) and every few seconds. Dropping
            // `next_lines` while it waits loses nothing: what it has read waits in `stream`.
            let woke = tokio::select! {
                next = stream.next_lines() => Woke::Lines(next),
                _ = self.wake.notified(), if !ends_with_its_run => Woke::Look,
                _ = tokio::time::sleep(Duration::from_secs(5)), if !ends_with_its_run => Woke::Look,
                _ = tokio::time::sleep_until(self.stall.due()), if asking.is_none() => {
                    // None if it holds none or does not say in time. A failed ask says nothing
                    // of the stream: the stream reports its own failures.
                    let ask = LogStream::newest_stamp(docker.clone(), source, &self.rules);
                    let ask = async move { tokio::time::timeout(ASK_WAIT, ask).await.ok()?.ok()? };
                    asking = Some(Box::pin(ask));
                    continue;
                }
                newest = async { asking.as_mut().expect("an ask").await }, if asking.is_some() => {
                    asking = None;
                    Woke::Asked(newest)
                }
            };
            match woke {
                Woke::Look => match runs(&docker, source).await {
                    Ok(true) => {}
                    Ok(false) => return Ended::Stopped,
                    Err(e) => return Ended::Failed(e),
                },
                Woke::Asked(newest) => {
                    let delivered = self.seen.newest().map(|(ns, _)| ns);
                    if self.stall.judge(newest, delivered) == Verdict::Stalled {
                        tracing::warn!(
                            container = %self.container.id,
                            "the engine holds newer lines than its log stream sends; opening it again"
                        );
                        self.shared.metrics().stalls.fetch_add(1, Ordering::Relaxed);
                        return Ended::Stalled;
                    }
                }
                Woke::Lines(Some(Ok(lines))) => {
                    let bytes = lines.iter().map(|l| l.text.len()).sum();
                    // Fields apart from the stream's (it holds the key blocks): `deliver`.
                    let fresh = in_stamp_order(self.seen.fresh(lines));
                    if let Some(k) = &mut self.keeper {
                        k.lines(&fresh).await;
                    }
                    self.shared.push(fresh, &self.container);
                    self.stall.heard(bytes);
                }
                Woke::Lines(Some(Err(EngineError::NotFound(_)))) => return Ended::Removed,
                Woke::Lines(Some(Err(e))) => return Ended::Failed(e),
                Woke::Lines(None) => return Ended::Stopped,
            }
        }
    }

    /// A read without follow, to its end (its size is bounded: a tail, or the lines since
    /// the last one delivered), going on from the key blocks of the reads before.
    async fn read(&mut self, query: LogQuery) -> Result<Vec<RawLine>, EngineError> {
        let docker = self.engine.docker()?;
        LogStream::open_with(
            &docker,
            Source::of(&self.container),
            query,
            &self.rules,
            &mut self.keys,
        )
        .collect()
        .await
    }

    /// The engine's `since` is whole seconds: ask from a little before the newest line
    /// delivered (a line stamped before it may come after it); `Seen` skips what was
    /// already delivered.
    fn since(&self) -> i64 {
        self.seen.reread_from_secs()
    }

    /// After a stop. The engine may end a follow stream before its very last entry (a line
    /// without newline written on exit), and a run that starts and ends while we wait here
    /// (a crash loop, a `docker start` of a container that fails at once) is seen by no
    /// follow stream: read without follow now and at every wake, until it runs again (an
    /// event wakes us; the timer is a safety net) or is removed. True if it was removed.
    async fn while_stopped(&mut self) -> bool {
        // Compose removes a container right after stopping it: what the engine says of the
        // stop now may be gone by the look below.
        let mut at_stop = match self.engine.docker() {
            Ok(docker) => run_times(&docker, Source::of(&self.container))
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        loop {
            let Ok(docker) = self.engine.docker() else {
                return false;
            };
            // Read, then look: every line read was written before the look, so a run that
            // the look does not show has no line among them.
            let query = both(self.since(), None, false);
            let lines = match self.read(query).await {
                Ok(lines) => lines,
                // Removed: the look below says so.
                Err(EngineError::NotFound(_)) => Vec::new(),
                Err(e) => return self.failed(e).await,
            };
            let delivered = self.seen.newest().map(|(ns, _)| ns);
            let now = match run_times(&docker, Source::of(&self.container)).await {
                Ok(Some(now)) => now,
                Ok(None) => {
                    self.removed(at_stop).await;
                    return true;
                }
                Err(e) => return self.failed(e).await,
            };
            let fresh = in_stamp_order(self.seen.fresh(lines));
            for step in after_look(self.told, now, delivered, fresh) {
                match step {
                    Step::Lines(lines) => self.deliver(lines).await,
                    Step::Marker(at, event) => self.mark(at, event).await,
                }
            }
            self.told = now;
            at_stop = None;
            if now.running {
                return false;
            }
            // A task runs once: after its end only a change in the manager's listing of it
            // (its removal) is news. A container may run again unseen: look every 5 s too.
            let ended_for_good = !Source::of(&self.container).ends_with_its_run();
            let ended_for_good = ended_for_good && now.finished.is_some();
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)), if !ended_for_good => {}
            }
        }
    }

    /// A read or a look failed: reported, and after a pause, tried again from the top (a
    /// manager that lost its quorum answers at once, and would be asked in a loop).
    async fn failed(&self, e: EngineError) -> bool {
        self.engine.report(&e);
        tokio::time::sleep(Duration::from_millis(250)).await;
        false
    }

    /// The container is gone. If the timeline still holds it running, its exit goes first:
    /// as the engine said it right after the stop (`at_stop`), or as its `die` event said.
    async fn removed(&mut self, at_stop: Option<RunTimes>) {
        let told = self.told;
        let delivered = self.seen.newest().map(|(ns, _)| ns);
        if told.running {
            let exit = match at_stop.filter(|s| !s.running && s.started == told.started) {
                Some(s) => s.finished.map(|ts_ns| Exit {
                    ts_ns,
                    code: s.exit_code,
                }),
                None => self.exits.wait_for(&self.container.id, told.started).await,
            };
            if let Some(exit) = exit {
                let at = exit.ts_ns.max(delivered.unwrap_or(exit.ts_ns));
                let event = LifecycleEvent::Exited {
                    exit_code: exit.code,
                };
                self.mark(at, event).await;
            }
        }
        self.mark(now_ns(), LifecycleEvent::Removed).await;
    }
}

/// `lines` in the order the engine stamped them. It writes stdout and stderr to the log as
/// each stream's copier gets to it, so a stderr line can follow a stdout line stamped after
/// it; a replica's lines go out in time order (PROTOCOL.md), at least within one read.
fn in_stamp_order(mut lines: Vec<RawLine>) -> Vec<RawLine> {
    // Nearly always in order already, which a stable sort checks in one pass.
    lines.sort_by_key(|l| (l.ts.ns, l.seq));
    lines
}

/// The last `lines` lines of `read` (in the engine's order), and the lines before them that
/// are stamped after their first: the engine stamps stdout and stderr apart, so such a line
/// lies above the gap the ring starts with (`not_held_upto` just before the tail's first),
/// and is the ring's to hold, or no one's.
fn split_tail(read: &[RawLine], lines: usize) -> (Vec<RawLine>, Vec<RawLine>) {
    let (before, tail) = read.split_at(read.len().saturating_sub(lines));
    let Some(first) = tail.first().map(|l| (l.ts.ns, l.seq)) else {
        return (tail.to_vec(), Vec::new());
    };
    let late = before.iter().filter(|l| (l.ts.ns, l.seq) > first);
    (tail.to_vec(), late.cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::shared::tests::raw as line;

    #[test]
    fn lines_go_on_in_the_order_the_engine_stamped_them() {
        let read = vec![
            line(10, "line 12"),
            line(5, "crash 12, on stderr"),
            line(20, "x"),
        ];
        let texts: Vec<String> = in_stamp_order(read).into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["crash 12, on stderr", "line 12", "x"]);
    }

    #[test]
    fn a_line_read_before_the_tail_but_stamped_after_its_first_goes_with_it() {
        let read = vec![
            line(10, "a"),
            line(25, "x, on stderr, stamped late"),
            line(20, "b"),
            line(30, "c"),
            line(40, "d"),
        ];
        let texts = |l: &[RawLine]| l.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
        let (tail, late) = split_tail(&read, 3);
        assert_eq!(texts(&tail), ["b", "c", "d"]);
        assert_eq!(texts(&late), ["x, on stderr, stamped late"]);
        let (tail, late) = split_tail(&read, 10);
        assert_eq!(
            (tail.len(), late.len()),
            (5, 0),
            "the whole log is the tail"
        );
        assert_eq!(split_tail(&read, 0).0.len(), 0);
    }
}
