//! When to ask whether a follow stream has stalled.
//!
//! An engine's follow stream can stop while the container writes on: Docker's json-file
//! reader can miss a rotation and wait on a file nothing writes to any more (moby/moby#37646,
//! #23913; seen here with a writer at full speed and `max-size: 32m`). The stream stays open
//! and says nothing, which looks just like a quiet container. So after a silence the follower
//! asks the engine for its newest line; if the engine holds one newer than any delivered, and
//! the stream still sends nothing a moment later, it is opened again (from after the last line
//! delivered, so nothing is lost or repeated). A stream that sends new lines, however far
//! behind the engine, is never taken as stalled.
//!
//! Lines already delivered are not new. The engine can hand a follow stream a rotated file it
//! sent already, all of it (seen here: the 356,000 lines of a 32 MB file, 5 to 6 s of them,
//! while the new lines waited behind), and `Seen` drops them as repeats: to the watch such a
//! stream is silent, and is asked about and opened again like one that stopped. A stream
//! opened again begins with lines delivered (from `since`, or a tail that reaches back to
//! them); until it sends the newest line delivered, or a new one, those are progress, or a
//! catch-up longer than the wait would be taken for a stall in turn. They put the next ask off, but do not make the stream
//! busy: a stream opened again and again keeps the longer waits below.
//!
//! Asks cost the engine a read (one that opens every rotated file, and with the `local` driver
//! unpacks them), so they are few: the silences asked about grow (2 s, 4 s, … 60 s) and come
//! back only once the stream has sent 64 KiB of new lines, which a rotation needs, since the
//! last ask.
//! A stream that sent that much is busy, and a quarter of a second of silence is already
//! unusual for it: it is asked about then. Each wait is a little longer at random, so that
//! followers started together do not ask together. A container that writes a line now and
//! then is asked about once a minute, and a stall of a busy one is found within about half a
//! second (the engine's stall after a burst at its ceiling cost 1.1 s when both waits were
//! half a second; a stall at full speed cost 3 s of lines when the first ask came after 2 s).
//! The grace after an answer is short: a line in flight when the engine was asked arrives
//! within milliseconds, and a stream taken for stalled wrongly is opened again from after its
//! last line, which loses nothing and costs one read.

use std::hash::BuildHasher;
use std::time::Duration;

use tokio::time::Instant;

use crate::docker::frames::RawLine;

/// The first silence after a line that is asked about.
const FIRST_ASK: Duration = Duration::from_secs(2);
/// The silence asked about once the stream has been busy.
const BUSY_ASK: Duration = Duration::from_millis(250);
/// The longest silence between two asks.
const LONGEST_ASK: Duration = Duration::from_secs(60);
/// How long a stream that is behind the engine may send nothing before it is taken as
/// stalled.
const GRACE: Duration = Duration::from_millis(150);
/// What a stream sends between two asks that brings them back to the first.
const BUSY_BYTES: usize = 64 << 10;

/// What the follower does when the watch is due.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing newer in the engine, or not for long: follow on.
    FollowOn,
    /// The engine has held a newer line for a while and the stream has not sent it.
    Stalled,
}

/// What one read of a follow stream brought that was not delivered before.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fresh {
    /// How many lines.
    pub lines: usize,
    /// Their text's bytes.
    pub bytes: usize,
    /// Whether the read held the newest line delivered before it: a stream opened again has
    /// caught up then, whether a new line follows at once or not.
    pub reached: bool,
}

impl Fresh {
    /// `fresh`: the lines of a read that `Seen` took as new; `reached`: whether the read held
    /// the newest line delivered before it.
    pub fn of(fresh: &[RawLine], reached: bool) -> Fresh {
        Fresh {
            lines: fresh.len(),
            bytes: fresh.iter().map(|l| l.text.len()).sum(),
            reached,
        }
    }
}

pub struct StallWatch {
    /// The silence asked about next.
    wait: Duration,
    due: Instant,
    /// Whether the engine held a line newer than any delivered when it was last asked, and
    /// nothing has come since.
    behind: bool,
    /// Bytes the stream sent since the last ask.
    sent: usize,
    /// Whether the stream open now has sent a line not delivered before, or the newest one
    /// delivered: from then on, lines delivered before are not progress.
    caught_up: bool,
    /// Whether the stream's last lines were all delivered before, after it caught up.
    repeating: bool,
    /// Where the random part of each wait comes from.
    seed: u64,
}

impl StallWatch {
    pub fn new() -> StallWatch {
        let mut watch = StallWatch {
            wait: FIRST_ASK,
            due: Instant::now(),
            behind: false,
            sent: 0,
            caught_up: false,
            repeating: false,
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8) | 1,
        };
        watch.due = watch.after(FIRST_ASK);
        watch
    }

    /// When to ask next.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// `wait` from now, and up to a quarter more at random.
    fn after(&mut self, wait: Duration) -> Instant {
        // xorshift: spread enough, and no crate for it.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let quarter = (wait.as_millis() / 4).max(1) as u64;
        Instant::now() + wait + Duration::from_millis(self.seed % quarter)
    }

    /// A follow stream was opened: it catches up with the lines delivered before, up to the
    /// newest. What the ask found of the stream before says nothing of this one.
    pub fn opened(&mut self) {
        self.caught_up = false;
        self.repeating = false;
        self.behind = false;
        self.due = self.after(self.wait);
    }

    /// The stream sent lines, `fresh` of them new: it flows, unless it had caught up and none
    /// was new.
    pub fn heard(&mut self, fresh: Fresh) {
        self.caught_up |= fresh.lines > 0 || fresh.reached;
        self.repeating = self.caught_up && fresh.lines == 0;
        if self.repeating {
            return;
        }
        self.behind = false;
        self.sent = self.sent.saturating_add(fresh.bytes);
        if self.sent >= BUSY_BYTES {
            self.sent = 0;
            self.wait = BUSY_ASK;
        }
        self.due = self.after(self.wait);
    }

    /// Whether the stream sends lines, all of them delivered before: why a stalled stream
    /// is, for the log.
    pub fn repeating(&self) -> bool {
        self.repeating
    }

    /// The engine was asked: its newest line is stamped `engine_newest`, the newest delivered
    /// `delivered`.
    pub fn judge(&mut self, engine_newest: Option<i64>, delivered: Option<i64>) -> Verdict {
        let behind = match (engine_newest, delivered) {
            (Some(e), Some(d)) => e > d,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if behind && !self.behind {
            self.behind = true;
            self.due = Instant::now() + GRACE;
            return Verdict::FollowOn;
        }
        let verdict = match behind {
            // Behind when asked before, and nothing came since.
            true => Verdict::Stalled,
            false => Verdict::FollowOn,
        };
        self.behind = false;
        self.sent = 0;
        // After a stall too: a stream that rightly holds a line back (the part of one still
        // being written) would otherwise be opened again every few seconds.
        self.wait = (self.wait * 2).min(LONGEST_ASK);
        self.due = self.after(self.wait);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// New lines, `bytes` of them.
    fn fresh(bytes: usize) -> Fresh {
        Fresh {
            lines: 1,
            bytes,
            reached: true,
        }
    }

    /// Lines delivered before, older than the newest delivered.
    const REPEATS: Fresh = Fresh {
        lines: 0,
        bytes: 0,
        reached: false,
    };

    /// The wait before the next ask: `wait`, and at most a quarter more.
    fn waits(watch: &StallWatch, wait: Duration) -> bool {
        let left = watch.due() - Instant::now();
        left >= wait && left <= wait + wait / 4
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_is_asked_about_less_and_less_often() {
        let mut watch = StallWatch::new();
        assert!(waits(&watch, FIRST_ASK));
        for secs in [4, 8, 16, 32, 60, 60, 60] {
            tokio::time::sleep_until(watch.due()).await;
            assert_eq!(watch.judge(Some(10), Some(10)), Verdict::FollowOn);
            assert!(waits(&watch, Duration::from_secs(secs)), "{secs} s");
        }
        // A line now and then changes nothing; a busy stream is asked about soon again.
        watch.heard(fresh(100));
        assert!(waits(&watch, LONGEST_ASK));
        watch.heard(fresh(BUSY_BYTES));
        assert!(waits(&watch, BUSY_ASK));
        // A busy stream that falls silent is asked about less and less often too.
        for times in [2, 4, 8] {
            tokio::time::sleep_until(watch.due()).await;
            assert_eq!(watch.judge(Some(10), Some(10)), Verdict::FollowOn);
            assert!(waits(&watch, BUSY_ASK * times), "{times} x {BUSY_ASK:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_behind_the_engine_is_stalled_only_if_it_sends_nothing() {
        let mut watch = StallWatch::new();
        // The engine holds line 12; the stream sent up to 10. Given a moment, it sends 11.
        assert_eq!(watch.judge(Some(12), Some(10)), Verdict::FollowOn);
        assert_eq!(watch.due() - Instant::now(), GRACE);
        watch.heard(fresh(10));
        assert!(waits(&watch, FIRST_ASK));
        // Still behind after a silence, but it sent a line since it was first found behind.
        assert_eq!(watch.judge(Some(14), Some(11)), Verdict::FollowOn);
        watch.heard(fresh(10));

        // Now it holds 15, and a moment later the stream has sent nothing.
        assert_eq!(watch.judge(Some(15), Some(12)), Verdict::FollowOn);
        assert_eq!(watch.judge(Some(16), Some(12)), Verdict::Stalled);
        // The stream opened again sends nothing newer: asked again later, not at once.
        assert!(watch.due() - Instant::now() > FIRST_ASK);
        // Nothing newer in the engine: not behind, whatever was found before.
        assert_eq!(watch.judge(Some(12), Some(15)), Verdict::FollowOn);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_sends_only_lines_delivered_before_is_asked_about_as_a_silent_one() {
        let mut watch = StallWatch::new();
        watch.opened();
        watch.heard(fresh(BUSY_BYTES));
        let due = watch.due();
        assert!(waits(&watch, BUSY_ASK));
        // The engine hands out a file it sent already: the ask stays where the last new line
        // put it.
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(20)).await;
            watch.heard(REPEATS);
            assert_eq!(watch.due(), due);
        }
        assert!(watch.repeating());
        tokio::time::sleep_until(due).await;
        assert_eq!(watch.judge(Some(20), Some(10)), Verdict::FollowOn);
        watch.heard(REPEATS);
        assert_eq!(watch.judge(Some(21), Some(10)), Verdict::Stalled);

        // Opened again, the stream's first lines are the ones delivered last: they are its
        // progress, however long they take, until its first new line.
        watch.opened();
        for _ in 0..10 {
            tokio::time::advance(BUSY_ASK - Duration::from_millis(50)).await;
            assert!(watch.due() > Instant::now());
            watch.heard(REPEATS);
        }
        assert!(!watch.repeating());
        watch.heard(fresh(10));
        let due = watch.due();
        watch.heard(REPEATS);
        assert_eq!(watch.due(), due);
        assert!(watch.repeating());
        // Nor do repeats clear what the last ask found.
        tokio::time::sleep_until(due).await;
        assert_eq!(watch.judge(Some(30), Some(20)), Verdict::FollowOn);
        watch.heard(REPEATS);
        assert_eq!(watch.judge(Some(30), Some(20)), Verdict::Stalled);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_opened_again_has_caught_up_once_it_sent_the_newest_line_delivered() {
        let mut watch = StallWatch::new();
        watch.opened();
        watch.heard(REPEATS);
        let reached = Fresh {
            reached: true,
            ..REPEATS
        };
        watch.heard(reached);
        let due = watch.due();
        // The engine re-reads a file before any new line: it is silent to the watch.
        tokio::time::advance(Duration::from_millis(100)).await;
        watch.heard(REPEATS);
        assert_eq!(watch.due(), due);
        assert!(watch.repeating());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_opened_again_and_again_is_asked_about_less_and_less_often() {
        let mut watch = StallWatch::new();
        watch.opened();
        watch.heard(fresh(BUSY_BYTES));
        // The engine holds a line the stream never sends (the part of one still being
        // written): each reopen's catch-up is progress, but does not bring the quick asks back.
        for times in [2, 4, 8, 16] {
            tokio::time::sleep_until(watch.due()).await;
            assert_eq!(watch.judge(Some(20), Some(10)), Verdict::FollowOn);
            assert_eq!(watch.judge(Some(20), Some(10)), Verdict::Stalled);
            watch.opened();
            assert!(waits(&watch, BUSY_ASK * times), "{times} x {BUSY_ASK:?}");
            watch.heard(REPEATS);
            assert!(waits(&watch, BUSY_ASK * times), "{times} x {BUSY_ASK:?}");
        }
        // New lines make it busy again.
        watch.heard(fresh(BUSY_BYTES));
        assert!(waits(&watch, BUSY_ASK));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_opened_during_the_grace_is_not_judged_by_the_ask_before() {
        let mut watch = StallWatch::new();
        assert_eq!(watch.judge(Some(20), Some(10)), Verdict::FollowOn);
        // The stream ended (the container stopped) and is opened again: its first ask finds
        // the engine behind for the first time, and gives it a grace of its own.
        watch.opened();
        assert!(watch.due() - Instant::now() > GRACE);
        tokio::time::sleep_until(watch.due()).await;
        assert_eq!(watch.judge(Some(20), Some(10)), Verdict::FollowOn);
    }

    #[test]
    fn an_empty_engine_log_is_no_stall_and_a_first_line_can_be_one() {
        let mut watch = StallWatch::new();
        assert_eq!(watch.judge(None, None), Verdict::FollowOn);
        assert_eq!(watch.judge(Some(1), None), Verdict::FollowOn);
        assert_eq!(watch.judge(Some(1), None), Verdict::Stalled);
    }

    #[tokio::test(start_paused = true)]
    async fn followers_started_together_do_not_ask_together() {
        let dues: std::collections::BTreeSet<Instant> =
            (0..20).map(|_| StallWatch::new().due()).collect();
        assert!(dues.len() > 10, "{} distinct of 20", dues.len());
    }
}
