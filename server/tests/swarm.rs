//! Acceptance test: a Swarm stack on a single-node Swarm of a private `dockerd`, deployed
//! with `docker stack deploy`: a stack of two services, `ticker` with 2 replicas and
//! `crasher`, whose tasks fail and are rescheduled.
//!
//! - The stack is listed as a project, its services as the stack file names them, each
//!   replica by its task slot (`STACK_ticker.1`, `STACK_ticker.2`), with the replicas the
//!   manager wants and the node each task runs on.
//! - Its whole project's view merges both services' lines; `crasher`'s rescheduled tasks go on
//!   one timeline (replica 1), with an `exited` marker (code 3) between their lines.
//! - History keeps the failed tasks' lines.
//!
//! Swarm services cannot use `network_mode: none`: they get the stack's overlay network and
//! publish no port. It starts a private dockerd, so it must run as root, in a test binary of
//! its own:
//!
//! ```sh
//! cargo test -p lookout --test swarm -- --nocapture
//! ```

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use app::history::HistoryPage;
use app::protocol::{LifecycleEvent, LogLine, ServerMessage};

use common::private_engine::{require_root, PrivateEngine};
use common::{marker, Server, ALLOWED_ENGINE_CALLS};

/// `$$` is a `$` for the shell: the stack file is interpolated first.
const STACK: &str = r#"version: "3.8"
services:
  ticker:
    image: lookout-fixture:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$$((i+1)); echo \"tick $$i\"; usleep 100000; done"]
    deploy:
      replicas: 2
  crasher:
    image: lookout-fixture:latest
    command: ["sh", "-c", "echo crashing; sleep 1; exit 3"]
    deploy:
      replicas: 1
      restart_policy:
        condition: any
        delay: 1s
"#;

#[test]
fn a_stack_is_a_project_its_tasks_replicas_and_a_rescheduled_task_one_timeline() {
    require_root();
    let mut engine = PrivateEngine::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(scenario(&mut engine));
}

async fn scenario(engine: &mut PrivateEngine) {
    engine.spawn(false);
    engine.wait_answers(Duration::from_secs(60)).await;
    engine.build_fixture_image().await;
    engine
        .cli(&["swarm", "init", "--advertise-addr", "127.0.0.1"])
        .await;
    let stack = marker("lkst").replace('-', "_");
    let file = engine.dir.join("stack.yml");
    std::fs::write(&file, STACK).expect("write the stack file");
    let file = file.display().to_string();
    engine
        .cli(&[
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            &file,
            &stack,
        ])
        .await;

    // Only this test runs in this process, so the variable reaches lookout and nothing else.
    std::env::set_var("DOCKER_HOST", &engine.host);
    let server = Server::start_for(&stack, &[]).await;

    // Listed: the stack as a project, its services by their stack-file names, replicas by slot.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ticker = loop {
        let projects = server.projects().await;
        let p = projects.iter().find(|p| p.name == stack);
        let services: Vec<&str> = p
            .map(|p| p.services.iter().map(|s| s.service.as_str()).collect())
            .unwrap_or_default();
        let ticker = p.and_then(|p| p.services.iter().find(|s| s.service == "ticker"));
        if services == ["crasher", "ticker"] && ticker.is_some_and(|t| t.replicas == 2) {
            break ticker.cloned().expect("ticker");
        }
        assert!(
            Instant::now() < deadline,
            "the stack is not listed as a project of crasher and ticker (2 replicas): {projects:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let names: BTreeSet<String> = ticker
        .containers
        .iter()
        .map(|c| c.replica.name.clone())
        .collect();
    let want: BTreeSet<String> = [1, 2].map(|n| format!("{stack}_ticker.{n}")).into();
    assert_eq!(names, want, "replicas are not named by slot");
    assert_eq!(ticker.desired, Some(2), "the manager's desired replicas");
    // The one node is this machine, named by its hostname.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("the hostname");
    for c in &ticker.containers {
        assert_eq!(
            c.node.as_deref(),
            Some(host.trim()),
            "the node of {}",
            c.replica.name
        );
    }

    // The whole stack on one timeline; crasher's tasks, one after another, on replica 1.
    let mut ws = server.ws().await;
    let msg = serde_json::json!({"type": "subscribe_project", "project": stack, "tail": 1000});
    ws.send_text(&msg.to_string()).await;
    let mut lines: Vec<(String, LogLine)> = Vec::new();
    let mut exits = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let crashes = |lines: &[(String, LogLine)]| {
        lines
            .iter()
            .filter(|(s, l)| s == "crasher" && l.text == "crashing")
            .count()
    };
    while crashes(&lines) < 3 || exits < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = ws.recv_within(left).await else {
            panic!(
                "not 3 crasher tasks and 2 exits within 60 s: {} crashes, {exits} exits",
                crashes(&lines)
            );
        };
        match msg {
            ServerMessage::Lines {
                service, lines: l, ..
            } => lines.extend(l.into_iter().map(|l| (service.clone(), l))),
            ServerMessage::Lifecycle {
                service, change, ..
            } if service == "crasher" => {
                if let LifecycleEvent::Exited { exit_code } = change.event {
                    assert_eq!(exit_code, Some(3), "crasher's exit code");
                    exits += 1;
                }
            }
            ServerMessage::Error { code, message, .. } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
    let replicas = |service: &str| -> BTreeSet<u32> {
        lines
            .iter()
            .filter(|(s, _)| s == service)
            .map(|(_, l)| l.replica.number)
            .collect()
    };
    assert_eq!(
        replicas("ticker"),
        [1, 2].into(),
        "both ticker tasks' lines"
    );
    assert_eq!(
        replicas("crasher"),
        [1].into(),
        "crasher's tasks on one timeline"
    );

    // History keeps the failed tasks' lines.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let page: HistoryPage = server
            .get_json(
                "/api/history",
                &[
                    ("project", &stack),
                    ("service", "crasher"),
                    ("limit", "100"),
                ],
            )
            .await;
        let kept = page.lines.iter().filter(|l| l.text == "crashing").count();
        if kept >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "history holds {kept} of crasher's 3 tasks' lines"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let calls = server.engine_calls.calls();
    assert!(
        calls
            .iter()
            .all(|c| ALLOWED_ENGINE_CALLS.contains(&c.as_str())),
        "the engine was called beyond reads: {calls:?}"
    );
    drop(server);
    engine.cli(&["stack", "rm", &stack]).await;
    engine.cli(&["swarm", "leave", "--force"]).await;
}
