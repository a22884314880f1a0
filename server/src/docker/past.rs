//! One-off reads of what the engine already holds: a service's tail, the lines a resuming
//! viewer missed, a whole log for download. Each holds one of `--max-engine-reads` permits
//! while it reads, and keeps at most what it returns in memory, however long the log.
//! Replicas are merged here, in cursor order (time, then sequence, then container).

use std::collections::VecDeque;
use std::sync::Arc;

use app::protocol::{ContainerInfo, LogLine, Stream, Streams};

use super::frames::RawLine;
use super::logs::{LineRules, LogQuery, LogStream, Tag};
use super::source::Source;
use super::{Engine, EngineError};
use crate::clock::Timestamp;
use crate::line::Line;
use crate::permits::{ReadPermit, ReadPermits};

/// The reads of the past, with what every one of them needs.
#[derive(Clone)]
pub struct PastReads {
    pub engine: Engine,
    pub permits: ReadPermits,
    pub rules: LineRules,
}

/// What a one-off tail asks of a service's log.
#[derive(Clone, Copy, Debug)]
pub struct TailQuery {
    pub lines: u32,
    /// Only lines at or after this time (nanoseconds since the epoch).
    pub since_ns: Option<i64>,
    pub streams: Streams,
}

/// Lines of one container that a resuming viewer misses: those after `after`, up to and
/// including `upto` (positions: nanoseconds, sequence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The container's short id, as in cursors.
    pub container: String,
    pub after: (i64, u32),
    pub upto: (i64, u32),
}

/// The lines read for gaps, at most the number asked for, and how many were left out.
pub struct Filled {
    pub lines: Vec<Arc<Line>>,
    pub left_out: u64,
}

impl PastReads {
    /// A service's last lines, merged across replicas in time order. It holds at most
    /// `q.lines` lines per container while it reads.
    pub async fn tail(
        &self,
        containers: &[ContainerInfo],
        q: TailQuery,
    ) -> Result<Vec<LogLine>, EngineError> {
        let _permit = self.permits.acquire().await?;
        let mut all = Vec::new();
        for c in containers {
            let lines = self.tail_of(c, q).await?;
            let tag = Tag::new(c);
            all.extend(lines.into_iter().map(|l| tag.line(l)));
        }
        all.sort_by(|a, b| a.cursor.cmp(&b.cursor));
        let skip = all.len().saturating_sub(q.lines as usize);
        all.drain(..skip);
        Ok(all)
    }

    /// One container's tail. The engine cuts its tail before it picks streams, so a tail of
    /// one stream may need a wider window: widen until it holds enough lines, reaches
    /// `since`, or holds all.
    async fn tail_of(
        &self,
        c: &ContainerInfo,
        q: TailQuery,
    ) -> Result<VecDeque<RawLine>, EngineError> {
        let docker = self.engine.docker()?;
        let keep = q.lines as usize;
        let (stdout, stderr) = (
            q.streams.allows(Stream::Stdout),
            q.streams.allows(Stream::Stderr),
        );
        let mut window = q.lines.max(1);
        loop {
            let read_all = window >= 1 << 20;
            let query = LogQuery {
                since_secs: q.since_ns.map_or(0, |ns| Timestamp { ns }.whole_seconds()),
                until_secs: None,
                tail: (!read_all).then_some(window),
                follow: false,
                stdout,
                stderr,
            };
            let mut before_since = false;
            let wanted = |l: &RawLine| {
                let keep = q.since_ns.is_none_or(|ns| l.ts.ns >= ns);
                before_since |= !keep;
                keep
            };
            match LogStream::open(&docker, Source::of(c), query, &self.rules)
                .keep_last(keep, wanted)
                .await
            {
                Ok((lines, _)) => {
                    let enough = lines.len() >= keep;
                    if read_all || enough || before_since || (stdout && stderr) {
                        return Ok(lines);
                    }
                    window = window.saturating_mul(8);
                }
                // Removed since it was listed: it has nothing more to say.
                Err(EngineError::NotFound(_)) => return Ok(VecDeque::new()),
                Err(e) => {
                    self.engine.report(&e);
                    return Err(e);
                }
            }
        }
    }

    /// The lines of `gaps`: at most `keep`, the most recent; the number left out is
    /// returned. Each read covers only its gap and keeps at most `keep` lines while it
    /// reads, so a cursor from long ago costs a pass over the log, never its size in memory.
    /// A gap that cannot be read fails the whole fill: the viewer must be told, not given a
    /// silent hole.
    pub async fn gaps(
        &self,
        containers: &[ContainerInfo],
        gaps: Vec<Gap>,
        keep: usize,
    ) -> Result<Filled, EngineError> {
        let mut lines = Vec::new();
        let mut left_out = 0;
        for gap in gaps {
            // A container removed since has nothing left to read.
            let Some(c) = containers.iter().find(|c| c.id.starts_with(&gap.container)) else {
                continue;
            };
            let _permit = self.permits.acquire().await?;
            let docker = self.engine.docker()?;
            let query = LogQuery {
                since_secs: Timestamp { ns: gap.after.0 }.whole_seconds(),
                // The engine's `until` is whole seconds and excludes its second.
                until_secs: Some(Timestamp { ns: gap.upto.0 }.whole_seconds() + 1),
                tail: None,
                follow: false,
                stdout: true,
                stderr: true,
            };
            let in_gap = |l: &RawLine| (l.ts.ns, l.seq) > gap.after && (l.ts.ns, l.seq) <= gap.upto;
            match LogStream::open(&docker, Source::of(c), query, &self.rules)
                .keep_last(keep, in_gap)
                .await
            {
                Ok((read, skipped)) => {
                    left_out += skipped;
                    let tag = Tag::new(c);
                    lines.extend(read.into_iter().map(|l| Line::shared(tag.line(l))));
                }
                // Removed while we read: it has nothing more to give.
                Err(EngineError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(container = %c.id, error = %e, "could not read the lines a resuming client missed");
                    self.engine.report(&e);
                    return Err(e);
                }
            }
        }
        lines.sort_by(|a, b| a.cursor.cmp(&b.cursor));
        let excess = lines.len().saturating_sub(keep);
        lines.drain(..excess);
        Ok(Filled {
            lines,
            left_out: left_out + excess as u64,
        })
    }

    /// Every line the engine holds of `containers`, merged in time order as it is read: the
    /// engine is read only as fast as the caller takes lines. The permit is held until the
    /// returned reader is dropped.
    pub async fn whole(&self, containers: Vec<ContainerInfo>) -> Result<Whole, EngineError> {
        let permit = self.permits.acquire().await?;
        let docker = self.engine.docker()?;
        let query = LogQuery {
            since_secs: 0,
            until_secs: None,
            tail: None,
            follow: false,
            stdout: true,
            stderr: true,
        };
        let sources = containers
            .into_iter()
            .map(|c| OneLog {
                stream: LogStream::open(&docker, Source::of(&c), query, &self.rules),
                container: c,
                pending: VecDeque::new(),
                done: false,
            })
            .collect();
        Ok(Whole {
            sources,
            _permit: permit,
        })
    }
}

/// A whole log being read, replicas merged.
pub struct Whole {
    sources: Vec<OneLog>,
    _permit: ReadPermit,
}

/// One container's log with the lines read but not yet taken.
struct OneLog {
    container: ContainerInfo,
    stream: LogStream<'static>,
    pending: VecDeque<RawLine>,
    done: bool,
}

impl OneLog {
    /// The next line, reading from the engine when nothing is pending.
    async fn peek(&mut self) -> Result<Option<&RawLine>, EngineError> {
        while self.pending.is_empty() && !self.done {
            match self.stream.next_lines().await {
                Some(lines) => self.pending.extend(lines?),
                None => self.done = true,
            }
        }
        Ok(self.pending.front())
    }
}

impl Whole {
    /// The oldest line not yet taken, with the container it is from; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<(RawLine, &ContainerInfo)>, EngineError> {
        let mut best: Option<(usize, (i64, String, u32))> = None;
        for (i, s) in self.sources.iter_mut().enumerate() {
            let id = s.container.id.clone();
            if let Some(l) = s.peek().await? {
                let k = (l.ts.ns, id, l.seq);
                if best.as_ref().is_none_or(|(_, b)| k < *b) {
                    best = Some((i, k));
                }
            }
        }
        let Some((i, _)) = best else { return Ok(None) };
        let s = &mut self.sources[i];
        let line = s.pending.pop_front().expect("peeked");
        Ok(Some((line, &s.container)))
    }
}
