//! Reading one container's log from the engine, as whole lines.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use app::protocol::{ContainerInfo, Cursor, LogLine, Stream};
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures::{Stream as FutStream, StreamExt};
use tokio::time::{Instant, Sleep};

use super::frames::{Framer, RawLine};
use super::pace::{self, Pace};
use super::pump::pumped;
use super::source::Source;
use super::EngineError;
use crate::redact::{KeyState, Line, Reading, Redactor};

/// What is done to every line read from the engine, whoever reads it (live, tail, download),
/// and how far ahead of its reader a read goes.
#[derive(Clone, Debug)]
pub struct LineRules {
    /// Longest line kept, in bytes; longer lines are cut and marked.
    pub max_line: usize,
    pub redactor: Arc<Redactor>,
    /// Bytes of the engine's frames read ahead of the reader, at most (`pump.rs`).
    pub read_ahead: usize,
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

type Frame = Result<LogOutput, bollard::errors::Error>;
type Frames = Pin<Box<dyn FutStream<Item = Frame> + Send>>;

/// One open request for a container's log.
pub struct LogStream<'k> {
    frames: Frames,
    framer: Framer,
    redactor: Arc<Redactor>,
    keys: Keys<'k>,
    reading: Reading<RawLine>,
    /// Whole lines read and not yet handed on, and the bytes of their text.
    read: Vec<RawLine>,
    read_bytes: usize,
    pace: Pace,
    /// When the batch being gathered is handed on (made at the first batch gathered).
    gather_end: Option<Pin<Box<Sleep>>>,
    /// The engine ended the stream (with `failure` if it failed): what was read is handed
    /// on first.
    finished: bool,
    failure: Option<EngineError>,
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
        keys: Keys<'k>,
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
        let read_ahead = rules.read_ahead;
        let (frames, until_ns): (Frames, _) = match source {
            Source::Container(id) => (
                Box::pin(pumped(
                    docker.logs(id, Some(options)),
                    read_ahead,
                    frame_bytes,
                )),
                None,
            ),
            Source::Task(id) => (
                Box::pin(pumped(
                    docker.task_logs(id, Some(options)),
                    read_ahead,
                    frame_bytes,
                )),
                query.until_secs.map(|s| s.saturating_mul(1_000_000_000)),
            ),
        };
        LogStream::reading(frames, until_ns, from_start, rules, keys)
    }

    fn reading(
        frames: Frames,
        until_ns: Option<i64>,
        from_start: bool,
        rules: &LineRules,
        mut keys: Keys<'k>,
    ) -> Self {
        LogStream {
            frames,
            until_ns,
            framer: Framer::new(rules.max_line),
            redactor: rules.redactor.clone(),
            reading: Reading::begin(keys.get(), from_start),
            keys,
            read: Vec::new(),
            read_bytes: 0,
            pace: Pace::new(Instant::now()),
            gather_end: None,
            finished: false,
            failure: None,
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

    /// The next lines complete: at once, or, while the stream is busy, what comes within
    /// `pace::GATHER` (see `pace.rs`). Lines read are kept in `self` until handed on, so that
    /// dropping this while it waits loses none.
    async fn next_raw_lines(&mut self) -> Option<Result<Vec<RawLine>, EngineError>> {
        let mut gathering = false;
        loop {
            if self.finished {
                if !self.read.is_empty() {
                    return Some(Ok(self.hand_on()));
                }
                return self.failure.take().map(Err);
            }
            let next = if self.read.is_empty() {
                self.frames.next().await
            } else {
                if !gathering {
                    let Some(until) = self.pace.gather_until(Instant::now()) else {
                        return Some(Ok(self.hand_on()));
                    };
                    match &mut self.gather_end {
                        Some(end) => end.as_mut().reset(until),
                        None => self.gather_end = Some(Box::pin(tokio::time::sleep_until(until))),
                    }
                    gathering = true;
                }
                if self.read.len() >= pace::MOST_LINES || self.read_bytes >= pace::MOST_BYTES {
                    return Some(Ok(self.hand_on()));
                }
                let end = self
                    .gather_end
                    .as_mut()
                    .expect("set when the gathering began");
                tokio::select! {
                    biased;
                    next = self.frames.next() => next,
                    () = end.as_mut() => return Some(Ok(self.hand_on())),
                }
            };
            let before = self.read.len();
            match next {
                None => {
                    self.finished = true;
                    self.framer.finish(&mut self.read);
                }
                Some(Ok(LogOutput::StdOut { message }))
                | Some(Ok(LogOutput::Console { message })) => {
                    self.framer.push(Stream::Stdout, &message, &mut self.read)
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    self.framer.push(Stream::Stderr, &message, &mut self.read)
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(e)) => {
                    self.finished = true;
                    self.failure = Some(e.into());
                }
            }
            self.read_bytes += self.read[before..]
                .iter()
                .map(|l| l.text.len())
                .sum::<usize>();
        }
    }

    /// The lines read so far, to hand on.
    fn hand_on(&mut self) -> Vec<RawLine> {
        let mut lines = std::mem::take(&mut self.read);
        self.read_bytes = 0;
        self.cut_at_until(&mut lines);
        self.pace.handed(Instant::now(), lines.len());
        lines
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

/// What a frame holds, as the read-ahead counts it.
fn frame_bytes(frame: &Frame) -> usize {
    frame.as_ref().map_or(0, |output| output.as_ref().len())
}

/// A time for the engine's `since` and `until`: whole seconds it takes as an `i32`. A time
/// before the epoch (a forged cursor's) means the start of the log, not the end of time.
fn engine_seconds(secs: i64) -> i32 {
    i32::try_from(secs.max(0)).unwrap_or(i32::MAX)
}

/// Tags a container's line with what identifies it within its service.
pub fn log_line(raw: RawLine, container: &ContainerInfo) -> LogLine {
    Tag::new(container).line(raw)
}

/// What tags lines of one container: their cursors share one id, not a copy each (and
/// subscribers tell a run of them by that id's pointer, `hub::given`).
pub struct Tag<'c> {
    id: Arc<str>,
    container: &'c ContainerInfo,
}

impl<'c> Tag<'c> {
    pub fn new(container: &'c ContainerInfo) -> Tag<'c> {
        Tag {
            id: short_id(&container.id).into(),
            container,
        }
    }

    pub fn line(&self, raw: RawLine) -> LogLine {
        LogLine {
            cursor: Cursor {
                ts_ns: raw.ts.ns,
                seq: raw.seq,
                container: self.id.clone(),
            },
            ts: raw.ts.to_rfc3339(),
            stream: raw.stream,
            replica: self.container.replica.clone(),
            level: raw.level,
            text: raw.text,
            truncated: raw.truncated,
        }
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
    use std::time::Duration;

    /// A stream of the engine's frames, made here (a fake of the engine's side): `lines`
    /// numbered lines on stdout, 100 every millisecond (the timer's finest step), then `end`.
    fn frames(lines: u32, end: Option<bollard::errors::Error>) -> Frames {
        padded_frames(lines, 0, end)
    }

    /// As `frames`, each line padded with `pad` spaces after its number.
    fn padded_frames(lines: u32, pad: usize, end: Option<bollard::errors::Error>) -> Frames {
        let entries = (0..lines).map(move |i| {
            let ns = u64::from(i) * 10_000;
            let padding = " ".repeat(pad);
            let entry = format!("2026-12-05T18:00:00.{ns:09}Z line {i}{padding}\n");
            let frame = Ok(LogOutput::StdOut {
                message: entry.into_bytes().into(),
            });
            (i, frame)
        });
        let paced = futures::stream::iter(entries).then(|(i, frame)| async move {
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            frame
        });
        Box::pin(paced.chain(futures::stream::iter(end.map(Err))))
    }

    fn stream(frames: Frames) -> LogStream<'static> {
        let rules = LineRules {
            max_line: 1 << 20,
            redactor: Arc::new(Redactor::off()),
            read_ahead: 1 << 20,
        };
        LogStream::reading(frames, None, true, &rules, Keys::Own(KeyState::default()))
    }

    fn numbers(lines: &[RawLine]) -> Vec<u32> {
        lines
            .iter()
            .map(|l| {
                let number = l.text.trim_start_matches("line ").trim_end();
                number.parse().expect("a number")
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_stream_hands_its_lines_on_in_batches_and_a_dropped_wait_loses_none() {
        let mut stream = stream(frames(5000, None));
        let mut got = Vec::new();
        let mut batches = 0;
        loop {
            // Dropped now and then while it gathers (it gathers for 2 ms): what it read stays with
            // the stream.
            let next = tokio::time::timeout(Duration::from_millis(3), stream.next_lines()).await;
            let Ok(next) = next else { continue };
            let Some(lines) = next else { break };
            got.extend(numbers(&lines.expect("no failure")));
            batches += 1;
        }
        assert_eq!(
            got,
            (0..5000).collect::<Vec<_>>(),
            "every line, once, in order"
        );
        assert!(
            batches < 500,
            "100,000 lines a second come in batches, not one by one: {batches} batches"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_gathered_batch_holds_at_most_a_mebibyte_of_text() {
        // 100 lines of 16 KiB a millisecond: 3.2 MB gathered in 2 ms if nothing bounded it.
        let mut stream = stream(padded_frames(600, 16 << 10, None));
        let mut got = Vec::new();
        let mut largest = 0;
        while let Some(lines) = stream.next_lines().await {
            let lines = lines.expect("no failure");
            let bytes: usize = lines.iter().map(|l| l.text.len()).sum();
            largest = largest.max(bytes);
            got.extend(numbers(&lines));
        }
        assert_eq!(got, (0..600).collect::<Vec<_>>());
        let line = (16 << 10) + "line 599".len();
        assert!(
            largest <= pace::MOST_BYTES + line,
            "a batch of {largest} bytes is over the bound by more than one line"
        );
        assert!(
            largest > 8 * line,
            "the lines were gathered: {largest} bytes"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lines_read_before_a_failure_are_handed_on_before_it() {
        let failure = bollard::errors::Error::IOError {
            err: std::io::Error::other("the engine went away"),
        };
        let mut stream = stream(frames(1000, Some(failure)));
        let mut got = Vec::new();
        let failed = loop {
            match stream.next_lines().await {
                Some(Ok(lines)) => got.extend(numbers(&lines)),
                Some(Err(e)) => break e,
                None => panic!("the stream ended without its failure"),
            }
        };
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        assert!(
            failed.to_string().contains("the engine went away"),
            "{failed}"
        );
        assert!(
            stream.next_lines().await.is_none(),
            "nothing after the failure"
        );
    }

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
