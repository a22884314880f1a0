//! Acceptance tests of a subscription to several services at once (`subscribe_project`),
//! against the real engine: a project whose services each write numbered lines, followed by
//! one socket that is cut and resumed.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use app::protocol::{Cursor, ErrorCode, LogLine, ServerMessage};
use common::{Server, TempProject, Ws, WAIT};

const SERVICES: [&str; 3] = ["ant", "bee", "cat"];

/// Three services, each writing `<service> <n>` for n = 1, 2, … about 50 times a second.
async fn counters() -> TempProject {
    counters_started("many", &SERVICES).await
}

/// The three counting services, of which only `started` are brought up.
async fn counters_started(tag: &str, started: &[&str]) -> TempProject {
    let mut yaml = String::from("version: \"2.4\"\nservices:\n");
    for s in SERVICES {
        yaml.push_str(&format!(
            "  {s}:\n    image: lookout-fixture:latest\n    network_mode: none\n    \
             stop_grace_period: 1s\n    command: [\"/bin/sh\", \"-c\", \"i=0; while true; do \
             i=$$((i+1)); echo {s} $$i; sleep 0.02; done\"]\n"
        ));
    }
    TempProject::from_yaml(tag, &yaml, started).await
}

async fn subscribe_project(ws: &mut Ws, project: &str, extra: serde_json::Value) {
    let mut msg = serde_json::json!({"type": "subscribe_project", "project": project});
    for (k, v) in extra.as_object().expect("an object") {
        msg[k] = v.clone();
    }
    ws.send_text(&msg.to_string()).await;
}

/// The `subscribed` messages of a project subscription: one per service, before any line.
async fn subscribed(ws: &mut Ws, count: usize) -> BTreeSet<String> {
    let mut services = BTreeSet::new();
    while services.len() < count {
        match ws.reply().await {
            ServerMessage::Subscribed { service, .. } => {
                assert!(services.insert(service), "one subscribed per service");
            }
            other => panic!("expected subscribed, got {other:?}"),
        }
    }
    services
}

/// The lines received within `d`, with the service each came tagged with.
async fn lines_for(ws: &mut Ws, d: Duration) -> Vec<(String, LogLine)> {
    let deadline = Instant::now() + d;
    let mut got = Vec::new();
    while let Some(msg) = ws
        .reply_within(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        if let ServerMessage::Lines { service, lines, .. } = msg {
            got.extend(lines.into_iter().map(|l| (service.clone(), l)));
        }
    }
    got
}

fn number(service: &str, line: &LogLine) -> u64 {
    let (s, n) = line.text.split_once(' ').expect("`<service> <n>`");
    assert_eq!(s, service, "a line tagged with the service that wrote it");
    n.parse().expect("a number")
}

/// The tail asked of a whole project's view: about a second of the three counters together,
/// so that each has lines in it though one of them is held up a while on a busy machine.
const TAIL: usize = 150;

#[tokio::test]
async fn a_whole_project_view_merges_its_services_in_time_order_and_resumes_exactly() {
    let project = counters().await;
    let server = Server::start_for(&project.name, &[]).await;
    // Each service has written well over the tail.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut ws = Ws::connect(server.port, &project.name).await;
    subscribe_project(&mut ws, &project.name, serde_json::json!({"tail": TAIL})).await;
    let services = subscribed(&mut ws, SERVICES.len()).await;
    assert_eq!(services, SERVICES.map(String::from).into());
    let mut all = lines_for(&mut ws, Duration::from_millis(500)).await;
    let deadline = Instant::now() + WAIT;
    while all.len() < TAIL && Instant::now() < deadline {
        all.extend(lines_for(&mut ws, Duration::from_millis(100)).await);
    }
    assert!(all.len() >= TAIL, "the tail came: {} lines", all.len());
    let backlog = &all[..TAIL];
    assert!(
        backlog.windows(2).all(|w| w[0].1.cursor <= w[1].1.cursor),
        "the tail of all three, merged in time order"
    );
    let shown: BTreeSet<&str> = backlog.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(shown.len(), 3, "the newest lines hold every service's");

    // Five cuts, each resumed from the last cursor of every container; lines are written
    // while the socket is gone.
    for _ in 0..5 {
        let mut last: HashMap<String, Cursor> = HashMap::new();
        for (_, l) in &all {
            last.insert(l.cursor.container.to_string(), l.cursor.clone());
        }
        drop(ws);
        tokio::time::sleep(Duration::from_millis(400)).await;
        ws = Ws::connect(server.port, &project.name).await;
        let resume: Vec<Cursor> = last.into_values().collect();
        subscribe_project(
            &mut ws,
            &project.name,
            serde_json::json!({"resume": resume}),
        )
        .await;
        subscribed(&mut ws, SERVICES.len()).await;
        all.extend(lines_for(&mut ws, Duration::from_millis(600)).await);
    }

    let mut numbers: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (service, line) in &all {
        numbers
            .entry(service.as_str())
            .or_default()
            .push(number(service, line));
    }
    assert_eq!(numbers.len(), 3);
    for (service, got) in numbers {
        let first = got[0];
        let want: Vec<u64> = (first..first + got.len() as u64).collect();
        assert_eq!(
            got, want,
            "{service}: every number once, in order, through 5 cuts"
        );
        assert!(
            got.len() > 100,
            "{service}: lines kept coming ({})",
            got.len()
        );
    }
}

#[tokio::test]
async fn a_project_view_of_named_services_leaves_the_others_out() {
    let project = counters().await;
    let server = Server::start_for(&project.name, &[]).await;
    let mut ws = Ws::connect(server.port, &project.name).await;
    subscribe_project(
        &mut ws,
        &project.name,
        serde_json::json!({"services": ["ant", "cat"], "tail": 10}),
    )
    .await;
    let services = subscribed(&mut ws, 2).await;
    assert_eq!(services, ["ant", "cat"].map(String::from).into());
    let got = lines_for(&mut ws, Duration::from_secs(1)).await;
    assert!(got.iter().any(|(s, _)| s == "ant") && got.iter().any(|(s, _)| s == "cat"));
    assert!(got.iter().all(|(s, _)| s != "bee"), "bee was not asked for");

    // A service that does not exist, or a list out of bounds: an error, and the view goes on.
    subscribe_project(
        &mut ws,
        &project.name,
        serde_json::json!({"services": ["ant", "nope"]}),
    )
    .await;
    let (code, message) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::UnknownService, "{message}");
    let too_many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
    subscribe_project(
        &mut ws,
        &project.name,
        serde_json::json!({ "services": too_many }),
    )
    .await;
    let (code, message) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(message.contains("at most 64"), "{message}");
    let cursors: Vec<String> = (0..1025).map(|i| format!("1-0-{i:012x}")).collect();
    subscribe_project(
        &mut ws,
        &project.name,
        serde_json::json!({ "resume": cursors }),
    )
    .await;
    let (code, message) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(message.contains("at most 1024 cursors"), "{message}");
    let more = lines_for(&mut ws, Duration::from_millis(500)).await;
    assert!(!more.is_empty(), "the earlier subscription goes on");

    subscribe_project(&mut ws, "no-such-project", serde_json::json!({})).await;
    assert_eq!(ws.expect_error().await.0, ErrorCode::UnknownService);
}

/// A client that sends requests one after another tells their answers apart by the `id`
/// each request gave: every `subscribed` of a project subscription, and a refusal, name it.
#[tokio::test]
async fn each_answer_names_the_request_it_answers() {
    let project = counters().await;
    let server = Server::start_for(&project.name, &[]).await;
    let mut ws = Ws::connect(server.port, &project.name).await;
    let id = |n: u32| serde_json::json!({ "id": n, "tail": 0 });
    subscribe_project(&mut ws, &project.name, id(7)).await;
    subscribe_project(&mut ws, "no-such-project", id(8)).await;
    ws.send_text(r#"{"type":"unsubscribe","id":9}"#).await;
    ws.send_text(r#"{"type":"subscribe","project":"p","service":"s","tail":-1,"id":10}"#)
        .await;
    let mut answers = Vec::new();
    while answers.len() < SERVICES.len() + 3 {
        match ws.reply().await {
            ServerMessage::Subscribed { id, service, .. } => answers.push((id, service)),
            ServerMessage::Error { id, code, .. } => answers.push((id, format!("{code:?}"))),
            ServerMessage::Unsubscribed { id } => answers.push((id, "unsubscribed".into())),
            _ => {}
        }
    }
    let mut want: Vec<(Option<u32>, String)> =
        SERVICES.iter().map(|s| (Some(7), s.to_string())).collect();
    want.push((Some(8), "UnknownService".into()));
    want.push((Some(9), "unsubscribed".into()));
    want.push((Some(10), "BadRequest".into()));
    answers[..SERVICES.len()].sort();
    assert_eq!(answers, want);
}

/// A service started after a whole project's view began joins it: announced with the view's
/// request's `id`, every line from its first, none missing. A named view does not take it.
#[tokio::test]
async fn a_service_that_comes_later_joins_a_whole_project_view_from_its_first_line() {
    let project = counters_started("late", &SERVICES[..2]).await;
    let server = Server::start_for(&project.name, &[]).await;
    let mut whole = Ws::connect(server.port, &project.name).await;
    subscribe_project(
        &mut whole,
        &project.name,
        serde_json::json!({"id": 5, "tail": 0}),
    )
    .await;
    assert_eq!(
        subscribed(&mut whole, 2).await,
        ["ant", "bee"].map(String::from).into()
    );
    let mut named = Ws::connect(server.port, &project.name).await;
    let ant_only = serde_json::json!({"services": ["ant"], "tail": 0});
    subscribe_project(&mut named, &project.name, ant_only).await;
    subscribed(&mut named, 1).await;

    project.compose(&["up", "-d", "cat"]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut cats = Vec::new();
    let mut announced = false;
    while cats.len() < 20 {
        let left = deadline.saturating_duration_since(Instant::now());
        match whole.reply_within(left).await {
            Some(ServerMessage::Subscribed { service, id, .. }) => {
                assert_eq!((service.as_str(), id), ("cat", Some(5)));
                announced = true;
            }
            Some(ServerMessage::Lines { service, lines, .. }) if service == "cat" => {
                assert!(announced, "cat's lines come after its subscribed");
                cats.extend(lines.iter().map(|l| number("cat", l)));
            }
            Some(_) => {}
            None => panic!("cat's lines did not all come within 30 s: {cats:?}"),
        }
    }
    let want: Vec<u64> = (1..=cats.len() as u64).collect();
    assert_eq!(
        cats, want,
        "every line of cat from its first, once each, in order"
    );
    let others = lines_for(&mut named, Duration::from_secs(1)).await;
    assert!(
        others.iter().all(|(s, _)| s == "ant"),
        "a named view takes no new service"
    );
}
