//! Acceptance tests of `lookout` against the real Docker engine and the real Compose fixture
//! (end2end/fixture), brought up as its own project with
//!
//! ```sh
//! bash scripts/fixture.sh up lookout-test
//! cargo test -p lookout --test engine
//! ```
//!
//! `LOOKOUT_TEST_PROJECT` names another project. Each test starts its own server; tests
//! write exact lines into the fixture's `probe` service and find them by a unique marker,
//! so they run in parallel. Without an engine or the fixture they fail and say what to run.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use app::protocol::{
    ContainerInfo, ContainerState, EngineStatus, ErrorCode, Health, Level, LifecycleEvent, LogLine,
    ProjectInfo, Replica, ServerMessage, ServiceInfo, ServiceState, Stream,
};
use serde_json::Value;

use common::{
    assert_text, container_ids, docker_ok, marker, now_ns, require_fixture, EngineRecorder, Fd,
    Probe, Server, TempContainer, TempProject, Ws, WAIT,
};

const SECOND: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// Engine and discovery

#[tokio::test]
async fn healthz_reports_the_engine_reachable_with_its_api_version() {
    let server = Server::start().await;
    let api = docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]).await;
    let version = docker_ok(&["version", "--format", "{{.Server.Version}}"]).await;

    let (status, body) = server.get("/healthz", &[]).await;
    assert_eq!(status, 200, "/healthz: {body}");
    let health: Value = serde_json::from_str(&body).expect("/healthz answers JSON");
    assert_eq!(health["status"], "ok", "/healthz: {body}");
    // Anyone may ask /healthz: it says no more than this.
    assert_eq!(
        health["engine"],
        serde_json::json!({"reachable": true, "api_version": api.trim()}),
        "/healthz: {body}"
    );

    // The WebSocket's `hello` tells a signed-in viewer that and the engine's version.
    let ws = server.ws().await;
    assert_eq!(
        ws.engine,
        EngineStatus {
            name: "local".into(),
            reachable: true,
            api_version: Some(api.trim().to_owned()),
            engine_version: Some(version.trim().to_owned()),
            error: None,
        },
    );
}

#[tokio::test]
async fn without_an_engine_it_starts_says_so_everywhere_and_keeps_trying() {
    // An engine socket that is not there yet.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(marker("no-engine"));
    std::fs::create_dir_all(&dir).expect("a folder for the engine's socket");
    let socket = dir.join("docker.sock");
    let host = format!("unix://{}", socket.display());
    let mut server = common::Logging::start(
        &["--listen", "127.0.0.1:0"],
        &[("DOCKER_HOST", &host), ("LOOKOUT_LOG", "warn")],
    )
    .await;
    let port = server.port;

    // Its log says the engine is unreachable, and where it looked.
    let said = tokio::time::timeout(WAIT, async {
        while let Some(l) = server.log.next_line().await.expect("read lookout's log") {
            if l.contains("unreachable") {
                return l;
            }
        }
        panic!("lookout ended without saying the engine is unreachable")
    })
    .await
    .expect("its log says the engine is unreachable within 10 s");
    assert!(
        said.contains(&socket.display().to_string()),
        "the log names the socket it tried, {}: {said}",
        socket.display()
    );

    let health = |body: String| -> Value {
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/healthz: {e}: {body}"))
    };
    let healthz = || async {
        let resp = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .expect("/healthz answers");
        assert_eq!(resp.status(), 200);
        health(resp.text().await.expect("a body"))
    };
    let h = healthz().await;
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["engine"]["reachable"], false, "{h}");
    assert!(
        h["engine"].get("error").is_none(),
        "why is for the log and the viewers, not for anyone: {h}"
    );

    let mut ws = common::Ws::connect(port, "any").await;
    assert!(
        !ws.engine.reachable && ws.engine.error.as_ref().is_some_and(|e| !e.is_empty()),
        "`hello` tells the viewer why: {:?}",
        ws.engine
    );

    // It keeps trying: once an engine answers on that socket, it is reachable, on /healthz and
    // to the viewer already connected, without a restart.
    let _engine = common::EngineRecorder::start_at(&socket).await;
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        let h = healthz().await;
        if h["engine"]["reachable"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "30 s after the engine appeared, /healthz still says {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.recv_within(left).await {
            Some(ServerMessage::Engine { engine }) if engine.reachable => break,
            Some(_) => continue,
            None => panic!("the viewer was not told the engine is reachable within 10 s"),
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

const INSPECT: &str = "{{.Id}}|{{.State.Status}}|{{.State.ExitCode}}|\
    {{index .Config.Labels \"com.docker.compose.service\"}}|\
    {{index .Config.Labels \"com.docker.compose.container-number\"}}|{{.Name}}|\
    {{index .Config.Labels \"com.docker.compose.oneoff\"}}|\
    {{with index .State \"Health\"}}{{.Status}}{{end}}";

/// What the engine says of the project, through the `docker` CLI: each service's containers,
/// by replica number.
async fn engine_view(project: &str) -> BTreeMap<String, Vec<ContainerInfo>> {
    let ids = container_ids(project, None).await;
    let mut args = vec!["inspect", "--format", INSPECT];
    args.extend(ids.iter().map(String::as_str));
    let mut services: BTreeMap<String, Vec<ContainerInfo>> = BTreeMap::new();
    for row in docker_ok(&args).await.lines().filter(|r| !r.is_empty()) {
        let fields: Vec<&str> = row.split('|').collect();
        let [id, status, exit, service, number, name, oneoff, health] = fields[..] else {
            panic!("unexpected `docker inspect` output {row:?}");
        };
        if oneoff.eq_ignore_ascii_case("true") {
            continue; // `docker-compose run` tasks are not replicas
        }
        let state: ContainerState = serde_json::from_value(Value::String(status.to_owned()))
            .unwrap_or_else(|e| panic!("unknown container state {status:?}: {e}"));
        let stopped = matches!(
            state,
            ContainerState::Exited | ContainerState::Restarting | ContainerState::Dead
        );
        services
            .entry(service.to_owned())
            .or_default()
            .push(ContainerInfo {
                id: id.to_owned(),
                replica: Replica {
                    number: number.parse().expect("a container number"),
                    name: name.trim_start_matches('/').to_owned(),
                },
                state,
                exit_code: stopped.then(|| exit.parse().expect("an exit code")),
                // The engine keeps the last verdict of a stopped container; it counts only
                // while the container runs.
                health: (state == ContainerState::Running && !health.is_empty()).then(|| {
                    serde_json::from_value(Value::String(health.to_owned()))
                        .unwrap_or_else(|e| panic!("unknown health {health:?}: {e}"))
                }),
                node: None,
                task: None,
            });
    }
    for containers in services.values_mut() {
        containers.sort_by_key(|c| c.replica.number);
    }
    services
}

/// The state a fixture's service must be shown in, given what `docker inspect` says of its
/// containers: `crash` fails with exit code 3 and is restarted (restart: always), `oneshot`
/// exits with 7 and stays down, every other service runs all its replicas.
fn fixture_state(service: &str, containers: &[ContainerInfo]) -> ServiceState {
    let states: Vec<ContainerState> = containers.iter().map(|c| c.state).collect();
    let exits: Vec<Option<i64>> = containers.iter().map(|c| c.exit_code).collect();
    match (service, states.as_slice(), exits.as_slice()) {
        ("crash", [ContainerState::Restarting], [Some(3)]) => {
            ServiceState::Restarting { exit_code: Some(3) }
        }
        // Between its exit and the engine's restart.
        ("crash", [ContainerState::Exited], [Some(3)]) => {
            ServiceState::Exited { exit_code: Some(3) }
        }
        ("oneshot", [ContainerState::Exited], [Some(7)]) => {
            ServiceState::Exited { exit_code: Some(7) }
        }
        (_, states, _) if states.iter().all(|s| *s == ContainerState::Running) => {
            ServiceState::Running {
                running: states.len() as u32,
            }
        }
        _ => panic!(
            "the engine says the fixture's {service} is {states:?} with exit codes {exits:?}: \
             bring the fixture up again (`bash scripts/fixture.sh up {}`)",
            common::project()
        ),
    }
}

#[tokio::test]
async fn projects_lists_the_fixture_services_as_the_engine_sees_them() {
    let server = Server::start().await;
    let project = server.project.clone();

    // `crash` restarts every 11 s: compare with the engine when it held still around the call.
    let mut attempts = 0;
    let services = loop {
        attempts += 1;
        let before = engine_view(&project).await;
        let projects = server.projects().await;
        let after = engine_view(&project).await;
        if before != after {
            assert!(
                attempts < 5,
                "the project kept changing: {before:?} / {after:?}"
            );
            continue;
        }
        let names: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [project.as_str()],
            "--project {project} lists other projects"
        );
        // Each service's state from what the engine says of its containers and what the
        // fixture's scripts do, not from the product's own summing up.
        let expected: Vec<ServiceInfo> = before
            .into_iter()
            .map(|(service, containers)| ServiceInfo {
                engine: "local".into(),
                project: project.clone(),
                state: fixture_state(&service, &containers),
                replicas: containers.len() as u32,
                desired: None,
                service,
                containers,
            })
            .collect();
        let services = projects.into_iter().next().expect("one project").services;
        assert_eq!(
            services, expected,
            "/api/projects disagrees with `docker inspect`"
        );
        break services;
    };

    let names: Vec<&str> = services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(
        names,
        ["apps", "crash", "fast", "json", "oneshot", "probe", "traces", "tty", "web"],
        "the fixture's services, sorted by name"
    );
    let service = |name: &str| {
        services
            .iter()
            .find(|s| s.service == name)
            .expect("listed above")
    };

    let web = service("web");
    assert_eq!(web.replicas, 2);
    assert_eq!(web.state, ServiceState::Running { running: 2 });
    let numbers: Vec<u32> = web.containers.iter().map(|c| c.replica.number).collect();
    assert_eq!(numbers, [1, 2]);
    assert!(
        web.containers
            .iter()
            .all(|c| c.state == ContainerState::Running && c.exit_code.is_none()),
        "both web replicas run: {:?}",
        web.containers
    );

    let oneshot = service("oneshot");
    assert_eq!(oneshot.state, ServiceState::Exited { exit_code: Some(7) });
    assert_eq!(oneshot.replicas, 1);
    assert_eq!(oneshot.containers[0].state, ContainerState::Exited);
    assert_eq!(oneshot.containers[0].exit_code, Some(7));

    for name in ["apps", "fast", "json", "probe", "traces", "tty"] {
        assert_eq!(
            service(name).state,
            ServiceState::Running { running: 1 },
            "{name}"
        );
    }

    // The WebSocket's `services` lists the same services (once the server has listed them).
    let mut ws = server.ws().await;
    let deadline = Instant::now() + WAIT;
    let mut listed = ws.projects.clone();
    while !listed.iter().any(|p| p.name == project) {
        match ws
            .recv_within(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Some(ServerMessage::Services { projects }) => listed = projects,
            Some(_) => {}
            None => panic!("no `services` message lists {project} within 10 s: {listed:?}"),
        }
    }
    let ws_names: Vec<&str> = listed
        .iter()
        .filter(|p| p.name == project)
        .flat_map(|p| &p.services)
        .map(|s| s.service.as_str())
        .collect();
    assert_eq!(ws_names, names, "`services` and /api/projects disagree");
}

#[tokio::test]
async fn a_crash_looping_service_is_restarting_with_the_exit_code_the_engine_holds() {
    // It fails at once, so the engine waits longer and longer before each restart.
    let yaml = r#"version: "2.4"
services:
  looping:
    image: lookout-fixture:latest
    network_mode: none
    restart: always
    command: ["/bin/sh", "-c", "echo going down; exit 5"]
"#;
    let project = TempProject::from_yaml("restarting", yaml, &["looping"]).await;
    let id = project.id("looping").await;
    let server = Server::start_for(&project.name, &[]).await;
    let engine_says = || async {
        docker_ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
            &id,
        ])
        .await
        .trim()
        .to_owned()
    };
    // Compared when the engine said "restarting" just before and just after the listing,
    // with no start in between (the same restart count).
    let deadline = Instant::now() + 3 * WAIT;
    let shown = loop {
        let before = engine_says().await;
        let listed = server.projects().await;
        let after = engine_says().await;
        if before.starts_with("restarting 5 ") && after == before {
            break listed;
        }
        assert!(
            Instant::now() < deadline,
            "the engine never held `looping` restarting for a moment in 30 s: {before} / {after}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let looping = shown
        .iter()
        .flat_map(|p| &p.services)
        .find(|s| s.service == "looping")
        .unwrap_or_else(|| panic!("looping is not listed: {shown:?}"));
    assert_eq!(
        looping.state,
        ServiceState::Restarting { exit_code: Some(5) },
        "the engine says restarting after exit code 5"
    );
    assert_eq!(looping.containers[0].state, ContainerState::Restarting);
    assert_eq!(looping.containers[0].exit_code, Some(5));
}

/// Reads `services` messages until `web` of `project` satisfies `done` (within 10 s).
async fn wait_for_web(ws: &mut Ws, project: &str, what: &str, done: impl Fn(&ServiceInfo) -> bool) {
    let deadline = Instant::now() + WAIT;
    let web = |projects: &[ProjectInfo]| {
        projects
            .iter()
            .filter(|p| p.name == project)
            .flat_map(|p| &p.services)
            .find(|s| s.service == "web")
            .cloned()
    };
    let mut last = web(&ws.projects);
    while !last.as_ref().is_some_and(&done) {
        match ws
            .recv_within(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Some(ServerMessage::Services { projects }) => last = web(&projects),
            Some(_) => {}
            None => panic!("{what}: not told within 10 s; web is {last:#?}"),
        }
    }
}

/// Makes a `web` replica pass its health check again when dropped, even by a failing test:
/// other tests read `web`.
struct Heal(String);

impl Drop for Heal {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["exec", &self.0, "rm", "-f", "/tmp/unhealthy"])
            .status();
    }
}

// The fixture's `web` has a health check that fails once /tmp/unhealthy exists.
#[tokio::test]
async fn health_check_verdicts_are_pushed_to_clients() {
    let project = require_fixture().await;
    let server = Server::start_for(&project, &[]).await;
    let mut ws = server.ws().await;
    let ids = container_ids(&project, Some("web")).await;
    let sick = &ids[0];
    let health_of = |web: &ServiceInfo, id: &str| {
        web.containers
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.health)
    };
    wait_for_web(&mut ws, &project, "both replicas healthy", |web| {
        ids.iter()
            .all(|id| health_of(web, id) == Some(Health::Healthy))
    })
    .await;

    docker_ok(&["exec", sick, "touch", "/tmp/unhealthy"]).await;
    let healed = Heal(sick.clone());
    wait_for_web(&mut ws, &project, "one replica unhealthy", |web| {
        health_of(web, sick) == Some(Health::Unhealthy)
            && health_of(web, &ids[1]) == Some(Health::Healthy)
            && web.health() == Some(Health::Unhealthy)
    })
    .await;
    drop(healed);
    wait_for_web(&mut ws, &project, "healthy again", |web| {
        web.health() == Some(Health::Healthy)
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Tails

#[tokio::test]
async fn a_tail_of_n_gives_exactly_n_lines() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;

    // web writes two lines a second per replica; a fixture brought up a moment ago may not
    // have five yet.
    let deadline = Instant::now() + WAIT;
    while server.tail("web", &[("tail", "10000")]).await.len() < 6 {
        assert!(
            Instant::now() < deadline,
            "web wrote fewer than 6 lines in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let five = server.tail("web", &[("tail", "5")]).await;
    assert_eq!(five.len(), 5, "/api/tail?tail=5 on web: {five:?}");
    assert_eq!(server.tail("web", &[("tail", "0")]).await, []);

    let mut ws = server.ws().await;
    ws.subscribe("web", 5).await;
    ws.expect_subscribed("web").await;
    // The backlog comes right after `subscribed`, before any live line and in its own message.
    let backlog = ws.next_lines("web").await;
    assert_eq!(backlog.len(), 5, "the backlog of a tail of 5: {backlog:?}");
    assert!(
        backlog.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "the backlog is in order: {backlog:?}"
    );

    // The probe writes nothing by itself: while nobody else writes to it, the tails over
    // HTTP and over the WebSocket are the same five lines, the last five written.
    let m = marker("tail");
    let probe = probe.lock().await;
    probe
        .printf(
            Fd::Stdout,
            "tail %s 1\ntail %s 2\ntail %s 3\ntail %s 4\ntail %s 5\ntail %s 6\n",
            &[&m, &m, &m, &m, &m, &m],
        )
        .await;
    let deadline = Instant::now() + WAIT;
    let api = loop {
        let api = server.tail("probe", &[("tail", "5")]).await;
        if api.last().is_some_and(|l| l.text == format!("tail {m} 6")) {
            break api;
        }
        assert!(
            Instant::now() < deadline,
            "the probe's lines do not show: {api:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let texts: Vec<&str> = api.iter().map(|l| l.text.as_str()).collect();
    let expected: Vec<String> = (2..=6).map(|i| format!("tail {m} {i}")).collect();
    assert_eq!(texts, expected, "/api/tail?tail=5 on probe");

    ws.subscribe("probe", 5).await;
    ws.expect_subscribed("probe").await;
    let backlog = ws.next_lines("probe").await;
    assert_eq!(
        backlog, api,
        "the WebSocket's tail of 5 and /api/tail?tail=5 differ"
    );

    // A tail of 0: nothing until something is written, then just that.
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    if let Some(msg) = ws.reply_within(SECOND).await {
        panic!("a tail of 0 sent {msg:?}");
    }
    probe.printf(Fd::Stdout, "after %s\n", &[&m]).await;
    let lines = ws.next_lines("probe").await;
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, [format!("after {m}")], "a tail of 0 then one line");
}

// Lines state their level in a JSON field, as a logfmt key or at their start: each line
// comes with it, live and from history; a line that only mentions a level has none.
/// The fixture's `apps` service writes lines as logrus, zap, pino, bunyan, Python's
/// logging, slog and glog write them; each names in `want` the level to find.
#[tokio::test]
async fn the_levels_of_real_libraries_lines_are_found() {
    let server = Server::start().await;
    let deadline = Instant::now() + WAIT;
    let lines = loop {
        let lines = server.tail("apps", &[("tail", "10")]).await;
        if lines.len() == 10 {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "apps wrote {} lines",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for line in &lines {
        let want: String = line
            .text
            .split("want")
            .nth(1)
            .unwrap_or_default()
            .trim_start_matches(|c: char| !c.is_ascii_alphabetic())
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        assert_eq!(
            line.level.map(Level::as_str),
            Some(want.as_str()),
            "{}",
            line.text
        );
    }
}

#[tokio::test]
async fn each_line_carries_the_level_it_states() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;
    let m = marker("level");
    let written = [
        (
            format!(r#"{{"level":"warn","msg":"{m} as JSON"}}"#),
            Some(Level::Warn),
        ),
        (format!("ERROR: {m} at the start"), Some(Level::Error)),
        (
            format!("ts=now level=debug msg={m}-logfmt"),
            Some(Level::Debug),
        ),
        (format!("{m} an error in the middle"), None),
    ];
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let texts: Vec<&str> = written.iter().map(|(t, _)| t.as_str()).collect();
    probe.printf(Fd::Stdout, "%s\n%s\n%s\n%s\n", &texts).await;
    let mine = |lines: Vec<LogLine>| -> Vec<(String, Option<Level>)> {
        lines
            .into_iter()
            .filter(|l| l.text.contains(&m))
            .map(|l| (l.text, l.level))
            .collect()
    };
    let live = ws
        .wait_lines("probe", |all| {
            all.iter().filter(|l| l.text.contains(&m)).count() >= 4
        })
        .await;
    // History is read from the first of them on: the newest lines of the probe, which other
    // tests write into meanwhile, may be others'.
    let since = live
        .iter()
        .filter(|l| l.text.contains(&m))
        .map(|l| l.cursor.ts_ns)
        .min()
        .map(app::export::rfc3339)
        .expect("the lines came");
    assert_eq!(mine(live), written, "live");
    let deadline = Instant::now() + WAIT;
    loop {
        let q = [
            ("project", server.project.as_str()),
            ("service", "probe"),
            ("since", since.as_str()),
            ("limit", "100"),
        ];
        let page: app::history::HistoryPage = server.get_json("/api/history", &q).await;
        let kept = mine(page.lines);
        if kept.len() >= 4 {
            assert_eq!(kept, written, "from history");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "history did not keep them: {kept:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Following

#[tokio::test]
async fn a_new_line_is_delivered_within_a_second() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;

    let m = marker("follow");
    let expected = format!("follow {m}");
    let started = Instant::now();
    // Read while `docker exec` runs: its teardown after the write can take a second of its
    // own on a busy machine, and a line read only after it would count that.
    let (written, (line, arrived)) = tokio::join!(
        async {
            probe.printf(Fd::Stdout, "follow %s\n", &[&m]).await;
            Instant::now()
        },
        ws.wait_line("probe", |l| l.text == expected)
    );
    let arrived_ns = now_ns() - arrived.elapsed().as_nanos() as i64;

    // The write is over when `docker exec` returns; the engine stamps the line when it reads it.
    let after_write = arrived.saturating_duration_since(written);
    let after_engine = Duration::from_nanos(arrived_ns.saturating_sub(line.cursor.ts_ns) as u64);
    assert!(
        after_write < SECOND && after_engine < SECOND,
        "the line came {after_write:?} after it was written ({after_engine:?} after the \
         engine's timestamp; `docker exec` took {:?}); the limit is 1 s",
        written - started
    );
    assert_eq!(line.stream, Stream::Stdout);
    assert_eq!(line.replica.number, 1);
}

/// An engine's follow stream can stop while the container writes on (Docker's json-file reader
/// missing a rotation): the recording proxy stalls the probe's stream as that does. Lookout
/// finds the engine holding lines the stream has not sent, opens the stream again, and the
/// viewer gets those lines, each once.
#[tokio::test]
async fn a_follow_stream_that_stalls_is_opened_again_and_loses_nothing() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let before = marker("before the stall");
    probe.printf(Fd::Stdout, "%s\n", &[&before]).await;
    ws.wait_line("probe", |l| l.text == before).await;

    let logs = format!("/containers/{}/logs?", probe.id);
    let follows = |r: &str| r.contains(&logs) && r.contains("follow=true");
    let before_stall = server.engine_calls.requests().len();
    assert_eq!(server.engine_calls.stall_open(follows), 1);
    // Found within about 3 s of the stall.
    let texts = two_lines_come_once(&mut ws, &probe, "the stall").await;
    assert!(!texts.contains(&before), "{texts:?}");
    // Other containers of the fixture may have stalled too, as the engine does.
    assert!(server.metric("lookout_follow_stalls_total").await >= 1.0);
    let opened = server.engine_calls.followed_logs();
    assert!(
        opened.iter().filter(|id| **id == probe.id).count() >= 2,
        "{opened:?}"
    );
    // Opened again from its last lines, which reach back to the lines delivered: the engine
    // is not made to read the probe's whole log (`hub/reopen.rs`).
    let reopened: Vec<String> = server.engine_calls.requests()[before_stall..]
        .iter()
        .filter(|r| follows(r))
        .cloned()
        .collect();
    assert!(
        !reopened.is_empty() && reopened.iter().all(|r| !r.contains("tail=all")),
        "{reopened:?}"
    );
}

/// An engine's follow stream can hand out, for seconds on end, lines it sent already (Docker's
/// json-file reader re-reading a rotated file), while the new lines wait behind them: the
/// recording proxy replays the probe's stream so, endlessly. Lookout takes a stream that sends
/// only lines it delivered for a silent one: it finds the engine holding newer lines, opens
/// the stream again, and the viewer gets the new lines, each once, and no line twice.
#[tokio::test]
async fn a_follow_stream_that_sends_only_lines_delivered_is_opened_again() {
    let project = require_fixture().await;
    let probe = Probe::find(&project).await;
    let logs = format!("/containers/{}/logs?", probe.id);
    let follows = move |r: &str| r.contains(&logs) && r.contains("follow=true");
    let recorder = EngineRecorder::start().await;
    recorder.replayable(follows.clone());
    let server = Server::start_through(recorder, Some(&project), &[], &[]).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    // 100 KiB first: a busy stream, which is asked about after a quarter second's silence
    // (a quiet one after up to a minute's).
    let burst = marker("before the replay");
    let last = format!("{burst} 999");
    let guard = probe.lock().await;
    let script = "i=0; while [ $i -lt 1000 ]; do printf '%s %d %0100d\\n' \"$1\" $i 0; \
                  i=$((i+1)); done > /proc/1/fd/1";
    guard.sh(script, &[&burst]).await;
    drop(guard);
    let delivered = ws
        .wait_lines("probe", |ls| ls.iter().any(|l| l.text.starts_with(&last)))
        .await;
    assert_eq!(
        delivered
            .iter()
            .filter(|l| l.text.starts_with(&burst))
            .count(),
        1000
    );

    let before_replay = server.engine_calls.requests().len();
    assert_eq!(server.engine_calls.replay_open(follows.clone()), 1);
    let texts = two_lines_come_once(&mut ws, &probe, "the replay").await;
    assert!(!texts.iter().any(|t| t.starts_with(&burst)), "{texts:?}");
    // Lookout dropped the replaying stream (the proxy did not end it), and opened it again
    // once: its catch-up was not taken for another stall.
    assert_eq!(server.engine_calls.replays_dropped(), 1);
    let reopened = server.engine_calls.requests()[before_replay..]
        .iter()
        .filter(|r| follows(r))
        .count();
    assert!((1..=2).contains(&reopened), "opened again {reopened} times");
}

/// Writes two lines to the probe after its follow stream was made to misbehave (`what`) and
/// waits for them: up to 75 s, as the asks may have grown to one a minute if the probe was
/// quiet long enough before. Returns what came until 2 s after them, each of the two in it once.
async fn two_lines_come_once(ws: &mut Ws, probe: &Probe, what: &str) -> Vec<String> {
    let after = [
        marker(&format!("after {what}")),
        marker(&format!("after {what}")),
    ];
    probe
        .printf(Fd::Stdout, "%s\n%s\n", &[&after[0], &after[1]])
        .await;
    let deadline = Instant::now() + Duration::from_secs(75);
    let mut texts: Vec<String> = Vec::new();
    while !after.iter().all(|a| texts.contains(a)) {
        let Some((lines, _)) = ws.try_next_lines("probe", deadline).await else {
            panic!("the lines written after {what} did not come within 75 s: {texts:?}");
        };
        texts.extend(lines.into_iter().map(|l| l.text));
    }
    let more = ws.lines_during("probe", 2 * SECOND).await;
    texts.extend(more.into_iter().map(|l| l.text));
    for a in &after {
        assert_eq!(texts.iter().filter(|t| *t == a).count(), 1, "{texts:?}");
    }
    texts
}

#[tokio::test]
async fn stderr_is_kept_apart_from_stdout() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;

    let m = marker("streams");
    let (out, err) = (format!("out {m}"), format!("err {m}"));
    probe
        .lock()
        .await
        .sh(
            "printf 'out %s\\n' \"$1\" > /proc/1/fd/1; printf 'err %s\\n' \"$1\" > /proc/1/fd/2",
            &[&m],
        )
        .await;
    let lines = ws
        .wait_lines("probe", |all| {
            all.iter().any(|l| l.text == out) && all.iter().any(|l| l.text == err)
        })
        .await;
    for line in lines.iter().filter(|l| l.text.ends_with(&m)) {
        let expected = if line.text == out {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        assert_eq!(line.stream, expected, "{line:?}");
    }
    assert_eq!(lines.iter().filter(|l| l.text.ends_with(&m)).count(), 2);

    let texts = |lines: &[LogLine]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.text.ends_with(&m))
            .map(|l| l.text.clone())
            .collect()
    };
    let only_err = server
        .tail("probe", &[("tail", "10000"), ("streams", "stderr")])
        .await;
    assert!(
        only_err.iter().all(|l| l.stream == Stream::Stderr),
        "{only_err:?}"
    );
    assert_eq!(texts(&only_err), [err.as_str()], "streams=stderr");
    let only_out = server
        .tail("probe", &[("tail", "10000"), ("streams", "stdout")])
        .await;
    assert!(
        only_out.iter().all(|l| l.stream == Stream::Stdout),
        "{only_out:?}"
    );
    assert_eq!(texts(&only_out), [out.as_str()], "streams=stdout");
    // Both, in the engine's time order, which need not be the order of the writes: the engine
    // stamps each output as it reads it.
    let both = server
        .tail("probe", &[("tail", "10000"), ("streams", "both")])
        .await;
    let mut both = texts(&both);
    both.sort();
    assert_eq!(both, [err, out], "streams=both");

    // web names the output in each line it writes.
    let web = server.tail("web", &[("tail", "50")]).await;
    assert!(!web.is_empty());
    for line in &web {
        let (_, stream, _) = web_line(line);
        let expected = if stream == "stdout" {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        assert_eq!(line.stream, expected, "{line:?}");
    }
    let web_err = server
        .tail("web", &[("tail", "50"), ("streams", "stderr")])
        .await;
    assert_eq!(web_err.len(), 50);
    assert!(
        web_err
            .iter()
            .all(|l| web_line(l).1 == "stderr" && l.stream == Stream::Stderr),
        "streams=stderr on web: {web_err:?}"
    );
}

/// A line of web: `web <hostname> <stdout|stderr> line <n>`.
fn web_line(line: &LogLine) -> (&str, &str, u64) {
    match line.text.split(' ').collect::<Vec<_>>()[..] {
        ["web", host, stream @ ("stdout" | "stderr"), "line", n] => {
            (host, stream, n.parse().expect("a line number"))
        }
        _ => panic!("not a line of web: {line:?}"),
    }
}

/// Checks that lines of web are in order within each replica and output, none missing, and
/// attributed to the replica that wrote them (web writes its hostname, the short container id).
fn check_web_lines(lines: &[LogLine], containers: &[ContainerInfo]) {
    let mut last: HashMap<(String, String), u64> = HashMap::new();
    // Positions rise per stream: the engine stamps stdout and stderr apart, and a line of one
    // may reach Lookout after a later-stamped line of the other.
    let mut positions: HashMap<(String, String), (i64, u32)> = HashMap::new();
    for line in lines {
        let (host, stream, n) = web_line(line);
        assert_eq!(host, &*line.cursor.container, "{line:?}");
        let container = containers
            .iter()
            .find(|c| c.id.starts_with(&*line.cursor.container))
            .unwrap_or_else(|| panic!("a line of no container of web: {line:?}"));
        assert_eq!(line.replica, container.replica, "{line:?}");
        if let Some(prev) = last.insert((host.to_owned(), stream.to_owned()), n) {
            assert_eq!(
                n,
                prev + 1,
                "replica {} {stream}: line {n} follows line {prev}",
                line.replica.number
            );
        }
        let key = (host.to_owned(), stream.to_owned());
        if let Some(prev) = positions.insert(key, line.cursor.position()) {
            assert!(
                line.cursor.position() > prev,
                "replica {} {stream}: {line:?} is not after {prev:?}",
                line.replica.number
            );
        }
    }
}

#[tokio::test]
async fn the_two_replicas_of_web_are_merged_in_order() {
    let server = Server::start().await;
    let project = server.project.clone();
    let containers = server
        .projects()
        .await
        .into_iter()
        .filter(|p| p.name == project)
        .flat_map(|p| p.services)
        .find(|s| s.service == "web")
        .expect("web is listed")
        .containers;

    let lines = server.tail("web", &[("tail", "50")]).await;
    assert_eq!(lines.len(), 50);
    let replicas: BTreeSet<u32> = lines.iter().map(|l| l.replica.number).collect();
    assert_eq!(
        replicas,
        BTreeSet::from([1, 2]),
        "both replicas in the tail"
    );
    for pair in lines.windows(2) {
        assert!(
            pair[0].ts <= pair[1].ts && pair[0].cursor.ts_ns <= pair[1].cursor.ts_ns,
            "not in time order: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    check_web_lines(&lines, &containers);

    // Live: the tail, then new lines of both replicas, none missing at the seam.
    let mut ws = server.ws().await;
    ws.subscribe("web", 10).await;
    let containers = ws.expect_subscribed("web").await;
    assert_eq!(containers.len(), 2);
    // The tail comes right after `subscribed`, in a message of its own.
    let mut lines = ws.next_lines("web").await;
    assert_eq!(lines.len(), 10, "a tail of 10: {lines:#?}");
    let live = ws
        .wait_lines("web", |live| {
            [1, 2]
                .iter()
                .all(|n| live.iter().filter(|l| l.replica.number == *n).count() >= 4)
        })
        .await;
    lines.extend(live);
    check_web_lines(&lines, &containers);
}

// ---------------------------------------------------------------------------------------------
// Bad input: a clear error, and nothing changes

#[tokio::test]
async fn an_unknown_service_is_a_clear_error() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;
    let mut ws = server.ws().await;
    let name = marker("no-such-service");

    ws.subscribe(&name, 10).await;
    let (code, message) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::UnknownService, "{message}");
    assert!(
        message.contains(&name),
        "the error names the service: {message}"
    );

    // A project outside --project is unknown too, whatever it holds.
    let other = marker("other-project");
    ws.subscribe_to(&other, "web", 10).await;
    let (code, message) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::UnknownService, "{message}");
    assert!(
        message.contains(&other),
        "the error names the project: {message}"
    );

    // The socket stays open and a valid subscription works.
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let m = marker("known");
    probe.printf(Fd::Stdout, "known %s\n", &[&m]).await;
    ws.wait_line("probe", |l| l.text == format!("known {m}"))
        .await;

    // A failed subscribe leaves the current subscription as it was.
    ws.subscribe(&name, 10).await;
    let (code, _) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::UnknownService);
    let m = marker("still");
    probe.printf(Fd::Stdout, "still %s\n", &[&m]).await;
    ws.wait_line("probe", |l| l.text == format!("still {m}"))
        .await;

    let (status, body) = server
        .get(
            "/api/tail",
            &[
                ("project", &server.project),
                ("service", &name),
                ("tail", "5"),
            ],
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.starts_with("ServerError|"), "{body}");
    assert!(body.contains(&name), "the error names the service: {body}");
}

#[tokio::test]
async fn a_tail_out_of_bounds_is_a_clear_error() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;

    for tail in [-1, 1_000_000_000, 10_001] {
        ws.subscribe("web", tail).await;
        let (code, message) = ws.expect_error().await;
        assert_eq!(code, ErrorCode::BadRequest, "tail {tail}: {message}");
        assert!(
            message.contains("tail must be between 0 and 10000")
                && message.contains(&tail.to_string()),
            "tail {tail}: {message}"
        );
    }
    // Still following the probe, not web.
    let m = marker("bounds");
    probe.printf(Fd::Stdout, "bounds %s\n", &[&m]).await;
    ws.wait_line("probe", |l| l.text == format!("bounds {m}"))
        .await;

    for tail in ["-1", "1000000000", "10001"] {
        let (status, body) = server
            .get(
                "/api/tail",
                &[
                    ("project", &server.project),
                    ("service", "web"),
                    ("tail", tail),
                ],
            )
            .await;
        assert_eq!(status, 400, "tail={tail}: {body}");
        assert!(
            body.contains("tail must be between 0 and 10000"),
            "tail={tail}: {body}"
        );
    }

    // The largest tail is exactly the last 10,000 lines of a log that holds more.
    let numbered = TempProject::numbered("tail-max", 10_050).await;
    let server = Server::start_for(&numbered.name, &[]).await;
    let most = server.tail("numbered", &[("tail", "10000")]).await;
    assert_numbered(&most, 51..=10_050, "a tail of 10000 of 10050 lines");
}

/// Fails unless `lines` are exactly `line <n>` for each n of `expected`, in order.
fn assert_numbered(lines: &[LogLine], expected: std::ops::RangeInclusive<u32>, what: &str) {
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let want: Vec<String> = expected.map(|n| format!("line {n}")).collect();
    if texts != want {
        panic!(
            "{what}: expected {} lines, {:?} to {:?}; got {} lines, {:?} to {:?}",
            want.len(),
            want.first(),
            want.last(),
            texts.len(),
            texts.first(),
            texts.last()
        );
    }
}

#[tokio::test]
async fn the_largest_tail_is_a_setting() {
    // 60 lines, then nothing: a tail of 50 is exactly lines 11 to 60.
    let numbered = TempProject::numbered("tail-setting", 60).await;
    let project = numbered.name.clone();
    let server = Server::start_for(&project, &["--max-tail-lines", "50"]).await;
    let mut ws = server.ws().await;
    ws.subscribe("numbered", 51).await;
    let (code, message) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::BadRequest, "{message}");
    assert!(
        message.contains("between 0 and 50") && message.contains("--max-tail-lines"),
        "{message}"
    );
    ws.subscribe("numbered", 50).await;
    ws.expect_subscribed("numbered").await;
    let came = ws
        .wait_lines("numbered", |all| {
            all.last().is_some_and(|l| l.text == "line 60")
        })
        .await;
    assert_numbered(&came, 11..=60, "the socket's tail of 50");
    let (status, body) = server
        .get(
            "/api/tail",
            &[
                ("project", &project),
                ("service", "numbered"),
                ("tail", "51"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("between 0 and 50"), "{body}");
    let tail = server.tail("numbered", &[("tail", "50")]).await;
    assert_numbered(&tail, 11..=60, "/api/tail's tail of 50");
}

#[tokio::test]
async fn a_malformed_message_is_a_clear_error() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;

    ws.send_text("{not json").await;
    let (code, message) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::BadMessage, "{message}");

    ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        0xff, 0, 1, 2,
    ]))
    .await;
    let (code, message) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::BadMessage, "{message}");

    // The socket still follows the probe.
    let m = marker("malformed");
    probe.printf(Fd::Stdout, "malformed %s\n", &[&m]).await;
    ws.wait_line("probe", |l| l.text == format!("malformed {m}"))
        .await;

    // And takes a new subscription.
    ws.subscribe("web", 1).await;
    ws.expect_subscribed("web").await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_the_socket() {
    let server =
        Server::start_for(&require_fixture().await, &["--max-message-bytes", "1024"]).await;
    let mut ws = server.ws().await;
    ws.subscribe("web", 1).await;
    ws.expect_subscribed("web").await;
    let big = serde_json::json!({
        "type": "subscribe",
        "project": server.project,
        "service": "x".repeat(2000),
    });
    ws.send_text(&big.to_string()).await;
    ws.expect_closed().await;
    // The server goes on serving others.
    let mut other = server.ws().await;
    other.subscribe("web", 1).await;
    other.expect_subscribed("web").await;
}

// docs/PROTOCOL.md: "A failure has status 400 (bad input)", also for a tail that is not a
// number; no tail means the default of 100.
#[tokio::test]
async fn a_tail_that_is_not_a_number_is_a_bad_request() {
    let server = Server::start().await;
    for tail in ["abc", "1.5", "-"] {
        let query = [
            ("project", server.project.as_str()),
            ("service", "web"),
            ("tail", tail),
        ];
        let (status, body) = server.get("/api/tail", &query).await;
        assert_eq!(status, 400, "tail {tail:?}: {body}");
        assert!(
            body.starts_with("ServerError|tail must be a whole number"),
            "tail {tail:?}: {body}"
        );
    }
    let (status, body) = server
        .get(
            "/api/tail",
            &[("project", server.project.as_str()), ("service", "web")],
        )
        .await;
    assert_eq!(status, 200, "no tail: {body}");
    let lines: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(lines.len(), 100, "no tail means the default tail of 100");
}

// `bad_message` is for what is not a known message at all; `bad_request` for a known message
// with a field out of bounds.
#[tokio::test]
async fn an_unknown_message_type_is_a_bad_message() {
    let server = Server::start().await;
    let mut ws = server.ws().await;
    for text in [r#"{"type":"nope"}"#, "42", "[]"] {
        ws.send_text(text).await;
        let (code, message) = ws.expect_error().await;
        assert_eq!(code, ErrorCode::BadMessage, "{text}: {message}");
    }
}

#[tokio::test]
async fn bytes_that_are_not_utf8_become_replacement_characters() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;

    let m = marker("utf8");
    probe
        .printf(Fd::Stdout, "bad \\377\\376 bytes %s\n", &[&m])
        .await;
    let expected = format!("bad \u{FFFD}\u{FFFD} bytes {m}");
    let (line, _) = ws.wait_line("probe", |l| l.text.ends_with(&m)).await;
    assert_eq!(line.text, expected);

    let tail = server.tail("probe", &[("tail", "10000")]).await;
    let found: Vec<&str> = tail
        .iter()
        .filter(|l| l.text.ends_with(&m))
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(found, [expected.as_str()], "/api/tail");
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

/// Whether a line looks like one `service` of the fixture writes.
fn written_by(service: &str, line: &LogLine) -> bool {
    match service {
        "fast" => line.text.starts_with("fast line "),
        "json" => line.text.starts_with("{\"level\":"),
        "web" => line.text.starts_with("web "),
        _ => unreachable!("{service}"),
    }
}

#[tokio::test]
async fn a_new_subscription_replaces_the_old_one_at_once() {
    let server = Server::start().await;
    let mut ws = server.ws().await;

    // Quick changes: every `lines` message belongs to the last `subscribed` before it.
    let plan = ["fast", "json", "web", "json"];
    for service in plan {
        ws.subscribe(service, 5).await;
    }
    let mut current: Option<String> = None;
    let mut done = 0;
    let mut json_lines = 0;
    let mut end = Instant::now() + WAIT;
    while let Some(msg) = ws
        .reply_within(end.saturating_duration_since(Instant::now()))
        .await
    {
        match msg {
            ServerMessage::Subscribed { service, .. } => {
                assert_eq!(service, plan[done], "`subscribed` in the order asked");
                done += 1;
                current = Some(service);
                if done == plan.len() {
                    end = Instant::now() + WAIT;
                }
            }
            ServerMessage::Lines { service, lines, .. } => {
                assert_eq!(
                    Some(&service),
                    current.as_ref(),
                    "lines of {service} after `subscribed` to {current:?}"
                );
                for line in &lines {
                    assert!(written_by(&service, line), "{service}: {line:?}");
                }
                if done == plan.len() {
                    json_lines += lines.len();
                }
                // Its tail came: half a second more for a line of another service.
                if json_lines >= 5 {
                    end = end.min(Instant::now() + SECOND / 2);
                }
            }
            ServerMessage::Dropped { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(done, plan.len(), "every subscribe answered within 10 s");
    assert!(json_lines >= 5, "json's tail of 5 came");

    // Changing while web's live lines flow.
    ws.subscribe("web", 0).await;
    ws.expect_subscribed("web").await;
    ws.wait_line("web", |_| true).await;
    ws.subscribe("json", 0).await;
    ws.expect_subscribed("json").await;
    // json writes a line a second.
    let lines = ws.wait_lines("json", |all| !all.is_empty()).await;
    for line in &lines {
        assert!(written_by("json", line), "{line:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Line endings and long lines

#[tokio::test]
async fn tty_lines_arrive_without_carriage_returns() {
    let server = Server::start().await;
    let mut ws = server.ws().await;
    ws.subscribe("tty", 3).await;
    ws.expect_subscribed("tty").await;
    let mut lines = ws.wait_lines("tty", |all| all.len() >= 4).await;
    lines.extend(server.tail("tty", &[("tail", "3")]).await);

    let prefix = "\u{1b}[32mtty\u{1b}[0m line ";
    for line in &lines {
        assert_eq!(line.stream, Stream::Stdout, "{line:?}");
        let n: u64 = line
            .text
            .strip_prefix(prefix)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a line of tty: {line:?}"));
        assert_eq!(
            line.text,
            format!("{prefix}{n} \u{1b}[1;31mred\u{1b}[0m"),
            "the line as written, ANSI codes kept and no \\r"
        );
    }
}

/// Starts, in a Compose project of its own, a container of the fixture's image (never pulled)
/// that runs `script` with `$1` set to `arg`; it is removed when the result is dropped.
async fn temp_service(project: &str, service: &str, script: &str, arg: &str) -> TempContainer {
    let id = docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--label",
        &format!("com.docker.compose.project={project}"),
        "--label",
        &format!("com.docker.compose.service={service}"),
        "--label",
        "com.docker.compose.container-number=1",
        "lookout-fixture:latest",
        "/bin/sh",
        "-c",
        script,
        "sh",
        arg,
    ])
    .await;
    TempContainer(id.trim().to_owned())
}

#[tokio::test]
async fn a_line_without_newline_is_delivered_whole() {
    let project = require_fixture().await;
    let server = Server::start_for(&project, &[]).await;
    let probe = Probe::find(&project).await;

    // While a container runs, the engine holds a line until its newline comes.
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let m = marker("partial");
    probe
        .lock()
        .await
        .sh(
            "printf 'partial %s' \"$1\" > /proc/1/fd/1; sleep 0.3; printf ' end\\n' > /proc/1/fd/1",
            &[&m],
        )
        .await;
    let (line, _) = ws.wait_line("probe", |l| l.text.contains(&m)).await;
    assert_eq!(line.text, format!("partial {m} end"));

    // The last line of a container that exited without writing a newline.
    let temp_project = marker(&format!("{project}-lastline"));
    let container = temp_service(
        &temp_project,
        "lastline",
        "printf 'first %s\\n' \"$1\"; printf 'no newline %s' \"$1\"",
        &m,
    )
    .await;
    docker_ok(&["wait", &container.0]).await;
    let lastline = Server::start_for(&temp_project, &[]).await;
    let expected = [format!("first {m}"), format!("no newline {m}")];

    let tail = lastline.tail("lastline", &[("tail", "100")]).await;
    let texts: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, expected, "/api/tail of the exited container");

    let mut ws = lastline.ws().await;
    ws.subscribe("lastline", 100).await;
    ws.expect_subscribed("lastline").await;
    // Read until its two lines and two markers came, then half a second more for an extra.
    let (mut lines, mut markers) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + WAIT;
    while (lines.len() < 2 || markers.len() < 2) && Instant::now() < deadline {
        let (more, changes) = ws.timeline_during("lastline", SECOND / 5).await;
        lines.extend(more);
        markers.extend(changes);
    }
    let (more, changes) = ws.timeline_during("lastline", SECOND / 2).await;
    lines.extend(more);
    markers.extend(changes);
    // The tail is its whole log: its start and its exit are part of it.
    let events: Vec<_> = markers.iter().map(|m| &m.event).collect();
    assert_eq!(
        events,
        [
            &LifecycleEvent::Started,
            &LifecycleEvent::Exited { exit_code: Some(0) }
        ],
        "the tail of an exited container shows its start and exit"
    );
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts, expected,
        "the WebSocket's tail: each line once, the last one whole"
    );
}

// The engine (20.10, json-file) often ends a follow stream without its last entry when that
// entry is a line without newline written as the container exits; the follower reads once more
// without follow when a stream ends, so a live viewer still gets it.
#[tokio::test]
async fn a_line_without_newline_is_delivered_live_when_the_container_exits() {
    let project = require_fixture().await;
    for _ in 0..5 {
        let m = marker("exits");
        let temp_project = marker(&format!("{project}-exits"));
        let _container = temp_service(
            &temp_project,
            "exits",
            "sleep 2; printf 'first %s\\n' \"$1\"; printf 'no newline %s' \"$1\"",
            &m,
        )
        .await;
        let server = Server::start_for(&temp_project, &[]).await;
        let mut ws = server.ws().await;
        ws.subscribe("exits", 100).await;
        ws.expect_subscribed("exits").await;
        let expected = [format!("first {m}"), format!("no newline {m}")];
        let mut lines = ws
            .wait_lines("exits", |all| all.iter().any(|l| l.text == expected[1]))
            .await;
        let (more, markers) = ws.timeline_during("exits", SECOND).await;
        lines.extend(more);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, expected, "each line once, the last one whole");
        // The viewer watched it run, so it is also told that it ended, and how.
        let events: Vec<_> = markers.iter().map(|m| &m.event).collect();
        assert_eq!(
            events,
            [&LifecycleEvent::Exited { exit_code: Some(0) }],
            "the exit, once, with its code"
        );
    }
}

#[tokio::test]
async fn a_20_kib_line_arrives_whole() {
    let project = require_fixture().await;
    let server = Server::start_for(&project, &[]).await;
    let small = Server::start_for(&project, &["--max-line-bytes", "10000"]).await;
    let probe = Probe::find(&project).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let mut ws_small = small.ws().await;
    ws_small.subscribe("probe", 0).await;
    ws_small.expect_subscribed("probe").await;

    // The engine stores a line over 16 KiB in pieces; the server joins them.
    let m = marker("long");
    probe
        .lock()
        .await
        .sh(
            "{ printf '%s ' \"$1\"; head -c 20480 /dev/zero | tr '\\0' x; printf '\\n'; } > /proc/1/fd/1",
            &[&m],
        )
        .await;
    let expected = format!("{m} {}", "x".repeat(20480));
    let (line, _) = ws.wait_line("probe", |l| l.text.starts_with(&m)).await;
    assert_text(&line, &expected);
    assert!(!line.truncated);

    let tail = server.tail("probe", &[("tail", "50")]).await;
    let found: Vec<&LogLine> = tail.iter().filter(|l| l.text.starts_with(&m)).collect();
    assert_eq!(found.len(), 1, "/api/tail has the line once");
    assert_text(found[0], &expected);
    assert!(!found[0].truncated);

    // Over --max-line-bytes the line is cut there and marked.
    let (line, _) = ws_small
        .wait_line("probe", |l| l.text.starts_with(&m))
        .await;
    assert_text(&line, &expected[..10_000]);
    assert!(line.truncated, "a cut line is marked truncated");
}

// ---------------------------------------------------------------------------------------------
// Without --project, download, unsubscribe

#[tokio::test]
async fn without_a_project_every_compose_project_is_shown() {
    let fixture = require_fixture().await;
    let other = TempProject::numbered("all-projects", 3).await;
    let server = Server::start_with(None, &[], &[]).await;

    let projects = server.projects().await;
    let names: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
    for wanted in [fixture.as_str(), other.name.as_str()] {
        assert!(
            names.contains(&wanted),
            "without --project, {wanted} should be listed among {names:?}"
        );
    }
    let services: Vec<&str> = projects
        .iter()
        .find(|p| p.name == fixture)
        .expect("listed above")
        .services
        .iter()
        .map(|s| s.service.as_str())
        .collect();
    assert_eq!(
        services,
        ["apps", "crash", "fast", "json", "oneshot", "probe", "traces", "tty", "web"]
    );

    // The socket lists them too (its first listing may come before the server's own first
    // read of the engine is done: a newer one follows), and follows a service of any.
    let mut ws = server.ws().await;
    let both = |projects: &[app::protocol::ProjectInfo]| {
        let names: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
        names.contains(&fixture.as_str()) && names.contains(&other.name.as_str())
    };
    let deadline = Instant::now() + WAIT;
    while !both(&ws.projects) {
        match ws
            .recv_within(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Some(ServerMessage::Services { projects }) => ws.projects = projects,
            Some(_) => {}
            None => panic!("the socket's listing: {:?}", ws.projects),
        }
    }
    ws.subscribe_to(&other.name, "numbered", 3).await;
    let lines = loop {
        match ws.reply().await {
            ServerMessage::Subscribed { project, .. }
            | ServerMessage::Lifecycle { project, .. } => assert_eq!(project, other.name),
            ServerMessage::Lines { project, lines, .. } => {
                assert_eq!(project, other.name);
                break lines;
            }
            other => panic!("expected the tail of numbered, got {other:?}"),
        }
    };
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["line 1", "line 2", "line 3"]);
}

#[tokio::test]
async fn a_download_holds_every_line_of_every_replica_in_time_order() {
    // Two replicas writing to stdout and stderr in turn, then nothing. Both begin at the same
    // second, however far apart Compose starts them, so that their lines interleave.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
        + 3;
    let yaml = format!(
        r#"version: "2.4"
services:
  pair:
    image: lookout-fixture:latest
    network_mode: none
    stop_grace_period: 1s
    scale: 2
    command: ["/bin/sh", "-c", "until [ $$(date +%s) -ge {start} ]; do usleep 10000; done; i=0; while [ $$i -lt 150 ]; do i=$$((i + 1)); echo \"out $$i\"; echo \"err $$i\" >&2; usleep 5000; done; echo finished; while true; do sleep 3600; done"]
"#
    );
    let project = TempProject::from_yaml("download", &yaml, &["pair"]).await;
    let ids = project.ids("pair").await;
    assert_eq!(ids.len(), 2, "two replicas: {ids:?}");
    let deadline = Instant::now() + 3 * WAIT;
    for id in &ids {
        loop {
            let log = common::engine_log(id).await;
            let last = |s: Stream| log[&s].last().map(|(_, t)| t.clone()).unwrap_or_default();
            if last(Stream::Stdout) == "finished" && last(Stream::Stderr) == "err 150" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} did not finish: {log:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let server = Server::start_for(&project.name, &[]).await;
    let (status, file) = server
        .get(
            "/api/download",
            &[("project", &project.name), ("service", "pair")],
        )
        .await;
    assert_eq!(status, 200, "{file}");

    // `TIMESTAMP REPLICA STREAM TEXT` a line.
    let got: Vec<(String, String, String, String)> = file
        .lines()
        .map(|l| {
            let mut f = l.splitn(4, ' ');
            let mut next = || {
                f.next()
                    .unwrap_or_else(|| panic!("a short line: {l:?}"))
                    .to_owned()
            };
            (common::nine_digits(&next()), next(), next(), next())
        })
        .collect();
    // Every line of every replica, each output in the engine's order...
    let mut total = 0;
    for id in &ids {
        let name = docker_ok(&["inspect", "--format", "{{.Name}}", id])
            .await
            .trim()
            .trim_start_matches('/')
            .to_owned();
        let engine = common::engine_log(id).await;
        for (stream, word) in [(Stream::Stdout, "stdout"), (Stream::Stderr, "stderr")] {
            let want = &engine[&stream];
            let have: Vec<(String, String)> = got
                .iter()
                .filter(|(_, n, s, _)| *n == name && s == word)
                .map(|(ts, _, _, text)| (ts.clone(), text.clone()))
                .collect();
            assert_eq!(
                &have, want,
                "the download's {word} of {name} differs from the engine's"
            );
            total += want.len();
        }
    }
    assert_eq!(got.len(), total, "the download holds nothing else");
    assert_eq!(total, 2 * (150 * 2 + 1));
    // ...merged in time order: a line of one replica comes after every line of the other
    // stamped before it. (Within one container the engine's own order is kept, and the
    // engine, which stamps stdout and stderr apart, may write a line stamped a moment earlier
    // after another: allow it 100 ms.)
    let ns = |ts: &str| -> i64 {
        let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("a timestamp {ts:?}: {e}"));
        t.unix_timestamp_nanos() as i64
    };
    let slack = 100_000_000;
    let mut earliest_after: HashMap<&str, i64> = HashMap::new();
    for (i, (ts, replica, _, text)) in got.iter().enumerate().rev() {
        let at = ns(ts);
        for (other, first) in &earliest_after {
            assert!(
                *other == replica.as_str() || *first >= at - slack,
                "the download is not merged in time order: line {i} ({ts} {replica} {text:?}) \
                 comes before a line of {other} stamped {} ms earlier",
                (at - first) / 1_000_000
            );
        }
        let e = earliest_after.entry(replica.as_str()).or_insert(at);
        *e = (*e).min(at);
    }
    // Both replicas' lines interleave: they wrote at the same time.
    let switches = got.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(
        switches > 10,
        "the replicas' lines are not merged: {switches} switches"
    );
}

#[tokio::test]
async fn after_unsubscribe_no_more_lines_of_the_service_come() {
    let server = Server::start().await;
    let probe = Probe::find(&server.project).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let mut witness = server.ws().await;
    witness.subscribe("probe", 0).await;
    witness.expect_subscribed("probe").await;

    let m = marker("unsubscribe");
    probe.printf(Fd::Stdout, "%s before\n", &[&m]).await;
    ws.wait_line("probe", |l| l.text == format!("{m} before"))
        .await;

    ws.send_text(r#"{"type":"unsubscribe"}"#).await;
    loop {
        match ws.reply().await {
            ServerMessage::Unsubscribed { .. } => break,
            ServerMessage::Lines { .. } | ServerMessage::Lifecycle { .. } => continue,
            other => panic!("expected `unsubscribed`, got {other:?}"),
        }
    }

    // A line written now reaches the viewer still subscribed...
    probe.printf(Fd::Stdout, "%s after\n", &[&m]).await;
    witness
        .wait_line("probe", |l| l.text == format!("{m} after"))
        .await;
    // ...and not the one that left (given the time it took the other to get it, again).
    let deadline = Instant::now() + Duration::from_millis(500);
    while let Some(msg) = ws
        .recv_within(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        match msg {
            ServerMessage::Services { .. } | ServerMessage::Engine { .. } => {}
            other => panic!("after `unsubscribed`, the server sent {other:?}"),
        }
    }
    // The socket still works: subscribing again gives the line.
    ws.subscribe("probe", 20).await;
    ws.expect_subscribed("probe").await;
    ws.wait_line("probe", |l| l.text == format!("{m} after"))
        .await;
}
