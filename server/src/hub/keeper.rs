//! History's side of one follower. What the follower reads goes to viewers at once, and to
//! history through its keeper, in the order it was read.
//!
//! At a first start on a long log, history must store the older log (read again from the
//! engine) before the new lines, in that order. That read runs on a task of its own while
//! the follower follows: new lines reach viewers at once and wait here, in order, until the
//! older log is stored, then go to history. At most `--history-catch-up-bytes` of them wait;
//! beyond that the follower waits for the older log, as it did before there was a keeper,
//! and lines wait in the engine instead. So history gets exactly the same sequence either
//! way, and a viewer waits for a container's whole log to be stored only when more than the
//! bound came meanwhile.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use app::protocol::{ContainerInfo, LifecycleEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::follower::both;
use crate::clock::Timestamp;
use crate::docker::frames::RawLine;
use crate::docker::logs::{LineRules, LogStream};
use crate::docker::source::Source;
use crate::docker::Engine;
use crate::history::{Recorder, LINE_OVERHEAD};
use crate::redact::KeyState;
use crate::seen::JITTER_NS;

/// How long a read of the older log may send nothing before it is taken as hung.
const CATCH_UP_SILENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// What waits for history while the older log is stored.
enum Held {
    Lines(Vec<RawLine>),
    Event(i64, LifecycleEvent),
}

impl Held {
    /// What it costs, as history's own queue counts lines.
    fn bytes(&self) -> usize {
        match self {
            Held::Lines(lines) => lines.iter().map(|l| l.text.len() + LINE_OVERHEAD).sum(),
            Held::Event(..) => LINE_OVERHEAD,
        }
    }
}

/// The older log being stored, and what came meanwhile, handed to the task that stores it:
/// it stores them after the older log, in order, even if nothing comes after them.
struct CatchUp {
    to_keep: mpsc::UnboundedSender<Held>,
    task: JoinHandle<()>,
    /// Bytes handed to the task and not yet stored: at most `--history-catch-up-bytes`.
    waiting: Arc<AtomicUsize>,
    /// The older log is stored: what comes now may go to history directly, once the task
    /// has stored what it was handed.
    stored_older: Arc<AtomicBool>,
}

pub struct Keeper {
    recorder: Recorder,
    catching_up: Option<CatchUp>,
}

impl Keeper {
    pub fn new(recorder: Recorder) -> Keeper {
        Keeper {
            recorder,
            catching_up: None,
        }
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Stores the older log (`older`, which hands it to the recorder) on a task of its
    /// own, then what is kept meanwhile.
    pub fn behind(&mut self, older: impl Future<Output = ()> + Send + 'static) {
        let (to_keep, mut kept) = mpsc::unbounded_channel::<Held>();
        let waiting = Arc::new(AtomicUsize::new(0));
        let stored_older = Arc::new(AtomicBool::new(false));
        let (recorder, left, stored) =
            (self.recorder.clone(), waiting.clone(), stored_older.clone());
        let task = tokio::spawn(async move {
            older.await;
            stored.store(true, Ordering::SeqCst);
            while let Some(item) = kept.recv().await {
                let bytes = item.bytes();
                record(&recorder, item).await;
                left.fetch_sub(bytes, Ordering::SeqCst);
            }
        });
        self.catching_up = Some(CatchUp {
            to_keep,
            task,
            waiting,
            stored_older,
        });
    }

    pub async fn lines(&mut self, lines: &[RawLine]) {
        if !lines.is_empty() {
            self.keep(Held::Lines(lines.to_vec())).await;
        }
    }

    pub async fn event(&mut self, ts_ns: i64, event: LifecycleEvent) {
        self.keep(Held::Event(ts_ns, event)).await;
    }

    async fn keep(&mut self, mut item: Held) {
        if let Some(c) = &self.catching_up {
            let bytes = item.bytes();
            let fits = c.waiting.load(Ordering::SeqCst) + bytes <= self.recorder.catch_up_bytes();
            if fits && !c.stored_older.load(Ordering::SeqCst) {
                c.waiting.fetch_add(bytes, Ordering::SeqCst);
                match c.to_keep.send(item) {
                    Ok(()) => return,
                    // The task is gone (it panicked): the item comes back.
                    Err(back) => item = back.0,
                }
            }
            self.settle().await;
        }
        record(&self.recorder, item).await;
    }

    /// Waits until the older log, and what was handed over after it, are stored: before the
    /// follower ends, when the bound is reached, and once the older log is stored (from then
    /// on lines go to history directly).
    pub async fn settle(&mut self) {
        let Some(c) = self.catching_up.take() else {
            return;
        };
        drop(c.to_keep);
        // A catch-up that failed left history with a gap there, and said so; what came
        // after it is kept all the same.
        let _ = c.task.await;
    }
}

async fn record(recorder: &Recorder, item: Held) {
    match item {
        Held::Lines(lines) => recorder.lines(lines).await,
        Held::Event(ts_ns, event) => recorder.event(ts_ns, event).await,
    }
}

/// Stores the tail read at the start (`tail.1`), after what the engine holds before it (up to
/// `tail.0`, the tail's last line, when the engine holds more than the tail).
pub async fn store_older(
    engine: Engine,
    container: ContainerInfo,
    rules: LineRules,
    recorder: Recorder,
    tail: (Option<(i64, u32)>, Vec<RawLine>),
) {
    let (catch_up_to, lines) = tail;
    if let Some(end) = catch_up_to {
        catch_up(&engine, &container, &rules, &recorder, end).await;
    }
    // Repeats after a whole catch-up (history skips them); else the tail is kept.
    recorder.lines(lines).await;
}

/// Hands history what the engine wrote from the last line stored through `end` (the last
/// line of the tail just read, in the engine's order): after a restart of Lookout, or at the
/// first start, every line the engine still holds. Through the tail's end, not to its first
/// line: the lines a tail leaves out (`from_whole_stamp`) may lie after its first. Streamed,
/// so that memory stays flat; a failed read is reported and leaves history with a gap only
/// there.
pub async fn catch_up(
    engine: &Engine,
    container: &ContainerInfo,
    rules: &LineRules,
    recorder: &Recorder,
    end: (i64, u32),
) {
    let stored = recorder.last_position().await;
    if stored.is_some_and(|p| p >= end) {
        return;
    }
    let Ok(docker) = engine.docker() else {
        return;
    };
    // From a little before the newest line stored: a line stamped before it may not be.
    let since = stored.map_or(0, |(ns, _)| {
        Timestamp {
            ns: ns.saturating_sub(JITTER_NS),
        }
        .whole_seconds()
    });
    // Its own key blocks: this read starts earlier than the follow's.
    let mut keys = KeyState::default();
    let query = both(since, None, false);
    let mut stream = LogStream::open_with(&docker, Source::of(container), query, rules, &mut keys);
    loop {
        // A read of the whole log that sends nothing for long has hung: the tail stored after
        // it holds the newest lines, and history has a gap only where the read stopped.
        let Ok(next) = tokio::time::timeout(CATCH_UP_SILENCE, stream.next_lines()).await else {
            tracing::warn!(
                container = %container.id,
                "the engine sent nothing of the older log for {CATCH_UP_SILENCE:?}; history has a gap there"
            );
            return;
        };
        let Some(read) = next else {
            return;
        };
        match read {
            // Through the tail's last line in the order the engine wrote them, not in
            // time: a line stamped after it can come before it. History skips what it
            // has if that line is never found.
            Ok(mut lines) => {
                let end_at = lines.iter().position(|l| (l.ts.ns, l.seq) == end);
                if let Some(at) = end_at {
                    lines.truncate(at + 1);
                }
                recorder.lines(lines).await;
                if end_at.is_some() {
                    return;
                }
            }
            Err(e) => {
                engine.report(&e);
                return;
            }
        }
    }
}
