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
//! The silences asked about grow (2 s, 4 s, … 60 s) until a line comes, so a quiet container
//! costs one small read a minute.

use std::time::Duration;

use tokio::time::Instant;

/// The first silence after a line that is asked about.
const FIRST_ASK: Duration = Duration::from_secs(2);
/// The longest silence between two asks.
const LONGEST_ASK: Duration = Duration::from_secs(60);
/// How long a stream that is behind the engine may send nothing before it is taken as
/// stalled.
const GRACE: Duration = Duration::from_secs(1);

/// What the follower does when the watch is due.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing newer in the engine, or not for long: follow on.
    FollowOn,
    /// The engine has held a newer line for a while and the stream has not sent it.
    Stalled,
}

pub struct StallWatch {
    /// The silence asked about next.
    wait: Duration,
    due: Instant,
    /// Whether the engine held a line newer than any delivered when it was last asked, and
    /// nothing has come since.
    behind: bool,
}

impl StallWatch {
    pub fn new() -> StallWatch {
        StallWatch {
            wait: FIRST_ASK,
            due: Instant::now() + FIRST_ASK,
            behind: false,
        }
    }

    /// When to ask next.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Lines came through the stream: it flows.
    pub fn heard(&mut self) {
        self.behind = false;
        self.wait = FIRST_ASK;
        self.due = Instant::now() + FIRST_ASK;
    }

    /// The engine was asked: its newest line is stamped `engine_newest`, the newest delivered
    /// `delivered`.
    pub fn judge(&mut self, engine_newest: Option<i64>, delivered: Option<i64>) -> Verdict {
        let behind = match (engine_newest, delivered) {
            (Some(e), Some(d)) => e > d,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let now = Instant::now();
        if behind && !self.behind {
            self.behind = true;
            self.due = now + GRACE;
            return Verdict::FollowOn;
        }
        let verdict = match behind {
            // Behind when asked before, and nothing came since.
            true => Verdict::Stalled,
            false => Verdict::FollowOn,
        };
        self.behind = false;
        // After a stall not back to the first ask: a stream that rightly holds a line back
        // would be opened again every few seconds.
        self.wait = (self.wait * 2).min(LONGEST_ASK);
        self.due = now + self.wait;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_is_asked_about_less_and_less_often() {
        let mut watch = StallWatch::new();
        let start = Instant::now();
        assert_eq!(watch.due() - start, FIRST_ASK);
        let mut waits = Vec::new();
        for _ in 0..7 {
            tokio::time::sleep_until(watch.due()).await;
            let before = Instant::now();
            assert_eq!(watch.judge(Some(10), Some(10)), Verdict::FollowOn);
            waits.push((watch.due() - before).as_secs());
        }
        assert_eq!(waits, [4, 8, 16, 32, 60, 60, 60]);
        watch.heard();
        assert_eq!(watch.due() - Instant::now(), FIRST_ASK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_behind_the_engine_is_stalled_only_if_it_sends_nothing() {
        let mut watch = StallWatch::new();
        // The engine holds line 12; the stream sent up to 10. Given a moment, it sends 11.
        assert_eq!(watch.judge(Some(12), Some(10)), Verdict::FollowOn);
        assert_eq!(watch.due() - Instant::now(), GRACE);
        watch.heard();
        assert_eq!(watch.due() - Instant::now(), FIRST_ASK);
        // Still behind after a silence, but it sent a line since it was first found behind.
        assert_eq!(watch.judge(Some(14), Some(11)), Verdict::FollowOn);
        watch.heard();

        // Now it holds 15, and a moment later the stream has sent nothing.
        assert_eq!(watch.judge(Some(15), Some(12)), Verdict::FollowOn);
        assert_eq!(watch.judge(Some(16), Some(12)), Verdict::Stalled);
        // The stream opened again sends nothing newer: asked again later, not at once.
        assert!(watch.due() - Instant::now() > FIRST_ASK);
        // Nothing newer in the engine: not behind, whatever was found before.
        assert_eq!(watch.judge(Some(12), Some(15)), Verdict::FollowOn);
    }

    #[test]
    fn an_empty_engine_log_is_no_stall_and_a_first_line_can_be_one() {
        let mut watch = StallWatch::new();
        assert_eq!(watch.judge(None, None), Verdict::FollowOn);
        assert_eq!(watch.judge(Some(1), None), Verdict::FollowOn);
        assert_eq!(watch.judge(Some(1), None), Verdict::Stalled);
    }
}
