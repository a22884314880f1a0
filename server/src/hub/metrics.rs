//! The hub's counters, exported on /metrics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
pub struct Metrics {
    pub engine_streams: AtomicI64,
    pub subscribers: AtomicI64,
    pub lines_in: AtomicU64,
    pub lines_out: AtomicU64,
    pub lines_dropped: AtomicU64,
    /// Follow streams opened again because the engine held lines they did not send.
    pub stalls: AtomicU64,
}

impl Metrics {
    pub fn dropped(&self, n: u64) {
        self.lines_dropped.fetch_add(n, Ordering::Relaxed);
    }
}

/// An engine log stream, counted for as long as it is open, also when its task is aborted.
pub struct OpenStream(Arc<Metrics>);

impl OpenStream {
    pub fn count(metrics: &Arc<Metrics>) -> OpenStream {
        metrics.engine_streams.fetch_add(1, Ordering::Relaxed);
        OpenStream(metrics.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.engine_streams.fetch_sub(1, Ordering::Relaxed);
    }
}
