//! When to ask whether a follow stream has stalled.
//!
//! An engine's follow stream can stop while the container writes on: Docker's json-file
//! reader can miss a rotation and wait on a file nothing writes to any more (moby/moby#37646,
//! #23913; seen here with a writer at full speed and `max-size: 32m`). The stream stays open
//! and says nothing, which looks just like a quiet container. So after a silence the follower
//! asks the engine for its newest line; if the engine holds one newer than any delivered, and
//! still does not send it a moment later, the stream is opened again (from after the last line
//! delivered, so nothing is lost or repeated).
//!
//! The silences asked about grow (2 s, 4 s, … 60 s) until a line comes, so a quiet container
//! costs one small read a minute.

use std::time::Duration;

use tokio::time::Instant;

/// The first silence after a line that is asked about.
const FIRST_ASK: Duration = Duration::from_secs(2);
/// The longest silence between two asks.
const LONGEST_ASK: Duration = Duration::from_secs(60);
/// How long a line the engine holds may take to come through the stream before the stream is
/// taken as stalled.
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
    /// The stamp of a line the engine held, newer than any delivered, when it was last asked.
    suspect: Option<i64>,
}

impl StallWatch {
    pub fn new() -> StallWatch {
        StallWatch {
            wait: FIRST_ASK,
            due: Instant::now() + FIRST_ASK,
            suspect: None,
        }
    }

    /// When to ask next.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Lines came through the stream, the newest stamped `delivered`: it flows.
    pub fn heard(&mut self, delivered: Option<i64>) {
        if self
            .suspect
            .is_some_and(|s| delivered.is_some_and(|d| d >= s))
        {
            self.suspect = None;
        }
        if self.suspect.is_none() {
            self.wait = FIRST_ASK;
            self.due = Instant::now() + FIRST_ASK;
        }
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
        if !behind {
            self.suspect = None;
            self.wait = (self.wait * 2).min(LONGEST_ASK);
            self.due = now + self.wait;
            return Verdict::FollowOn;
        }
        match self.suspect {
            // Asked before, and the line it held then has still not come.
            Some(s) if delivered.is_none_or(|d| d < s) => {
                self.suspect = None;
                // Not back to the first ask: a line the stream rightly holds back (the part of
                // one still being written) would have it opened again every few seconds.
                self.wait = (self.wait * 2).min(LONGEST_ASK);
                self.due = now + self.wait;
                Verdict::Stalled
            }
            _ => {
                self.suspect = engine_newest;
                self.due = now + GRACE;
                Verdict::FollowOn
            }
        }
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
        watch.heard(Some(11));
        assert_eq!(watch.due() - Instant::now(), FIRST_ASK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_line_in_the_engine_is_a_stall_only_if_it_never_comes() {
        let mut watch = StallWatch::new();
        // The engine holds line 12; the stream sent up to 10. Given a moment, it sends 12.
        assert_eq!(watch.judge(Some(12), Some(10)), Verdict::FollowOn);
        assert_eq!(watch.due() - Instant::now(), GRACE);
        watch.heard(Some(12));
        assert_eq!(watch.judge(Some(12), Some(12)), Verdict::FollowOn);

        // Now it holds 15, and a moment later the stream has still sent only 12.
        assert_eq!(watch.judge(Some(15), Some(12)), Verdict::FollowOn);
        watch.heard(Some(13));
        assert_eq!(watch.judge(Some(16), Some(13)), Verdict::Stalled);
        // The stream opened again sends nothing newer: asked again later, not at once.
        assert!(watch.due() - Instant::now() > FIRST_ASK);
    }

    #[test]
    fn an_empty_engine_log_is_no_stall_and_a_first_line_can_be_one() {
        let mut watch = StallWatch::new();
        assert_eq!(watch.judge(None, None), Verdict::FollowOn);
        assert_eq!(watch.judge(Some(1), None), Verdict::FollowOn);
        assert_eq!(watch.judge(Some(1), None), Verdict::Stalled);
    }
}
