//! How fast a log stream's lines come, and so whether they are handed on one read at a time
//! or gathered into batches.
//!
//! The engine sends each log entry as a frame of its own, and the HTTP client hands them over
//! one by one. A line that reaches an idle reader should go on at once (latency); but at tens
//! of thousands of lines a second, handing each one on by itself costs a wake-up of every
//! task and thread downstream (history's writer, each subscriber's socket) per line, and on a
//! busy machine that is CPU the engine needs to send the lines at all. So a stream that is
//! busy gathers: its reader takes what comes for `GATHER` before handing it on.

use std::time::Duration;

use tokio::time::Instant;

/// How long a busy stream's lines are gathered before being handed on.
pub const GATHER: Duration = Duration::from_millis(2);

/// The most lines, and bytes of text, gathered into one batch: a batch is held whole until
/// it is handed on, and history and the ring take it in one piece.
pub const MOST_LINES: usize = 4096;
pub const MOST_BYTES: usize = 1 << 20;

/// A stream is busy once it brought at least `BUSY_LINES` in one `WINDOW`: 20,000 lines a
/// second. Below that every line goes on as it comes, also in the bursts of a program that
/// writes 1,000 lines a second as 100 every tenth of a second (a shell loop's pace, 15,000
/// lines a second, within the burst).
const WINDOW: Duration = Duration::from_millis(10);
const BUSY_LINES: u32 = 200;

/// The pace of one stream, measured in windows of `WINDOW`.
#[derive(Debug)]
pub struct Pace {
    window_start: Instant,
    in_window: u32,
    busy: bool,
}

impl Pace {
    pub fn new(now: Instant) -> Pace {
        Pace {
            window_start: now,
            in_window: 0,
            busy: false,
        }
    }

    /// Counts `lines` handed on at `now`.
    pub fn handed(&mut self, now: Instant, lines: usize) {
        let since = now.saturating_duration_since(self.window_start);
        if since >= WINDOW {
            // A window with nothing in it (a pause longer than one) ends the busy spell.
            self.busy = self.in_window >= BUSY_LINES && since < WINDOW * 2;
            self.window_start = now;
            self.in_window = 0;
        }
        self.in_window = self
            .in_window
            .saturating_add(u32::try_from(lines).unwrap_or(u32::MAX));
        if self.in_window >= BUSY_LINES {
            self.busy = true;
        }
    }

    /// Until when the batch begun at `now` gathers, if the stream is busy.
    pub fn gather_until(&self, now: Instant) -> Option<Instant> {
        self.busy.then(|| now + GATHER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn lines_at_a_thousand_a_second_go_on_one_by_one_also_in_bursts() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        for i in 0..1000 {
            let now = t0 + ms(i);
            assert_eq!(pace.gather_until(now), None, "line {i}");
            pace.handed(now, 1);
        }
        // 100 lines within 7 ms, every 100 ms.
        for burst in 0..10 {
            for i in 0..100 {
                let now = t0 + ms(1000 + 100 * burst) + Duration::from_micros(70 * i);
                assert_eq!(pace.gather_until(now), None, "burst {burst}, line {i}");
                pace.handed(now, 1);
            }
        }
    }

    #[test]
    fn a_busy_stream_gathers_and_a_pause_ends_it() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        // 40,000 lines a second: one every 25 µs.
        for i in 0..400 {
            pace.handed(t0 + Duration::from_micros(25 * i), 1);
        }
        let now = t0 + ms(10);
        assert_eq!(pace.gather_until(now), Some(now + GATHER));
        // Batches of 80 lines every 2 ms keep it busy.
        for i in 0..20 {
            let now = t0 + ms(12 + 2 * i);
            pace.handed(now, 80);
            assert!(pace.gather_until(now).is_some(), "batch {i}");
        }
        // A quiet spell: the next line goes on at once.
        let later = t0 + ms(500);
        pace.handed(later, 1);
        assert_eq!(pace.gather_until(later), None);
    }
}
