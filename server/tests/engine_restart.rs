//! Acceptance test: the Docker engine dies and comes back while a viewer follows a service.
//! The viewer is told the engine is unreachable, then that it is back; the stream re-attaches
//! by itself and goes on, with no line twice and no line missing of those the engine holds.
//!
//! The machine's Docker engine is shared, so this test never touches it: it starts a private
//! `dockerd` of its own (own socket, data root, exec root and pid file in a temporary directory,
//! and so its own managed containerd; no bridge, no iptables), builds the fixture image in it
//! from the local busybox (nothing is pulled), and points `lookout` at it with `DOCKER_HOST`.
//! It must run as root, and in a test binary of its own:
//!
//! ```sh
//! cargo test -p lookout --test engine_restart -- --nocapture
//! ```
//!
//! The engine goes away four times, and each time the viewer must be told (`engine` with
//! `reachable: false`, /healthz too, and a viewer that comes meanwhile has its subscription
//! refused with `engine_unreachable`), then told it is back, then get lines again:
//!
//! 1. SIGKILL, without `--live-restore`: the container's shim outlives the engine; the engine
//!    started again reads what the container wrote meanwhile, stops that run ("shutting down
//!    container considered alive") and `--restart always` starts a new one.
//! 2. SIGTERM, without `--live-restore`: the engine stops the container as it shuts down, and
//!    `--restart always` starts it again when the engine is back.
//! 3. SIGTERM with `--live-restore`: the container runs on while the engine is away; what it
//!    writes meanwhile waits in its pipe and is logged when the engine is back.
//! 4. SIGKILL with `--live-restore`: the same, the engine's connections cut instead of closed.
//!
//! Each dockerd after an outage runs as the next outage needs, so only the first SIGTERM
//! outage goes from an engine without live restore to one with it (which makes no difference
//! there: the container is stopped, and `--restart always` starts it either way).
//! Killed with dockerd, its containerd is a zombie until PID 1 reaps it; the test waits for
//! that before starting dockerd again, as an engine that finds the old containerd's pid alive
//! waits for its socket and gives up.
//!
//! The container goes on counting where it stopped (its counter lives in the container's own
//! filesystem), so every line is distinct. At the end the container is stopped and the viewer's
//! lines must be exactly the engine's log (`docker logs`): none twice, none missing, in order.
//!
//! Everything the test starts (the engine, its containerd and shims, the container, `lookout`)
//! is stopped by its process id when the test ends, also when it fails; mounts left inside the
//! temporary directory are unmounted and the directory removed.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use app::protocol::{ErrorCode, ServiceState, Stream};

use common::private_engine::{require_root, PrivateEngine};
use common::viewer::{told, Viewer};
use common::{marker, now_ns, Server};

const SERVICE: &str = "counter";

/// How long the engine stays away at least: long enough for Lookout's retries to back off.
const OUTAGE: Duration = Duration::from_secs(3);

/// The container's command: a numbered line every 50 ms. The number is kept in the container's
/// filesystem, which outlives the engine's restarts, so a new run goes on counting; a number
/// may be skipped when a run is killed, never repeated. SIGTERM ends it at once (as PID 1, `sh`
/// would otherwise ignore it and make the engine's shutdown wait).
const COUNTER: &str = r#"trap 'exit 0' TERM
mkdir -p /data
n=$(cat /data/n 2>/dev/null || echo 0)
while :; do
  n=$((n+1))
  echo "$n" > /data/n
  echo "tick $n"
  usleep 50000
done"#;

/// The number of a `tick N` line.
fn tick(text: &str) -> u64 {
    text.strip_prefix("tick ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a line of the counter: {text:?}"))
}

/// What /healthz says about the engine.
async fn health_says_reachable(server: &Server) -> bool {
    let (status, body) = server.get("/healthz", &[]).await;
    assert_eq!(status, 200, "/healthz answered {status}: {body}");
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/healthz: not JSON ({e}): {body}"));
    assert_eq!(v["status"], "ok", "/healthz: {body}");
    v["engine"]["reachable"]
        .as_bool()
        .unwrap_or_else(|| panic!("/healthz has no engine.reachable: {body}"))
}

#[test]
fn the_stream_survives_the_engine_stopping_and_being_killed() {
    require_root();
    // Declared before the runtime, so dropped after it, also when the scenario panics: lookout
    // (which the scenario owns) is killed before the engine is taken down.
    let mut engine = PrivateEngine::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(scenario(&mut engine));
}

async fn scenario(engine: &mut PrivateEngine) {
    let started = Instant::now();
    let elapsed = || format!("{:.1} s", started.elapsed().as_secs_f64());

    // How the engine goes away (see the top of the file): the signal, and whether the
    // dockerd that gets it runs with live restore. The dockerd started after an outage runs
    // as the next outage needs (after the last, as the last), so every outage but the second
    // is between two engines of the same setting.
    let outages = [
        ("KILL", false),
        ("TERM", false),
        ("TERM", true),
        ("KILL", true),
    ];
    engine.spawn(outages[0].1);
    engine.wait_answers(Duration::from_secs(60)).await;
    println!(
        "[engine_restart] {}: private dockerd answers at {}",
        elapsed(),
        engine.host
    );
    engine.build_fixture_image().await;
    let project = marker("lookout-er");
    let name = format!("{project}_{SERVICE}_1");
    let id = engine
        .cli(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "--restart",
            "always",
            "--label",
            &format!("com.docker.compose.project={project}"),
            "--label",
            &format!("com.docker.compose.service={SERVICE}"),
            "--label",
            "com.docker.compose.container-number=1",
            "lookout-fixture:latest",
            "sh",
            "-c",
            COUNTER,
        ])
        .await
        .trim()
        .to_owned();
    engine.container = Some(id.clone());
    println!("[engine_restart] {}: container {name} counts", elapsed());

    // Only this test runs in this process, so the variable reaches lookout and nothing else.
    std::env::set_var("DOCKER_HOST", &engine.host);
    let server = Server::start_for(&project, &[]).await;
    let mut viewer = Viewer::follow(&server, "local", &project, SERVICE).await;
    viewer
        .until(Duration::from_secs(10), "the first lines", |v, _| {
            v.lines.len() >= 10
        })
        .await;

    for (i, &(signal, live_restore)) in outages.iter().enumerate() {
        let how = format!(
            "SIG{signal}{}",
            if live_restore {
                " with live restore"
            } else {
                ""
            }
        );
        let before = viewer.lines.len();
        viewer
            .until(
                Duration::from_secs(10),
                "lines before the engine stops",
                |v, _| v.lines.len() >= before + 10,
            )
            .await;
        let last_tick = viewer.lines.last().map_or(0, |l| tick(&l.text));
        let run_before = engine.started_at(&id).await;

        // The viewer reads while the engine goes, so that the times are its own.
        let stopping = Instant::now();
        let (stopped_in, told_in) = tokio::join!(
            async {
                engine.stop_with(signal, Duration::from_secs(30)).await;
                stopping.elapsed()
            },
            async {
                viewer
                    .until(
                        Duration::from_secs(15),
                        &format!("`engine` with reachable=false after {how}"),
                        |_, m| told(m, "local", false),
                    )
                    .await;
                stopping.elapsed()
            },
        );
        let status = viewer.engines.last().expect("an engine message").clone();
        assert!(
            status.error.as_deref().is_some_and(|e| !e.is_empty()),
            "an unreachable engine comes with the reason: {status:?}"
        );
        assert!(
            !health_says_reachable(&server).await,
            "/healthz says the engine is reachable while it is stopped"
        );
        // A viewer that comes now is told at once, and its subscription is refused as such.
        let mut late = server.ws().await;
        assert!(
            !late.engine.reachable,
            "hello says the engine is reachable while it is stopped: {:?}",
            late.engine
        );
        late.subscribe(SERVICE, 10).await;
        let (code, message) = late.expect_error().await;
        assert_eq!(
            code,
            ErrorCode::EngineUnreachable,
            "subscribing while the engine is stopped: {message}"
        );
        drop(late);
        tokio::time::sleep(OUTAGE.saturating_sub(stopping.elapsed())).await;

        let restarting = Instant::now();
        let restarted_ns = now_ns();
        engine.spawn(outages.get(i + 1).map_or(live_restore, |o| o.1));
        let (answers_in, back_in) = tokio::join!(
            async {
                engine.wait_answers(Duration::from_secs(60)).await;
                restarting.elapsed()
            },
            async {
                viewer
                    .until(
                        Duration::from_secs(60),
                        &format!(
                            "`engine` with reachable=true after dockerd started again ({how})"
                        ),
                        |_, m| told(m, "local", true),
                    )
                    .await;
                restarting.elapsed()
            },
        );
        viewer
            .until(
                Duration::from_secs(20),
                &format!("lines after dockerd started again ({how})"),
                |v, _| {
                    v.lines
                        .last()
                        .is_some_and(|l| l.cursor.ts_ns > restarted_ns && tick(&l.text) > last_tick)
                },
            )
            .await;
        // The run is the one the scenario says: the same one with live restore, else a new one.
        let run_after = engine.started_at(&id).await;
        let same_run = run_after == run_before;
        if same_run != live_restore {
            let state = engine
                .cli(&["inspect", "--format", "{{json .State}}", &id])
                .await;
            panic!(
                "{how}: expected {} run of the container; it started at {run_before}, now at \
                 {run_after}; its state: {state}",
                if live_restore { "the same" } else { "a new" }
            );
        }
        let projects = server.projects().await;
        let state = projects
            .iter()
            .flat_map(|p| &p.services)
            .find(|s| s.service == SERVICE)
            .map(|s| s.state.clone());
        assert_eq!(
            state,
            Some(ServiceState::Running { running: 1 }),
            "{how}: /api/projects after the engine came back: {projects:?}"
        );
        println!(
            "[engine_restart] {}: {how}: dockerd gone in {:.2} s, viewer told in {:.2} s; \
             dockerd answers again in {:.2} s, viewer told in {:.2} s, lines again in {:.2} s \
             ({} run)",
            elapsed(),
            stopped_in.as_secs_f64(),
            told_in.as_secs_f64(),
            answers_in.as_secs_f64(),
            back_in.as_secs_f64(),
            restarting.elapsed().as_secs_f64(),
            if same_run { "same" } else { "new" },
        );
    }

    assert!(
        health_says_reachable(&server).await,
        "/healthz says the engine is unreachable after it came back"
    );
    let reconnects = server
        .metric(r#"lookout_engine_reconnects_total{engine="local"}"#)
        .await;
    assert!(
        reconnects >= outages.len() as f64,
        "{} outages, but lookout_engine_reconnects_total is {reconnects}",
        outages.len()
    );
    // One engine stream for the one container, none left over from before the outages.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let streams = server.metric("lookout_engine_streams").await;
        if streams == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lookout_engine_streams is {streams} for one running container"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Stop the counter, so that the engine's log is final, and compare.
    engine.cli(&["stop", "-t", "5", &id]).await;
    let held = engine.log_of(&id).await;
    let stdout = &held[&Stream::Stdout];
    assert!(
        held[&Stream::Stderr].is_empty(),
        "the counter wrote to stderr: {:?}",
        held[&Stream::Stderr]
    );
    let ticks: Vec<u64> = stdout.iter().map(|(_, t)| tick(t)).collect();
    assert!(
        ticks.windows(2).all(|w| w[0] < w[1]),
        "the counter repeated a number, so lines are not distinct: {ticks:?}"
    );
    let want = stdout.len();
    viewer
        .until(
            Duration::from_secs(15),
            "every line the engine holds",
            |v, _| v.lines.len() >= want,
        )
        .await;
    // Time for a wrong extra line to come.
    let settle = Instant::now() + Duration::from_millis(500);
    while let Some(msg) = viewer
        .ws
        .recv_within(settle.saturating_duration_since(Instant::now()))
        .await
    {
        viewer.take(&msg);
    }

    assert_eq!(
        viewer.dropped, 0,
        "a viewer that keeps up was told it lost lines"
    );
    let got = viewer.received();
    let got = &got[&Stream::Stdout];
    let cursors: HashSet<_> = viewer.lines.iter().map(|l| &l.cursor).collect();
    assert_eq!(
        cursors.len(),
        viewer.lines.len(),
        "a line came twice (by cursor)"
    );
    if got != stdout {
        let first = got
            .iter()
            .zip(stdout)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want));
        let around =
            |v: &[(String, String)]| v[first.saturating_sub(3)..(first + 3).min(v.len())].to_vec();
        panic!(
            "the viewer's lines differ from the engine's log: {} came, the engine holds {want}; \
             first difference at {first}: came {:?}, engine {:?}",
            got.len(),
            around(got),
            around(stdout)
        );
    }
    let skipped = ticks.windows(2).filter(|w| w[1] != w[0] + 1).count();
    println!(
        "[engine_restart] {}: all {want} lines the engine holds came once and in order \
         (ticks {}..={}, {skipped} numbers skipped by killed runs); reconnects {reconnects}; \
         engine messages {:?}",
        elapsed(),
        ticks.first().unwrap_or(&0),
        ticks.last().unwrap_or(&0),
        viewer
            .engines
            .iter()
            .map(|e| e.reachable)
            .collect::<Vec<_>>()
    );
}
