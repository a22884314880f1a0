//! What the followers of a service write to and its subscribers read from: the ring and the
//! tape under one lock, and the snapshot a new subscriber starts from.

use std::sync::{Arc, Mutex, MutexGuard};

use app::protocol::{ContainerInfo, Lifecycle, LifecycleEvent};
use tokio::sync::watch;

use super::given::Given;
use super::metrics::Metrics;
use super::ring::{raise, Marks, Ring, RingCaps};
use super::tape::{Bounds, Item, Pos, Tape};
use super::Start;
use crate::clock::Timestamp;
use crate::docker::frames::RawLine;
use crate::docker::logs::{short_id, Tag};
use crate::docker::past::Gap;
use crate::line::Line;

pub struct Shared {
    /// The ring and the tape under one lock, so that a snapshot of the ring plus the tape
    /// after it hold every line exactly once.
    state: Mutex<State>,
    /// Told after each push, once the lock is released: subscribers woken by it find the
    /// new items without waiting for the pusher.
    pushed: watch::Sender<()>,
    ring_caps: RingCaps,
    metrics: Arc<Metrics>,
}

pub struct State {
    pub ring: Ring,
    pub tape: Tape,
}

/// What a new subscriber starts from.
pub struct Snapshot {
    pub backlog: Vec<Arc<Line>>,
    /// Where on the tape the items after the backlog begin.
    pub pos: Pos,
    pub tape: watch::Receiver<()>,
    /// What the subscriber has (or will have, with the gaps) of each container.
    pub given: Given,
    /// What the resume misses that the ring no longer holds: only the engine has it.
    pub gaps: Vec<Gap>,
    /// For a tail the ring holds only part of: per container, what came before the ring
    /// (history may hold it).
    pub older: Vec<Gap>,
    /// The backlog is every line the engine holds of the service.
    pub whole: bool,
}

impl Shared {
    pub fn new(ring_caps: RingCaps, queue: Bounds, metrics: Arc<Metrics>) -> Shared {
        Shared {
            state: Mutex::new(State {
                ring: Ring::default(),
                tape: Tape::new(queue),
            }),
            pushed: watch::channel(()).0,
            ring_caps,
            metrics,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("ring lock")
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Adds lines to the ring (kept in cursor order) and to the tape every subscriber reads.
    pub fn push(&self, lines: Vec<RawLine>, container: &ContainerInfo) {
        if lines.is_empty() {
            return;
        }
        let mut state = self.lock();
        self.metrics
            .lines_in
            .fetch_add(lines.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let tag = Tag::new(container);
        for raw in lines {
            let line = Line::shared(tag.line(raw));
            state.ring.insert(line.clone(), self.ring_caps);
            self.onto_tape(&mut state, Item::Line(line));
        }
        drop(state);
        self.pushed.send_replace(());
    }

    /// Puts `item` on the tape, or, with no subscriber, moves the tape past it. Asked under
    /// the lock a snapshot is taken under, so a subscriber is counted before any item it
    /// must read.
    fn onto_tape(&self, state: &mut State, item: Item) {
        if self.pushed.receiver_count() == 0 {
            state.tape.pass(&item);
        } else {
            state.tape.push(item);
        }
    }

    /// Notes that lines of `container` up to `upto` may exist that the ring does not hold.
    pub fn not_held_upto(&self, container: &ContainerInfo, upto: (i64, u32)) {
        self.lock()
            .ring
            .not_held_upto(short_id(&container.id), upto);
    }

    /// Tells subscribers about a container's start, exit or removal, in order with its lines.
    pub fn lifecycle(&self, ts_ns: i64, container: &ContainerInfo, event: LifecycleEvent) {
        let change = Arc::new(marker(ts_ns, container, event));
        self.onto_tape(&mut self.lock(), Item::Lifecycle(change));
        self.pushed.send_replace(());
    }

    /// The backlog for `start`, and where on the tape to go on from.
    pub fn snapshot(&self, start: &Start) -> Snapshot {
        let state = self.lock();
        let ring = &state.ring;
        let mut marks = Marks::new();
        let mut given = Given::default();
        let mut gaps = Vec::new();
        let backlog: Vec<Arc<Line>> = match start {
            Start::Tail(n) => {
                let skip = ring.lines.len().saturating_sub(*n as usize);
                ring.lines.iter().skip(skip).cloned().collect()
            }
            Start::Resume(cursors) => {
                for c in cursors {
                    raise(&mut marks, &c.container, c.position());
                    given.hold(&c.container, c.position());
                }
                // A container the client has no line of: everything since its oldest cursor.
                let floor = cursors.iter().map(|c| c.ts_ns).min().unwrap_or(i64::MIN);
                for (container, upto) in &ring.evicted {
                    let after = marks.get(container).copied().unwrap_or((floor, u32::MAX));
                    if after < *upto {
                        gaps.push(Gap {
                            container: container.clone(),
                            after,
                            upto: *upto,
                        });
                    }
                }
                ring.lines
                    .iter()
                    .filter(|l| match marks.contains_key(&*l.cursor.container) {
                        true => given.is_new(&l.cursor.container, l.cursor.position()),
                        false => l.cursor.ts_ns > floor,
                    })
                    .cloned()
                    .collect()
            }
        };
        for l in &backlog {
            given.hold(&l.cursor.container, l.cursor.position());
        }
        let older = match start {
            Start::Tail(n) if backlog.len() < *n as usize => ring
                .evicted
                .iter()
                .map(|(container, upto)| Gap {
                    container: container.clone(),
                    after: (i64::MIN, 0),
                    upto: *upto,
                })
                .collect(),
            _ => Vec::new(),
        };
        Snapshot {
            whole: ring.evicted.is_empty() && backlog.len() == ring.lines.len(),
            older,
            backlog,
            pos: state.tape.end(),
            tape: self.pushed.subscribe(),
            given,
            gaps,
        }
    }
}

/// A lifecycle change of `container` at `ts_ns`.
pub fn marker(ts_ns: i64, container: &ContainerInfo, event: LifecycleEvent) -> Lifecycle {
    Lifecycle {
        ts_ns,
        ts: Timestamp { ns: ts_ns }.to_rfc3339(),
        replica: container.replica.clone(),
        event,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Unit tests with made-up lines: no engine.
    use super::*;
    use app::protocol::{ContainerState, Cursor, Replica, Stream};

    pub fn container(id: &str) -> ContainerInfo {
        ContainerInfo {
            id: id.into(),
            replica: Replica {
                number: 1,
                name: format!("p_web_{id}"),
            },
            state: ContainerState::Running,
            exit_code: None,
            health: None,
            node: None,
            task: None,
        }
    }

    pub fn raw(ts_ns: i64, text: &str) -> RawLine {
        RawLine {
            ts: Timestamp { ns: ts_ns },
            seq: 0,
            stream: Stream::Stdout,
            text: text.into(),
            truncated: false,
            level: None,
        }
    }

    pub fn shared(ring_lines: usize, queue_items: usize) -> Shared {
        Shared::new(
            RingCaps {
                lines: ring_lines,
                bytes: 1 << 20,
            },
            Bounds {
                items: queue_items,
                bytes: 1 << 20,
            },
            Arc::new(Metrics::default()),
        )
    }

    fn cursor(container: &str, ts_ns: i64) -> Cursor {
        Cursor {
            ts_ns,
            seq: 0,
            container: container.into(),
        }
    }

    fn texts(lines: &[Arc<Line>]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn a_tail_is_the_rings_last_lines_and_whole_while_nothing_fell_off() {
        let s = shared(10, 100);
        s.push(
            (1..=4).map(|t| raw(t, &format!("l{t}"))).collect(),
            &container("aaa"),
        );
        let snap = s.snapshot(&Start::Tail(2));
        assert_eq!(texts(&snap.backlog), ["l3", "l4"]);
        assert!(!snap.whole, "two of four lines");
        let all = s.snapshot(&Start::Tail(100));
        assert!(all.whole);
        assert!(all.gaps.is_empty());
    }

    #[test]
    fn a_resume_within_the_ring_gets_exactly_the_lines_after_its_cursor() {
        let s = shared(10, 100);
        s.push(
            (1..=5).map(|t| raw(t, &format!("l{t}"))).collect(),
            &container("aaa"),
        );
        let snap = s.snapshot(&Start::Resume(vec![cursor("aaa", 3)]));
        assert_eq!(texts(&snap.backlog), ["l4", "l5"]);
        assert!(snap.gaps.is_empty());
        assert!(!snap.given.is_new("aaa", (5, 0)));
        assert!(snap.given.is_new("aaa", (6, 0)));
    }

    #[test]
    fn a_resume_older_than_the_ring_names_the_gap_only_the_engine_holds() {
        let s = shared(3, 100);
        s.push(
            (1..=6).map(|t| raw(t, &format!("l{t}"))).collect(),
            &container("aaa"),
        );
        let snap = s.snapshot(&Start::Resume(vec![cursor("aaa", 1)]));
        assert_eq!(texts(&snap.backlog), ["l4", "l5", "l6"]);
        assert_eq!(
            snap.gaps,
            [Gap {
                container: "aaa".into(),
                after: (1, 0),
                upto: (3, 0),
            }]
        );
    }

    #[test]
    fn a_container_the_client_has_no_line_of_is_read_from_its_oldest_cursor() {
        let s = shared(10, 100);
        s.push(vec![raw(1, "a1"), raw(5, "a5")], &container("aaa"));
        s.push(vec![raw(2, "b2"), raw(6, "b6")], &container("bbb"));
        let snap = s.snapshot(&Start::Resume(vec![cursor("aaa", 1)]));
        assert_eq!(texts(&snap.backlog), ["b2", "a5", "b6"]);
    }

    #[test]
    fn lines_pushed_after_a_snapshot_are_on_the_tape_after_its_position() {
        let s = shared(10, 100);
        s.push(vec![raw(1, "old")], &container("aaa"));
        let mut snap = s.snapshot(&Start::Tail(10));
        s.push(vec![raw(2, "new")], &container("aaa"));
        let mut seen = Vec::new();
        s.lock().tape.read(&mut snap.pos, |item| {
            if let Item::Line(l) = item {
                seen.push(l.text.clone());
            }
            super::super::tape::Take::More
        });
        assert_eq!(seen, ["new"]);
    }

    #[test]
    fn the_tape_holds_lines_only_while_someone_subscribes() {
        let s = shared(10, 100);
        s.push(vec![raw(1, "unwatched")], &container("aaa"));
        assert_eq!(s.lock().tape.held().0, 0, "a tape with no subscriber");
        let snap = s.snapshot(&Start::Tail(10));
        assert_eq!(
            texts(&snap.backlog),
            ["unwatched"],
            "the ring still holds it"
        );
        s.push(vec![raw(2, "watched")], &container("aaa"));
        assert_eq!(s.lock().tape.held().0, 1);
        drop(snap);
        s.push(vec![raw(3, "unwatched again")], &container("aaa"));
        assert_eq!(s.lock().tape.held().0, 0, "the last subscriber left");
    }
}
