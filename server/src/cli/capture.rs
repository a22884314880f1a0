//! `lookout capture --project P [--service S] -- COMMAND…`: runs COMMAND, passes its output
//! through unchanged as it comes, and sends its lines to a running Lookout as a build of P;
//! exits with COMMAND's status.
//!
//! The command never waits for the server: its output is read and passed on at once, and
//! its lines are sent behind it, in batches, retried through a short outage. A refused
//! capture (no write permission) stops before running the command, since its output
//! would not be kept; an unreachable server only warns, since a deployment should not
//! fail because its log viewer is away.

use std::collections::VecDeque;
use std::io::Write;
use std::process::{ExitCode, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use app::builds::{
    AppendBuild, Appended, BuildStarted, CapturedLine, CommandEnd, StartBuild, MAX_CAPTURED_LINE,
    MAX_LINES_PER_APPEND,
};
use app::protocol::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::client::{CliError, Client};
use super::CaptureArgs;

/// How often lines are sent while the command writes, and a word sent while it is quiet.
const BATCH_EVERY: Duration = Duration::from_millis(100);
const HEARTBEAT: Duration = Duration::from_secs(10);
/// A request's lines stay within this many bytes of JSON, under the server's body limit
/// (`--max-body-bytes`, 64 KiB by default), whatever a line holds (a line of at most
/// `MAX_CAPTURED_LINE` bytes is at most six times that in JSON).
const MAX_BATCH_BYTES: usize = 56 * 1024;
/// How long the outputs are still read after the command ended.
const AFTER_EXIT: Duration = Duration::from_secs(2);
/// How long the end is retried through an outage before the capture gives up on it.
const END_RETRIES: u32 = 10;

/// Runs `lookout capture`.
pub async fn run(args: &CaptureArgs) -> ExitCode {
    let say = |m: String| eprintln!("lookout capture: {}", super::print::printable(&m));
    let client = match Client::new(&args.server) {
        Ok(c) => c,
        Err(e) => {
            say(e.to_string());
            return ExitCode::from(1);
        }
    };
    let start = StartBuild {
        project: args.project.clone(),
        service: args.service.clone(),
    };
    let began: Result<BuildStarted, CliError> = client
        .post_json("/api/builds/start", &start, Duration::from_secs(15))
        .await;
    let upload = match began {
        Ok(b) => Some(Upload::new(client, args, b.number)),
        // Who may capture is a setting to put right: the command waits for it.
        Err(
            e @ (CliError::NoToken { .. } | CliError::BadToken { .. } | CliError::Forbidden(_)),
        ) => {
            say(e.to_string());
            return ExitCode::from(1);
        }
        Err(e) => {
            say(format!("{e}; running the command without capturing it"));
            None
        }
    };
    match run_command(args, upload).await {
        Ok(status) => exit_code(status),
        Err(e) => {
            say(format!("cannot run {:?}: {e}", args.command[0]));
            ExitCode::from(127)
        }
    }
}

/// Ctrl+C reaches the command itself (the terminal signals the whole process group): the
/// capture stays, to send its last lines and its status. A stop or hang-up sent to the
/// capture alone (a CI runner's timeout, a closed ssh session) is passed to the command.
fn pass_signals(child: Option<u32>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async { while tokio::signal::ctrl_c().await.is_ok() {} });
    let Some(pid) = child.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    for (kind, number) in [
        (SignalKind::terminate(), libc::SIGTERM),
        (SignalKind::hangup(), libc::SIGHUP),
    ] {
        let Ok(mut incoming) = signal(kind) else {
            continue;
        };
        tokio::spawn(async move {
            while incoming.recv().await.is_some() {
                // SAFETY: kill(2) with a pid of our own child and a valid signal number
                // touches no memory of ours.
                unsafe {
                    libc::kill(pid, number);
                }
            }
        });
    }
}

fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

async fn run_command(args: &CaptureArgs, upload: Option<Upload>) -> std::io::Result<ExitStatus> {
    let mut child = tokio::process::Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    pass_signals(child.id());
    let (tx, rx) = mpsc::channel(args.max_waiting as usize);
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let not_read = Arc::new(AtomicU64::new(0));
    let mut reader = tokio::spawn(pass_through(out, err, tx, not_read.clone()));
    let (end_tx, end_rx) = tokio::sync::oneshot::channel();
    let sender = upload.map(|u| tokio::spawn(u.send_all(rx, end_rx, not_read)));
    let status = child.wait().await?;
    // What it started may hold its outputs open after it ended (a daemon): its output is
    // taken a little longer, not waited for.
    if tokio::time::timeout(AFTER_EXIT, &mut reader).await.is_err() {
        reader.abort();
    }
    use std::os::unix::process::ExitStatusExt;
    let end = match (status.code(), status.signal()) {
        (Some(code), _) => CommandEnd::Exited { code },
        (None, Some(signal)) => CommandEnd::Killed { signal },
        (None, None) => CommandEnd::Exited { code: 1 },
    };
    let _ = end_tx.send(end);
    if let Some(sender) = sender {
        let _ = sender.await;
    }
    Ok(status)
}

/// Copies the command's outputs to ours as they come, and hands their lines on. One task
/// reads both, so that lines written one after the other to either are taken in that
/// order as far as the pipes let it be known: a build tool says which service it builds
/// on one output and builds on the other.
async fn pass_through(
    mut out: impl AsyncRead + Unpin,
    mut err: impl AsyncRead + Unpin,
    lines: mpsc::Sender<CapturedLine>,
    not_read: Arc<AtomicU64>,
) {
    let (mut out_buf, mut err_buf) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let (mut out_split, mut err_split) = (Splitter::default(), Splitter::default());
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let (stream, n) = tokio::select! {
            biased;
            n = out.read(&mut out_buf), if out_open => (Stream::Stdout, n.unwrap_or(0)),
            n = err.read(&mut err_buf), if err_open => (Stream::Stderr, n.unwrap_or(0)),
        };
        let (buf, split, open) = match stream {
            Stream::Stdout => (&out_buf, &mut out_split, &mut out_open),
            Stream::Stderr => (&err_buf, &mut err_split, &mut err_open),
        };
        let taken = if n == 0 {
            *open = false;
            split.finish().into_iter().collect()
        } else {
            let chunk = &buf[..n];
            // Whoever reads our output may have left: the lines are still captured.
            let _ = match stream {
                Stream::Stdout => write_now(&mut std::io::stdout().lock(), chunk),
                Stream::Stderr => write_now(&mut std::io::stderr().lock(), chunk),
            };
            split.push(chunk)
        };
        for (text, truncated) in taken {
            let line = CapturedLine {
                text,
                stream,
                truncated,
            };
            // The command never waits for the server: lines it cannot hold are counted.
            if let Err(mpsc::error::TrySendError::Full(_)) = lines.try_send(line) {
                not_read.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn write_now(out: &mut impl Write, chunk: &[u8]) -> std::io::Result<()> {
    out.write_all(chunk)?;
    out.flush()
}

/// Bytes → lines: split at `\n` (a `\r` before it dropped), each cut at
/// `MAX_CAPTURED_LINE` bytes, invalid UTF-8 replaced.
#[derive(Default)]
struct Splitter {
    partial: Vec<u8>,
    truncated: bool,
}

impl Splitter {
    fn push(&mut self, mut bytes: &[u8]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            self.take(&bytes[..i]);
            out.push(self.line());
            bytes = &bytes[i + 1..];
        }
        self.take(bytes);
        out
    }

    fn take(&mut self, bytes: &[u8]) {
        let room = MAX_CAPTURED_LINE.saturating_sub(self.partial.len());
        self.truncated |= bytes.len() > room;
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn line(&mut self) -> (String, bool) {
        if self.partial.last() == Some(&b'\r') {
            self.partial.pop();
        }
        let text = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        (text, std::mem::take(&mut self.truncated))
    }

    fn finish(&mut self) -> Option<(String, bool)> {
        (!self.partial.is_empty()).then(|| self.line())
    }
}

/// The lines of one build on their way to the server.
struct Upload {
    client: Client,
    project: String,
    number: u64,
    /// Lines not yet taken by the server, the first of them the `sent`-th of the build.
    waiting: VecDeque<CapturedLine>,
    /// Lines that may wait at most (`--max-waiting-lines`): beyond them (a server away for
    /// long, a burst faster than it takes them) lines are counted as not sent, and the
    /// command goes on.
    max_waiting: usize,
    sent: u64,
    not_sent: u64,
    /// Set once the server will take no more (it forgot the build, or refused).
    gave_up: bool,
}

impl Upload {
    fn new(client: Client, args: &CaptureArgs, number: u64) -> Upload {
        Upload {
            client,
            project: args.project.clone(),
            number,
            max_waiting: args.max_waiting as usize,
            waiting: VecDeque::new(),
            sent: 0,
            not_sent: 0,
            gave_up: false,
        }
    }

    /// Sends lines as they come until the readers are done, then the rest with the
    /// command's end.
    async fn send_all(
        mut self,
        mut rx: mpsc::Receiver<CapturedLine>,
        end: tokio::sync::oneshot::Receiver<CommandEnd>,
        not_read: Arc<AtomicU64>,
    ) {
        let mut tick = tokio::time::interval(BATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_word = tokio::time::Instant::now();
        // While the server takes them, a full batch goes at once (a burst of output is sent
        // as fast as the server takes it); after a failure, only at the next tick.
        let mut taking = true;
        loop {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(line) => {
                        self.keep(line);
                        let full = self.waiting.len() >= MAX_LINES_PER_APPEND;
                        if full && taking && !self.gave_up {
                            taking = self.send_once(None).await;
                            last_word = tokio::time::Instant::now();
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    let due = !self.waiting.is_empty() || last_word.elapsed() >= HEARTBEAT;
                    if due && !self.gave_up {
                        taking = self.send_once(None).await;
                        last_word = tokio::time::Instant::now();
                    }
                }
            }
        }
        self.not_sent += not_read.load(Ordering::Relaxed);
        if let Ok(end) = end.await {
            self.finish(end).await;
        }
    }

    fn keep(&mut self, line: CapturedLine) {
        if self.waiting.len() >= self.max_waiting {
            self.not_sent += 1;
        } else {
            self.waiting.push_back(line);
        }
    }

    /// Sends everything left, then the end, retrying through an outage for a while.
    async fn finish(mut self, end: CommandEnd) {
        if self.not_sent > 0 {
            // The build says so too, where its lines are read.
            self.waiting.push_back(CapturedLine {
                text: format!(
                    "[lookout capture] {} lines were not sent: the command wrote faster than \
                     the server took them, and more than {} waited (--max-waiting-lines)",
                    self.not_sent, self.max_waiting
                ),
                stream: Stream::Stderr,
                truncated: false,
            });
        }
        let mut tries = 0;
        while !self.gave_up {
            let last = self.batch_len() == self.waiting.len();
            let ok = self.send_once(last.then_some(end)).await;
            if ok && last {
                break;
            }
            if !ok {
                tries += 1;
                if tries >= END_RETRIES {
                    self.warn("the server is away: the build's end was not sent".into());
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if self.not_sent > 0 {
            let n = self.not_sent;
            self.warn(format!(
                "{n} lines were not sent: more than {} waited (--max-waiting-lines)",
                self.max_waiting
            ));
        }
    }

    /// How many waiting lines the next request carries.
    fn batch_len(&self) -> usize {
        let mut bytes = 0;
        let mut n = 0;
        for line in self.waiting.iter().take(MAX_LINES_PER_APPEND) {
            // As sent: JSON writes a control character in six bytes.
            bytes += serde_json::to_string(line).map_or(usize::MAX, |j| j.len() + 1);
            if n > 0 && bytes > MAX_BATCH_BYTES {
                break;
            }
            n += 1;
        }
        n
    }

    /// One request; whether the server took it.
    async fn send_once(&mut self, end: Option<CommandEnd>) -> bool {
        let n = self.batch_len();
        let req = AppendBuild {
            project: self.project.clone(),
            number: self.number,
            from: self.sent,
            lines: self.waiting.iter().take(n).cloned().collect(),
            end,
        };
        let wait = Duration::from_secs(30);
        let answer: Result<Appended, CliError> = self
            .client
            .post_json("/api/builds/append", &req, wait)
            .await;
        match answer {
            Ok(a) => {
                let taken = a.taken.saturating_sub(self.sent).min(n as u64);
                self.waiting.drain(..taken as usize);
                self.sent += taken;
                true
            }
            Err(e) if e.is_transient() => false,
            Err(e) => {
                self.warn(format!("{e}; the command goes on uncaptured"));
                self.gave_up = true;
                false
            }
        }
    }

    fn warn(&self, m: String) {
        eprintln!("lookout capture: {}", super::print::printable(&m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_splits_into_lines_across_reads_and_long_ones_are_cut() {
        let mut s = Splitter::default();
        assert_eq!(s.push(b"#1 [web 1/2] FROM"), vec![]);
        assert_eq!(
            s.push(b" scratch\r\nStep 2\n\xffend"),
            vec![
                ("#1 [web 1/2] FROM scratch".to_owned(), false),
                ("Step 2".to_owned(), false)
            ]
        );
        assert_eq!(s.finish(), Some(("\u{fffd}end".to_owned(), false)));
        let long = vec![b'x'; MAX_CAPTURED_LINE + 10];
        let got = s.push(&[&long[..], b"\nnext\n"].concat());
        assert_eq!(got[0].0.len(), MAX_CAPTURED_LINE);
        assert!(got[0].1);
        assert_eq!(got[1], ("next".to_owned(), false));
    }
}
