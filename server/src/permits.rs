//! Bounds on reads that cost much: a whole log read from the engine (each costs it a pass
//! over the log's file), a long read of history (decompressing days of lines). Only so many
//! run at once; a read that cannot start within a bounded wait is refused with a clear
//! error that names the settings, rather than queued for ever.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many reads of one kind run at once, how long one waits for a place, and the
/// settings that say so.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub what: &'static str,
    pub max: usize,
    pub max_flag: &'static str,
    pub wait: Duration,
    pub wait_flag: &'static str,
}

/// A read refused: the bound was full for the whole wait.
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "too many {} at once: {} are running ({}) and none ended within {:?} ({}); try again",
    .0.what, .0.max, .0.max_flag, .0.wait, .0.wait_flag
)]
pub struct Busy(pub Bound);

#[derive(Clone, Debug)]
pub struct ReadPermits {
    permits: Arc<Semaphore>,
    bound: Bound,
}

/// Held for as long as a read runs.
pub type ReadPermit = OwnedSemaphorePermit;

impl ReadPermits {
    pub fn new(bound: Bound) -> ReadPermits {
        ReadPermits {
            permits: Arc::new(Semaphore::new(bound.max)),
            bound,
        }
    }

    /// A place for one read, waiting at most the bound's time for one to free up.
    pub async fn acquire(&self) -> Result<ReadPermit, Busy> {
        let wait = self.bound.wait;
        match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the one real way to fail.
            Ok(Err(_)) | Err(_) => Err(Busy(self.bound)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_beyond_the_bound_waits_then_is_refused_with_the_settings_named() {
        let reads = ReadPermits::new(Bound {
            what: "log reads",
            max: 2,
            max_flag: "--max-engine-reads",
            wait: Duration::from_millis(50),
            wait_flag: "--engine-read-wait",
        });
        let a = reads.acquire().await.unwrap();
        let _b = reads.acquire().await.unwrap();
        let refused = reads.acquire().await.unwrap_err().to_string();
        assert!(
            refused.starts_with("too many log reads at once: 2 are running")
                && refused.contains("(--max-engine-reads)")
                && refused.contains("50ms (--engine-read-wait)"),
            "{refused}"
        );
        drop(a);
        assert!(reads.acquire().await.is_ok(), "a freed place is taken");
    }
}
