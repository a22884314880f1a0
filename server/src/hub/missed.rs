//! What a subscriber asks for beyond the ring. A resume's gap is read from history when
//! history holds all of it, else from the engine (history off, not kept, or still storing
//! the container's older lines). A tail longer than the ring is made up from history
//! alone: without it, the tail is what the ring holds.

use std::sync::Arc;

use app::protocol::{ContainerInfo, LogLine, ServiceKey};

use super::Hub;
use crate::docker::past::{Filled, Gap};
use crate::docker::EngineError;

impl Hub {
    /// The newest `keep` lines of `gaps`, in cursor order, and how many were left out.
    pub(super) async fn missed(
        &self,
        key: &ServiceKey,
        containers: &[ContainerInfo],
        gaps: Vec<Gap>,
        keep: usize,
    ) -> Result<Filled, EngineError> {
        let mut filled = Filled {
            lines: Vec::new(),
            left_out: 0,
        };
        let mut from_engine = Vec::new();
        for gap in gaps {
            let stored = match self.history() {
                Some(h) => h.missed(key, &gap, keep).await.unwrap_or_else(|e| {
                    tracing::warn!(container = %gap.container, "history could not be read for a resume, reading the engine: {e}");
                    None
                }),
                None => None,
            };
            match stored {
                Some(m) => {
                    filled.lines.extend(m.lines.into_iter().map(Arc::new));
                    filled.left_out += m.left_out;
                }
                None => from_engine.push(gap),
            }
        }
        if !from_engine.is_empty() {
            let read = self.inner.past.gaps(containers, from_engine, keep).await?;
            filled.lines.extend(read.lines);
            filled.left_out += read.left_out;
        }
        filled.lines.sort_by(|a, b| a.cursor.cmp(&b.cursor));
        let excess = filled.lines.len().saturating_sub(keep);
        filled.lines.drain(..excess);
        filled.left_out += excess as u64;
        Ok(filled)
    }

    /// The newest `keep` lines of `stretches` that history holds, in cursor order: the
    /// lines before the ring for a tail longer than it. None without history.
    pub(super) async fn older(
        &self,
        key: &ServiceKey,
        stretches: Vec<Gap>,
        keep: usize,
    ) -> Vec<Arc<LogLine>> {
        let Some(history) = self.history().filter(|_| keep > 0) else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        for s in stretches {
            match history.missed(key, &s, keep).await {
                Ok(Some(m)) => lines.extend(m.lines.into_iter().map(Arc::new)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(container = %s.container, "history could not be read for a tail: {e}")
                }
            }
        }
        lines.sort_by(|a, b| a.cursor.cmp(&b.cursor));
        lines.drain(..lines.len().saturating_sub(keep));
        lines
    }
}
