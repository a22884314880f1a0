//! Streaming benchmark: how many lines per second `lookout` delivers to each of 1, 10 and 100
//! WebSocket subscribers of one service, and how late, next to `docker logs -f` following the
//! same container in the same windows (and first alone: 0 subscribers). The writer goes as
//! fast as the engine takes lines, so the lines/s are the engine's ceiling. Every latency
//! window (at 1,000 lines/s) comes before the first burst; after each burst it measures how
//! long each reader takes to be live again (the engine's follow streams can stall after one).
//! It prints a table and asserts nothing.
//!
//! It needs a Docker engine, the fixture project up (`bash scripts/fixture.sh up lookout-bench`)
//! and a release `lookout` (`scripts/build.sh`). It starts `lookout` itself and stops it.
//!
//!   cargo run --release -p lookout --example stream_bench
//!
//! Environment:
//!   LOOKOUT_BIN                the server (default: target/release/lookout)
//!   LOOKOUT_TEST_PROJECT       the Compose project with the fixture's `fast` (default: lookout-bench)
//!   STREAM_BENCH_SECS          length of each measuring window in seconds (default: 30: at the
//!                              engine's ceiling the fixture's log rotates every few seconds,
//!                              and a rotation can stall the engine's follow streams, Lookout's
//!                              and `docker logs -f`'s alike; a short window is all or nothing)
//!   STREAM_BENCH_SUBSCRIBERS   subscriber counts to measure (default: 0,1,10,100; with 0,
//!                              `docker logs -f` alone)
//!   STREAM_BENCH_LOOKOUT_LOG   lookout's log filter (default: warn; `lookout::hub=debug` shows
//!                              its follow streams' stalls and reopens)
//!   STREAM_BENCH_RATE          lines/s asked of `fast` for throughput (default: max, bursts
//!                              of `seq | sed` as fast as the engine takes them)

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use app::protocol::{ClientMessage, ServerMessage, Tail};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SERVICE: &str = "fast";
/// The writer's rate while latency is measured, in lines/s.
const LATENCY_RATE: u32 = 1_000;
/// Time for the writer to take up a new rate and for every queue to drain, before a window.
const SETTLE: Duration = Duration::from_secs(3);
/// Lookout's one engine stream per container can fall behind the writer in a lines/s window
/// and still be catching up in the next round; a latency window waits until the newest line
/// a subscriber got is this recent, or until `CATCH_UP_MAX` has passed.
const CAUGHT_UP: Duration = Duration::from_millis(500);
const CATCH_UP_MAX: Duration = Duration::from_secs(120);
/// How long, after a burst, the bench waits for every reader to be live again.
const LIVE_AGAIN_MAX: Duration = Duration::from_secs(15);
/// The most subscribers whose time to be live again is measured: with more, each gets the
/// backlog of the burst, and this bench's own parsing of them all is what it would measure
/// (with 100: not within 15 s, the bench at half a core).
const LIVE_AGAIN_SUBSCRIBERS: usize = 10;
/// How long anything may take before the bench gives up rather than hangs.
const WAIT: Duration = Duration::from_secs(15);

const TARGET_ONE: f64 = 90.0;
const TARGET_HUNDRED: f64 = 80.0;
const TARGET_P99_MS: f64 = 100.0;
/// Lookout's p50 at `LATENCY_RATE` with one subscriber, at most this many times
/// `docker logs -f`'s in the same window.
const TARGET_P50_RATIO: f64 = 2.0;
/// lookout's memory with 100 subscribers, above its memory with none (the same service
/// followed), at most (MiB).
const TARGET_MEMORY_MIB: f64 = 30.0;

type Fallible<T> = Result<T, String>;
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stream_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    bin: PathBuf,
    project: String,
    window: Duration,
    subscribers: Vec<usize>,
    /// What `fast` is asked for in the lines/s window: `max`, or lines per second.
    rate: String,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Fallible<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a valid value")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Fallible<Settings> {
        let default_bin = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/release/lookout"
        ));
        let subscribers = env_or("STREAM_BENCH_SUBSCRIBERS", "0,1,10,100".to_owned())?
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("STREAM_BENCH_SUBSCRIBERS: {n:?} is not a count"))
            })
            .collect::<Fallible<Vec<_>>>()?;
        let secs: f64 = env_or("STREAM_BENCH_SECS", 30.0)?;
        if !(secs > 0.0 && secs < 3600.0) {
            return Err(format!("STREAM_BENCH_SECS={secs} is out of range"));
        }
        Ok(Settings {
            bin: env_or("LOOKOUT_BIN", default_bin)?,
            project: env_or("LOOKOUT_TEST_PROJECT", "lookout-bench".to_owned())?,
            window: Duration::from_secs_f64(secs),
            subscribers,
            rate: match env_or("STREAM_BENCH_RATE", "max".to_owned())? {
                r if r == "max" || r.parse::<u32>().is_ok_and(|n| n > 0) => r,
                r => {
                    return Err(format!(
                        "STREAM_BENCH_RATE: {r:?} is neither max nor lines/s"
                    ))
                }
            },
        })
    }
}

async fn run() -> Fallible<()> {
    let settings = Settings::from_env()?;
    let container = fast_container(&settings.project).await?;
    let _rate = RateGuard::new(&container).await;
    let load_before = load_average();

    let server = Lookout::start(&settings.bin, &settings.project).await?;
    let rss_before = server.memory()?;
    let mut latency = Vec::new();
    for &n in &settings.subscribers {
        eprintln!("[stream_bench] latency, {n} subscriber(s)...");
        latency.push(measure(&settings, &container, &server, n, Window::Latency).await?);
    }
    let mut rounds = Vec::new();
    for (&n, latency) in settings.subscribers.iter().zip(latency) {
        eprintln!("[stream_bench] throughput, {n} subscriber(s)...");
        let throughput = measure(&settings, &container, &server, n, Window::Throughput).await?;
        rounds.push(latency.merge(throughput));
    }
    let rss_after = server.memory()?;
    server.stop().await;

    print_report(
        &settings,
        &container,
        &rounds,
        [rss_before, rss_after],
        [load_before, load_average()],
    );
    Ok(())
}

/// What one client saw during the windows.
#[derive(Default)]
struct Tally {
    /// Lines received during the throughput window.
    lines: u64,
    /// Of those, lines `docker logs -f` gave again: stamped before one it gave already. Now
    /// and then the engine's follow stream reads the log again after a rotation, and hands
    /// out seconds of lines a second time; Lookout's stream gets them too, and drops them
    /// (each line once), so its lines/s are compared with `docker logs -f`'s distinct lines.
    /// `fast` writes one stream: its lines come in stamp order.
    repeated: u64,
    /// The newest stamp `docker logs -f` gave.
    newest_ns: i64,
    /// Receipt time minus the engine's timestamp, per line received during the latency window.
    latencies_ns: Vec<i64>,
    /// Lines the server said this subscriber lost (`dropped`) during either window.
    dropped: u64,
    /// After the burst: when it first received a line written after the burst, less than
    /// `CAUGHT_UP` after it was written (ns since the epoch).
    live_again_ns: Option<i64>,
}

impl Tally {
    /// The same client's tallies of the latency pass and of the throughput pass, as one.
    fn merge(self, later: Tally) -> Tally {
        Tally {
            lines: self.lines + later.lines,
            repeated: self.repeated + later.repeated,
            newest_ns: self.newest_ns.max(later.newest_ns),
            latencies_ns: [self.latencies_ns, later.latencies_ns].concat(),
            dropped: self.dropped + later.dropped,
            live_again_ns: self.live_again_ns.or(later.live_again_ns),
        }
    }

    /// In `Phase::LiveAgain`: a line stamped `stamp_ns`, received at `received_ns`.
    fn live_again(&mut self, since_ns: i64, stamp_ns: i64, received_ns: i64, live: &AtomicI64) {
        let fresh = stamp_ns >= since_ns && received_ns - stamp_ns < CAUGHT_UP.as_nanos() as i64;
        if fresh && self.live_again_ns.is_none() {
            self.live_again_ns = Some(received_ns);
            live.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Which window is open; readers only count what arrives while one is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Idle,
    /// Before the latency window: readers report how far behind the lines they get are.
    CatchUp,
    Latency,
    Throughput,
    /// After the throughput window's burst, the writer back at `LATENCY_RATE` since
    /// `since_ns`: readers say when they first get a line written since then, at once.
    LiveAgain {
        since_ns: i64,
    },
    Stop,
}

/// Which of a round's two windows a pass measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Window {
    /// At `LATENCY_RATE`, every queue drained, no burst before it in this pass.
    Latency,
    /// At `settings.rate`, then how long each reader takes to be live again after it.
    Throughput,
}

#[derive(Default)]
struct Round {
    subscribers: usize,
    throughput_window: Duration,
    /// CPU time of the server and of this bench during the throughput window, in seconds.
    cpu_secs: [Option<f64>; 2],
    /// How long the latency window waited for lookout to catch up, and whether it did.
    catch_up: (Duration, bool),
    /// When the writer went back to `LATENCY_RATE` after the burst (ns since the epoch).
    burst_ended_ns: Option<i64>,
    lookout: Vec<Tally>,
    docker: Tally,
    /// lookout's memory at the end of the throughput window, its subscribers still there.
    memory: Option<Memory>,
    /// Follow streams lookout opened again during the throughput window (a stall, or a
    /// stream that sent only lines delivered: `lookout_follow_stalls_total`).
    reopened: Option<u64>,
}

impl Round {
    /// The same subscriber count's latency round and throughput round, as one.
    fn merge(self, later: Round) -> Round {
        Round {
            subscribers: self.subscribers,
            throughput_window: later.throughput_window,
            cpu_secs: later.cpu_secs,
            catch_up: self.catch_up,
            burst_ended_ns: later.burst_ended_ns,
            lookout: self
                .lookout
                .into_iter()
                .zip(later.lookout)
                .map(|(a, b)| a.merge(b))
                .collect(),
            docker: self.docker.merge(later.docker),
            memory: later.memory,
            reopened: later.reopened,
        }
    }
}

/// One round of one pass: `n` subscribers and one `docker logs -f`, all following `fast` at
/// once (each pass starts them afresh), for one window. Every latency window comes before
/// any burst: a burst at the engine's ceiling rotates the log every few seconds, and the
/// engine's follow streams that went through it can stall afterwards (Docker's json-file
/// reader); that is measured on its own, after each throughput window (`Phase::LiveAgain`).
async fn measure(
    settings: &Settings,
    container: &str,
    server: &Lookout,
    n: usize,
    window: Window,
) -> Fallible<Round> {
    set_rate(container, &LATENCY_RATE.to_string()).await?;
    let (phase, phase_rx) = watch::channel(Phase::Idle);
    let behind_ns = Arc::new(AtomicI64::new(i64::MAX));
    // Readers live again after the burst.
    let live = Arc::new(AtomicI64::new(0));
    let mut readers: Vec<JoinHandle<Fallible<Tally>>> = Vec::with_capacity(n);
    for _ in 0..n {
        let ws = subscribe(server.port, &settings.project).await?;
        readers.push(tokio::spawn(read_lookout(
            ws,
            phase_rx.clone(),
            behind_ns.clone(),
            live.clone(),
        )));
    }
    let mut docker_logs = Command::new("docker")
        .args(["logs", "-f", "--timestamps", "--tail", "0", container])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run `docker logs -f`: {e}"))?;
    let stdout = docker_logs.stdout.take().expect("piped stdout");
    let docker_reader = tokio::spawn(read_docker_logs(stdout, phase_rx, live.clone()));

    let mut round = Round {
        subscribers: n,
        ..Round::default()
    };
    match window {
        Window::Latency => round.catch_up = latency_window(settings, n, &phase, &behind_ns).await,
        Window::Throughput => {
            throughput_window(settings, container, server, &phase, &live, &mut round).await?
        }
    }
    let _ = phase.send(Phase::Stop);
    let _ = docker_logs.kill().await;
    round.docker = docker_reader
        .await
        .map_err(|e| format!("the docker logs task failed: {e}"))??;
    for r in readers {
        round.lookout.push(
            r.await
                .map_err(|e| format!("a subscriber's task failed: {e}"))??,
        );
    }
    Ok(round)
}

/// Waits for lookout to catch up, then opens the latency window: how long it waited, and
/// whether lookout caught up.
async fn latency_window(
    settings: &Settings,
    n: usize,
    phase: &watch::Sender<Phase>,
    behind_ns: &AtomicI64,
) -> (Duration, bool) {
    let _ = phase.send(Phase::CatchUp);
    let waiting = Instant::now();
    tokio::time::sleep(SETTLE).await;
    // With no subscriber, `docker logs -f` alone: nothing of lookout's to wait for.
    let caught_up = loop {
        if n == 0 || behind_ns.load(Ordering::Relaxed) < CAUGHT_UP.as_nanos() as i64 {
            break true;
        }
        if waiting.elapsed() > CATCH_UP_MAX {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let waited = waiting.elapsed();
    let _ = phase.send(Phase::Latency);
    tokio::time::sleep(settings.window).await;
    let _ = phase.send(Phase::Idle);
    (waited, caught_up)
}

/// The throughput window at `settings.rate`, then, back at `LATENCY_RATE`, how long each
/// reader takes to be live again (`live` counts those that are).
async fn throughput_window(
    settings: &Settings,
    container: &str,
    server: &Lookout,
    phase: &watch::Sender<Phase>,
    live: &AtomicI64,
    round: &mut Round,
) -> Fallible<()> {
    let n = round.subscribers;
    set_rate(container, &settings.rate).await?;
    tokio::time::sleep(SETTLE).await;
    let pids = [server.pid.to_string(), "self".to_owned()];
    let cpu_before = pids.clone().map(|p| cpu_secs(&p));
    let stalls_before = server.stalls().await;
    let _ = phase.send(Phase::Throughput);
    // Said, so that a profiler can be started on the server for this window alone.
    eprintln!(
        "[stream_bench] throughput window open: {n} subscriber(s), server pid {}",
        server.pid
    );
    let opened = Instant::now();
    tokio::time::sleep(settings.window).await;
    let _ = phase.send(Phase::Idle);
    round.throughput_window = opened.elapsed();
    let cpu_after = pids.map(|p| cpu_secs(&p));
    round.cpu_secs = [0, 1].map(|i| Some(cpu_after[i]? - cpu_before[i]?));
    let stalls_after = server.stalls().await;
    round.reopened = stalls_after
        .zip(stalls_before)
        .map(|(a, b)| a.saturating_sub(b));
    round.memory = Some(server.memory()?);
    // Back to a gentle rate at once, so the writer does not load the machine between
    // rounds; then how long each reader takes to be live again.
    set_rate(container, &LATENCY_RATE.to_string()).await?;
    if n <= LIVE_AGAIN_SUBSCRIBERS {
        let since_ns = now_ns();
        round.burst_ended_ns = Some(since_ns);
        let _ = phase.send(Phase::LiveAgain { since_ns });
        let waiting = Instant::now();
        while live.load(Ordering::Relaxed) < n as i64 + 1 && waiting.elapsed() < LIVE_AGAIN_MAX {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Opens a WebSocket, reads `hello` and `services`, subscribes to `fast` with a tail of 0 and
/// waits for `subscribed`. Right after the server starts it may not know the service yet, so
/// `unknown_service` is retried for a while.
async fn subscribe(port: u16, project: &str) -> Fallible<Socket> {
    let url = format!("ws://127.0.0.1:{port}/ws");
    let subscribe = serde_json::to_string(&ClientMessage::Subscribe {
        engine: None,
        project: project.to_owned(),
        service: SERVICE.to_owned(),
        tail: Tail::try_from(0).expect("0 is a valid tail"),
        resume: None,
        id: None,
    })
    .expect("a client message serialises");
    let deadline = Instant::now() + WAIT;
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&url))
        .await
        .map_err(|_| format!("{url}: no handshake within {WAIT:?}"))?
        .map_err(|e| format!("{url}: {e}"))?;
    loop {
        if let ServerMessage::Services { .. } = next_message(&mut ws, deadline).await? {
            break;
        }
    }
    loop {
        ws.send(Message::text(subscribe.clone()))
            .await
            .map_err(|e| format!("sending subscribe: {e}"))?;
        loop {
            match next_message(&mut ws, deadline).await? {
                ServerMessage::Subscribed { .. } => return Ok(ws),
                ServerMessage::Error { message, .. } if Instant::now() < deadline => {
                    eprintln!("[stream_bench] subscribe: {message}; trying again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    break;
                }
                ServerMessage::Error { code, message, .. } => {
                    return Err(format!(
                        "subscribe to {project}/{SERVICE}: {code:?}: {message}"
                    ))
                }
                _ => continue,
            }
        }
    }
}

async fn next_message(ws: &mut Socket, deadline: Instant) -> Fallible<ServerMessage> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .map_err(|_| "the server did not answer in time".to_owned())?;
        match msg {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text)
                    .map_err(|e| format!("a message not in the protocol ({e}): {text}"))
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("the server closed the WebSocket: {frame:?}"))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("the WebSocket failed: {e}")),
            None => return Err("the server closed the WebSocket".to_owned()),
        }
    }
}

/// The part of a server message the bench reads. Skipping the rest keeps the bench's own
/// parsing light: it shares the machine's CPUs with the server it measures.
#[derive(Deserialize)]
struct Received {
    #[serde(rename = "type")]
    kind: String,
    /// Of `lines`.
    #[serde(default)]
    runs: Vec<Run>,
    /// Of `dropped`.
    #[serde(default)]
    count: u64,
}

#[derive(Deserialize)]
struct Run {
    lines: Vec<Stamped>,
}

#[derive(Deserialize)]
struct Stamped {
    ts_ns: i64,
}

impl Received {
    /// The engine's stamps of a `lines` message's lines.
    fn stamps(&self) -> impl Iterator<Item = i64> + '_ {
        self.runs
            .iter()
            .flat_map(|r| r.lines.iter().map(|l| l.ts_ns))
    }
}

async fn read_lookout(
    mut ws: Socket,
    mut phase: watch::Receiver<Phase>,
    behind_ns: Arc<AtomicI64>,
    live: Arc<AtomicI64>,
) -> Fallible<Tally> {
    let mut tally = Tally::default();
    loop {
        let msg = tokio::select! {
            msg = ws.next() => msg,
            _ = phase.changed() => {
                if *phase.borrow_and_update() == Phase::Stop {
                    let _ = ws.close(None).await;
                    return Ok(tally);
                }
                continue;
            }
        };
        let received = now_ns();
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Err(format!(
                    "the server closed a subscriber's socket: {frame:?}"
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("a subscriber's socket failed: {e}")),
            None => return Err("the server closed a subscriber's socket".to_owned()),
        };
        let now = *phase.borrow();
        if now == Phase::Idle {
            continue;
        }
        let msg: Received = serde_json::from_str(&text)
            .map_err(|e| format!("a message not in the protocol ({e}): {text}"))?;
        match (msg.kind.as_str(), now) {
            ("lines", Phase::Throughput) => tally.lines += msg.stamps().count() as u64,
            ("lines", Phase::Latency) => tally
                .latencies_ns
                .extend(msg.stamps().map(|ts_ns| received - ts_ns)),
            ("lines", Phase::CatchUp) => {
                if let Some(newest) = msg.stamps().max() {
                    behind_ns.store(received - newest, Ordering::Relaxed);
                }
            }
            ("lines", Phase::LiveAgain { since_ns }) => {
                for ts_ns in msg.stamps() {
                    tally.live_again(since_ns, ts_ns, received, &live);
                }
            }
            ("dropped", Phase::Latency | Phase::Throughput) => tally.dropped += msg.count,
            ("error", _) => return Err(format!("the server sent an error: {text}")),
            _ => {}
        }
    }
}

/// Reads `docker logs -f --timestamps`, where each line starts with the engine's timestamp,
/// until the bench ends the process.
async fn read_docker_logs(
    out: ChildStdout,
    phase: watch::Receiver<Phase>,
    live: Arc<AtomicI64>,
) -> Fallible<Tally> {
    let mut out = BufReader::with_capacity(1 << 16, out);
    let mut tally = Tally::default();
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let read = out.read_until(b'\n', &mut line).await;
        let received = now_ns();
        let now = *phase.borrow();
        match read {
            Ok(0) if now == Phase::Stop => return Ok(tally),
            Ok(0) => return Err("docker logs -f ended".to_owned()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading docker logs -f: {e}")),
        }
        match now {
            Phase::Throughput => {
                tally.lines += 1;
                let stamp = stamp_ns(&line)?;
                if stamp < tally.newest_ns {
                    tally.repeated += 1;
                }
                tally.newest_ns = tally.newest_ns.max(stamp);
            }
            Phase::Latency => tally.latencies_ns.push(received - stamp_ns(&line)?),
            Phase::LiveAgain { since_ns } => {
                tally.live_again(since_ns, stamp_ns(&line)?, received, &live)
            }
            Phase::Idle | Phase::CatchUp | Phase::Stop => {}
        }
    }
}

/// The engine's timestamp that starts a line of `docker logs -f --timestamps`.
fn stamp_ns(line: &[u8]) -> Fallible<i64> {
    line.split(|b| *b == b' ')
        .next()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .map(|t| t.unix_timestamp_nanos() as i64)
        .ok_or_else(|| {
            format!(
                "docker logs -f --timestamps wrote a line without a timestamp: {:?}",
                String::from_utf8_lossy(line)
            )
        })
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as i64
}

/// The running `lookout` under measurement.
struct Lookout {
    child: Child,
    pid: u32,
    port: u16,
    /// History, in a folder of this run's own (not the working directory), removed at stop.
    data_dir: PathBuf,
    // Kept open so that the server never writes into a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Lookout {
    /// Starts `lookout --listen 127.0.0.1:0 --project <project>`: the kernel picks a free
    /// port, which the server prints. Waits until it reaches the engine.
    async fn start(bin: &PathBuf, project: &str) -> Fallible<Lookout> {
        let data_dir =
            std::env::temp_dir().join(format!("lookout-stream-bench-{}", std::process::id()));
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--project", project])
            .arg("--data-dir")
            .arg(&data_dir)
            // Every subscriber comes from this one address.
            .args(["--max-sockets-per-user", "1000"])
            .env(
                "LOOKOUT_LOG",
                std::env::var("STREAM_BENCH_LOOKOUT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} ({e}); build it with scripts/build.sh or set LOOKOUT_BIN",
                    bin.display()
                )
            })?;
        let pid = child.id().expect("a process just started has a pid");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let port = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(addr) = line.trim().strip_prefix("Lookout listening on http://") {
                    return addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| format!("{} did not say where it listens", bin.display()))?;
        let server = Lookout {
            child,
            pid,
            port,
            data_dir,
            _stdout: stdout,
        };
        server.wait_for_engine().await?;
        Ok(server)
    }

    async fn wait_for_engine(&self) -> Fallible<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .map_err(|e| format!("an HTTP client: {e}"))?;
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        let deadline = Instant::now() + WAIT;
        loop {
            let health = match http.get(&url).send().await {
                Ok(r) => r.json::<serde_json::Value>().await.ok(),
                Err(_) => None,
            };
            if health.is_some_and(|h| h["engine"]["reachable"] == true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "lookout did not reach the Docker engine within {WAIT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `lookout_follow_stalls_total` from `/metrics`: follow streams opened again so far.
    async fn stalls(&self) -> Option<u64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .ok()?;
        let text = http.get(&url).send().await.ok()?.text().await.ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("lookout_follow_stalls_total "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Resident memory now and at its peak, in KiB, from /proc/<pid>/status.
    fn memory(&self) -> Fallible<Memory> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| format!("{path} has no {name}"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }

    /// SIGTERM to its pid, as a service manager would; SIGKILL if it lingers.
    async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

#[derive(Clone, Copy)]
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

async fn docker(args: &[&str]) -> Fallible<String> {
    let run = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, run)
        .await
        .map_err(|_| format!("`docker {}` took too long", args.join(" ")))?
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The one running container of the project's `fast` service, found by its Compose labels.
async fn fast_container(project: &str) -> Fallible<String> {
    let by_project = format!("label=com.docker.compose.project={project}");
    let by_service = format!("label=com.docker.compose.service={SERVICE}");
    let ps = ["ps", "-q", "--no-trunc", "--filter", &by_project];
    let ids = docker(&[&ps[..], &["--filter", &by_service]].concat()).await?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    match ids.as_slice() {
        [id] => Ok((*id).to_owned()),
        [] => Err(format!(
            "the Compose project {project:?} has no running `{SERVICE}`: bring it up with \
             `bash scripts/fixture.sh up {project}` (or set LOOKOUT_TEST_PROJECT)"
        )),
        _ => Err(format!(
            "{project}/{SERVICE} has {} containers; the bench needs one",
            ids.len()
        )),
    }
}

/// `fast` reads its rate from /tmp/rate before each batch of a tenth of a second.
async fn set_rate(container: &str, rate: &str) -> Fallible<()> {
    let script = format!("mkdir -p /tmp && echo {rate} > /tmp/rate");
    docker(&["exec", container, "sh", "-c", &script])
        .await
        .map(drop)
}

/// Puts back the rate `fast` had before the bench, also when the bench fails.
struct RateGuard {
    container: String,
    before: Option<String>,
}

impl RateGuard {
    async fn new(container: &str) -> RateGuard {
        let before = docker(&["exec", container, "cat", "/tmp/rate"])
            .await
            .ok()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
        RateGuard {
            container: container.to_owned(),
            before,
        }
    }
}

impl Drop for RateGuard {
    fn drop(&mut self) {
        let script = match &self.before {
            Some(rate) => format!("echo {rate} > /tmp/rate"),
            None => "rm -f /tmp/rate".to_owned(),
        };
        let _ = std::process::Command::new("docker")
            .args(["exec", &self.container, "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// User and system CPU time of a process so far, from /proc/<pid>/stat.
fn cpu_secs(pid: &str) -> Option<f64> {
    // Linux reports these in USER_HZ, which is 100 on every architecture it runs on.
    const TICKS_PER_SEC: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields start after its last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Nearest-rank percentile, in milliseconds.
fn percentile_ms(sorted_ns: &[i64], p: f64) -> Option<f64> {
    if sorted_ns.is_empty() {
        return None;
    }
    let rank = ((p * sorted_ns.len() as f64).ceil() as usize).clamp(1, sorted_ns.len());
    Some(sorted_ns[rank - 1] as f64 / 1e6)
}

struct Row {
    subscribers: usize,
    /// lookout's lines/s per subscriber: mean and lowest; none with no subscriber.
    mean: Option<f64>,
    min: Option<f64>,
    docker: f64,
    lookout_ms: [Option<f64>; 2],
    docker_ms: [Option<f64>; 2],
    dropped: u64,
    docker_repeated: u64,
    reopened: Option<u64>,
    catch_up: (Duration, bool),
    /// Of one core, during the throughput window: the server's and this bench's.
    cpu_pct: [Option<f64>; 2],
    /// After the burst, seconds until lookout's slowest subscriber and `docker logs -f` were
    /// live again; `None` inside if not within `LIVE_AGAIN_MAX`.
    live_again_s: Option<(Option<f64>, Option<f64>)>,
}

impl Row {
    fn of(round: &Round) -> Row {
        let secs = round.throughput_window.as_secs_f64();
        let rates: Vec<f64> = round
            .lookout
            .iter()
            .map(|t| t.lines as f64 / secs)
            .collect();
        let mut lookout_ns: Vec<i64> = round
            .lookout
            .iter()
            .flat_map(|t| t.latencies_ns.iter().copied())
            .collect();
        lookout_ns.sort_unstable();
        let mut docker_ns = round.docker.latencies_ns.clone();
        docker_ns.sort_unstable();
        let quantiles = |ns: &[i64]| [percentile_ms(ns, 0.5), percentile_ms(ns, 0.99)];
        Row {
            subscribers: round.subscribers,
            mean: (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64),
            min: rates.iter().copied().reduce(f64::min),
            docker: (round.docker.lines - round.docker.repeated) as f64 / secs,
            lookout_ms: quantiles(&lookout_ns),
            docker_ms: quantiles(&docker_ns),
            dropped: round.lookout.iter().map(|t| t.dropped).sum(),
            docker_repeated: round.docker.repeated,
            reopened: round.reopened,
            catch_up: round.catch_up,
            cpu_pct: round.cpu_secs.map(|c| Some(100.0 * c? / secs)),
            live_again_s: round.burst_ended_ns.map(|ended| {
                let after = |t: &Tally| Some((t.live_again_ns? - ended) as f64 / 1e9);
                let slowest = match round.lookout.iter().map(after).collect::<Option<Vec<_>>>() {
                    Some(secs) => secs.into_iter().reduce(f64::max),
                    None => None,
                };
                (slowest, after(&round.docker))
            }),
        }
    }

    fn percent(&self, rate: Option<f64>) -> Option<f64> {
        Some(100.0 * rate? / self.docker).filter(|_| self.docker > 0.0)
    }
}

fn fmt_pct(p: Option<f64>) -> String {
    p.map_or("-".to_owned(), |p| format!("{p:.1}%"))
}

fn fmt_rate(rate: Option<f64>) -> String {
    rate.map_or("-".to_owned(), |r| format!("{r:.0}"))
}

fn fmt_ms(ms: Option<f64>) -> String {
    ms.map_or("-".to_owned(), |ms| format!("{ms:.1}"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn print_report(
    settings: &Settings,
    container: &str,
    rounds: &[Round],
    [before, after]: [Memory; 2],
    [load_before, load_after]: [String; 2],
) {
    let rows: Vec<Row> = rounds.iter().map(Row::of).collect();
    let secs = settings.window.as_secs_f64();
    println!();
    println!(
        "Streaming: lookout vs `docker logs -f` on {}/{SERVICE} (container {}), both at once",
        settings.project,
        &container[..12.min(container.len())]
    );
    println!(
        "lines/s: writer asked for {} lines/s, {secs} s window; latency: writer at {LATENCY_RATE} \
         lines/s, {secs} s window, engine timestamp to receipt; docker logs -f's lines/s count \
         each line once (what it gave again is below)",
        if settings.rate == "max" {
            "as many"
        } else {
            &settings.rate
        }
    );
    println!();
    println!(
        "{:>11} | {:>18} | {:>14} | {:>19} | {:>15} | {:>15}",
        "subscribers",
        "lines/s per sub",
        "docker logs -f",
        "% of docker logs -f",
        "p50 ms",
        "p99 ms"
    );
    println!(
        "{:>11} | {:>8} {:>9} | {:>14} | {:>9} {:>9} | {:>7} {:>7} | {:>7} {:>7}",
        "", "mean", "min", "lines/s", "mean", "min", "lookout", "docker", "lookout", "docker"
    );
    println!("{}", "-".repeat(98));
    for r in &rows {
        println!(
            "{:>11} | {:>8} {:>9} | {:>14.0} | {:>9} {:>9} | {:>7} {:>7} | {:>7} {:>7}",
            r.subscribers,
            fmt_rate(r.mean),
            fmt_rate(r.min),
            r.docker,
            fmt_pct(r.percent(r.mean)),
            fmt_pct(r.percent(r.min)),
            fmt_ms(r.lookout_ms[0]),
            fmt_ms(r.docker_ms[0]),
            fmt_ms(r.lookout_ms[1]),
            fmt_ms(r.docker_ms[1]),
        );
    }
    println!();
    println!("targets:");
    let with = |n: usize| rows.iter().find(|r| r.subscribers == n);
    match with(1).and_then(|r| r.percent(r.mean)) {
        Some(p) => println!(
            "  >= {TARGET_ONE}% of docker logs -f with 1 subscriber: {p:.1}% ({})",
            verdict(p >= TARGET_ONE)
        ),
        None => println!("  >= {TARGET_ONE}% of docker logs -f with 1 subscriber: not measured"),
    }
    match with(100).and_then(|r| Some((r.percent(r.mean)?, r.percent(r.min)?))) {
        Some((mean, min)) => println!(
            "  >= {TARGET_HUNDRED}% per subscriber with 100: every one {min:.1}% or more, mean \
             {mean:.1}% ({})",
            verdict(min >= TARGET_HUNDRED)
        ),
        None => println!("  >= {TARGET_HUNDRED}% per subscriber with 100: not measured"),
    }
    // On a machine the hundred sockets saturate, `docker logs -f` beside them can starve, and
    // the percentage then says how the machine was shared, not how Lookout kept up.
    let slowest = with(100).and_then(|r| r.min);
    if let (Some(hundred), Some(alone), Some(slowest)) = (with(100), with(0), slowest) {
        println!(
            "    beside 100 subscribers docker logs -f read {:.0} lines/s, {:.1}% of its {:.0} \
             alone; the slowest subscriber got {:.1}% of that",
            hundred.docker,
            100.0 * hundred.docker / alone.docker,
            alone.docker,
            100.0 * slowest / alone.docker
        );
    }
    let p50 = with(1).and_then(|r| Some((r.lookout_ms[0]?, r.docker_ms[0]?)));
    match p50 {
        Some((ours, docker)) => println!(
            "  p50 <= {TARGET_P50_RATIO}x docker logs -f at {LATENCY_RATE} lines/s with 1 \
             subscriber: {ours:.1} ms, {:.1}x of {docker:.1} ms ({})",
            ours / docker,
            verdict(ours <= TARGET_P50_RATIO * docker)
        ),
        None => {
            println!("  p50 <= {TARGET_P50_RATIO}x docker logs -f with 1 subscriber: not measured")
        }
    }
    let watched = || rows.iter().filter(|r| r.subscribers > 0);
    let p99s: Vec<String> = watched()
        .map(|r| format!("{} ms with {}", fmt_ms(r.lookout_ms[1]), r.subscribers))
        .collect();
    let p99_met = watched().all(|r| r.lookout_ms[1].is_some_and(|ms| ms < TARGET_P99_MS));
    println!(
        "  p99 < {TARGET_P99_MS} ms at {LATENCY_RATE} lines/s: {} ({})",
        p99s.join(", "),
        verdict(p99_met)
    );
    println!();
    // One figure for each subscriber count.
    let each = |figure: fn(&Row) -> String| -> String {
        let said: Vec<String> = rows
            .iter()
            .map(|r| format!("{} with {}", figure(r), r.subscribers))
            .collect();
        said.join(", ")
    };
    println!(
        "lines lookout told subscribers they lost (`dropped`): {}",
        each(|r| r.dropped.to_string())
    );
    println!(
        "lines docker logs -f gave again in the lines/s window (not counted in its lines/s): {}",
        each(|r| r.docker_repeated.to_string())
    );
    println!(
        "follow streams lookout opened again in the lines/s window (stalled, or sending only \
         lines delivered; `lookout_follow_stalls_total`): {}",
        each(|r| r.reopened.map_or("?".into(), |n| n.to_string()))
    );
    let waits: Vec<String> = rows
        .iter()
        .map(|r| {
            let (waited, caught_up) = r.catch_up;
            let note = if caught_up { "" } else { " (still behind)" };
            format!("{:.1} s{note} with {}", waited.as_secs_f64(), r.subscribers)
        })
        .collect();
    println!(
        "wait before each latency window for lookout to be under {} ms behind: {}",
        CAUGHT_UP.as_millis(),
        waits.join(", ")
    );
    let live: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (lookout, docker) = r.live_again_s?;
            let secs = |s: Option<f64>| {
                s.map_or(format!("not within {} s", LIVE_AGAIN_MAX.as_secs()), |s| {
                    format!("{s:.1} s")
                })
            };
            let lookout = match r.subscribers {
                0 => String::new(),
                _ => format!("lookout {}, ", secs(lookout)),
            };
            Some(format!(
                "{lookout}docker logs -f {} with {}",
                secs(docker),
                r.subscribers
            ))
        })
        .collect();
    println!(
        "after each burst, the writer back at {LATENCY_RATE} lines/s: live again (a line written \
         since, received within {} ms) after: {}",
        CAUGHT_UP.as_millis(),
        live.join("; ")
    );
    let cpu: Vec<String> = rows
        .iter()
        .map(|r| {
            let [server, bench] = r
                .cpu_pct
                .map(|c| c.map_or("-".to_owned(), |c| format!("{c:.0}%")));
            format!("{server} / {bench} with {}", r.subscribers)
        })
        .collect();
    println!(
        "CPU in the lines/s window, lookout / this bench (100% = one core): {}",
        cpu.join(", ")
    );
    println!(
        "lookout RSS: {} before, {} after (peak {})",
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(after.peak_kib)
    );
    print_memory(rounds, &before);
    println!("load average: {load_before} at start, {load_after} at end");
}

/// What subscribers cost: lookout's RSS with each round's subscribers connected, above its RSS
/// at its start and above its RSS with none (round 0: the service followed, as busy), and per
/// subscriber.
fn print_memory(rounds: &[Round], idle: &Memory) {
    let kib = |r: &Round| r.memory.map_or(0, |m| m.rss_kib);
    let each: Vec<String> = rounds
        .iter()
        .map(|r| format!("{} with {}", mib(kib(r)), r.subscribers))
        .collect();
    println!(
        "lookout RSS at the end of the lines/s window, subscribers connected: {}",
        each.join(", ")
    );
    let with = |n: usize| rounds.iter().find(|r| r.subscribers == n);
    if let (Some(one), Some(hundred)) = (with(1), with(100)) {
        let per = kib(hundred).saturating_sub(kib(one)) as f64 / 99.0;
        println!(
            "  per subscriber (100 against 1): {per:.0} KiB; the followed service's ring and \
             queue, with 1: {}",
            mib(kib(one).saturating_sub(idle.rss_kib))
        );
    }
    // What 100 subscribers cost is measured against the same lookout following the same
    // service with none: the ring and queues a busy service fills are there without viewers.
    let quiet = with(0).map(kib);
    match with(100) {
        Some(r) => {
            let above_start = kib(r).saturating_sub(idle.rss_kib) as f64 / 1024.0;
            println!(
                "  100 subscribers, above lookout's RSS at its start ({}): {above_start:.1} MiB",
                mib(idle.rss_kib)
            );
            match quiet {
                Some(quiet) => {
                    let above = kib(r).saturating_sub(quiet) as f64 / 1024.0;
                    println!(
                        "  target: 100 subscribers < {TARGET_MEMORY_MIB} MiB above idle (lookout \
                         following the same service with no subscriber: {}): {above:.1} MiB ({})",
                        mib(quiet),
                        verdict(above < TARGET_MEMORY_MIB)
                    );
                }
                None => println!(
                    "  target: 100 subscribers < {TARGET_MEMORY_MIB} MiB above idle: not \
                     measured (no round with 0 subscribers)"
                ),
            }
        }
        None => {
            println!("  target: 100 subscribers < {TARGET_MEMORY_MIB} MiB above idle: not measured")
        }
    }
}
