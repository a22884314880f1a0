//! The harness of the acceptance tests: the real Docker engine with the Compose fixture
//! (`bash scripts/fixture.sh up lookout-test`), the real `lookout` binary, a WebSocket client,
//! and the fixture's `probe` service, whose log the tests write exact bytes into.
//!
//! Nothing here skips: without an engine or without the fixture every test fails and says
//! what to run.
#![allow(dead_code)] // not every test file uses every part of the harness

pub mod netns;
pub mod private_engine;
mod replay;
pub mod viewer;

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use app::protocol::{
    ContainerInfo, Cursor, EngineStatus, ErrorCode, Lifecycle, LogLine, ProjectInfo, ServerMessage,
    Stream, PROTOCOL_VERSION,
};
use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{watch, Mutex, MutexGuard};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long anything may take before the test fails rather than hangs.
pub const WAIT: Duration = Duration::from_secs(10);

/// The Compose project the tests run against: `LOOKOUT_TEST_PROJECT`, default `lookout-test`.
pub fn project() -> String {
    std::env::var("LOOKOUT_TEST_PROJECT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "lookout-test".to_owned())
}

static MARKERS: AtomicU64 = AtomicU64::new(0);

/// A token that no other line, of this run or any other, contains.
pub fn marker(tag: &str) -> String {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    let n = MARKERS.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{ns}-{n}", std::process::id())
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as i64
}

/// Runs the `docker` CLI; its stdout, or why it failed.
pub async fn docker(args: &[&str]) -> Result<String, String> {
    let shown = || {
        let mut s = args.join(" ");
        if s.len() > 200 {
            s.truncate(200);
            s.push_str("...");
        }
        format!("`docker {s}`")
    };
    let run = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| format!("{} did not finish within 30 s", shown()))?
        .map_err(|e| format!("cannot run {}: {e}", shown()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed ({}): {}",
            shown(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Waits until the newest line of the container `id`'s log, as the engine holds it, is
/// `last`: a write is in the engine's log, not only done.
pub async fn engine_logged(id: &str, last: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let held = docker_ok(&["logs", "--tail", "1", id]).await;
        if held.trim() == last {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the engine did not log {last:?} within {within:?}: the log of {id} ends {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the `docker` CLI and fails the test if it fails.
pub async fn docker_ok(args: &[&str]) -> String {
    docker(args).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Full ids of a project's containers, stopped ones included, optionally of one service only.
/// Found by the Compose labels, never by container names.
pub async fn container_ids(project: &str, service: Option<&str>) -> Vec<String> {
    let by_project = format!("label=com.docker.compose.project={project}");
    let by_service = service.map(|s| format!("label=com.docker.compose.service={s}"));
    let mut args = vec!["ps", "-aq", "--no-trunc", "--filter", &by_project];
    if let Some(f) = &by_service {
        args.extend(["--filter", f.as_str()]);
    }
    docker_ok(&args)
        .await
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The project under test, after checking that an engine answers and that the project has
/// containers. Fails the test, saying what to run, when either is missing.
pub async fn require_fixture() -> String {
    let project = project();
    if let Err(e) = docker(&["version", "--format", "{{.Server.APIVersion}}"]).await {
        panic!(
            "no Docker engine answers ({e}). These tests run against a real engine: \
             start one with `bash scripts/engine.sh start`"
        );
    }
    if container_ids(&project, None).await.is_empty() {
        panic!(
            "the Compose project {project:?} has no containers. Bring the fixture up with \
             `bash scripts/fixture.sh up {project}` (or set LOOKOUT_TEST_PROJECT)"
        );
    }
    project
}

/// Runs `lookout <args>` until it says where it listens (Ok, with the line) or exits (Err,
/// with its exit code and stderr).
pub async fn launch(args: &[&str]) -> Result<String, (Option<i32>, String)> {
    let data = std::env::temp_dir().join(marker("lookout-data"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .env_remove("LOOKOUT_ALLOW_UNAUTHENTICATED_REMOTE")
        .env_remove("LOOKOUT_AUTH")
        .env("LOOKOUT_DATA_DIR", &data)
        .env("LOOKOUT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the lookout binary");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(WAIT, stdout.next_line())
        .await
        .expect("lookout says something or exits within 10 s")
        .expect("read stdout");
    if let Some(line) = first {
        child.kill().await.expect("end lookout");
        let _ = std::fs::remove_dir_all(&data);
        return Ok(line);
    }
    let out = child.wait_with_output().await.expect("lookout's exit");
    let _ = std::fs::remove_dir_all(&data);
    Err((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A `lookout` process started with its own environment and its log (stderr) kept for the
/// test to read; killed when dropped. For tests that look at what Lookout logs, or that run
/// it without the engine.
pub struct Logging {
    pub port: u16,
    pub child: Child,
    pub log: Lines<BufReader<tokio::process::ChildStderr>>,
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Logging {
    /// Runs `lookout <args>` with `env` (and no other `LOOKOUT_*` setting) until it says
    /// where it listens.
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Logging {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("LOOKOUT_") {
                cmd.env_remove(k);
            }
        }
        // A history folder of its own unless the test names one (removed by the system's
        // temporary-file cleaning: the process may outlive the test's interest in it).
        if !env.iter().any(|(k, _)| *k == "LOOKOUT_DATA_DIR") {
            cmd.env(
                "LOOKOUT_DATA_DIR",
                std::env::temp_dir().join(marker("lookout-data")),
            );
        }
        let mut child = cmd
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the lookout binary");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let log = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let line = tokio::time::timeout(WAIT, stdout.next_line())
            .await
            .expect("lookout says where it listens within 10 s")
            .expect("read stdout")
            .expect("lookout exited without saying where it listens");
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Logging {
            port,
            child,
            log,
            _stdout: stdout,
        }
    }

    /// Stops the server and returns everything it logged.
    pub async fn stop(mut self) -> Vec<String> {
        self.child.kill().await.expect("end lookout");
        let mut all = Vec::new();
        while let Ok(Ok(Some(l))) = tokio::time::timeout(WAIT, self.log.next_line()).await {
            all.push(l);
        }
        all
    }
}

/// A `lookout` process, killed when dropped.
pub struct Server {
    pub port: u16,
    pub project: String,
    http: reqwest::Client,
    child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
    /// Every engine call this server makes passes through it.
    pub engine_calls: EngineRecorder,
    /// The history folder the harness made for it, if the test did not name one.
    pub data_dir: Option<std::path::PathBuf>,
}

/// A server that called the engine for anything but a read fails the test it ran in.
impl Drop for Server {
    fn drop(&mut self) {
        if let Some(dir) = &self.data_dir {
            let _ = self.child.start_kill();
            let _ = std::fs::remove_dir_all(dir);
        }
        let unexpected = self.engine_calls.unexpected();
        if !unexpected.is_empty() && !std::thread::panicking() {
            panic!(
                "lookout called engine endpoints beyond the documented reads {ALLOWED_ENGINE_CALLS:?}: {unexpected:?}"
            );
        }
    }
}

impl Server {
    /// Starts `lookout --project <the project under test>` once the fixture is known to be up.
    pub async fn start() -> Server {
        let project = require_fixture().await;
        Server::start_for(&project, &[]).await
    }

    /// Starts `lookout --listen 127.0.0.1:0 --project <project> <extra...>` and waits until it
    /// listens and reaches the engine.
    pub async fn start_for(project: &str, extra: &[&str]) -> Server {
        Server::start_with(Some(project), extra, &[]).await
    }

    /// Starts `lookout --listen 127.0.0.1:0 [--project <project>] <extra...>` with `env` set
    /// (after every other `LOOKOUT_*` setting is taken away) and waits until it listens and
    /// reaches the engine. Without a project it shows every project; `project` is then the
    /// fixture's, for the helpers that name a service.
    pub async fn start_with(project: Option<&str>, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_through(EngineRecorder::start().await, project, extra, env).await
    }

    /// As `start_with`, its engine calls through `engine_calls`, which the test may have
    /// told to hold some back (`EngineRecorder::hold`).
    pub async fn start_through(
        engine_calls: EngineRecorder,
        project: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.args(["--listen", "127.0.0.1:0"]);
        if let Some(p) = project {
            cmd.args(["--project", p]);
        }
        // `{engine_calls}` in an argument is the recording socket's address, for a test that
        // names the local engine among others (`--engine local={engine_calls}`).
        cmd.args(
            extra
                .iter()
                .map(|a| a.replace("{engine_calls}", &engine_calls.docker_host())),
        );
        // Each server keeps its history in a folder of its own, removed with it.
        let data_dir = if extra.iter().any(|a| a.starts_with("--data-dir")) {
            None
        } else {
            let dir = std::env::temp_dir().join(marker("lookout-data"));
            cmd.arg("--data-dir").arg(&dir);
            Some(dir)
        };
        let project = match project {
            Some(p) => p.to_owned(),
            None => require_fixture().await,
        };
        let project = project.as_str();
        // Settings from the environment would change the bounds the tests expect.
        for var in [
            "LOOKOUT_LISTEN",
            "LOOKOUT_PROJECT",
            "LOOKOUT_RING_LINES",
            "LOOKOUT_QUEUE_LINES",
            "LOOKOUT_MAX_LINE_BYTES",
            "LOOKOUT_MAX_MESSAGE_BYTES",
            "LOOKOUT_ALLOW_UNAUTHENTICATED_REMOTE",
            "LOOKOUT_ALLOWED_ORIGINS",
            "LOOKOUT_REDACT",
            "LOOKOUT_REDACT_PATTERNS",
            "LOOKOUT_AUTH",
            "LOOKOUT_USERS_FILE",
            "LOOKOUT_SESSION_TTL",
            "LOOKOUT_LOGIN_ATTEMPTS_PER_MINUTE",
            "LOOKOUT_TRUSTED_PROXIES",
            "LOOKOUT_USER_HEADER",
            "LOOKOUT_MAX_SOCKETS_PER_USER",
            "LOOKOUT_MAX_BODY_BYTES",
            "LOOKOUT_MAX_TAIL_LINES",
            "LOOKOUT_ALLOWED_HOSTS",
            "LOOKOUT_LOGIN_ATTEMPTS_PER_NAME_PER_MINUTE",
            "LOOKOUT_MAX_CONCURRENT_LOGINS",
            "LOOKOUT_LOGIN_WAIT",
            "LOOKOUT_METRICS_TOKEN",
            "LOOKOUT_METRICS_TOKEN_FILE",
            "LOOKOUT_RING_BYTES",
            "LOOKOUT_QUEUE_BYTES",
            "LOOKOUT_MAX_BATCH_BYTES",
            "LOOKOUT_MAX_ENGINE_READS",
            "LOOKOUT_ENGINE_READ_WAIT",
        ] {
            cmd.env_remove(var);
        }
        // And any other `LOOKOUT_*` this machine's environment holds.
        for (k, _) in std::env::vars() {
            if k.starts_with("LOOKOUT_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        cmd.env("LOOKOUT_LOG", "warn")
            .env("DOCKER_HOST", engine_calls.docker_host())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start the lookout binary");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let port = tokio::time::timeout(WAIT, async {
            while let Some(line) = stdout.next_line().await.expect("read lookout's stdout") {
                if let Some(addr) = line.trim().strip_prefix("Lookout listening on http://") {
                    return addr
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok())
                        .unwrap_or_else(|| panic!("no port in {line:?}"));
                }
            }
            panic!("lookout exited without saying where it listens")
        })
        .await
        .expect("lookout did not say where it listens within 10 s");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .expect("an HTTP client");
        let server = Server {
            port,
            project: project.to_owned(),
            http,
            child,
            _stdout: stdout,
            engine_calls,
            data_dir,
        };
        server.wait_for_engine().await;
        server
    }

    /// The server learns whether the engine answers a moment after it starts listening.
    async fn wait_for_engine(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, body) = self.get("/healthz", &[]).await;
            let reachable = status == 200
                && serde_json::from_str::<serde_json::Value>(&body)
                    .is_ok_and(|v| v["engine"]["reachable"] == true);
            if reachable {
                return;
            }
            if Instant::now() > deadline {
                panic!("lookout does not reach the Docker engine within 10 s: /healthz says {status} {body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET path?query`: the status and the body.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let resp = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} {query:?}: {e}"));
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET {path} {query:?}: reading the body: {e}"));
        (status, body)
    }

    /// `GET path?query`, which must answer 200 with JSON of type `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> T {
        let (status, body) = self.get(path, query).await;
        assert_eq!(
            status, 200,
            "GET {path} {query:?} answered {status}: {body}"
        );
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path} {query:?}: unexpected JSON ({e}): {body}"))
    }

    /// `GET /api/projects`.
    pub async fn projects(&self) -> Vec<ProjectInfo> {
        self.get_json("/api/projects", &[]).await
    }

    /// `GET /api/tail?project=<project>&service=<service>&<query>`, which must answer 200.
    pub async fn tail(&self, service: &str, query: &[(&str, &str)]) -> Vec<LogLine> {
        let mut q = vec![("project", self.project.as_str()), ("service", service)];
        q.extend_from_slice(query);
        self.get_json("/api/tail", &q).await
    }

    /// Opens a WebSocket and reads its `hello` and `services`.
    pub async fn ws(&self) -> Ws {
        Ws::connect(self.port, &self.project).await
    }

    /// Asks to open the WebSocket at `path` (`/ws?…`) with `origin` (as a browser on that
    /// page would); the HTTP status of a refusal and its text, or 101.
    pub async fn upgrade(&self, path: &str, origin: Option<&str>) -> (u16, String) {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::HeaderValue;
        use tokio_tungstenite::tungstenite::Error;
        let mut request = format!("ws://127.0.0.1:{}{path}", self.port)
            .into_client_request()
            .expect("a request");
        if let Some(o) = origin {
            request
                .headers_mut()
                .insert("Origin", HeaderValue::from_str(o).expect("a header"));
        }
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("an answer within 10 s")
        {
            Ok((_, response)) => (response.status().as_u16(), String::new()),
            Err(Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                (response.status().as_u16(), body)
            }
            Err(e) => panic!("the upgrade failed otherwise: {e}"),
        }
    }

    /// Opens a WebSocket at `path` (`/ws?…`) and reads its `hello` and `services`.
    pub async fn ws_at(&self, path: &str) -> Ws {
        Ws::connect_at(self.port, &self.project, path, &[]).await
    }

    /// `GET /metrics`, as name → value (Prometheus text; comments skipped).
    pub async fn metrics(&self) -> HashMap<String, f64> {
        let (status, body) = self.get("/metrics", &[]).await;
        assert_eq!(status, 200, "/metrics answered {status}: {body}");
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (name, value) = l
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("/metrics: a line without a value: {l:?}"));
                let value = value
                    .parse()
                    .unwrap_or_else(|e| panic!("/metrics: {l:?}: {e}"));
                (name.to_owned(), value)
            })
            .collect()
    }

    /// One value of `/metrics`, which must be there.
    pub async fn metric(&self, name: &str) -> f64 {
        let all = self.metrics().await;
        *all.get(name)
            .unwrap_or_else(|| panic!("/metrics has no {name}: {all:?}"))
    }

    /// The server's process id (while it runs).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the lookout process still runs")
    }

    /// The server's resident memory now, in KiB (`VmRSS` of /proc/<pid>/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read the server's /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/<pid>/status: {status}"))
    }

    /// Sends SIGTERM to the server, as `docker stop` or systemd would.
    pub async fn terminate(&self) {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}: {status}");
    }

    /// Waits up to `d` for the server to exit; its exit status, or None if it still runs.
    pub async fn wait_exit(&mut self, d: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(d, self.child.wait())
            .await
            .ok()
            .map(|r| r.expect("wait for the lookout process"))
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that reads the server's messages as the protocol's types.
pub struct Ws {
    socket: Socket,
    pub project: String,
    /// What `hello` said about the engine.
    pub engine: EngineStatus,
    /// What `hello` said about each engine.
    pub engines: Vec<EngineStatus>,
    /// What the first `services` message listed.
    pub projects: Vec<ProjectInfo>,
    /// What `hello` said about history (None: history is off).
    pub history: Option<app::protocol::HistoryStatus>,
}

impl Ws {
    pub async fn connect(port: u16, project: &str) -> Ws {
        Ws::connect_with(port, project, &[]).await
    }

    /// Connects with extra request headers (a session cookie, a proxy's user header).
    pub async fn connect_with(port: u16, project: &str, headers: &[(&str, &str)]) -> Ws {
        Ws::connect_at(port, project, "/ws", headers).await
    }

    pub async fn connect_at(port: u16, project: &str, path: &str, headers: &[(&str, &str)]) -> Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("ws://127.0.0.1:{port}{path}");
        let mut request = url.as_str().into_client_request().expect("a request");
        for (k, v) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                    .expect("a header name"),
                v.parse().expect("a header value"),
            );
        }
        let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .unwrap_or_else(|_| panic!("{url}: no handshake within 10 s"))
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let mut ws = Ws {
            socket,
            project: project.to_owned(),
            engine: EngineStatus {
                name: String::new(),
                reachable: false,
                api_version: None,
                engine_version: None,
                error: None,
            },
            engines: Vec::new(),
            projects: Vec::new(),
            history: None,
        };
        match ws.recv().await {
            ServerMessage::Hello {
                protocol,
                engine,
                engines,
                history,
            } => {
                assert_eq!(protocol, PROTOCOL_VERSION, "hello names another protocol");
                ws.engine = engine;
                ws.engines = engines;
                ws.history = history;
            }
            other => panic!("the first message must be `hello`, got {other:?}"),
        }
        match ws.recv().await {
            ServerMessage::Services { projects } => ws.projects = projects,
            other => panic!("the second message must be `services`, got {other:?}"),
        }
        ws
    }

    pub async fn send(&mut self, msg: Message) {
        tokio::time::timeout(WAIT, self.socket.send(msg))
            .await
            .expect("sending on the WebSocket took over 10 s")
            .expect("sending on the WebSocket");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send(Message::text(text)).await;
    }

    /// Sends `subscribe` to a service of the project; `tail` is sent as it is, bad or not.
    pub async fn subscribe(&mut self, service: &str, tail: i64) {
        let project = self.project.clone();
        self.subscribe_to(&project, service, tail).await;
    }

    pub async fn subscribe_to(&mut self, project: &str, service: &str, tail: i64) {
        let msg = serde_json::json!({
            "type": "subscribe",
            "project": project,
            "service": service,
            "tail": tail,
        });
        self.send_text(&msg.to_string()).await;
    }

    /// Sends `subscribe` with `resume`: the last cursor held of each container.
    pub async fn subscribe_resume(&mut self, service: &str, resume: &[Cursor]) {
        let msg = serde_json::json!({
            "type": "subscribe",
            "project": self.project,
            "service": service,
            "resume": resume,
        });
        self.send_text(&msg.to_string()).await;
    }

    /// Reads until the server's close frame, passing over other messages; None if the socket
    /// ended without one, or nothing ended it within `d`.
    pub async fn close_frame_within(&mut self, d: Duration) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) | Ok(None | Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return frame,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next message, if one comes within `d`. A closed socket or an unreadable message
    /// fails the test.
    pub async fn recv_within(&mut self, d: Duration) -> Option<ServerMessage> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match msg {
                None => panic!("the server closed the WebSocket"),
                Some(Err(e)) => panic!("the WebSocket failed: {e}"),
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).unwrap_or_else(|e| {
                        panic!(
                            "the server sent a message that is not in the protocol ({e}): {text}"
                        )
                    }))
                }
                Some(Ok(Message::Close(frame))) => {
                    panic!("the server closed the WebSocket: {frame:?}")
                }
                Some(Ok(Message::Binary(b))) => {
                    panic!("the server sent a binary frame of {} bytes", b.len())
                }
                Some(Ok(_)) => continue, // ping, pong
            }
        }
    }

    /// Waits until the server closes the socket (within 10 s), passing over its messages.
    pub async fn expect_closed(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => panic!("the server did not close the WebSocket within 10 s"),
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next message; fails the test if none comes within 10 s.
    pub async fn recv(&mut self) -> ServerMessage {
        self.recv_within(WAIT)
            .await
            .expect("no message from the server within 10 s")
    }

    /// The next message other than the status updates (`services`, `engine`) that the server
    /// sends whenever a container changes (the fixture's `crash` restarts every 11 s).
    pub async fn reply_within(&mut self, d: Duration) -> Option<ServerMessage> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_within(left).await? {
                ServerMessage::Services { .. } | ServerMessage::Engine { .. } => continue,
                other => return Some(other),
            }
        }
    }

    pub async fn reply(&mut self) -> ServerMessage {
        self.reply_within(WAIT)
            .await
            .expect("no reply from the server within 10 s")
    }

    /// Waits for `subscribed` to `service`, passing over lines of an earlier subscription.
    pub async fn expect_subscribed(&mut self, service: &str) -> Vec<ContainerInfo> {
        loop {
            match self.reply().await {
                ServerMessage::Subscribed {
                    engine: _,
                    project,
                    service: s,
                    containers,
                    ..
                } => {
                    assert_eq!(
                        (project.as_str(), s.as_str()),
                        (self.project.as_str(), service),
                        "`subscribed` names another service"
                    );
                    return containers;
                }
                ServerMessage::Lines { .. }
                | ServerMessage::Dropped { .. }
                | ServerMessage::Lifecycle { .. } => continue,
                other => panic!("expected `subscribed` to {service}, got {other:?}"),
            }
        }
    }

    /// Waits for an `error`, passing over lines of the current subscription.
    pub async fn expect_error(&mut self) -> (ErrorCode, String) {
        loop {
            match self.reply().await {
                ServerMessage::Error { code, message, .. } => return (code, message),
                ServerMessage::Lines { .. }
                | ServerMessage::Dropped { .. }
                | ServerMessage::Lifecycle { .. } => continue,
                other => panic!("expected an `error`, got {other:?}"),
            }
        }
    }

    /// The next `lines` message, which must be of `service`, with the moment it was read;
    /// None if no message came before `deadline`. Lifecycle markers are passed over: the
    /// tests of markers read them with `timeline_during`.
    pub async fn try_next_lines(
        &mut self,
        service: &str,
        deadline: Instant,
    ) -> Option<(Vec<LogLine>, Instant)> {
        let mut msg = self
            .reply_within(deadline.saturating_duration_since(Instant::now()))
            .await?;
        while let ServerMessage::Lifecycle { .. } = msg {
            msg = self
                .reply_within(deadline.saturating_duration_since(Instant::now()))
                .await?;
        }
        match msg {
            ServerMessage::Lines {
                engine: _,
                project,
                service: s,
                lines,
            } => {
                assert_eq!(
                    (project.as_str(), s.as_str()),
                    (self.project.as_str(), service),
                    "lines of another service"
                );
                assert!(!lines.is_empty(), "a `lines` message without lines");
                Some((lines, Instant::now()))
            }
            other => panic!("expected lines of {service}, got {other:?}"),
        }
    }

    /// The next `lines` message, which must be of `service` and come within 10 s.
    pub async fn next_lines(&mut self, service: &str) -> Vec<LogLine> {
        self.try_next_lines(service, Instant::now() + WAIT)
            .await
            .unwrap_or_else(|| panic!("no lines of {service} within 10 s"))
            .0
    }

    /// Reads lines of `service` until one matches `pred` (within 10 s); returns it with the
    /// moment its message was read.
    pub async fn wait_line(
        &mut self,
        service: &str,
        pred: impl Fn(&LogLine) -> bool,
    ) -> (LogLine, Instant) {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let Some((lines, at)) = self.try_next_lines(service, deadline).await else {
                panic!(
                    "the line awaited from {service} did not come within 10 s; came: {:#?}",
                    texts(&seen)
                );
            };
            if let Some(line) = lines.iter().find(|l| pred(l)) {
                return (line.clone(), at);
            }
            seen.extend(lines);
        }
    }

    /// Reads lines of `service` until those read so far satisfy `done` (within 10 s); returns
    /// them all.
    pub async fn wait_lines(
        &mut self,
        service: &str,
        done: impl Fn(&[LogLine]) -> bool,
    ) -> Vec<LogLine> {
        let deadline = Instant::now() + WAIT;
        let mut all = Vec::new();
        while !done(&all) {
            let Some((lines, _)) = self.try_next_lines(service, deadline).await else {
                panic!(
                    "the lines awaited from {service} did not come within 10 s; came: {:#?}",
                    texts(&all)
                );
            };
            all.extend(lines);
        }
        all
    }

    /// Every line and lifecycle marker of `service` that comes within `d`.
    pub async fn timeline_during(
        &mut self,
        service: &str,
        d: Duration,
    ) -> (Vec<LogLine>, Vec<Lifecycle>) {
        let deadline = Instant::now() + d;
        let (mut lines, mut markers) = (Vec::new(), Vec::new());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (project, s) = match self.reply_within(left).await {
                None => return (lines, markers),
                Some(ServerMessage::Lines {
                    engine: _,
                    project,
                    service,
                    lines: more,
                }) => {
                    lines.extend(more);
                    (project, service)
                }
                Some(ServerMessage::Lifecycle {
                    engine: _,
                    project,
                    service,
                    change,
                }) => {
                    markers.push(change);
                    (project, service)
                }
                Some(other) => panic!("expected lines of {service}, got {other:?}"),
            };
            assert_eq!(
                (project.as_str(), s.as_str()),
                (self.project.as_str(), service),
                "a message of another service"
            );
        }
    }

    /// Every line of `service` that comes within `d`; a lifecycle marker fails the test.
    pub async fn lines_during(&mut self, service: &str, d: Duration) -> Vec<LogLine> {
        let deadline = Instant::now() + d;
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reply_within(left).await {
                None => return all,
                Some(ServerMessage::Lines {
                    engine: _,
                    project,
                    service: s,
                    lines,
                }) => {
                    assert_eq!(
                        (project.as_str(), s.as_str()),
                        (self.project.as_str(), service),
                        "lines of another service"
                    );
                    all.extend(lines);
                }
                Some(other) => panic!("expected lines of {service}, got {other:?}"),
            }
        }
    }
}

/// The texts of lines, shortened, for messages.
fn texts(lines: &[LogLine]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.text.chars().take(120).collect())
        .collect()
}

/// Which output of the probe to write to.
#[derive(Clone, Copy, Debug)]
pub enum Fd {
    Stdout = 1,
    Stderr = 2,
}

/// Tests running in parallel share the probe's stdout and stderr. A line written in one
/// `write` of up to 4 KiB is never torn, but a long line or a line written in pieces is, so
/// every write goes through this lock; a test that needs the probe silent holds it longer.
static PROBE_LOCK: Mutex<()> = Mutex::const_new(());

/// The fixture's `probe` service: it writes nothing by itself; tests write into its log.
pub struct Probe {
    pub id: String,
}

/// The probe's log, for this test alone while held.
pub struct ProbeGuard<'a> {
    probe: &'a Probe,
    _lock: MutexGuard<'static, ()>,
}

impl Probe {
    pub async fn find(project: &str) -> Probe {
        let ids = container_ids(project, Some("probe")).await;
        assert_eq!(
            ids.len(),
            1,
            "the probe service of {project:?} should have exactly one container, found {ids:?}"
        );
        Probe {
            id: ids.into_iter().next().expect("one id"),
        }
    }

    pub async fn lock(&self) -> ProbeGuard<'_> {
        ProbeGuard {
            probe: self,
            _lock: PROBE_LOCK.lock().await,
        }
    }

    /// Writes `printf format args...` to the probe's stdout or stderr.
    pub async fn printf(&self, fd: Fd, format: &str, args: &[&str]) {
        self.lock().await.printf(fd, format, args).await;
    }
}

impl ProbeGuard<'_> {
    /// Runs `sh -c script sh args...` in the probe; the script writes to the probe's log
    /// through /proc/1/fd/1 (stdout) and /proc/1/fd/2 (stderr).
    pub async fn sh(&self, script: &str, args: &[&str]) {
        let mut argv = vec!["exec", self.probe.id.as_str(), "sh", "-c", script, "sh"];
        argv.extend_from_slice(args);
        docker_ok(&argv).await;
    }

    /// Writes `printf format args...` to the probe's stdout or stderr, in one write.
    pub async fn printf(&self, fd: Fd, format: &str, args: &[&str]) {
        let script = format!("printf \"$@\" > /proc/1/fd/{}", fd as u8);
        let mut argv = vec![format];
        argv.extend_from_slice(args);
        self.sh(&script, &argv).await;
    }
}

/// A container made by a test (outside the fixture), removed when dropped.
pub struct TempContainer(pub String);

impl Drop for TempContainer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The fixture's Compose file.
pub fn fixture_compose_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end/fixture/docker-compose.yml")
}

/// A Compose project of its own for a test that restarts, recreates, scales or floods a
/// service, so that nobody else's project (the shared fixture, the demo) is touched. Its
/// containers use the locally built `lookout-fixture:latest` (never pulled) and no network;
/// `down -t 1` removes them when it is dropped, also when the test fails.
pub struct TempProject {
    pub name: String,
    file: PathBuf,
    /// A directory of Compose files written by the test, removed with the project.
    dir: Option<PathBuf>,
}

impl TempProject {
    /// `docker-compose -f <file> -p lookout-t-<tag>-<unique> up -d <services>`.
    pub async fn up(tag: &str, file: &Path, services: &[&str]) -> TempProject {
        // Compose v1 keeps only [-_a-z0-9] of a project name.
        let name = marker(&format!("lookout-t-{tag}"));
        let project = TempProject {
            name,
            file: file.to_owned(),
            dir: None,
        };
        let mut args = vec!["up", "-d"];
        args.extend_from_slice(services);
        project.compose(&args).await;
        project
    }

    /// A project of the fixture's services.
    pub async fn fixture(tag: &str, services: &[&str]) -> TempProject {
        TempProject::up(tag, &fixture_compose_file(), services).await
    }

    /// A project from a Compose file the test writes (`yaml`); every service should use
    /// `image: lookout-fixture:latest` and `network_mode: none`.
    pub async fn from_yaml(tag: &str, yaml: &str, services: &[&str]) -> TempProject {
        let dir = std::env::temp_dir().join(marker("lookout-compose"));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        let file = dir.join("docker-compose.yml");
        std::fs::write(&file, yaml).expect("write a Compose file");
        let mut project = TempProject::up(tag, &file, services).await;
        project.dir = Some(dir);
        project
    }

    /// Runs `docker-compose -f <file> -p <project> <args>` and fails the test if it fails.
    pub async fn compose(&self, args: &[&str]) -> String {
        let file = self.file.to_string_lossy().into_owned();
        let mut argv = vec!["-f", file.as_str(), "-p", self.name.as_str()];
        argv.extend_from_slice(args);
        let shown = format!("`docker-compose {}`", argv.join(" "));
        let run = Command::new("docker-compose")
            .args(&argv)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .unwrap_or_else(|_| panic!("{shown} did not finish within 60 s"))
            .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
        assert!(
            out.status.success(),
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A project whose one service, `numbered`, writes `line 1` to `line <count>` on stdout
    /// as it starts and nothing after; returned once the engine holds the last of them.
    pub async fn numbered(tag: &str, count: u32) -> TempProject {
        let yaml = format!(
            r#"version: "2.4"
services:
  numbered:
    image: lookout-fixture:latest
    network_mode: none
    stop_grace_period: 1s
    command: ["/bin/sh", "-c", "awk 'BEGIN {{ for (i = 1; i <= {count}; i++) print \"line \" i }}'; while true; do sleep 3600; done"]
"#
        );
        let project = TempProject::from_yaml(tag, &yaml, &["numbered"]).await;
        let id = project.id("numbered").await;
        engine_logged(&id, &format!("line {count}"), WAIT).await;
        project
    }

    /// Full ids of a service's containers, stopped ones included.
    pub async fn ids(&self, service: &str) -> Vec<String> {
        container_ids(&self.name, Some(service)).await
    }

    /// The id of the one container of `service`.
    pub async fn id(&self, service: &str) -> String {
        let ids = self.ids(service).await;
        assert_eq!(ids.len(), 1, "one container of {service}: {ids:?}");
        ids.into_iter().next().expect("one id")
    }
}

impl Drop for TempProject {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker-compose")
            .arg("-f")
            .arg(&self.file)
            .args(["-p", &self.name, "down", "-t", "1", "--remove-orphans"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Sets the rate of the fixture's `fast` (lines per second; it reads /tmp/rate, and the
/// image has no /tmp until something makes it).
pub async fn set_fast_rate(container: &str, rate: u32) {
    let script = format!("mkdir -p /tmp && echo {rate} > /tmp/rate");
    docker_ok(&["exec", container, "sh", "-c", &script]).await;
}

/// The engine endpoints Lookout may call: reads only (README, "Docker API calls").
pub const ALLOWED_ENGINE_CALLS: [&str; 11] = [
    "GET /version",
    "GET /containers/json",
    "GET /containers/{id}/json",
    "GET /containers/{id}/logs",
    "GET /events",
    "GET /services",
    "GET /nodes",
    "GET /info",
    "GET /tasks",
    "GET /tasks/{id}",
    "GET /tasks/{id}/logs",
];

/// A unix-socket proxy between one `lookout` and the engine that notes every request's
/// method and path, so that a test can tell which endpoints Lookout called.
pub struct EngineRecorder {
    pub socket: PathBuf,
    calls: Noted,
    holding: Arc<Holding>,
    /// Which follow requests' answers are decoded, so that they can be replayed.
    replayable: Arc<std::sync::Mutex<Option<RequestTest>>>,
    replays_dropped: Arc<AtomicU64>,
    open: Arc<std::sync::Mutex<Vec<std::sync::Weak<Proxied>>>>,
    task: tokio::task::JoinHandle<()>,
}

/// One connection through the recorder: its requests as sent, and whether the engine's
/// answers have stopped reaching Lookout (`EngineRecorder::stall_open`).
#[derive(Default)]
struct Proxied {
    requests: std::sync::Mutex<Vec<String>>,
    stalled: std::sync::atomic::AtomicBool,
    /// The engine's next answer is to a replayable follow (`EngineRecorder::replayable`).
    follow_next: std::sync::atomic::AtomicBool,
    /// The follow answered here sends the lines it sent again, and nothing new.
    replaying: std::sync::atomic::AtomicBool,
    /// Replaying follows that Lookout closed, of every connection of the recorder.
    replays_dropped: Arc<AtomicU64>,
}

/// Noted requests: `METHOD /path` (ids and version taken out) and the request line as sent.
type Noted = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Which requests are kept from the engine until released (`EngineRecorder::hold`).
struct Holding {
    matches: std::sync::Mutex<Option<RequestTest>>,
    /// True while held; a held request goes on when it turns false.
    on: watch::Sender<bool>,
    /// Requests held so far.
    held: AtomicU64,
}

type RequestTest = Box<dyn Fn(&str) -> bool + Send + Sync>;

impl Holding {
    /// Whether the request line `sent` is to wait, counting it if so.
    fn holds(&self, sent: &str) -> bool {
        let matches = self.matches.lock().expect("hold lock");
        let held = *self.on.borrow() && matches.as_ref().is_some_and(|m| m(sent));
        if held {
            self.held.fetch_add(1, Ordering::SeqCst);
        }
        held
    }
}

impl EngineRecorder {
    /// Proxies to the engine of `DOCKER_HOST` (or the default socket).
    pub async fn start() -> EngineRecorder {
        let socket =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.sock", marker("engine")));
        EngineRecorder::start_at(&socket).await
    }

    /// Proxies to the engine from a socket at `socket` (which must not exist yet): an engine
    /// that appears there while a server already runs.
    pub async fn start_at(socket: &Path) -> EngineRecorder {
        let upstream = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let socket = socket.to_owned();
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind the recording socket");
        let calls: Noted = Default::default();
        let noted = calls.clone();
        let holding = Arc::new(Holding {
            matches: std::sync::Mutex::new(None),
            on: watch::channel(false).0,
            held: AtomicU64::new(0),
        });
        let holds = holding.clone();
        let replayable: Arc<std::sync::Mutex<Option<RequestTest>>> = Default::default();
        let replays = replayable.clone();
        let replays_dropped: Arc<AtomicU64> = Default::default();
        let dropped = replays_dropped.clone();
        let open: Arc<std::sync::Mutex<Vec<std::sync::Weak<Proxied>>>> = Default::default();
        let registry = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let noted = noted.clone();
                let holds = holds.clone();
                let replays = replays.clone();
                let conn = Arc::new(Proxied {
                    replays_dropped: dropped.clone(),
                    ..Proxied::default()
                });
                let mut all = registry.lock().expect("open lock");
                all.retain(|c| c.strong_count() > 0);
                all.push(Arc::downgrade(&conn));
                drop(all);
                tokio::spawn(async move {
                    let Ok(engine) = tokio::net::UnixStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_engine, mut to_engine) = engine.into_split();
                    let answering = conn.clone();
                    let answers = tokio::spawn(async move {
                        answer(&mut from_engine, &mut to_client, &answering).await;
                    });
                    let requests = Requests {
                        noted: &noted,
                        holding: &holds,
                        replayable: &replays,
                    };
                    let _ = forward_noting(&mut from_client, &mut to_engine, requests, &conn).await;
                    // Lookout closed the connection.
                    if conn.replaying.load(Ordering::SeqCst) {
                        conn.replays_dropped.fetch_add(1, Ordering::SeqCst);
                    }
                    answers.abort();
                });
            }
        });
        EngineRecorder {
            socket,
            calls,
            holding,
            replayable,
            replays_dropped,
            open,
            task,
        }
    }

    /// How many replaying follows (`replay_open`) Lookout closed.
    pub fn replays_dropped(&self) -> u64 {
        self.replays_dropped.load(Ordering::SeqCst)
    }

    /// Decodes the answers to the follow requests from now on whose line as sent `matches`,
    /// so that they can be replayed (`replay_open`).
    pub fn replayable(&self, matches: impl Fn(&str) -> bool + Send + Sync + 'static) {
        *self.replayable.lock().expect("replayable lock") = Some(Box::new(matches));
    }

    /// Replays every open follow whose request `matches` and was `replayable`, as an engine
    /// that hands out a log it sent already: the connection stays open and sends the lines it
    /// sent, again and again, and nothing new. Returns how many.
    pub fn replay_open(&self, matches: impl Fn(&str) -> bool) -> usize {
        self.each_open(matches, |conn| conn.replaying.store(true, Ordering::SeqCst))
    }

    /// Does `what` to every open connection whose last request `matches`; returns how many.
    fn each_open(&self, matches: impl Fn(&str) -> bool, what: impl Fn(&Proxied)) -> usize {
        let open = self.open.lock().expect("open lock");
        let mut done = 0;
        for conn in open.iter().filter_map(std::sync::Weak::upgrade) {
            let last = conn.requests.lock().expect("requests lock").last().cloned();
            if last.is_some_and(|r| matches(&r)) {
                what(&conn);
                done += 1;
            }
        }
        done
    }

    /// Keeps every request whose line as sent (`GET /v1.41/containers/…/logs?…`) `matches`
    /// from the engine until `release`: a read that takes as long as a test needs.
    pub fn hold(&self, matches: impl Fn(&str) -> bool + Send + Sync + 'static) {
        *self.holding.matches.lock().expect("hold lock") = Some(Box::new(matches));
        self.holding.on.send_replace(true);
    }

    /// Lets the held requests, and any like them, go on to the engine.
    pub fn release(&self) {
        self.holding.on.send_replace(false);
    }

    /// Stalls every open connection whose last request `matches`, as an engine's follow
    /// stream that stops (Docker's json-file reader missing a rotation): the connection stays
    /// open and nothing more of the engine's answer reaches Lookout. Returns how many.
    pub fn stall_open(&self, matches: impl Fn(&str) -> bool) -> usize {
        self.each_open(matches, |conn| conn.stalled.store(true, Ordering::SeqCst))
    }

    /// How many requests were held so far.
    pub fn held(&self) -> u64 {
        self.holding.held.load(Ordering::SeqCst)
    }

    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Every call so far, as `METHOD /path` with the API version and ids taken out.
    pub fn calls(&self) -> Vec<String> {
        let calls = self.calls.lock().expect("calls lock");
        calls.iter().map(|(c, _)| c.clone()).collect()
    }

    /// Every request so far as sent: `METHOD /v1.41/containers/<id>/logs?follow=1&…`.
    pub fn requests(&self) -> Vec<String> {
        let calls = self.calls.lock().expect("calls lock");
        calls.iter().map(|(_, r)| r.clone()).collect()
    }

    /// The reads of logs so far, as sent, but for the followers' asks for a container's
    /// newest line (`tail=1` without follow: whether a follow stream has stalled).
    pub fn log_reads(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.contains("/logs?"))
            .filter(|r| {
                let query: Vec<&str> = r.split(['?', '&']).collect();
                !(query.contains(&"tail=1") && query.contains(&"follow=false"))
            })
            .collect()
    }

    /// The log streams opened so far (`GET /containers/<id>/logs` with `follow` set), as the
    /// container ids they name.
    pub fn followed_logs(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| {
                let (path, query) = r.split_once(' ')?.1.split_once('?')?;
                let rest = path.split("/containers/").nth(1)?;
                let id = rest.strip_suffix("/logs")?;
                let follows = query
                    .split('&')
                    .any(|kv| kv == "follow=1" || kv == "follow=true");
                follows.then(|| id.to_owned())
            })
            .collect()
    }

    /// The calls that are not reads Lookout is known to make.
    pub fn unexpected(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| !ALLOWED_ENGINE_CALLS.contains(&c.as_str()))
            .collect()
    }
}

impl Drop for EngineRecorder {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// What the recorder does with the requests it forwards.
struct Requests<'a> {
    noted: &'a std::sync::Mutex<Vec<(String, String)>>,
    holding: &'a Holding,
    replayable: &'a std::sync::Mutex<Option<RequestTest>>,
}

/// Copies a client's requests to the engine, noting each request line; a request the hold
/// matches goes on once released. Lookout's requests have no bodies but a `Content-Length`
/// is honoured all the same.
async fn forward_noting(
    from: &mut tokio::net::unix::OwnedReadHalf,
    to: &mut tokio::net::unix::OwnedWriteHalf,
    Requests {
        noted,
        holding,
        replayable,
    }: Requests<'_>,
    conn: &Proxied,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut pending: Vec<u8> = Vec::new();
    let mut body_left = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&buf[..n]);
        let mut held = false;
        loop {
            if body_left > 0 {
                let skip = body_left.min(pending.len());
                pending.drain(..skip);
                body_left -= skip;
                if body_left > 0 {
                    break;
                }
            }
            let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                break;
            };
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            pending.drain(..end + 4);
            let mut lines = head.lines();
            let request = lines.next().unwrap_or_default();
            body_left = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            let sent = request.rsplit_once(' ').map_or(request, |(r, _)| r);
            held |= holding.holds(sent);
            let follows = sent.contains("follow=true") || sent.contains("follow=1");
            let replays = replayable.lock().expect("replayable lock");
            if follows && replays.as_ref().is_some_and(|m| m(sent)) {
                // Lookout waits for each answer before it asks again on a connection: the
                // engine's next answer on it is this one's.
                conn.follow_next.store(true, Ordering::SeqCst);
            }
            drop(replays);
            conn.requests
                .lock()
                .expect("requests lock")
                .push(sent.to_owned());
            noted
                .lock()
                .expect("calls lock")
                .push((endpoint(request), sent.to_owned()));
        }
        if held {
            let mut on = holding.on.subscribe();
            let _ = on.wait_for(|on| !on).await;
        }
        to.write_all(&buf[..n]).await?;
    }
}

/// Copies the engine's answers to Lookout until the connection is stalled; then nothing more
/// is copied, and the connection stays open until Lookout drops it. A replayable follow's
/// answer is copied a frame at a time (`replay.rs`).
async fn answer(
    from: &mut tokio::net::unix::OwnedReadHalf,
    to: &mut tokio::net::unix::OwnedWriteHalf,
    conn: &Proxied,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        if conn.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let mut read = buf[..n].to_vec();
        if conn.follow_next.swap(false, Ordering::SeqCst) {
            match replay::copy_follow(from, to, conn, &read).await {
                Ok(rest) => read = rest,
                Err(_) => return,
            }
        }
        if to.write_all(&read).await.is_err() {
            return;
        }
    }
}

/// `GET /v1.41/containers/abc123/logs?follow=1 HTTP/1.1` → `GET /containers/{id}/logs`.
pub fn endpoint(request_line: &str) -> String {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let segments = match segments.first() {
        Some(v) if v.starts_with('v') && v[1..].contains('.') => &segments[1..],
        _ => &segments[..],
    };
    let shown: Vec<&str> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i == 1 && ["containers", "tasks"].contains(&segments[0]) && *s != "json" {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    format!("{method} /{}", shown.join("/"))
}

// ---------------------------------------------------------------------------------------------
// What the engine holds, and comparing lines with it

/// One engine timestamp in the protocol's form: RFC 3339, UTC, nine fractional digits.
pub fn nine_digits(ts: &str) -> String {
    let Some((secs, frac)) = ts.trim_end_matches('Z').split_once('.') else {
        return format!("{}.000000000Z", ts.trim_end_matches('Z'));
    };
    format!("{secs}.{frac:0<9}Z")
}

/// A log as (timestamp, text) per output, in order.
pub type StreamLog = HashMap<Stream, Vec<(String, String)>>;

/// A container's log as the engine of `DOCKER_HOST` holds it (`docker logs --timestamps`).
pub async fn engine_log(id: &str) -> StreamLog {
    engine_log_at(None, id).await
}

/// A container's log as an engine holds it (`docker [-H host] logs --timestamps`): per output,
/// its lines as (timestamp, text), in order.
pub async fn engine_log_at(host: Option<&str>, id: &str) -> StreamLog {
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.args(["-H", h]);
    }
    cmd.args(["logs", "--timestamps", id])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("`docker logs` did not finish within 30 s")
        .expect("run `docker logs`");
    assert!(
        out.status.success(),
        "docker logs {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parse = |bytes: &[u8]| -> Vec<(String, String)> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|l| {
                let (ts, text) = l.split_once(' ').unwrap_or((l, ""));
                (nine_digits(ts), text.to_owned())
            })
            .collect()
    };
    HashMap::from([
        (Stream::Stdout, parse(&out.stdout)),
        (Stream::Stderr, parse(&out.stderr)),
    ])
}

/// Lines as a viewer received them, per output, as (timestamp, text): to compare with
/// `engine_log`.
pub fn per_stream<'a>(lines: impl IntoIterator<Item = &'a LogLine>) -> StreamLog {
    let mut per: StreamLog =
        HashMap::from([(Stream::Stdout, Vec::new()), (Stream::Stderr, Vec::new())]);
    for l in lines {
        per.entry(l.stream)
            .or_default()
            .push((l.ts.clone(), l.text.clone()));
    }
    per
}

/// Fails unless the line's text is exactly `expected`, showing where they first differ.
pub fn assert_text(line: &LogLine, expected: &str) {
    let (got, want) = (line.text.as_bytes(), expected.as_bytes());
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let around = |b: &[u8]| {
            String::from_utf8_lossy(&b[at.saturating_sub(20)..(at + 20).min(b.len())]).into_owned()
        };
        panic!(
            "a line of {} bytes, expected {}; first difference at byte {at}: {:?} instead of {:?}",
            got.len(),
            want.len(),
            around(got),
            around(want),
        );
    }
}
