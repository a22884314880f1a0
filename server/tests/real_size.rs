//! Lookout against a real-size log and many clients at once, on the real engine: a service
//! whose container wrote 1,000,000 lines of about 100 bytes (~170 MB of json-file log),
//! read at the same moment by 8 sockets that resume from the beginning of time, 8 tails of
//! one stream and 4 downloads. The server must stay up and small, and every client must get
//! its lines or a clear error.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::protocol::{Cursor, ErrorCode, LogLine, ServerMessage, Stream};
use common::*;

/// Lines the real-size container writes; every tenth goes to stderr.
const LINES: u64 = 1_000_000;
const LAST: &str = "spew-done";

/// The two tests take turns: each alone keeps the engine busy.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Figures for the CI log: written to stderr itself, which the test harness does not capture.
fn report(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "[real_size] {text}");
}

/// A service that writes `lines` numbered lines of about 100 bytes, then `LAST`.
fn yaml(lines: u64) -> String {
    // busybox awk: about 100 bytes a line, numbered.
    let script = format!(
        "awk 'BEGIN {{ pad = sprintf(\"%88s\", \"\"); gsub(/ /, \"x\", pad); \
         for (i = 1; i <= {lines}; i++) {{ if (i % 10 == 0) print \"line \" i \" \" pad > \"/dev/stderr\"; \
         else print \"line \" i \" \" pad }} }}'; echo {LAST}; while true; do sleep 1; done"
    );
    format!(
        r#"version: "2.4"
services:
  spew:
    image: lookout-fixture:latest
    network_mode: none
    stop_grace_period: 1s
    command: ["/bin/sh", "-c", {script:?}]
"#
    )
}

/// Returns once the spew container has written its whole log. Twice in many runs, both
/// right after another test's million-line container, the engine took nothing of a new
/// container's output for minutes, before Lookout was started: a container that has
/// written no line within 60 s is reported and made anew, once.
async fn spew_written(project: &TempProject, lines: u64) {
    let id = project.id("spew").await;
    match wait_written(&id, lines, Some(Duration::from_secs(60))).await {
        Ok(()) => {}
        Err(stuck) => {
            report(&format!(
                "the engine took no line of the spew container in 60 s ({stuck}); making it anew"
            ));
            project
                .compose(&["up", "-d", "--force-recreate", "spew"])
                .await;
            let id = project.id("spew").await;
            if let Err(stuck) = wait_written(&id, lines, None).await {
                panic!("the spew container did not write its {lines} lines within 180 s: {stuck}");
            }
        }
    }
}

/// Waits until container `id` has written its whole log, within 180 s; or, with `silent`,
/// gives up early if it has written nothing at all by then. Err: what the engine says of it.
async fn wait_written(id: &str, lines: u64, silent: Option<Duration>) -> Result<(), String> {
    let started = Instant::now();
    loop {
        // stdout only, of the last entries of both: the engine may write a stderr line it
        // read late after the last stdout line.
        let last = docker_ok(&["logs", "--tail", "100", id]).await;
        if last.lines().any(|l| l == LAST) {
            return Ok(());
        }
        let nothing_yet = last.trim().is_empty();
        let gave_up = silent.is_some_and(|s| nothing_yet && started.elapsed() >= s);
        if gave_up || started.elapsed() >= Duration::from_secs(180) {
            let state = docker_ok(&[
                "inspect",
                "--format",
                "{{json .State}} restarts={{.RestartCount}}",
                id,
            ])
            .await;
            let top = docker(&["top", id]).await.unwrap_or_else(|e| e.to_string());
            return Err(format!(
                "{lines} lines asked, the last written {:?}; state {state}; processes {top}",
                last.lines().last()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn number(line: &LogLine) -> Option<u64> {
    line.text
        .strip_prefix("line ")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// What one resuming socket got: lines received and lines it was told it lost, or an error.
enum Resumed {
    Lines {
        received: u64,
        dropped: u64,
        /// The numbers of the lines received, for a failure to name what is missing.
        numbers: HashSet<u64>,
    },
    Refused(String),
}

async fn resume_from_the_start(port: u16, project: String) -> Resumed {
    let mut ws = Ws::connect(port, &project).await;
    let ancient = Cursor {
        ts_ns: 1,
        seq: 0,
        container: "0".into(),
    };
    ws.subscribe_resume("spew", &[ancient]).await;
    let mut seen = HashSet::new();
    let mut numbers = HashSet::new();
    let mut dropped = 0;
    // `subscribed` comes once the gap is read, which waits its turn among the engine reads.
    let deadline = Instant::now() + Duration::from_secs(300);
    // The engine stamps stdout and stderr apart: a stderr line written before `LAST` may be
    // stamped after it, and come in the message after. Once `LAST` is in, the socket is
    // read until every line is accounted for, or it stays quiet for 30 s.
    let mut last_at: Option<Instant> = None;
    loop {
        // Every line and `LAST`.
        let whole = seen.len() as u64 + dropped > LINES;
        if last_at.is_some() && whole {
            break;
        }
        let left = match last_at {
            Some(_) => Duration::from_secs(30),
            None => deadline.saturating_duration_since(Instant::now()),
        };
        let Some(msg) = ws.recv_within(left).await else {
            if last_at.is_some() {
                break;
            }
            panic!(
                "a resuming socket got neither its lines nor an error within 300 s: {} lines, {dropped} dropped",
                seen.len()
            );
        };
        match msg {
            ServerMessage::Dropped { count, .. } => dropped += count,
            ServerMessage::Error {
                code: ErrorCode::LinesUnread,
                message,
                ..
            } => return Resumed::Refused(message),
            ServerMessage::Lines { lines, .. } => {
                for l in &lines {
                    assert!(
                        seen.insert(l.cursor.clone()),
                        "a line came twice: {:?}",
                        l.text
                    );
                    numbers.extend(number(l));
                }
                if lines.iter().any(|l| l.text == LAST) {
                    last_at = Some(Instant::now());
                }
            }
            ServerMessage::Subscribed { .. }
            | ServerMessage::Lifecycle { .. }
            | ServerMessage::Services { .. }
            | ServerMessage::Engine { .. } => {}
            other => panic!("unexpected message while resuming: {other:?}"),
        }
    }
    Resumed::Lines {
        received: seen.len() as u64,
        dropped,
        numbers,
    }
}

/// A `GET` with a client of its own: the harness's gives up after 10 s, and these are
/// slow on purpose.
/// The server's peak RSS in KiB (the kernel's high-water mark), kept current every 100 ms
/// until the returned task is aborted.
fn watch_peak(server: &Server) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let pid = server.pid();
    let peak = Arc::new(AtomicU64::new(server.rss_kib()));
    let watcher = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kib) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    (peak, watcher)
}

/// A stderr tail of 10,000 lines: numbered ones only, in order, none missing, ending with
/// the log's last stderr line.
fn assert_the_stderr_tail(lines: &[LogLine]) {
    assert_eq!(lines.len(), 10_000, "a tail of 10,000 stderr lines");
    assert!(lines.iter().all(|l| l.stream == Stream::Stderr));
    let numbers: Vec<u64> = lines.iter().filter_map(number).collect();
    assert_eq!(numbers.len(), 10_000, "every line is a numbered one");
    assert_eq!(
        numbers.last(),
        Some(&LINES),
        "the tail ends with the last stderr line"
    );
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 10),
        "in order, none missing"
    );
}

async fn get(port: u16, path: &str, query: &[(&str, &str)]) -> (u16, reqwest::Response, Instant) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("an HTTP client");
    let started = Instant::now();
    let resp = http
        .get(format!("http://127.0.0.1:{port}{path}"))
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (resp.status().as_u16(), resp, started)
}

/// `Ok(lines)` or `Err(the refusal's text)`.
async fn tail_stderr(port: u16, project: String) -> Result<Vec<LogLine>, String> {
    let q = [
        ("project", project.as_str()),
        ("service", "spew"),
        ("streams", "stderr"),
        ("tail", "10000"),
    ];
    let (status, resp, _) = get(port, "/api/tail", &q).await;
    let body = resp.text().await.expect("the tail's body");
    match status {
        200 => Ok(serde_json::from_str(&body).expect("a tail is JSON lines")),
        503 => Err(body),
        other => panic!("a tail answered {other}: {body}"),
    }
}

/// `Ok((lines, last stdout line))` or `Err(the refusal's text)`; the body is counted as it comes,
/// never held.
async fn download(port: u16, project: String) -> Result<(u64, String), String> {
    let q = [("project", project.as_str()), ("service", "spew")];
    let (status, mut resp, _) = get(port, "/api/download", &q).await;
    if status == 503 {
        return Err(resp.text().await.expect("the refusal's body"));
    }
    assert_eq!(status, 200, "a download answered {status}");
    let mut lines = 0;
    let mut tail = Vec::new();
    while let Some(chunk) = resp.chunk().await.expect("the download's body") {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        tail.extend_from_slice(&chunk);
        // The stderr copier can lag stdout by over a thousand lines (seen here): 10,000
        // lines of room.
        let keep = tail.len().saturating_sub(1 << 20);
        tail.drain(..keep);
    }
    // The engine takes stdout and stderr apart: the last stderr line may be logged after
    // `LAST`. What is in order is each stream's own lines.
    let text = String::from_utf8_lossy(&tail).into_owned();
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains(" stdout "))
        .unwrap_or_default()
        .to_owned();
    Ok((lines, last))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_million_line_log_read_by_twenty_clients_at_once_keeps_lookout_small() {
    require_fixture().await;
    let _turn = ONE_AT_A_TIME.lock().await;
    let project = TempProject::from_yaml("big", &yaml(LINES), &["spew"]).await;
    let written = Instant::now();
    spew_written(&project, LINES).await;
    report(&format!(
        "the container wrote {LINES} lines in {:.1} s",
        written.elapsed().as_secs_f64()
    ));

    // The default bounds: a few whole-log reads at once, the rest refused after 10 s. With
    // history off: with it on, tails and resumes are served from history, not the engine.
    let server = Server::start_for(&project.name, &["--history", "off"]).await;
    let port = server.port;
    let (peak, watcher) = watch_peak(&server);
    let idle = peak.load(Ordering::Relaxed);

    let started = Instant::now();
    let name = project.name.clone();
    let sockets: Vec<_> = (0..8)
        .map(|_| tokio::spawn(resume_from_the_start(port, name.clone())))
        .collect();
    let tails: Vec<_> = (0..8)
        .map(|_| tokio::spawn(tail_stderr(port, name.clone())))
        .collect();
    let downloads: Vec<_> = (0..4)
        .map(|_| tokio::spawn(download(port, name.clone())))
        .collect();

    // Each client gets all it asked for, or an error that says why and names the setting.
    let clear = |refusal: &str| {
        assert!(
            refusal.contains("--max-engine-reads"),
            "a refusal names the bound it hit: {refusal}"
        )
    };
    let (mut served, mut refused) = ([0; 3], [0; 3]);
    for s in sockets {
        match s.await.expect("a socket's task") {
            Resumed::Lines {
                received, dropped, ..
            } => {
                assert_eq!(
                    received + dropped,
                    LINES + 1,
                    "every line of the log is either received or counted as dropped \
                     ({received} received, {dropped} dropped)"
                );
                served[0] += 1;
            }
            Resumed::Refused(message) => {
                clear(&message);
                refused[0] += 1;
            }
        }
    }
    for t in tails {
        match t.await.expect("a tail's task") {
            Ok(lines) => {
                assert_the_stderr_tail(&lines);
                served[1] += 1;
            }
            Err(refusal) => {
                clear(&refusal);
                refused[1] += 1;
            }
        }
    }
    for d in downloads {
        match d.await.expect("a download's task") {
            Ok((lines, last)) => {
                assert_eq!(lines, LINES + 1, "a download holds every line");
                assert!(
                    last.ends_with(LAST),
                    "the download's last stdout line is {LAST}: {last:?}"
                );
                served[2] += 1;
            }
            Err(refusal) => {
                clear(&refusal);
                refused[2] += 1;
            }
        }
    }
    report(&format!(
        "served / refused: resumes {} / {}, stderr tails {} / {}, downloads {} / {}",
        served[0], refused[0], served[1], refused[1], served[2], refused[2]
    ));
    assert!(
        served.iter().sum::<u32>() >= 1,
        "some clients are served while others wait"
    );
    let took = started.elapsed();

    // Alone, a resume from the beginning of time and a download are served in full: the
    // resume gets the most recent ring's worth and is told of every other line.
    let alone = Instant::now();
    let (resumed, downloaded) = tokio::join!(
        resume_from_the_start(port, name.clone()),
        download(port, name.clone())
    );
    match resumed {
        Resumed::Lines {
            received, dropped, ..
        } => {
            // The gap's last 10,000 lines, then the ring's; a stderr line stamped before the
            // ring's first line lies in both, and comes once.
            assert!(
                (19_000..=20_000).contains(&received),
                "about 20,000 lines: the gap's last 10,000, then the ring's; got {received}"
            );
            assert_eq!(
                received + dropped,
                LINES + 1,
                "the rest is counted as dropped"
            );
        }
        Resumed::Refused(message) => panic!("a resume alone was refused: {message}"),
    }
    let (lines, last) = downloaded.unwrap_or_else(|e| panic!("a download alone was refused: {e}"));
    assert_eq!(lines, LINES + 1, "a download holds every line");
    assert!(
        last.ends_with(LAST),
        "the download's last stdout line is {LAST}: {last:?}"
    );
    report(&format!(
        "then a resume from the start and a download, side by side, in {:.1} s",
        alone.elapsed().as_secs_f64()
    ));
    watcher.abort();
    let peak_kib = peak.load(Ordering::Relaxed);
    report(&format!(
        "20 clients at once in {:.1} s; lookout's RSS: {:.1} MiB idle, peak {:.1} MiB",
        took.as_secs_f64(),
        idle as f64 / 1024.0,
        peak_kib as f64 / 1024.0
    ));
    assert!(
        peak_kib < 150 * 1024,
        "lookout's peak RSS was {:.1} MiB; the bound is 150 MiB",
        peak_kib as f64 / 1024.0
    );
    assert!(
        server.rss_kib() > 0,
        "the server still runs after twenty heavy clients"
    );
}

#[tokio::test]
async fn a_read_that_waits_too_long_for_its_turn_is_refused_and_a_resume_is_told_of_its_gap() {
    require_fixture().await;
    let _turn = ONE_AT_A_TIME.lock().await;
    // One read at a time, and a short wait: a download of a log larger than the sockets'
    // buffers (~30 MB), read no further than its first bytes, holds the one place.
    const BUSY_LINES: u64 = 300_000;
    let project = TempProject::from_yaml("busy", &yaml(BUSY_LINES), &["spew"]).await;
    spew_written(&project, BUSY_LINES).await;
    let server = Server::start_for(
        &project.name,
        &[
            "--max-engine-reads",
            "1",
            "--engine-read-wait",
            "200ms",
            "--ring-lines",
            "100",
            // Tails and resumes read the engine only with history off.
            "--history",
            "off",
        ],
    )
    .await;
    let port = server.port;
    let q = [("project", project.name.as_str()), ("service", "spew")];
    // The download's first bytes mean its read has begun; it then reads only as fast as it
    // is read, and this test reads nothing more until the end.
    let (status, mut held, _) = get(port, "/api/download", &q).await;
    assert_eq!(status, 200);
    held.chunk().await.expect("the download's first bytes");

    let refused = tail_stderr(port, project.name.clone())
        .await
        .expect_err("a tail while the one place is taken is refused");
    assert!(
        refused.contains("--max-engine-reads"),
        "the refusal names the setting: {refused}"
    );
    let (status, resp, _) = get(port, "/api/download", &q).await;
    let body = resp.text().await.expect("the refusal's body");
    assert_eq!(status, 503, "a second download is refused: {body}");
    assert!(body.contains("--max-engine-reads"), "{body}");

    // A resume older than the ring needs an engine read it cannot have: it is told so,
    // then gets the lines that the ring does hold.
    let mut ws = Ws::connect(port, &project.name).await;
    let ancient = Cursor {
        ts_ns: 1,
        seq: 0,
        container: "0".into(),
    };
    ws.subscribe_resume("spew", &[ancient]).await;
    ws.expect_subscribed("spew").await;
    match ws.recv().await {
        ServerMessage::Error {
            code: ErrorCode::LinesUnread,
            message,
            ..
        } => assert!(
            message.contains("--max-engine-reads"),
            "the error says why: {message}"
        ),
        other => panic!("expected a lines_unread error, got {other:?}"),
    }
    let lines = ws
        .wait_lines("spew", |l| l.iter().any(|l| l.text == LAST))
        .await;
    assert_eq!(lines.len(), 100, "the ring's 100 lines follow");
    drop(held);
}

// With history on (the default), the 1,000,000-line log is stored once as Lookout starts,
// then eight viewers resuming from the start and eight one-stream tails are all served in
// full from history, at once: no refusal, no engine read, and Lookout stays small throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_million_line_log_in_history_serves_resumes_and_tails_without_the_engine() {
    require_fixture().await;
    let _turn = ONE_AT_A_TIME.lock().await;
    let project = TempProject::from_yaml("bighist", &yaml(LINES), &["spew"]).await;
    spew_written(&project, LINES).await;
    let server = Server::start_for(&project.name, &[]).await;
    let (peak, watcher) = watch_peak(&server);
    let port = server.port;
    let name = project.name.clone();

    let storing = Instant::now();
    // The engine stamps stderr apart: its last lines may be stamped after `LAST`.
    let newest = [
        ("project", name.as_str()),
        ("service", "spew"),
        ("limit", "50"),
    ];
    loop {
        let page: app::history::HistoryPage = server.get_json("/api/history", &newest).await;
        if page.lines.iter().any(|l| l.text == LAST) {
            break;
        }
        if storing.elapsed() >= Duration::from_secs(300) {
            let kept: Vec<String> = page
                .lines
                .iter()
                .rev()
                .take(5)
                .map(|l| l.text.chars().take(24).collect())
                .collect();
            let reads: Vec<String> = server
                .engine_calls
                .requests()
                .into_iter()
                .filter(|r| r.contains("/logs"))
                .collect();
            let metrics = server.metrics().await;
            panic!(
                "history did not store the log within 300 s; its newest lines {kept:?}; lines in {:?}, history kept {:?}; engine reads {reads:#?}",
                metrics.get("lookout_lines_in_total"),
                metrics.get("lookout_history_kept"),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stored_kib = peak.load(Ordering::Relaxed);
    report(&format!(
        "history stored {LINES} lines in {:.1} s; peak RSS {:.1} MiB",
        storing.elapsed().as_secs_f64(),
        stored_kib as f64 / 1024.0
    ));
    assert!(
        stored_kib < 100 * 1024,
        "storing the log took lookout to {:.1} MiB; the bound is 100 MiB",
        stored_kib as f64 / 1024.0
    );

    let reads = |server: &Server| server.engine_calls.log_reads().len();
    let engine_reads = reads(&server);
    let started = Instant::now();
    let sockets: Vec<_> = (0..8)
        .map(|_| tokio::spawn(resume_from_the_start(port, name.clone())))
        .collect();
    let tails: Vec<_> = (0..8)
        .map(|_| tokio::spawn(tail_stderr(port, name.clone())))
        .collect();
    for s in sockets {
        match s.await.expect("a socket's task") {
            Resumed::Lines {
                received,
                dropped,
                numbers,
            } => {
                assert!(
                    (19_000..=20_000).contains(&received),
                    "about 20,000 lines: the gap's last 10,000, then the ring's; got {received}"
                );
                let lowest = numbers.iter().min().copied().unwrap_or(0);
                let holes: Vec<u64> = (lowest..=LINES)
                    .filter(|n| !numbers.contains(n))
                    .take(20)
                    .collect();
                assert_eq!(
                    received + dropped,
                    LINES + 1,
                    "the rest is counted as dropped; lines from {lowest} on not received: {holes:?}"
                );
            }
            Resumed::Refused(message) => panic!("a resume was refused: {message}"),
        }
    }
    for t in tails {
        let lines = t
            .await
            .expect("a tail's task")
            .unwrap_or_else(|e| panic!("a tail was refused: {e}"));
        assert_the_stderr_tail(&lines);
    }
    assert_eq!(
        reads(&server),
        engine_reads,
        "the engine was not read for them"
    );
    watcher.abort();
    let peak_kib = peak.load(Ordering::Relaxed);
    report(&format!(
        "8 resumes and 8 stderr tails from history in {:.1} s; peak RSS {:.1} MiB",
        started.elapsed().as_secs_f64(),
        peak_kib as f64 / 1024.0
    ));
    // Each resume holds 20,000 lines and each tail 10,000 while they are sent.
    assert!(
        peak_kib < 200 * 1024,
        "lookout's peak RSS was {:.1} MiB; the bound is 200 MiB",
        peak_kib as f64 / 1024.0
    );
}
