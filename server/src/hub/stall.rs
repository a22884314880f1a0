//! When to ask whether a follow stream has stalled.
//!
//! An engine's follow stream can stop while the container writes on: Docker's json-file
//! reader can miss a rotation and wait on a file nothing writes to any more (moby/moby#37646,
//! #23913; seen here with a writer at full speed and `max-size: 32m`). The stream stays open
//! and says nothing, which looks just like a quiet container. So after a silence the follower
//! asks the engine for its newest line; if the engine holds one newer than any delivered, and
//! the stream still sends nothing a moment later, it is opened again (from after the last line
//! delivered, so nothing is lost or repeated). A stream that sends lines, however far behind
//! the engine, is never taken as stalled.
//!
//! Lines already delivered are not lines sent. The engine can hand a follow stream a rotated
//! file it sent already, all of it (seen here: the 356,000 lines of a 32 MB file, 5 to 6 s of
//! them, while the new lines waited behind), and `Seen` drops them as repeats: to the watch
//! such a stream is silent, and is asked about and opened again like one that stopped. A
//! stream opened again begins with lines delivered (from `since`, or a tail that reaches back
//! to them); until its first new line those are progress, or a catch-up longer than the wait
//! would be taken for a stall, and the stream opened again and again.
//!
//! Asks cost the engine a read (one that opens every rotated file, and with the `local` driver
//! unpacks them), so they are few: the silences asked about grow (2 s, 4 s, … 60 s) and come
//! back only once the stream has sent 64 KiB, which a rotation needs, since the last ask.
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

/// What a follow stream sent in one read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    /// The text of all its lines.
    pub bytes: usize,
    /// Its lines not delivered before, and their text.
    pub fresh_lines: usize,
    pub fresh_bytes: usize,
}

impl Sent {
    /// Lines of `bytes` of text in all (`text_bytes`), of which `fresh` were not delivered
    /// before.
    pub fn new(bytes: usize, fresh: &[RawLine]) -> Sent {
        Sent {
            bytes,
            fresh_lines: fresh.len(),
            fresh_bytes: text_bytes(fresh),
        }
    }
}

pub fn text_bytes(lines: &[RawLine]) -> usize {
    lines.iter().map(|l| l.text.len()).sum()
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
    /// Whether the stream open now has sent a line not delivered before: from then on, lines
    /// delivered before are not progress.
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

    /// A follow stream was opened: it catches up with the lines delivered before.
    pub fn opened(&mut self) {
        self.caught_up = false;
        self.repeating = false;
    }

    /// The stream sent lines: it flows, unless all of them were delivered before and it had
    /// caught up.
    pub fn heard(&mut self, sent: Sent) {
        self.caught_up |= sent.fresh_lines > 0;
        self.repeating = self.caught_up && sent.fresh_lines == 0;
        let bytes = match self.caught_up {
            true if sent.fresh_lines == 0 => return,
            true => sent.fresh_bytes,
            false => sent.bytes,
        };
        self.behind = false;
        self.sent = self.sent.saturating_add(bytes);
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

    /// Lines not delivered before, `bytes` of them.
    fn fresh(bytes: usize) -> Sent {
        Sent {
            bytes,
            fresh_lines: 1,
            fresh_bytes: bytes,
        }
    }

    /// Lines delivered before, `bytes` of them.
    fn repeats(bytes: usize) -> Sent {
        Sent {
            bytes,
            ..Sent::default()
        }
    }

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
            watch.heard(repeats(BUSY_BYTES));
            assert_eq!(watch.due(), due);
        }
        assert!(watch.repeating());
        tokio::time::sleep_until(due).await;
        assert_eq!(watch.judge(Some(20), Some(10)), Verdict::FollowOn);
        watch.heard(repeats(BUSY_BYTES));
        assert_eq!(watch.judge(Some(21), Some(10)), Verdict::Stalled);

        // Opened again, the stream's first lines are the ones delivered last: they are its
        // progress, however long they take, until its first new line.
        watch.opened();
        for _ in 0..10 {
            tokio::time::advance(BUSY_ASK - Duration::from_millis(50)).await;
            assert!(watch.due() > Instant::now());
            watch.heard(repeats(BUSY_BYTES));
        }
        assert!(!watch.repeating());
        watch.heard(fresh(10));
        let due = watch.due();
        watch.heard(repeats(BUSY_BYTES));
        assert_eq!(watch.due(), due);
        // Nor do repeats clear what the last ask found.
        tokio::time::sleep_until(due).await;
        assert_eq!(watch.judge(Some(30), Some(20)), Verdict::FollowOn);
        watch.heard(repeats(100));
        assert_eq!(watch.judge(Some(30), Some(20)), Verdict::Stalled);
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
