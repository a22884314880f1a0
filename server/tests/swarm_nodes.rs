//! Acceptance test: a Swarm of two nodes, a manager and a worker, each a private `dockerd`
//! in a network namespace of its own (`common::netns`), and a stack deployed on it with
//! `docker stack deploy`. Lookout reads the manager alone:
//!
//! - `ticker` has 2 replicas, one on each node: both are listed, each with its node's
//!   hostname, and both replicas' lines arrive live, the worker's through the manager
//!   (`/tasks/{id}/logs`), each replica's `tick N` lines consecutive: none missing, none twice.
//! - `agent` is a global service: its replicas are numbered by node, in the order of their
//!   hostnames (the manager's 1, the worker's 2).
//! - `crasher` runs on the worker only; its tasks fail (exit 3) and are rescheduled: their
//!   lines go on one timeline (replica 1), with an `exited` marker (code 3) for each task
//!   (also one that began and ended between two of the manager's listings), learnt from the
//!   manager (no event tells of another node's task), and history keeps them.
//! - Lookout calls only the documented reads.
//!
//! It starts two private dockerds and network namespaces, so it must run as root, in a test
//! binary of its own:
//!
//! ```sh
//! cargo test -p lookout --test swarm_nodes -- --nocapture
//! ```

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use app::history::HistoryPage;
use app::protocol::{LifecycleEvent, LogLine, ServerMessage};

use common::netns::NodePair;
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
      placement:
        max_replicas_per_node: 1
  agent:
    image: lookout-fixture:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; echo agent up; while :; do sleep 1; done"]
    deploy:
      mode: global
  crasher:
    image: lookout-fixture:latest
    command: ["sh", "-c", "echo crashing; exit 3"]
    deploy:
      replicas: 1
      placement:
        constraints: ["node.role == worker"]
      restart_policy:
        condition: any
        delay: 1s
"#;

const MANAGER_HOST: &str = "lk-manager";
const WORKER_HOST: &str = "lk-worker";

#[test]
fn a_stack_across_two_nodes_is_read_through_the_manager() {
    require_root();
    // Declared first, dropped last: the engines stop before their namespaces go.
    let pair = NodePair::new();
    let mut manager = PrivateEngine::new();
    manager.launcher = pair.launcher(0, MANAGER_HOST);
    let mut worker = PrivateEngine::new();
    worker.launcher = pair.launcher(1, WORKER_HOST);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(scenario(&pair, &mut manager, &mut worker));
}

async fn form_swarm(pair: &NodePair, manager: &mut PrivateEngine, worker: &mut PrivateEngine) {
    for engine in [&mut *manager, &mut *worker] {
        engine.spawn(false);
        engine.wait_answers(Duration::from_secs(60)).await;
        engine.build_fixture_image().await;
    }
    let [m, w] = &pair.addresses;
    manager.cli(&["swarm", "init", "--advertise-addr", m]).await;
    let token = manager.cli(&["swarm", "join-token", "-q", "worker"]).await;
    let at = format!("{m}:2377");
    worker
        .cli(&[
            "swarm",
            "join",
            "--advertise-addr",
            w,
            "--token",
            token.trim(),
            &at,
        ])
        .await;
}

async fn scenario(pair: &NodePair, manager: &mut PrivateEngine, worker: &mut PrivateEngine) {
    form_swarm(pair, manager, worker).await;
    let stack = marker("lksn").replace('-', "_");
    let file = manager.dir.join("stack.yml");
    std::fs::write(&file, STACK).expect("write the stack file");
    let file = file.display().to_string();
    manager
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
    std::env::set_var("DOCKER_HOST", &manager.host);
    let server = Server::start_for(&stack, &[]).await;
    listed_on_both_nodes(&server, &stack).await;
    streamed(&server, &stack).await;
    kept(&server, &stack).await;

    let calls = server.engine_calls.calls();
    assert!(
        calls
            .iter()
            .all(|c| ALLOWED_ENGINE_CALLS.contains(&c.as_str())),
        "the engine was called beyond reads: {calls:?}"
    );
    assert!(
        calls.iter().any(|c| c == "GET /tasks/{id}/logs"),
        "no task's log was read through the manager: {calls:?}"
    );
    drop(server);
    manager.cli(&["stack", "rm", &stack]).await;
    worker.cli(&["swarm", "leave", "--force"]).await;
    manager.cli(&["swarm", "leave", "--force"]).await;
}

/// Both ticker replicas listed, one on each node; crasher's on the worker.
async fn listed_on_both_nodes(server: &Server, stack: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let projects = server.projects().await;
        let service = |name: &str| {
            projects
                .iter()
                .find(|p| p.name == stack)
                .and_then(|p| p.services.iter().find(|s| s.service == name))
                .cloned()
        };
        let nodes = |name: &str| -> BTreeMap<String, String> {
            service(name)
                .map(|s| {
                    s.containers
                        .iter()
                        .filter(|c| c.state == app::protocol::ContainerState::Running)
                        .map(|c| (c.replica.name.clone(), c.node.clone().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let ticker = nodes("ticker");
        let hosts: BTreeSet<&str> = ticker.values().map(String::as_str).collect();
        let crasher = service("crasher");
        let crasher_on_worker = crasher.as_ref().is_some_and(|s| {
            !s.containers.is_empty()
                && s.containers
                    .iter()
                    .all(|c| c.node.as_deref() == Some(WORKER_HOST) && c.replica.number == 1)
        });
        let agent: BTreeMap<String, String> = service("agent")
            .map(|s| {
                s.containers
                    .iter()
                    .map(|c| (c.replica.name.clone(), c.node.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let agent_by_node: BTreeMap<String, String> = [
            (format!("{stack}_agent.1"), MANAGER_HOST.to_owned()),
            (format!("{stack}_agent.2"), WORKER_HOST.to_owned()),
        ]
        .into();
        if ticker.len() == 2
            && hosts == [MANAGER_HOST, WORKER_HOST].into()
            && crasher_on_worker
            && agent == agent_by_node
        {
            let want: BTreeSet<String> = [1, 2].map(|n| format!("{stack}_ticker.{n}")).into();
            let names: BTreeSet<String> = ticker.keys().cloned().collect();
            assert_eq!(names, want, "ticker's replicas are named by slot");
            assert_eq!(service("ticker").and_then(|s| s.desired), Some(2));
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not listed within 90 s: ticker on one node each, crasher on the worker, agent \
             numbered by node: ticker {ticker:?}, crasher {crasher:?}, agent {agent:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The stack's whole timeline, live: both ticker replicas' lines, each replica's numbers
/// consecutive, and three crasher tasks with their exits.
async fn streamed(server: &Server, stack: &str) {
    let mut ws = server.ws().await;
    let msg = serde_json::json!({"type": "subscribe_project", "project": stack, "tail": 0});
    ws.send_text(&msg.to_string()).await;
    let mut lines: Vec<(String, LogLine)> = Vec::new();
    let mut exits = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    let count = |lines: &[(String, LogLine)], service: &str, replica: u32| {
        lines
            .iter()
            .filter(|(s, l)| s == service && l.replica.number == replica)
            .count()
    };
    // Every task's exit is told, even of one that started and ended between two of the
    // manager's listings: the newest may still run.
    while count(&lines, "crasher", 1) < 3
        || exits < 3
        || exits + 1 < count(&lines, "crasher", 1)
        || count(&lines, "ticker", 1) < 30
        || count(&lines, "ticker", 2) < 30
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = ws.recv_within(left).await else {
            panic!(
                "within 90 s: {} crasher lines, {exits} exits, ticker {} and {} lines",
                count(&lines, "crasher", 1),
                count(&lines, "ticker", 1),
                count(&lines, "ticker", 2)
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
    let crasher: BTreeSet<u32> = lines
        .iter()
        .filter(|(s, _)| s == "crasher")
        .map(|(_, l)| l.replica.number)
        .collect();
    assert_eq!(crasher, [1].into(), "crasher's tasks on one timeline");
    for replica in [1, 2] {
        let ticks: Vec<u64> = lines
            .iter()
            .filter(|(s, l)| s == "ticker" && l.replica.number == replica)
            .map(|(_, l)| {
                let n = l.text.strip_prefix("tick ").and_then(|n| n.parse().ok());
                n.unwrap_or_else(|| panic!("not a tick: {:?}", l.text))
            })
            .collect();
        let gaps: Vec<(u64, u64)> = ticks
            .windows(2)
            .filter(|w| w[1] != w[0] + 1)
            .map(|w| (w[0], w[1]))
            .collect();
        assert!(
            gaps.is_empty(),
            "ticker replica {replica}'s lines are not consecutive (missing or twice): {gaps:?}"
        );
    }
}

/// History keeps the failed tasks' lines, read on the worker through the manager.
async fn kept(server: &Server, stack: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let page: HistoryPage = server
            .get_json(
                "/api/history",
                &[("project", stack), ("service", "crasher"), ("limit", "100")],
            )
            .await;
        let kept = page.lines.iter().filter(|l| l.text == "crashing").count();
        if kept >= 3 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "history holds {kept} of crasher's 3 tasks' lines"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
