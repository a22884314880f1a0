//! What a subscriber asks for beyond the ring. A resume's gap is read from history when
//! history holds all of it, else from the engine (history off, not kept, or still storing
//! the container's older lines). A tail longer than the ring is made up from history
//! alone: without it, the tail is what the ring holds.

use std::sync::Arc;
use std::time::Duration;

use app::protocol::{ContainerInfo, LogLine, ServiceKey, Streams};

use super::{Hub, HubError, Start};
use crate::auth::scope::Scope;
use crate::docker::past::TailQuery;
use crate::docker::past::{Filled, Gap};
use crate::docker::EngineError;
use crate::line::Line;
use crate::store::missed::Rest;

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
                Some(h) => h
                    .missed(key, &gap, keep, (Streams::Both, Rest::Counted))
                    .await
                    .unwrap_or_else(|e| {
                    tracing::warn!(container = %gap.container, "history could not be read for a resume, reading the engine: {e}");
                    None
                }),
                None => None,
            };
            match stored {
                Some(m) => {
                    filled.lines.extend(m.lines.into_iter().map(Line::shared));
                    filled.left_out += m.left_out;
                }
                None => from_engine.push(gap),
            }
        }
        if !from_engine.is_empty() {
            let past = self.past(key).map_err(|e| match e {
                HubError::Engine(e) => e,
                HubError::UnknownService(e) => EngineError::NotFound(e.to_string()),
            })?;
            let read = past.gaps(containers, from_engine, keep).await?;
            filled.lines.extend(read.lines);
            filled.left_out += read.left_out;
        }
        filled.lines.sort_by(|a, b| a.cursor.cmp(&b.cursor));
        let excess = filled.lines.len().saturating_sub(keep);
        filled.lines.drain(..excess);
        filled.left_out += excess as u64;
        Ok(filled)
    }

    /// The newest `keep` lines of `streams` in `stretches` that history holds, in cursor
    /// order: the lines before the ring for a tail longer than it. None without history.
    pub(super) async fn older(
        &self,
        key: &ServiceKey,
        stretches: Vec<Gap>,
        keep: usize,
        streams: Streams,
    ) -> Vec<Arc<Line>> {
        let Some(history) = self.history().filter(|_| keep > 0) else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        for s in stretches {
            match history.missed(key, &s, keep, (streams, Rest::Unread)).await {
                Ok(Some(m)) => lines.extend(m.lines.into_iter().map(Line::shared)),
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

    /// A one-off tail (`/api/tail`). With history on, the ring's newest lines, then
    /// history's from before the ring: the engine is never read for it. With history off,
    /// the engine's tail.
    pub async fn tail(
        &self,
        key: &ServiceKey,
        scope: &Scope,
        q: TailQuery,
    ) -> Result<Vec<LogLine>, HubError> {
        let info = self.service(key, scope).await?;
        if self.history().is_none() {
            return Ok(self.past(key)?.tail(&info.containers, q).await?);
        }
        let engine = self.engine_of(key)?.clone();
        let feed = self.feed(&engine, key, &info);
        let mut ready = feed.ready.clone();
        let _ = tokio::time::timeout(Duration::from_secs(15), ready.wait_for(|r| *r)).await;
        let wanted = |l: &LogLine| {
            q.streams.allows(l.stream) && q.since_ns.is_none_or(|ns| l.cursor.ts_ns >= ns)
        };
        let n = q.lines as usize;
        let snapshot = feed.shared.snapshot(&Start::Tail(u32::MAX));
        let mut lines: Vec<LogLine> = snapshot
            .backlog
            .iter()
            .filter(|l| wanted(l))
            .map(|l| LogLine::clone(l))
            .collect();
        lines.drain(..lines.len().saturating_sub(n));
        let floor = q
            .since_ns
            .map_or((i64::MIN, 0), |ns| (ns.saturating_sub(1), u32::MAX));
        let stretches = snapshot
            .older
            .into_iter()
            .map(|g| Gap {
                after: g.after.max(floor),
                ..g
            })
            .filter(|g| g.after < g.upto)
            .collect();
        // As many as the whole tail: a late-stamped line may be in the ring and history
        // both, and is kept once.
        let wanted = if lines.len() < n { n } else { 0 };
        let mut all = self.older(key, stretches, wanted, q.streams).await;
        all.extend(lines.into_iter().map(Line::shared));
        let all = super::in_order_once(all, n);
        Ok(all.iter().map(|l| LogLine::clone(l)).collect())
    }
}
