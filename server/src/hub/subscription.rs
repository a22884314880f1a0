//! A subscriber's view of a feed: the backlog it starts with, then live lines read from the
//! tape in batches.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use app::protocol::{ContainerInfo, Lifecycle, ServiceKey};
use tokio::sync::watch;

use super::feed::Feed;
use super::given::Given;
use super::shared::{Shared, Snapshot};
use super::tape::{Item, Pos, Take, Taken};
use crate::docker::EngineError;
use crate::line::Line;

/// The longest a busy subscriber gathers lines that come one by one before it sends them.
const GATHER: Duration = Duration::from_millis(10);
/// How long a busy subscriber gathers for each subscriber there is (itself included), up to
/// `GATHER`: the more subscribers, the more lines each message carries, so that the server
/// sends at most about 10,000 messages a second in all, however many watch.
const GATHER_PER_SUBSCRIBER: Duration = Duration::from_micros(100);
/// A subscriber that waited this long for its next line is idle: that line goes out at once.
/// One that finds lines waiting, or waits less, is busy.
const IDLE_WAIT: Duration = Duration::from_micros(500);
/// tokio's timers end on the millisecond tick after they are due.
const TIMER_GRAIN: Duration = Duration::from_millis(1);

/// How a subscriber's lines are handed out: at most `lines` and `bytes` at once (one
/// WebSocket message), and, but for a full batch, at most one message a `pace`.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    pub lines: usize,
    pub bytes: usize,
    /// What its client asked for (`ws::Pace`): a browser draws once a frame, and each
    /// message costs it about 0.2 ms whatever it holds, so a burst sent as hundreds of small
    /// messages cost it more than the lines. A line that finds its subscriber idle goes out
    /// at once only if a pace has passed since the last message: a stream that comes in
    /// pieces a little apart would otherwise be sent a message a piece. Zero: as busy
    /// gathering alone has it.
    pub pace: Duration,
}

/// What a subscriber receives next.
#[derive(Debug)]
pub enum Delivery {
    Lines(Vec<Arc<Line>>),
    /// The subscriber fell further behind than its queue holds: this many lines were skipped.
    Dropped(u64),
    /// A container of the service started, exited or was removed.
    Lifecycle(Arc<Lifecycle>),
}

pub struct Subscription {
    /// The service's containers when the subscription started.
    pub containers: Vec<ContainerInfo>,
    /// Lines after the resume cursors that could not be given: more than a ring's worth.
    pub lost: u64,
    /// Why lines after the resume cursors could not be read, if some could not: the viewer
    /// is told, since they are missing from its view.
    pub unread: Option<EngineError>,
    /// The latest start and exit of each container within the backlog's span, in time order.
    pub markers: Vec<Arc<Lifecycle>>,
    /// The tail (or the lines after the resume cursors), oldest first.
    pub backlog: Vec<Arc<Line>>,
    tap: Tap,
    /// Keeps the service's followers running for as long as someone subscribes.
    feed: Arc<Feed>,
}

/// The parts of a subscription that begin when it starts.
pub struct Opening {
    pub containers: Vec<ContainerInfo>,
    pub lost: u64,
    pub unread: Option<EngineError>,
    pub markers: Vec<Arc<Lifecycle>>,
}

impl Subscription {
    pub fn new(feed: Arc<Feed>, snapshot: Snapshot, opening: Opening) -> Subscription {
        let Snapshot {
            backlog,
            pos,
            tape,
            given,
            ..
        } = snapshot;
        let shared = feed.shared.clone();
        shared.metrics().subscribers.fetch_add(1, Ordering::Relaxed);
        Subscription {
            containers: opening.containers,
            lost: opening.lost,
            unread: opening.unread,
            markers: opening.markers,
            backlog,
            tap: Tap::new(shared, pos, tape, given),
            feed,
        }
    }

    pub fn key(&self) -> &ServiceKey {
        &self.feed.key
    }

    /// Waits for the next lines, at most a `batch` at a time, or the next lifecycle change.
    /// Cancel-safe: what was gathered stays for the next call.
    pub async fn next(&mut self, batch: Batch) -> Delivery {
        self.tap.next(batch).await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.tap
            .shared
            .metrics()
            .subscribers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// A reader of a feed's tape from its own position.
pub struct Tap {
    shared: Arc<Shared>,
    pos: Pos,
    /// What tells it of new items.
    tape: watch::Receiver<()>,
    /// What it was given of each container, so that no line is given twice whatever order
    /// containers' (and streams') lines arrive in.
    given: Given,
    /// A lifecycle change read while a batch of lines was being gathered; it goes next.
    pending_lifecycle: Option<Arc<Lifecycle>>,
    pending_drop: u64,
    /// Lines taken from the tape and not yet delivered, their bytes, and until when to
    /// gather more.
    gathered: Vec<Arc<Line>>,
    gathered_bytes: usize,
    gather_until: tokio::time::Instant,
    /// When lines last went out (at first, when the subscription began: its backlog went
    /// then): the next message goes a pace after it at the earliest.
    last_lines: tokio::time::Instant,
}

impl Tap {
    pub fn new(shared: Arc<Shared>, pos: Pos, tape: watch::Receiver<()>, given: Given) -> Tap {
        Tap {
            shared,
            pos,
            tape,
            given,
            pending_lifecycle: None,
            pending_drop: 0,
            gathered: Vec::new(),
            gathered_bytes: 0,
            gather_until: tokio::time::Instant::now(),
            last_lines: tokio::time::Instant::now(),
        }
    }

    /// A line reaching an idle subscriber goes out at once; a busy one's lines are gathered
    /// first (`busy_gather`), so that it sends one message of many lines rather than one per
    /// line, and is woken once per batch.
    pub async fn next(&mut self, batch: Batch) -> Delivery {
        loop {
            if self.pending_drop > 0 && self.gathered.is_empty() {
                let n = std::mem::take(&mut self.pending_drop);
                self.shared.metrics().dropped(n);
                return Delivery::Dropped(n);
            }
            if self.gathered.is_empty() {
                if let Some(l) = self.pending_lifecycle.take() {
                    return Delivery::Lifecycle(l);
                }
                // Seen before the read, so a push after the read wakes the wait below.
                self.tape.borrow_and_update();
                self.take(batch);
                let mut gather = self.busy_gather();
                if self.gathered.is_empty() {
                    if self.pending_lifecycle.is_none() && self.pending_drop == 0 {
                        let waiting = tokio::time::Instant::now();
                        // The feed outlives its subscriptions, so the tape never closes first.
                        if self.tape.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                        if waiting.elapsed() >= IDLE_WAIT {
                            gather = Duration::ZERO;
                        }
                        self.take(batch);
                    }
                    if self.gathered.is_empty() {
                        continue;
                    }
                }
                let now = tokio::time::Instant::now();
                self.gather_until = (now + gather).max(self.last_lines + batch.pace);
            }
            if self.take(batch) {
                let left = self
                    .gather_until
                    .saturating_duration_since(tokio::time::Instant::now());
                // A wait shorter than the timer's grain would last the grain: with a few
                // subscribers, a busy one only lets the followers push what they hold.
                if left >= TIMER_GRAIN {
                    tokio::time::sleep_until(self.gather_until).await;
                } else if !left.is_zero() {
                    tokio::task::yield_now().await;
                }
                self.take(batch);
            }
            let lines = std::mem::take(&mut self.gathered);
            self.gathered_bytes = 0;
            self.last_lines = tokio::time::Instant::now();
            self.shared
                .metrics()
                .lines_out
                .fetch_add(lines.len() as u64, Ordering::Relaxed);
            return Delivery::Lines(lines);
        }
    }

    /// How long this subscriber gathers while busy.
    fn busy_gather(&self) -> Duration {
        let subscribers = self.shared.metrics().subscribers.load(Ordering::Relaxed);
        let n = u32::try_from(subscribers.max(1)).unwrap_or(u32::MAX);
        GATHER_PER_SUBSCRIBER.saturating_mul(n).min(GATHER)
    }

    /// Takes what the tape holds now into `gathered`, up to a batch; true if it stopped
    /// because the tape had no more (more may come), false at a change, a loss, or a full
    /// batch.
    fn take(&mut self, batch: Batch) -> bool {
        if self.pending_lifecycle.is_some() || self.pending_drop > 0 {
            return false;
        }
        let mut gathered = std::mem::take(&mut self.gathered);
        let mut bytes = self.gathered_bytes;
        let mut lifecycle = None;
        let Taken { lost, exhausted } = {
            let state = self.shared.lock();
            state.tape.read(&mut self.pos, |item| {
                if gathered.len() >= batch.lines || (bytes >= batch.bytes && !gathered.is_empty()) {
                    return Take::Leave;
                }
                match item {
                    Item::Line(line) => {
                        if self
                            .given
                            .give(&line.cursor.container, line.cursor.position())
                        {
                            bytes += line.json().len();
                            gathered.push(line.clone());
                        }
                        Take::More
                    }
                    // A change ends a batch: it goes after the lines before it.
                    Item::Lifecycle(l) => {
                        lifecycle = Some(l.clone());
                        Take::Last
                    }
                }
            })
        };
        self.pending_lifecycle = lifecycle;
        self.pending_drop += lost;
        self.gathered = gathered;
        self.gathered_bytes = bytes;
        exhausted
    }
}

#[cfg(test)]
mod tests {
    //! The batching logic on a feed's shared state with made-up lines: no engine.
    use super::*;
    use crate::docker::frames::RawLine;
    use crate::hub::shared::tests::{container, raw, shared};
    use crate::hub::Start;
    use app::protocol::LifecycleEvent;

    const BIG: Batch = Batch {
        lines: 1000,
        bytes: 1 << 20,
        pace: Duration::ZERO,
    };

    fn tap(s: &Arc<Shared>, start: Start) -> Tap {
        let snap = s.snapshot(&start);
        Tap::new(s.clone(), snap.pos, snap.tape, snap.given)
    }

    fn texts(d: Delivery) -> Vec<String> {
        match d {
            Delivery::Lines(lines) => lines.iter().map(|l| l.text.clone()).collect(),
            other => panic!("expected lines, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn lines_pushed_while_gathering_go_out_in_one_batch() {
        let s = Arc::new(shared(100, 100));
        let mut t = tap(&s, Start::Tail(0));
        s.push(vec![raw(1, "a")], &container("aaa"));
        s.push(vec![raw(2, "b"), raw(3, "c")], &container("aaa"));
        assert_eq!(texts(t.next(BIG).await), ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_stdout_line_coming_after_a_later_stamped_stderr_line_is_delivered() {
        // The engine stamps the streams apart: a line written first may come second.
        let s = Arc::new(shared(100, 100));
        let mut t = tap(&s, Start::Tail(0));
        let err = RawLine {
            seq: 1,
            stream: app::protocol::Stream::Stderr,
            ..raw(20, "err")
        };
        s.push(vec![err], &container("aaa"));
        s.push(vec![raw(10, "out")], &container("aaa"));
        assert_eq!(texts(t.next(BIG).await), ["err", "out"]);
    }

    /// What a subscriber waiting for lines gets when one comes after `quiet`, and how long
    /// after it came (on tokio's paused clock).
    async fn delivered_after(quiet: Duration, subscribers: i64) -> (Vec<String>, Duration) {
        let s = Arc::new(shared(100, 100));
        s.metrics()
            .subscribers
            .store(subscribers, Ordering::Relaxed);
        let mut t = tap(&s, Start::Tail(0));
        let writer = s.clone();
        let pushed = tokio::spawn(async move {
            tokio::time::sleep(quiet).await;
            writer.push(vec![raw(1, "a")], &container("aaa"));
            let at = tokio::time::Instant::now();
            writer.push(vec![raw(2, "b")], &container("aaa"));
            at
        });
        let lines = texts(t.next(BIG).await);
        let at = pushed.await.expect("the writer");
        (lines, at.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_reaching_an_idle_subscriber_goes_out_at_once() {
        // With 100 subscribers a busy one would gather for 10 ms.
        let (lines, after) = delivered_after(Duration::from_millis(50), 100).await;
        assert_eq!(lines, ["a", "b"]);
        assert_eq!(
            after,
            Duration::ZERO,
            "an idle subscriber's lines wait for nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_subscriber_gathers_the_longer_the_more_subscribers_there_are() {
        // A wait ends on the millisecond tick after it is due.
        for (subscribers, gather_ms) in [(10, 1.0), (50, 5.0), (100, 10.0), (5_000, 10.0)] {
            let s = Arc::new(shared(100, 100));
            s.metrics()
                .subscribers
                .store(subscribers, Ordering::Relaxed);
            let mut t = tap(&s, Start::Tail(0));
            // A line that waits for it: it is busy.
            s.push(vec![raw(1, "a")], &container("aaa"));
            let start = tokio::time::Instant::now();
            let writer = s.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                writer.push(vec![raw(2, "b")], &container("aaa"));
            });
            assert_eq!(
                texts(t.next(BIG).await),
                ["a", "b"],
                "{subscribers} subscribers"
            );
            let waited = start.elapsed().as_secs_f64() * 1000.0;
            assert!(
                waited >= gather_ms && waited < gather_ms + 1.0,
                "{subscribers} subscribers: gathered {waited} ms, not {gather_ms} ms"
            );
        }
    }

    /// A batch paced for a frame, as the web app asks.
    const PACED: Batch = Batch {
        pace: Duration::from_millis(16),
        ..BIG
    };

    fn one_subscriber() -> (Arc<Shared>, Tap) {
        let s = Arc::new(shared(100, 100));
        s.metrics().subscribers.store(1, Ordering::Relaxed);
        let t = tap(&s, Start::Tail(0));
        (s, t)
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_subscriber_gathers_for_its_pace_while_busy_and_not_while_idle() {
        let (s, mut t) = one_subscriber();
        // Busy: a line waits for it, and another comes while it gathers.
        s.push(vec![raw(1, "a")], &container("aaa"));
        let start = tokio::time::Instant::now();
        let writer = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            writer.push(vec![raw(2, "b")], &container("aaa"));
        });
        assert_eq!(texts(t.next(PACED).await), ["a", "b"]);
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(16) && waited < Duration::from_millis(17),
            "gathered {waited:?}, not 16 ms"
        );
        // Idle: a line after a quiet pace goes out at once.
        let writer = s.clone();
        let pushed = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.push(vec![raw(3, "c")], &container("aaa"));
            tokio::time::Instant::now()
        });
        assert_eq!(texts(t.next(PACED).await), ["c"]);
        let at = pushed.await.expect("the writer");
        assert_eq!(
            at.elapsed(),
            Duration::ZERO,
            "an idle subscriber's line waits for nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_subscriber_idle_for_less_than_its_pace_waits_for_the_pace() {
        // A stream that comes in pieces a few milliseconds apart: each piece finds the
        // subscriber idle, and each would be a message of its own.
        let (s, mut t) = one_subscriber();
        let writer = s.clone();
        tokio::spawn(async move {
            for (i, text) in ["a", "b", "c", "d"].into_iter().enumerate() {
                tokio::time::sleep(Duration::from_millis(5)).await;
                writer.push(vec![raw(i as i64 + 1, text)], &container("aaa"));
            }
        });
        let start = tokio::time::Instant::now();
        assert_eq!(texts(t.next(PACED).await), ["a", "b", "c"]);
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(16),
            "the first message a pace after the subscription began"
        );
        let first = tokio::time::Instant::now();
        assert_eq!(texts(t.next(PACED).await), ["d"]);
        assert_eq!(
            first.elapsed(),
            Duration::from_millis(16),
            "the next a pace after the first, though its line found the subscriber idle"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_subscriber_of_few_does_not_wait_on_the_timer() {
        let (s, mut t) = one_subscriber();
        s.push(vec![raw(1, "a"), raw(2, "b")], &container("aaa"));
        let start = tokio::time::Instant::now();
        assert_eq!(texts(t.next(BIG).await), ["a", "b"]);
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "0.1 ms is under the timer's grain"
        );
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_its_lines_and_the_rest_follow() {
        let s = Arc::new(shared(100, 100));
        let mut t = tap(&s, Start::Tail(0));
        s.push(
            (1..=5).map(|i| raw(i, &format!("l{i}"))).collect(),
            &container("aaa"),
        );
        let two = Batch { lines: 2, ..BIG };
        assert_eq!(texts(t.next(two).await), ["l1", "l2"]);
        assert_eq!(texts(t.next(two).await), ["l3", "l4"]);
        assert_eq!(texts(t.next(two).await), ["l5"]);
    }

    #[tokio::test]
    async fn a_lifecycle_change_ends_a_batch_and_keeps_its_place_among_the_lines() {
        let s = Arc::new(shared(100, 100));
        let mut t = tap(&s, Start::Tail(0));
        let c = container("aaa");
        s.push(vec![raw(1, "before")], &c);
        s.lifecycle(2, &c, LifecycleEvent::Removed);
        s.push(vec![raw(3, "after")], &c);
        assert_eq!(texts(t.next(BIG).await), ["before"]);
        assert!(matches!(t.next(BIG).await, Delivery::Lifecycle(l) if l.ts_ns == 2));
        assert_eq!(texts(t.next(BIG).await), ["after"]);
    }

    #[tokio::test]
    async fn a_subscriber_behind_the_queue_is_told_how_many_lines_it_lost() {
        let s = Arc::new(shared(100, 3));
        let mut t = tap(&s, Start::Tail(0));
        s.push(
            (1..=5).map(|i| raw(i, &format!("l{i}"))).collect(),
            &container("aaa"),
        );
        assert!(matches!(t.next(BIG).await, Delivery::Dropped(2)));
        assert_eq!(texts(t.next(BIG).await), ["l3", "l4", "l5"]);
    }

    #[tokio::test]
    async fn a_line_already_in_the_backlog_is_not_given_again() {
        let s = Arc::new(shared(100, 100));
        let c = container("aaa");
        s.push(vec![raw(5, "in backlog")], &c);
        let mut t = tap(&s, Start::Tail(10));
        // A reopened stream repeats a second's lines; the follower filters most, this is the
        // subscriber's own guard.
        s.push(vec![raw(5, "in backlog"), raw(6, "new")], &c);
        assert_eq!(texts(t.next(BIG).await), ["new"]);
    }
}
