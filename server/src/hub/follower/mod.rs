//! The follower of one container: it reads the container's log for as long as the container
//! exists, through stops, restarts and engine outages, resuming after the last line it
//! delivered, and places the container's starts and exits among its lines.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use app::protocol::{ContainerInfo, LifecycleEvent};
use tokio::sync::Notify;

mod backfill;

use super::exits::{Exit, Exits};
use super::keeper::Keeper;
use super::metrics::OpenStream;
use super::order::in_stamp_order;
use super::reopen::{Newest, TailBound};
use super::shared::Shared;
use super::stall::{Fresh, StallWatch, Verdict};
use crate::clock::now_ns;
use crate::docker::frames::RawLine;
use crate::docker::inspect::{run_times, runs};
use crate::docker::logs::{LineRules, LogQuery, LogStream};
use crate::docker::source::Source;
use crate::docker::{Docker, Engine, EngineError};
use crate::history::Recorder;
use crate::redact::KeyState;
use crate::runs::{after_look, RunTimes, Step};
use crate::seen::Seen;

/// How long the engine has to say what its newest line is (`stall.rs`).
const ASK_WAIT: Duration = Duration::from_secs(10);

pub use backfill::Backfill;

pub struct Follower {
    shared: Arc<Shared>,
    engine: Engine,
    container: ContainerInfo,
    rules: LineRules,
    exits: Arc<Exits>,
    wake: Arc<Notify>,
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
    /// The last follow opened with a tail did not reach back to lines delivered: the next
    /// reads from `since` alone (`reopen.rs`).
    tail_fell_short: bool,
    /// The newest line delivered of each stream, for a reopened follow to know it again.
    newest: Newest,
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
    /// The tail the stream was opened with did not reach back to lines delivered: open it
    /// again from `since` alone.
    FellShort,
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
            tail_fell_short: false,
            newest: Newest::default(),
        }
    }

    /// Hands lines to history, then to the live view.
    async fn deliver(&mut self, lines: Vec<RawLine>) {
        if let Some(k) = &mut self.keeper {
            k.lines(&lines).await;
        }
        self.newest.delivered(&lines);
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
                Ended::NotReady | Ended::Stalled | Ended::FellShort => {}
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
        // A container's follow reads its last lines, not its whole log, to find `since`.
        let bound = match std::mem::take(&mut self.tail_fell_short) {
            true => None,
            false => self.tail_bound(),
        };
        let query = both(self.since(), bound.as_ref().map(TailBound::lines), true);
        // The stream holds the key blocks while it reads: lent from here, so that reading it
        // can use the rest of `self`.
        // A read that falls short is read again from `since`: it leaves them as they were.
        let keys_before = bound.as_ref().map(|_| self.keys.clone());
        let mut keys = std::mem::take(&mut self.keys);
        let mut stream = LogStream::open_with(&docker, source, query, &self.rules, &mut keys);
        self.stall.opened();
        let ended = self.read_follow(&docker, &mut stream, bound).await;
        drop(stream);
        self.keys = match (&ended, keys_before) {
            (Ended::FellShort, Some(before)) => before,
            _ => keys,
        };
        ended
    }

    /// Reads a follow stream until it ends, or stalls, or its tail falls short.
    async fn read_follow(
        &mut self,
        docker: &Docker,
        stream: &mut LogStream<'_>,
        mut bound: Option<TailBound>,
    ) -> Ended {
        // The ask beside the stream holds `source` and the rules for the whole read: copies,
        // so that the rest of `self` stays free to deliver lines.
        let container = self.container.clone();
        let rules = self.rules.clone();
        let source = Source::of(&container);
        let ends_with_its_run = source.ends_with_its_run();
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
                    let ask = LogStream::newest_stamp(docker.clone(), source, &rules);
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
                Woke::Look => match runs(docker, source).await {
                    Ok(true) => {}
                    Ok(false) => return Ended::Stopped,
                    Err(e) => return Ended::Failed(e),
                },
                Woke::Asked(newest) => {
                    if self.stalled(newest) {
                        return Ended::Stalled;
                    }
                }
                Woke::Lines(Some(Ok(lines))) => {
                    if bound
                        .as_mut()
                        .is_some_and(|b| !b.holds(&lines, &self.newest))
                    {
                        tracing::debug!(
                            container = %self.container.id,
                            "the follow's tail did not reach back to lines delivered; \
                             opening it from its start time alone"
                        );
                        self.tail_fell_short = true;
                        return Ended::FellShort;
                    }
                    let newest = self.seen.newest();
                    let reached =
                        newest.is_some_and(|n| lines.iter().any(|l| (l.ts.ns, l.seq) >= n));
                    let fresh = in_stamp_order(self.seen.fresh(lines));
                    let heard = Fresh::of(&fresh, reached);
                    self.deliver(fresh).await;
                    self.stall.heard(heard);
                }
                Woke::Lines(Some(Err(EngineError::NotFound(_)))) => return Ended::Removed,
                Woke::Lines(Some(Err(e))) => return Ended::Failed(e),
                Woke::Lines(None) => return Ended::Stopped,
            }
        }
    }

    /// Whether the follow stream has stalled, now that the engine said its newest line is
    /// stamped `newest` (`stall.rs`).
    fn stalled(&mut self, newest: Option<i64>) -> bool {
        let delivered = self.seen.newest().map(|(ns, _)| ns);
        let verdict = self.stall.judge(newest, delivered);
        tracing::debug!(
            container = %self.container.id,
            ?newest,
            ?delivered,
            ?verdict,
            "asked the engine for its newest line"
        );
        let stalled = verdict == Verdict::Stalled;
        if stalled {
            let sends = match self.stall.repeating() {
                true => "only lines delivered already",
                false => "nothing",
            };
            tracing::warn!(
                container = %self.container.id,
                "the engine holds newer lines, and its log stream sends {sends}; opening it again"
            );
            self.shared.metrics().stalls.fetch_add(1, Ordering::Relaxed);
        }
        stalled
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

    /// The tail to read from the log's end with (`reopen.rs`); a task's log is read from its
    /// start: the manager gathers it from its node.
    fn tail_bound(&self) -> Option<TailBound> {
        match Source::of(&self.container) {
            Source::Container(_) => TailBound::new(&self.seen),
            Source::Task(_) => None,
        }
    }

    /// The lines from `since` on, without follow: from the log's end when its last lines
    /// reach back to lines delivered (`reopen.rs`), else from its start.
    async fn read_since(&mut self) -> Result<Vec<RawLine>, EngineError> {
        if let Some(mut bound) = self.tail_bound() {
            let keys_before = self.keys.clone();
            let lines = self
                .read(both(self.since(), Some(bound.lines()), false))
                .await?;
            if bound.holds(&lines, &self.newest) {
                return Ok(lines);
            }
            self.keys = keys_before;
        }
        self.read(both(self.since(), None, false)).await
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
            let lines = match self.read_since().await {
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
