//! What a follower reads first: the container's last lines, without follow, for the ring;
//! and, on a task of its own, what the engine holds before them, for history.

use std::time::Duration;

use tokio::sync::oneshot;

use super::{both, Follower};
use crate::docker::frames::{from_whole_stamp, RawLine};
use crate::docker::EngineError;
use crate::hub::order::split_tail;
use crate::hub::ring::before;

/// Lines read beyond a tail, so that it can begin where a run of lines stamped alike
/// begins (a coarse clock stamps several lines alike; lines are told apart by their rank
/// among those) and still hold as many as asked.
const STAMP_SLACK: u32 = 1000;

/// The recent past a follower reads first, without follow, so that its feed knows when its
/// tail is complete.
pub struct Backfill {
    pub lines: u32,
    pub done: oneshot::Sender<()>,
}

/// The lines a backfill read, and whether the engine holds older ones.
pub(super) struct Tail {
    pub(super) lines: Vec<RawLine>,
    engine_holds_more: bool,
    /// The position of the read's last line in the engine's order: history takes every
    /// line up to it from a read of the whole log (`catch_up`), and the lines that the tail
    /// left out with them.
    read_end: Option<(i64, u32)>,
}

impl Follower {
    /// Reads the last `lines` lines into the ring; None if the container is gone.
    /// The read takes `STAMP_SLACK` more, and begins where a run of lines stamped alike
    /// does: each line then has the position any later read gives it.
    pub(super) async fn backfill(&mut self, lines: u32) -> Option<Tail> {
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
                    self.newest.delivered(&read);
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
    pub(super) fn store_older(&mut self, tail: Tail) {
        let Some(keeper) = &mut self.keeper else {
            return;
        };
        let catch_up_to = tail.read_end.filter(|_| tail.engine_holds_more);
        let older = super::super::keeper::store_older(
            self.engine.clone(),
            self.container.clone(),
            self.rules.clone(),
            keeper.recorder().clone(),
            (catch_up_to, tail.lines),
        );
        keeper.behind(older);
    }
}
