//! The bound on one-off reads of containers' logs (tails, downloads, the lines a resuming
//! viewer missed): each read of a whole log costs the engine a pass over its file, so only
//! so many run at once. A read that cannot start within a bounded wait is refused with a
//! clear error rather than queued for ever.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::EngineError;

#[derive(Clone, Debug)]
pub struct ReadPermits {
    permits: Arc<Semaphore>,
    max: usize,
    wait: Duration,
}

/// Held for as long as a read runs.
pub type ReadPermit = OwnedSemaphorePermit;

impl ReadPermits {
    pub fn new(max: usize, wait: Duration) -> ReadPermits {
        ReadPermits {
            permits: Arc::new(Semaphore::new(max)),
            max,
            wait,
        }
    }

    /// A place for one read, waiting at most the configured time for one to free up.
    pub async fn acquire(&self) -> Result<ReadPermit, EngineError> {
        let busy = || EngineError::Busy {
            max: self.max,
            wait: self.wait,
        };
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the one real way to fail.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_beyond_the_bound_waits_then_is_refused_with_the_setting_named() {
        let reads = ReadPermits::new(2, Duration::from_millis(50));
        let a = reads.acquire().await.unwrap();
        let _b = reads.acquire().await.unwrap();
        let refused = reads.acquire().await.unwrap_err();
        assert!(
            refused.to_string().contains("--max-engine-reads"),
            "{refused}"
        );
        drop(a);
        assert!(reads.acquire().await.is_ok(), "a freed place is taken");
    }
}
