//! A viewer of one service over the WebSocket, as the tests of engines that come and go
//! (`engine_restart.rs`, `engines.rs`, `ssh.rs`) follow one: it keeps every line and every
//! engine status it was told, and waits for a condition, never for a while.

use std::time::{Duration, Instant};

use app::protocol::{EngineStatus, LogLine, ServerMessage};

use super::{Server, Ws};

/// A WebSocket client following one service, keeping everything it was sent.
pub struct Viewer {
    pub ws: Ws,
    pub lines: Vec<LogLine>,
    /// The `engine` messages it was sent, in order.
    pub engines: Vec<EngineStatus>,
    /// What it follows: engine, project, service.
    pub service: (String, String, String),
    /// Lines the server said this viewer lost (`dropped`), for a test to check.
    pub dropped: u64,
}

impl Viewer {
    /// Connects and subscribes to `engine/project/service` with the largest tail (all it
    /// has said so far), once the server says it is subscribed.
    pub async fn follow(server: &Server, engine: &str, project: &str, service: &str) -> Viewer {
        let mut ws = server.ws().await;
        let msg = serde_json::json!({
            "type": "subscribe", "engine": engine, "project": project, "service": service,
            "tail": 10000,
        });
        ws.send_text(&msg.to_string()).await;
        let mut v = Viewer {
            ws,
            lines: Vec::new(),
            engines: Vec::new(),
            service: (engine.to_owned(), project.to_owned(), service.to_owned()),
            dropped: 0,
        };
        v.until(
            Duration::from_secs(15),
            "subscribed",
            |_, m| matches!(m, Some(ServerMessage::Subscribed { engine: e, .. }) if e == engine),
        )
        .await;
        v
    }

    /// Reads messages until `done` holds (asked before the first message with None, then
    /// after each); fails the test, saying `what`, if that takes over `d`.
    pub async fn until(
        &mut self,
        d: Duration,
        what: &str,
        mut done: impl FnMut(&Viewer, Option<&ServerMessage>) -> bool,
    ) {
        let deadline = Instant::now() + d;
        if done(self, None) {
            return;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(msg) = self.ws.recv_within(left).await else {
                panic!(
                    "{what}: not within {d:?}; {} lines came, the last {:?}; engines: {:?}",
                    self.lines.len(),
                    self.lines.last().map(|l| &l.text),
                    self.engines
                );
            };
            self.take(&msg);
            if done(self, Some(&msg)) {
                return;
            }
        }
    }

    /// Keeps what `msg` brings: its lines, an engine's status, a count of lost lines.
    pub fn take(&mut self, msg: &ServerMessage) {
        match msg {
            ServerMessage::Lines {
                engine,
                project,
                service,
                lines,
            } => {
                let (e, p, s) = &self.service;
                assert_eq!(
                    (engine.as_str(), project.as_str(), service.as_str()),
                    (e.as_str(), p.as_str(), s.as_str()),
                    "lines of another service"
                );
                self.lines.extend(lines.iter().cloned());
            }
            ServerMessage::Engine { engine } => self.engines.push(engine.clone()),
            ServerMessage::Dropped { count, .. } => self.dropped += *count,
            ServerMessage::Error { code, message, .. } => {
                panic!("the server sent an error: {code:?}: {message}")
            }
            // `services` after every container change, and whatever else tells of the
            // service's life besides its lines.
            _ => {}
        }
    }

    /// The lines received, per output: (timestamp, text) in the order they came.
    pub fn received(&self) -> super::StreamLog {
        super::per_stream(&self.lines)
    }
}

/// Whether `msg` tells that engine `name` became reachable (or unreachable).
pub fn told(msg: Option<&ServerMessage>, name: &str, reachable: bool) -> bool {
    matches!(msg, Some(ServerMessage::Engine { engine })
        if engine.name == name && engine.reachable == reachable)
}

/// /healthz's `engines`, as (name, reachable).
pub async fn health(server: &Server) -> Vec<(String, bool)> {
    let (status, body) = server.get("/healthz", &[]).await;
    assert_eq!(status, 200, "/healthz: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("/healthz is JSON");
    v["engines"]
        .as_array()
        .unwrap_or_else(|| panic!("/healthz has no engines: {body}"))
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap_or_default().to_owned();
            (name, e["reachable"] == true)
        })
        .collect()
}

/// A TCP port free on loopback a moment ago, for a listener the test starts.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("an address").port()
}

/// Why engine `name` is unreachable, as `server` tells a new viewer (its `hello`, then its
/// `engine` messages) once it has tried: within 15 s, or the test fails.
pub async fn refusal(server: &Server, name: &str) -> String {
    let mut ws = server.ws().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut known = ws.engines.clone();
    loop {
        let told = known
            .iter()
            .filter(|e| e.name == name)
            .find_map(|e| e.error.clone());
        if let Some(why) = told.filter(|e| e != "not yet connected") {
            return why;
        }
        assert!(
            Instant::now() < deadline,
            "{name}'s refusal is not told: {known:?}"
        );
        if let Some(ServerMessage::Engine { engine }) =
            ws.recv_within(Duration::from_millis(200)).await
        {
            known = vec![engine];
        }
    }
}
