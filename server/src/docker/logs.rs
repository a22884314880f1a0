//! Reading one container's log from the engine, as whole lines.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use app::protocol::{ContainerInfo, Cursor, LogLine, Stream};
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures::{Stream as FutStream, StreamExt};

use super::frames::{Framer, RawLine};
use super::source::Source;
use super::EngineError;
use crate::redact::{KeyState, Line, Reading, Redactor};

/// What is done to every line read from the engine, whoever reads it (live, tail, download).
#[derive(Clone, Debug)]
pub struct LineRules {
    /// Longest line kept, in bytes; longer lines are cut and marked.
    pub max_line: usize,
    pub redactor: Arc<Redactor>,
}

/// What part of a container's log to read.
#[derive(Clone, Copy, Debug)]
pub struct LogQuery {
    /// Only entries at or after this Unix time in whole seconds (0: from the start).
    pub since_secs: i64,
    /// Only entries before this Unix time in whole seconds (None: up to now).
    pub until_secs: Option<i64>,
    /// Only the last N entries (None: all).
    pub tail: Option<u32>,
    /// Keep the stream open for new entries.
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
}

type Frames = Pin<Box<dyn FutStream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// One open request for a container's log.
pub struct LogStream<'k> {
    frames: Frames,
    framer: Framer,
    redactor: Arc<Redactor>,
    keys: Keys<'k>,
    reading: Reading<RawLine>,
    finished: bool,
    /// Lines stamped at or after this are dropped: the task API ignores `until`.
    until_ns: Option<i64>,
}

/// The private key blocks a read goes on from: its own, or its caller's.
enum Keys<'k> {
    Own(KeyState),
    Lent(&'k mut KeyState),
}

impl LogStream<'static> {
    /// A read that starts afresh: see `KeyState`.
    pub fn open(docker: &Docker, source: Source, query: LogQuery, rules: &LineRules) -> Self {
        LogStream::start(docker, source, query, rules, Keys::Own(KeyState::default()))
    }

    /// The stamp of the newest entry the engine holds for `source`, from a read of that one.
    pub async fn newest_stamp(
        docker: Docker,
        source: Source<'_>,
        rules: &LineRules,
    ) -> Result<Option<i64>, EngineError> {
        let query = LogQuery {
            since_secs: 0,
            until_secs: None,
            tail: Some(1),
            follow: false,
            stdout: true,
            stderr: true,
        };
        let lines = LogStream::open(&docker, source, query, rules)
            .collect()
            .await?;
        Ok(lines.last().map(|l| l.ts.ns))
    }
}

impl<'k> LogStream<'k> {
    /// A read of a container that goes on from the reads before it, with their `keys`.
    pub fn open_with(
        docker: &Docker,
        source: Source,
        query: LogQuery,
        rules: &LineRules,
        keys: &'k mut KeyState,
    ) -> Self {
        LogStream::start(docker, source, query, rules, Keys::Lent(keys))
    }

    fn start(
        docker: &Docker,
        source: Source,
        query: LogQuery,
        rules: &LineRules,
        mut keys: Keys<'k>,
    ) -> Self {
        let tail = query
            .tail
            .map(|n| n.to_string())
            .unwrap_or_else(|| "all".into());
        let options = LogsOptionsBuilder::new()
            .follow(query.follow)
            .stdout(query.stdout)
            .stderr(query.stderr)
            .timestamps(true)
            .since(engine_seconds(query.since_secs))
            .until(query.until_secs.map_or(0, engine_seconds))
            .tail(&tail)
            .build();
        let from_start = query.since_secs <= 0 && query.tail.is_none();
        let (frames, until_ns): (Frames, _) = match source {
            Source::Container(id) => (Box::pin(docker.logs(id, Some(options))), None),
            Source::Task(id) => (
                Box::pin(docker.task_logs(id, Some(options))),
                query.until_secs.map(|s| s.saturating_mul(1_000_000_000)),
            ),
        };
        LogStream {
            frames,
            until_ns,
            framer: Framer::new(rules.max_line),
            redactor: rules.redactor.clone(),
            reading: Reading::begin(keys.get(), from_start),
            keys,
            finished: false,
        }
    }

    /// The lines completed by the next batch of frames; `None` once the engine ended the
    /// stream (a line without its `\n` is delivered first). Lines that may be part of a
    /// private key come only once that is known, with every line after them.
    pub async fn next_lines(&mut self) -> Option<Result<Vec<RawLine>, EngineError>> {
        loop {
            let raw = self.next_raw_lines().await;
            let keys = self.keys.get();
            let mut out = Vec::new();
            match raw {
                Some(Ok(lines)) => {
                    out.reserve(lines.len());
                    for line in lines {
                        self.reading.push(keys, &self.redactor, line, &mut out);
                    }
                    if out.is_empty() {
                        continue;
                    }
                }
                Some(Err(e)) => return Some(Err(e)),
                None => self.reading.finish(keys, &self.redactor, &mut out),
            }
            for line in &mut out {
                line.level = crate::level::detect(&line.text);
            }
            return (!out.is_empty()).then_some(Ok(out));
        }
    }

    async fn next_raw_lines(&mut self) -> Option<Result<Vec<RawLine>, EngineError>> {
        if self.finished {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let item = match self.frames.next().await {
                Some(item) => item,
                None => {
                    self.finished = true;
                    self.framer.finish(&mut out);
                    self.cut_at_until(&mut out);
                    return if out.is_empty() { None } else { Some(Ok(out)) };
                }
            };
            match item {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    self.framer.push(Stream::Stdout, &message, &mut out)
                }
                Ok(LogOutput::StdErr { message }) => {
                    self.framer.push(Stream::Stderr, &message, &mut out)
                }
                Ok(LogOutput::StdIn { .. }) => {}
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e.into()));
                }
            }
            self.cut_at_until(&mut out);
            // Hand over what is complete, but read on through the pieces of a split line.
            if !out.is_empty() {
                return Some(Ok(out));
            }
        }
    }

    fn cut_at_until(&self, lines: &mut Vec<RawLine>) {
        if let Some(until) = self.until_ns {
            lines.retain(|l| l.ts.ns < until);
        }
    }

    /// Reads the stream to its end (for queries without `follow` whose size the engine
    /// bounds: a `tail`, or the few lines since a known one).
    pub async fn collect(mut self) -> Result<Vec<RawLine>, EngineError> {
        let mut all = Vec::new();
        while let Some(batch) = self.next_lines().await {
            all.extend(batch?);
        }
        Ok(all)
    }

    /// Reads the stream to its end keeping only the last `keep` lines that `wanted` lets
    /// through, however long the log: memory stays at `keep` lines. Also returns how many
    /// wanted lines were left out before them.
    pub async fn keep_last(
        mut self,
        keep: usize,
        mut wanted: impl FnMut(&RawLine) -> bool,
    ) -> Result<(VecDeque<RawLine>, u64), EngineError> {
        let mut last = VecDeque::new();
        let mut left_out = 0;
        while let Some(batch) = self.next_lines().await {
            for line in batch? {
                if !wanted(&line) {
                    continue;
                }
                if keep == 0 {
                    left_out += 1;
                    continue;
                }
                if last.len() == keep {
                    last.pop_front();
                    left_out += 1;
                }
                last.push_back(line);
            }
        }
        Ok((last, left_out))
    }
}

impl Keys<'_> {
    fn get(&mut self) -> &mut KeyState {
        match self {
            Keys::Own(keys) => keys,
            Keys::Lent(keys) => keys,
        }
    }
}

impl Line for RawLine {
    fn is_stderr(&self) -> bool {
        self.stream == Stream::Stderr
    }

    fn position(&self) -> (i64, u32) {
        (self.ts.ns, self.seq)
    }

    fn text_mut(&mut self) -> &mut String {
        &mut self.text
    }
}

/// A time for the engine's `since` and `until`: whole seconds it takes as an `i32`. A time
/// before the epoch (a forged cursor's) means the start of the log, not the end of time.
fn engine_seconds(secs: i64) -> i32 {
    i32::try_from(secs.max(0)).unwrap_or(i32::MAX)
}

/// Tags a container's line with what identifies it within its service.
pub fn log_line(raw: RawLine, container: &ContainerInfo) -> LogLine {
    LogLine {
        cursor: Cursor {
            ts_ns: raw.ts.ns,
            seq: raw.seq,
            container: short_id(&container.id).to_owned(),
        },
        ts: raw.ts.to_rfc3339(),
        stream: raw.stream,
        replica: container.replica.clone(),
        level: raw.level,
        text: raw.text,
        truncated: raw.truncated,
    }
}

/// The first 12 hex digits of a container id, as `docker ps` shows them; unique enough
/// within one service and a fifth of the full id's size on every line sent.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_out_of_the_engines_range_are_clamped_to_its_ends() {
        assert_eq!(
            engine_seconds(-9_223_372_036),
            0,
            "a forged cursor from before 1970"
        );
        assert_eq!(engine_seconds(1_700_000_000), 1_700_000_000);
        assert_eq!(engine_seconds(i64::MAX), i32::MAX);
    }
}
