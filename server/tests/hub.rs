//! Acceptance tests of the hub (server/src/hub.rs) and of what it promises a viewer: one
//! engine stream per container whatever the number of viewers, a timeline with no gap and no
//! repeat through restarts, recreations, scaling, crash loops and log rotations, exact
//! resumption after a dropped socket, bounded memory for a subscriber that stops reading, long
//! and TTY lines, and a clean shutdown. Real engine, real `lookout` binary, no mocks:
//!
//! ```sh
//! bash scripts/fixture.sh up lookout-test
//! cargo test -p lookout --test hub -- --test-threads=2
//! ```
//!
//! Every test that restarts, recreates, scales or floods a service brings up a Compose project
//! of its own (`lookout-t-<tag>-<unique>`, from the fixture's image, no network) and removes it
//! when done; the shared `lookout-test` project is only read. The last line of a container that
//! exits without a newline is covered by `a_line_without_newline_is_delivered_whole` and
//! `a_line_without_newline_is_delivered_live_when_the_container_exits` in engine.rs.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use app::protocol::{Cursor, Lifecycle, LogLine, ServerMessage, Stream};
use tokio::process::Command;

use common::{
    assert_text, docker_ok, engine_log, marker, now_ns, per_stream, set_fast_rate, Server,
    TempProject, Ws, WAIT,
};

const SECOND: Duration = Duration::from_secs(1);

/// The tests that make the engine write thousands of lines a second take turns, and the
/// shutdown test waits for them: on a small machine each then has the CPU to itself.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// Reading a subscription

/// Everything a subscriber received, with the moment (ns since the epoch) each line came.
#[derive(Default)]
struct Seen {
    lines: Vec<LogLine>,
    arrived_ns: Vec<i64>,
    markers: Vec<Lifecycle>,
}

impl Seen {
    /// The lines of one container (cursors name it by the first 12 digits of its id), in the
    /// order they came.
    fn of(&self, id: &str) -> Vec<&LogLine> {
        let short = &id[..12];
        self.lines
            .iter()
            .filter(|l| &*l.cursor.container == short)
            .collect()
    }

    /// What came, per container, for failure messages.
    fn summary(&self) -> String {
        let mut per: Vec<(&str, Vec<&str>)> = Vec::new();
        for l in &self.lines {
            match per.iter_mut().find(|(c, _)| *c == &*l.cursor.container) {
                Some((_, texts)) => texts.push(&l.text),
                None => per.push((&l.cursor.container, vec![&l.text])),
            }
        }
        per.iter()
            .map(|(c, texts)| {
                let last: Vec<&str> = texts.iter().rev().take(6).rev().copied().collect();
                format!("{c}: {} lines, last {last:?}", texts.len())
            })
            .collect::<Vec<_>>()
            .join("; ")
            + &format!(
                "; markers {:?}",
                self.markers.iter().map(said).collect::<Vec<_>>()
            )
    }
}

/// Reads the subscription to `service` until `done` holds of what came, or `d` passes; false
/// if it timed out. A `dropped` fails the test: these subscribers keep up.
async fn pump(
    ws: &mut Ws,
    service: &str,
    seen: &mut Seen,
    d: Duration,
    done: impl Fn(&Seen) -> bool,
) -> bool {
    let deadline = Instant::now() + d;
    while !done(seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.reply_within(left).await {
            None => return false,
            Some(ServerMessage::Lines {
                service: s, lines, ..
            }) => {
                assert_eq!(s, service, "lines of another service");
                let at = now_ns();
                seen.arrived_ns.extend(lines.iter().map(|_| at));
                seen.lines.extend(lines);
            }
            Some(ServerMessage::Lifecycle {
                service: s, change, ..
            }) => {
                assert_eq!(s, service, "a marker of another service");
                seen.markers.push(change);
            }
            Some(ServerMessage::Dropped { count, .. }) => {
                panic!("a subscriber that keeps up was told it lost {count} lines")
            }
            Some(other) => panic!("expected lines of {service}, got {other:?}"),
        }
    }
    true
}

/// A marker as the viewer reads it, e.g. "#1 exited with code 0".
fn said(marker: &Lifecycle) -> String {
    marker.describe("").trim().to_owned()
}

/// The markers that came after the first `from`, as the viewer reads them, sorted.
fn markers_since(seen: &Seen, from: usize) -> Vec<String> {
    let mut said: Vec<String> = seen.markers[from..].iter().map(said).collect();
    said.sort();
    said
}

/// `pump`, failing the test with `what` and what came if `done` does not hold within `d`.
async fn pump_until(
    ws: &mut Ws,
    service: &str,
    seen: &mut Seen,
    d: Duration,
    what: &str,
    done: impl Fn(&Seen) -> bool,
) {
    if !pump(ws, service, seen, d, done).await {
        panic!("{what}: not within {d:?}; came: {}", seen.summary());
    }
}

// ---------------------------------------------------------------------------------------------
// What the engine holds

/// Checks that every line the engine holds now for container `id` reached the subscriber,
/// exactly once and in order, waiting up to `d` for the latest. With `exact`, the subscriber
/// must hold nothing more either (for a container that no longer runs).
async fn assert_engine_lines_arrived(
    ws: &mut Ws,
    service: &str,
    seen: &mut Seen,
    id: &str,
    d: Duration,
    exact: bool,
) {
    let engine = engine_log(id).await;
    let caught_up = |seen: &Seen| {
        let got = per_stream(seen.of(id));
        engine.iter().all(|(s, lines)| got[s].len() >= lines.len())
    };
    pump(ws, service, seen, d, caught_up).await;
    if exact {
        // Give a wrong extra line the time to come.
        pump(ws, service, seen, Duration::from_millis(300), |_| false).await;
    }
    let got = per_stream(seen.of(id));
    for (stream, want) in &engine {
        let have = &got[stream];
        let n = if exact { have.len() } else { want.len() };
        let have = &have[..n.min(have.len())];
        if have != want.as_slice() {
            let first = have
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(have.len().min(want.len()));
            panic!(
                "container {} {stream:?}: {d:?} after the engine held them{}, the subscriber's \
                 lines differ from the engine's, first at #{first}: engine {} lines {:?}..., \
                 subscriber {} lines {:?}...",
                &id[..12],
                if exact { " (all of them)" } else { "" },
                want.len(),
                &want[first.min(want.len())..(first + 3).min(want.len())],
                have.len(),
                &have[first.min(have.len())..(first + 3).min(have.len())],
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Many viewers, one engine stream per container

#[tokio::test]
async fn twenty_viewers_of_a_service_share_one_engine_stream_per_container() {
    let project = TempProject::fixture("viewers", &["web"]).await;
    let containers = project.ids("web").await;
    assert_eq!(containers.len(), 2, "web runs 2 replicas: {containers:?}");
    // Memory only: a service is followed while someone watches it (with history, always:
    // the next test).
    let server = Server::start_for(&project.name, &["--history", "off"]).await;
    assert_eq!(server.metric("lookout_engine_streams").await, 0.0);
    assert_eq!(server.metric("lookout_subscribers").await, 0.0);

    let mut viewers = Vec::new();
    for _ in 0..20 {
        let mut ws = server.ws().await;
        ws.subscribe("web", 0).await;
        ws.expect_subscribed("web").await;
        viewers.push(ws);
    }

    // Every viewer gets the lines of both replicas...
    for (i, ws) in viewers.iter_mut().enumerate() {
        let mut seen = Seen::default();
        pump_until(
            ws,
            "web",
            &mut seen,
            Duration::from_secs(10),
            &format!("viewer {i} gets lines of both replicas"),
            |s| containers.iter().all(|id| !s.of(id).is_empty()),
        )
        .await;
    }
    // ...through one engine stream per running container, not one per viewer: the engine
    // was asked to follow each container's log exactly once.
    let mut followed = server.engine_calls.followed_logs();
    followed.sort();
    let mut expected: Vec<String> = containers.clone();
    expected.sort();
    if followed != expected {
        let logs: Vec<String> = server
            .engine_calls
            .requests()
            .into_iter()
            .filter(|r| r.contains("/logs"))
            .collect();
        panic!(
            "the engine was asked to follow {} log streams for 20 viewers of 2 containers, \
             expected one per container; log requests: {logs:#?}",
            followed.len()
        );
    }
    let mut samples = Vec::new();
    for _ in 0..10 {
        let m = server.metrics().await;
        samples.push((m["lookout_engine_streams"], m["lookout_subscribers"]));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        samples.iter().all(|s| *s == (2.0, 20.0)),
        "(lookout_engine_streams, lookout_subscribers) over a second, expected (2, 20): {samples:?}"
    );

    // When they all leave, the engine streams close within a few seconds.
    drop(viewers);
    let deadline = Instant::now() + 5 * SECOND;
    loop {
        let m = server.metrics().await;
        let now = (m["lookout_engine_streams"], m["lookout_subscribers"]);
        if now == (0.0, 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "5 s after the 20 viewers left, (lookout_engine_streams, lookout_subscribers) is \
             {now:?}, expected (0, 0)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn with_history_every_container_is_followed_once_watched_or_not() {
    let project = TempProject::fixture("followed", &["web"]).await;
    let mut containers = project.ids("web").await;
    containers.sort();
    let server = Server::start_for(&project.name, &[]).await;
    let streams = || async { server.metric("lookout_engine_streams").await };
    let deadline = Instant::now() + 10 * SECOND;
    while streams().await != 2.0 {
        assert!(
            Instant::now() < deadline,
            "no viewer, and web's 2 containers followed for history within 10 s: {} streams",
            streams().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut viewers = Vec::new();
    for _ in 0..20 {
        let mut ws = server.ws().await;
        ws.subscribe("web", 0).await;
        ws.expect_subscribed("web").await;
        viewers.push(ws);
    }
    for (i, ws) in viewers.iter_mut().enumerate() {
        let mut seen = Seen::default();
        pump_until(
            ws,
            "web",
            &mut seen,
            Duration::from_secs(10),
            &format!("viewer {i} gets lines of both replicas"),
            |s| containers.iter().all(|id| !s.of(id).is_empty()),
        )
        .await;
    }
    drop(viewers);
    // The viewers came and went on the streams history had opened: each container's log
    // was followed once, and still is.
    for _ in 0..10 {
        assert_eq!(streams().await, 2.0, "after the viewers left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut followed = server.engine_calls.followed_logs();
    followed.sort();
    assert_eq!(followed, containers, "one follow request per container");
}

// ---------------------------------------------------------------------------------------------
// 2. Timelines through lifecycle events

/// A Compose project of two numbered-line services. The number is kept in /tmp/n, so it goes
/// on across restarts of one container, and each run says where it starts (`start N`: the last
/// number before it) and, when stopped, where it stops (`stop N`): a viewer's lines of a
/// container show by themselves whether one is missing or repeated, even after the container
/// is gone from the engine.
/// - `counter` writes `line N` ten times a second until stopped;
/// - `crashloop` writes three lines, `crash N` on stderr, and exits with 3 at once; the engine
///   restarts it (restart: always) with its growing back-off;
/// - `once` is the same without restarts: it runs when someone starts it.
fn timeline_project_yaml() -> String {
    // `$$` is a `$` for the shell: Compose interpolates `$`.
    let counter = "mkdir -p /tmp; n=$$(cat /tmp/n 2>/dev/null || echo 0); echo \"start $$n\"; \
                   trap 'echo $$n > /tmp/n; echo \"stop $$n\"; exit 0' TERM INT; \
                   while true; do echo \"line $$((n += 1))\"; usleep 100000; done";
    let crashloop = "mkdir -p /tmp; n=$$(cat /tmp/n 2>/dev/null || echo 0); echo \"start $$n\"; \
                     for i in 1 2 3; do echo \"line $$((n += 1))\"; done; echo $$n > /tmp/n; \
                     echo \"crash $$n\" >&2; exit 3";
    format!(
        r#"version: "2.4"
x-base: &base
  image: lookout-fixture:latest
  network_mode: none
  stop_grace_period: 2s
services:
  counter:
    <<: *base
    command: ["/bin/sh", "-c", "{}"]
  crashloop:
    <<: *base
    restart: always
    command: ["/bin/sh", "-c", "{crashloop}"]
  once:
    <<: *base
    restart: "no"
    command: ["/bin/sh", "-c", "{crashloop}"]
"#,
        counter.replace('"', "\\\""),
        crashloop = crashloop.replace('"', "\\\"")
    )
}

/// A line of the timeline services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Start(u64),
    Line(u64),
    Stop(u64),
    Crash(u64),
}

fn event(line: &LogLine) -> Event {
    let parsed = line.text.split_once(' ').and_then(|(word, n)| {
        let n: u64 = n.parse().ok()?;
        Some(match word {
            "start" => Event::Start(n),
            "line" => Event::Line(n),
            "stop" => Event::Stop(n),
            "crash" => Event::Crash(n),
            _ => return None,
        })
    });
    parsed.unwrap_or_else(|| panic!("not a line of the timeline services: {line:?}"))
}

/// The stdout events of a container, in the order they came.
fn events(seen: &Seen, id: &str) -> Vec<Event> {
    seen.of(id)
        .into_iter()
        .filter(|l| l.stream == Stream::Stdout)
        .map(event)
        .collect()
}

/// Runs that started and lines written since the last start.
fn runs(seen: &Seen, id: &str) -> (usize, usize) {
    let ev = events(seen, id);
    let starts = ev.iter().filter(|e| matches!(e, Event::Start(_))).count();
    let since = ev
        .iter()
        .rev()
        .take_while(|e| !matches!(e, Event::Start(_)))
        .filter(|e| matches!(e, Event::Line(_)))
        .count();
    (starts, since)
}

fn ends_stopped(seen: &Seen, id: &str) -> bool {
    matches!(events(seen, id).last(), Some(Event::Stop(_)))
}

/// Checks every container's lines as the subscriber received them: from the container's very
/// first line (`start 0`), numbers up by exactly one, every run starting where the last one
/// ended (after a `stop` when `graceful`), cursors strictly increasing, no cursor twice.
fn check_timelines(seen: &Seen, graceful: bool) {
    let mut cursors = HashSet::new();
    for l in &seen.lines {
        assert!(cursors.insert(l.cursor.clone()), "a line came twice: {l:?}");
    }
    let ids: HashSet<&str> = seen.lines.iter().map(|l| &*l.cursor.container).collect();
    for short in ids {
        let lines: Vec<&LogLine> = seen
            .lines
            .iter()
            .filter(|l| &*l.cursor.container == short)
            .collect();
        // Cursors rise per stream: the engine stamps stdout and stderr apart, and a line of
        // one may reach Lookout after a later-stamped line of the other.
        let mut last_pos = [None, None];
        for l in &lines {
            let pos = l.cursor.position();
            let last_pos = &mut last_pos[usize::from(l.stream == Stream::Stderr)];
            assert!(
                last_pos.is_none_or(|p| pos > p),
                "container {short}: {l:?} came after a line with a later cursor {last_pos:?}"
            );
            *last_pos = Some(pos);
        }
        let mut last = 0;
        let mut running = false;
        let mut previous: Option<Event> = None;
        let mut crashes = Vec::new();
        for l in &lines {
            let e = event(l);
            let ok = match e {
                Event::Start(n) => {
                    n == last
                        && !running
                        && match previous {
                            None => n == 0,
                            Some(Event::Stop(_)) => true,
                            Some(_) => !graceful,
                        }
                }
                Event::Line(n) => running && n == last + 1,
                Event::Stop(n) => running && n == last,
                Event::Crash(n) => {
                    crashes.push(n);
                    true
                }
            };
            assert!(
                ok,
                "container {short}: {e:?} after {previous:?} (last number {last}, running \
                 {running}); its lines: {:?}",
                lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>()
            );
            match e {
                Event::Start(_) => running = true,
                Event::Line(n) => last = n,
                Event::Stop(_) => running = false,
                Event::Crash(_) => {}
            }
            if l.stream == Stream::Stdout {
                previous = Some(e);
            }
            if !graceful && matches!(e, Event::Line(n) if n % 3 == 0) {
                running = false; // a crashloop run writes three lines and exits
            }
        }
        // crashloop: one `crash` per run, on stderr, numbered with the run's last line.
        for (i, n) in crashes.iter().enumerate() {
            assert_eq!(
                *n,
                3 * (i as u64 + 1),
                "container {short}: crash lines {crashes:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_timeline_has_no_gap_and_no_repeat_through_restart_recreate_and_scaling() {
    let project = TempProject::from_yaml("life", &timeline_project_yaml(), &["counter"]).await;
    let server = Server::start_for(&project.name, &[]).await;
    let mut ws = server.ws().await;
    // The project is seconds old: a tail of 10000 is its whole log, so the subscriber sees
    // every container from its first line.
    ws.subscribe("counter", 10_000).await;
    ws.expect_subscribed("counter").await;
    let mut seen = Seen::default();
    let wait = Duration::from_secs(15);
    let first = project.id("counter").await;
    pump_until(
        &mut ws,
        "counter",
        &mut seen,
        wait,
        "lines of counter",
        |s| runs(s, &first).1 >= 5,
    )
    .await;
    // The tail is the container's whole log, its start included.
    assert_eq!(
        markers_since(&seen, 0),
        ["#1 started"],
        "the tail of a new project"
    );

    // `docker restart`: the same container; its counter goes on, after its exit and start.
    docker_ok(&["restart", "-t", "2", &first]).await;
    pump_until(
        &mut ws,
        "counter",
        &mut seen,
        wait,
        "lines of the restarted container and its markers",
        |s| {
            let (starts, since) = runs(s, &first);
            starts == 2 && since >= 3 && s.markers.len() >= 3
        },
    )
    .await;
    check_timelines(&seen, true);
    let said_in_order: Vec<String> = seen.markers[1..].iter().map(said).collect();
    assert_eq!(
        said_in_order,
        ["#1 exited with code 0", "#1 started"],
        "`docker restart`: the exit, then the start"
    );
    let exit = &seen.markers[1];
    let last_before_exit = seen.lines.iter().rev().find(|l| l.text.starts_with("stop"));
    assert!(
        last_before_exit.is_some_and(|l| l.cursor.ts_ns <= time_ns(&exit.ts)),
        "the exit marker is stamped after the run's `stop` line: {exit:?}"
    );
    assert_engine_lines_arrived(&mut ws, "counter", &mut seen, &first, wait, false).await;

    // `up --force-recreate`: a new container; the old one's lines end with its `stop`.
    project
        .compose(&["up", "-d", "--force-recreate", "counter"])
        .await;
    let second = project.id("counter").await;
    assert_ne!(second, first, "--force-recreate makes a new container");
    pump_until(
        &mut ws,
        "counter",
        &mut seen,
        wait,
        "the end of the old container, lines of the new one, and their markers",
        |s| ends_stopped(s, &first) && runs(s, &second).1 >= 3 && s.markers.len() >= 6,
    )
    .await;
    check_timelines(&seen, true);
    assert_eq!(
        markers_since(&seen, 3),
        ["#1 exited with code 0", "#1 started", "#1 was removed"],
        "`up --force-recreate`: the old one exits and is removed, the new one starts"
    );
    assert_engine_lines_arrived(&mut ws, "counter", &mut seen, &second, wait, false).await;

    // Scale 1 → 3: the new replicas' lines from their first.
    project.compose(&["up", "-d", "--scale", "counter=3"]).await;
    let three = project.ids("counter").await;
    assert_eq!(three.len(), 3, "{three:?}");
    assert!(
        three.contains(&second),
        "scaling up keeps {second}: {three:?}"
    );
    pump_until(
        &mut ws,
        "counter",
        &mut seen,
        wait,
        "lines of the 3 replicas and their starts",
        |s| three.iter().all(|id| runs(s, id).1 >= 3) && s.markers.len() >= 8,
    )
    .await;
    check_timelines(&seen, true);
    assert_eq!(
        markers_since(&seen, 6),
        ["#2 started", "#3 started"],
        "scaling to 3 starts #2 and #3"
    );
    for id in &three {
        assert_engine_lines_arrived(&mut ws, "counter", &mut seen, id, wait, false).await;
    }

    // Scale 3 → 1: the removed replicas' lines end with their `stop`; the last one goes on.
    project.compose(&["up", "-d", "--scale", "counter=1"]).await;
    let survivor = project.id("counter").await;
    let removed: Vec<&String> = three.iter().filter(|id| **id != survivor).collect();
    let before = runs(&seen, &survivor).1;
    pump_until(
        &mut ws,
        "counter",
        &mut seen,
        wait,
        "the end of the removed replicas and their markers",
        |s| {
            removed.iter().all(|id| ends_stopped(s, id))
                && runs(s, &survivor).1 >= before + 3
                && s.markers.len() >= 12
        },
    )
    .await;
    check_timelines(&seen, true);
    let mut scaled_down: Vec<String> = markers_since(&seen, 8)
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map_or(m.clone(), |(_, what)| what.to_owned())
        })
        .collect();
    scaled_down.sort();
    assert_eq!(
        scaled_down,
        [
            "exited with code 0",
            "exited with code 0",
            "was removed",
            "was removed"
        ],
        "scaling to 1: two replicas exit and are removed"
    );

    // Stopped: what the engine holds of every container left is exactly what came.
    project.compose(&["stop", "counter"]).await;
    pump_until(
        &mut ws,
        "counter",
        &mut seen,
        wait,
        "the stop of the last replica and its marker",
        |s| ends_stopped(s, &survivor) && s.markers.len() >= 13,
    )
    .await;
    let stopped = markers_since(&seen, 12);
    assert!(
        stopped.len() == 1 && stopped[0].ends_with("exited with code 0"),
        "`stop`: one exit with code 0; all markers: {:?}",
        seen.markers.iter().map(said).collect::<Vec<_>>()
    );
    for id in project.ids("counter").await {
        assert_engine_lines_arrived(&mut ws, "counter", &mut seen, &id, wait, true).await;
    }
    check_timelines(&seen, true);

    // A viewer who opens the service now is given the same timeline, in time order.
    let mut late = server.ws().await;
    late.subscribe("counter", 10_000).await;
    late.expect_subscribed("counter").await;
    let mut tail = Seen::default();
    let total = seen.lines.len();
    pump_until(
        &mut late,
        "counter",
        &mut tail,
        wait,
        "the late viewer's tail",
        |s| s.lines.len() >= total,
    )
    .await;
    let mut expected = seen.lines.clone();
    expected.sort_by(|a, b| a.cursor.cmp(&b.cursor));
    assert!(
        tail.lines == expected,
        "the late viewer's tail ({} lines) is not the live viewer's lines in time order ({})",
        tail.lines.len(),
        expected.len()
    );
    eprintln!(
        "[timeline] {} lines of {} containers, all accounted for: {}",
        total,
        seen.lines
            .iter()
            .map(|l| &l.cursor.container)
            .collect::<HashSet<_>>()
            .len(),
        seen.summary()
    );
}

#[tokio::test]
async fn a_crash_loop_reaches_the_viewer_run_by_run() {
    let project = TempProject::from_yaml("crash", &timeline_project_yaml(), &["crashloop"]).await;
    let id = project.id("crashloop").await;
    let server = Server::start_for(&project.name, &[]).await;
    let mut ws = server.ws().await;
    ws.subscribe("crashloop", 10_000).await;
    ws.expect_subscribed("crashloop").await;
    let restarts_before = restart_count(&id).await;
    let mut seen = Seen::default();

    // The engine restarts it after 0.1, 0.2, 0.4, 0.8, 1.6 s...: 6 runs take about 3 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let restarts = restart_count(&id).await;
        if restarts >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the engine restarted crashloop {restarts} times in 30 s"
        );
        pump(
            &mut ws,
            "crashloop",
            &mut seen,
            Duration::from_millis(200),
            |_| false,
        )
        .await;
    }
    // While it crashes on, every run the engine holds reaches the viewer.
    assert_engine_lines_arrived(&mut ws, "crashloop", &mut seen, &id, common::WAIT, false).await;
    check_timelines(&seen, false);

    // Stopped for good: what the engine holds is exactly what came, the last crash included.
    project.compose(&["stop", "-t", "1", "crashloop"]).await;
    assert_engine_lines_arrived(&mut ws, "crashloop", &mut seen, &id, common::WAIT, true).await;
    check_timelines(&seen, false);
    // Each run that began after the viewer came is shown starting and exiting: with code 3,
    // or without a code when the next run had already ended by the time the server looked
    // (the engine keeps only the latest exit).
    let restarts = restart_count(&id).await;
    pump(&mut ws, "crashloop", &mut seen, SECOND, |_| false).await;
    let said: Vec<String> = seen.markers.iter().map(said).collect();
    let started = said.iter().filter(|m| *m == "#1 started").count();
    let exited = said
        .iter()
        .filter(|m| *m == "#1 exited with code 3" || *m == "#1 exited")
        .count();
    assert_eq!(
        started + exited,
        said.len(),
        "only starts and exits: {said:?}"
    );
    assert!(
        said.last().is_some_and(|m| m == "#1 exited with code 3"),
        "stopped for good, the last marker is its exit with code 3: {said:?}"
    );
    let runs_watched = (restarts - restarts_before) as usize;
    assert!(
        started >= runs_watched && exited >= runs_watched,
        "{runs_watched} runs began after the viewer came; markers: {said:?}"
    );
    let delays: Vec<f64> = seen
        .lines
        .iter()
        .zip(&seen.arrived_ns)
        .filter(|(l, _)| l.stream == Stream::Stderr)
        .map(|(l, at)| (at - l.cursor.ts_ns) as f64 / 1e9)
        .collect();
    eprintln!(
        "[crash loop] {} runs; each `crash` line came {delays:.2?} s after the engine stamped it",
        delays.len()
    );
    // Each run's log was read from its end, after the lines delivered before it: the engine
    // was never made to read the whole log again (`hub/reopen.rs`).
    let logs = format!("/containers/{id}/logs?");
    let again: Vec<String> = server
        .engine_calls
        .requests()
        .into_iter()
        .filter(|r| r.contains(&logs) && !r.contains("since=0&"))
        .collect();
    let after_stops = again.iter().filter(|r| r.contains("follow=false")).count();
    assert!(
        after_stops >= runs_watched && again.iter().all(|r| !r.contains("tail=all")),
        "{again:#?}"
    );
}

// A container that fails at once, started again by hand (`docker start`, `docker-compose up`)
// while someone watches it: each run is over before the engine's `start` event is handled.
#[tokio::test]
async fn a_container_started_again_that_exits_at_once_shows_each_run() {
    let project = TempProject::from_yaml("once", &timeline_project_yaml(), &["once"]).await;
    let id = project.id("once").await;
    docker_ok(&["wait", &id]).await;
    let server = Server::start_for(&project.name, &[]).await;
    let mut ws = server.ws().await;
    ws.subscribe("once", 10_000).await;
    ws.expect_subscribed("once").await;
    let mut seen = Seen::default();
    assert_engine_lines_arrived(&mut ws, "once", &mut seen, &id, common::WAIT, true).await;
    for run in 2..=4 {
        docker_ok(&["start", &id]).await;
        docker_ok(&["wait", &id]).await;
        let (started, _) = runs(&seen, &id);
        assert_eq!(started, run - 1);
        // As for a running container: the run's lines, each once.
        assert_engine_lines_arrived(&mut ws, "once", &mut seen, &id, common::WAIT, true).await;
        check_timelines(&seen, false);
        pump(&mut ws, "once", &mut seen, common::WAIT, |s| {
            s.markers.len() >= 2 * run
        })
        .await;
        // The first run's with the tail (it is the whole log), then each one's live.
        let said: Vec<String> = seen.markers.iter().map(said).collect();
        let expected: Vec<&str> = (1..=run)
            .flat_map(|_| ["#1 started", "#1 exited with code 3"])
            .collect();
        assert_eq!(said, expected, "run {run}: each run's start and exit, once");
    }

    // A viewer who comes now is given the whole log with the last run's start and exit in
    // their places: the start after the previous run's last line, the exit at the end.
    let mut late = server.ws().await;
    late.subscribe("once", 10_000).await;
    late.expect_subscribed("once").await;
    let mut order: Vec<String> = Vec::new();
    // The tail comes within 10 s, then until a second of silence.
    let mut wait = common::WAIT;
    while let Some(msg) = late.reply_within(wait).await {
        wait = SECOND;
        match msg {
            ServerMessage::Lines { lines, .. } => order.extend(lines.into_iter().map(|l| l.text)),
            ServerMessage::Lifecycle { change, .. } => order.push(said(&change)),
            other => panic!("expected lines and markers of once, got {other:?}"),
        }
    }
    let crashes: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, t)| t.starts_with("crash"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(crashes.len(), 4, "four runs: {order:?}");
    let started: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, t)| *t == "#1 started")
        .map(|(i, _)| i)
        .collect();
    assert!(
        started.len() == 1 && started[0] > crashes[2],
        "one start, after the third run's last line: {order:?}"
    );
    assert_eq!(
        order.last().map(String::as_str),
        Some("#1 exited with code 3"),
        "the exit ends the timeline: {order:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Exact resume

/// The number of a line of the fixture's `fast`: `fast line <n>`.
fn fast_number(line: &LogLine) -> u64 {
    line.text
        .strip_prefix("fast line ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a line of fast: {line:?}"))
}

#[tokio::test]
async fn a_client_that_reconnects_ten_times_at_5000_lines_a_second_misses_nothing() {
    let _heavy = HEAVY.lock().await;
    let project = TempProject::fixture("resume", &["fast"]).await;
    let id = project.id("fast").await;
    // --ring-lines 50000 (10 s at 5000 lines/s, the default 10000 is 2 s): a resume finds its
    // cursor in memory even when a reconnection is slow on a busy machine.
    let server = Server::start_for(&project.name, &["--ring-lines", "50000"]).await;
    set_fast_rate(&id, 5000).await;
    tokio::time::sleep(SECOND).await;

    // For the first half, another viewer keeps the service's feed (and ring) alive; for the
    // second half nobody does, and each resume starts a feed afresh from the engine.
    let mut keeper = server.ws().await;
    keeper.subscribe("fast", 0).await;
    keeper.expect_subscribed("fast").await;
    let keeper = tokio::spawn(async move {
        loop {
            keeper.recv().await;
        }
    });
    let mut keeper = Some(keeper);

    let mut numbers: Vec<u64> = Vec::new();
    let mut last: Option<Cursor> = None;
    let started = Instant::now();
    for round in 0..10u64 {
        if round == 5 {
            keeper.take().expect("the keeper").abort();
        }
        if round >= 5 {
            // The last viewer gone, the feed ends with it.
            let deadline = Instant::now() + 5 * SECOND;
            while server.metric("lookout_subscribers").await != 0.0 {
                assert!(
                    Instant::now() < deadline,
                    "subscribers do not go to 0 once every socket is closed"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut ws = server.ws().await;
        match &last {
            None => ws.subscribe("fast", 0).await,
            Some(cursor) => {
                ws.subscribe_resume("fast", std::slice::from_ref(cursor))
                    .await
            }
        }
        ws.expect_subscribed("fast").await;
        // Reads for 300 to 600 ms from the first line; a feed that starts again (rounds 5 to 9)
        // reads the engine first, which on a loaded machine takes a while.
        let window = Duration::from_millis(300 + 100 * (round % 4));
        let mut until = Instant::now() + 5 * SECOND;
        let mut this_round = 0;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match ws.reply_within(left).await {
                None => break,
                Some(ServerMessage::Lines { lines, .. }) => {
                    if this_round == 0 {
                        until = Instant::now() + window;
                    }
                    for line in lines {
                        let n = fast_number(&line);
                        if let Some(prev) = numbers.last() {
                            assert_eq!(
                                n,
                                prev + 1,
                                "round {round}: line {n} came after line {prev} (resumed at \
                                 {last:?})"
                            );
                        }
                        numbers.push(n);
                        this_round += 1;
                        last = Some(line.cursor);
                    }
                }
                Some(ServerMessage::Dropped { count, .. }) => {
                    panic!("round {round}: the client was told it lost {count} lines")
                }
                Some(other) => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert!(
            this_round > 0,
            "round {round}: no line in 5 s at 5000 lines/s"
        );
        // Dropped without a close frame, as when a network goes away; lines pile up meanwhile.
        drop(ws);
        tokio::time::sleep(Duration::from_millis(100 * (round % 3))).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = numbers.len() as f64 / elapsed;
    eprintln!(
        "[resume] 10 connections, {} lines (fast line {}..={}) in {elapsed:.1} s, {rate:.0} lines/s, \
         none missing, none twice",
        numbers.len(),
        numbers[0],
        numbers[numbers.len() - 1]
    );
    assert!(
        rate > 1000.0,
        "fast wrote only {rate:.0} lines/s: the test did not run at a high rate"
    );
}

/// The counter numbers of `lines` (`line N`), in the order they came.
fn counter_numbers(lines: &[LogLine]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| match event(l) {
            Event::Line(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// Resumes `counter` from `last` on a new socket; returns what came until `done` holds of the
/// lines (within 10 s): lines, and the count of `dropped` messages.
async fn resume_counter(
    server: &Server,
    last: &Cursor,
    done: impl Fn(&[LogLine]) -> bool,
) -> (Vec<LogLine>, u64) {
    let mut ws = server.ws().await;
    ws.subscribe_resume("counter", std::slice::from_ref(last))
        .await;
    ws.expect_subscribed("counter").await;
    let deadline = Instant::now() + common::WAIT;
    let (mut lines, mut dropped) = (Vec::new(), 0);
    while !done(&lines) {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.reply_within(left).await {
            None => panic!(
                "the resumed lines awaited did not come within 10 s ({dropped} said dropped); came: {:?}",
                lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>()
            ),
            Some(ServerMessage::Lines { lines: more, .. }) => lines.extend(more),
            Some(ServerMessage::Dropped { count, .. }) => dropped += count,
            Some(other) => panic!("expected lines of counter, got {other:?}"),
        }
    }
    (lines, dropped)
}

/// A project whose `counter` writes `line N` ten times a second, and holds still (after one
/// line `held N`) while /tmp/hold exists.
fn away_project_yaml() -> String {
    // `$$` is a `$` for the shell: Compose interpolates `$`.
    let counter = "n=0; while true; do if [ -e /tmp/hold ]; then echo \"held $$n\"; \
                   while [ -e /tmp/hold ]; do usleep 100000; done; \
                   else echo \"line $$((n += 1))\"; usleep 100000; fi; done";
    format!(
        r#"version: "2.4"
services:
  counter:
    image: lookout-fixture:latest
    network_mode: none
    stop_grace_period: 1s
    command: ["/bin/sh", "-c", "{}"]
"#,
        counter.replace('"', "\\\"")
    )
}

// The ring holds the last 20 lines here (`--ring-lines 20`); a client away for longer is given
// what it missed, up to a ring's worth, and told how many lines it lost beyond. With history
// off, what it missed is read from the engine.
#[tokio::test]
async fn a_client_away_longer_than_the_ring_holds_resumes_from_the_engine() {
    away_longer_than_the_ring("away-engine", &["--history", "off"]).await;
}

// With history on, the same, read from history: the engine is never asked for a stretch of
// the past (a read with `until`), however long the client was away.
#[tokio::test]
async fn a_client_away_longer_than_the_ring_holds_resumes_from_history() {
    let server = away_longer_than_the_ring("away-history", &[]).await;
    let stretches: Vec<String> = server
        .engine_calls
        .requests()
        .into_iter()
        .filter(|r| {
            r.contains("/logs?")
                && r.split(['?', '&'])
                    .any(|kv| kv.starts_with("until=") && kv != "until=0")
        })
        .collect();
    assert_eq!(
        stretches,
        Vec::<String>::new(),
        "no stretch of the past read from the engine"
    );
}

async fn away_longer_than_the_ring(tag: &str, extra: &[&str]) -> Server {
    let project = TempProject::from_yaml(tag, &away_project_yaml(), &["counter"]).await;
    let id = project.id("counter").await;
    let args = [&["--ring-lines", "20"], extra].concat();
    let server = Server::start_for(&project.name, &args).await;
    let mut ws = server.ws().await;
    ws.subscribe("counter", 0).await;
    ws.expect_subscribed("counter").await;
    let first = ws
        .wait_lines("counter", |all| counter_numbers(all).len() >= 3)
        .await;
    let mut last = first.last().expect("lines").clone();
    drop(ws);

    // Away 3 s: about 30 lines written, 20 held by the ring, the rest read from the engine;
    // read until a line written after the return has come.
    tokio::time::sleep(3 * SECOND).await;
    let back = now_ns();
    let (lines, dropped) = resume_counter(&server, &last.cursor, |lines| {
        lines.iter().any(|l| l.cursor.ts_ns > back)
    })
    .await;
    let numbers = counter_numbers(&lines);
    let after = counter_numbers(std::slice::from_ref(&last))[0];
    assert_eq!(dropped, 0, "nothing lost after 3 s away: {numbers:?}");
    let expected: Vec<u64> = (after + 1..after + 1 + numbers.len() as u64).collect();
    assert_eq!(
        numbers, expected,
        "every line after the cursor, once, in order"
    );
    // More than the ring holds, however slowly a busy machine ran the counter: some of them
    // were read from the engine.
    let away = lines.iter().filter(|l| l.cursor.ts_ns <= back).count();
    assert!(
        away > 20,
        "3 s away at 10 lines a second, {away} lines given: {numbers:?}"
    );
    last = lines.last().expect("lines").clone();

    // Away 7 s: about 70 lines. The counter then holds still, so the lines written while away
    // are known: after the cursor, `line <after + 1>` to `line <n>` and `held <n>`.
    tokio::time::sleep(7 * SECOND).await;
    docker_ok(&["exec", &id, "touch", "/tmp/hold"]).await;
    let deadline = Instant::now() + common::WAIT;
    let held = loop {
        let tail = docker_ok(&["logs", "--tail", "1", &id]).await;
        if let Some(n) = tail.trim().strip_prefix("held ") {
            break n.parse::<u64>().expect("held N");
        }
        assert!(
            Instant::now() < deadline,
            "the counter did not hold still: {tail:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let after = counter_numbers(std::slice::from_ref(&last))[0];
    let missed = held - after + 1;
    assert!(missed > 60, "7 s away, only {missed} lines written");
    let held_line = format!("held {held}");
    let (lines, dropped) = resume_counter(&server, &last.cursor, |lines| {
        lines.iter().any(|l| l.text == held_line)
    })
    .await;
    // The client is given the last 40 of them, the ring's 20 and the 20 before read from the
    // engine, and told it lost the rest, which came before them.
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let mut expected: Vec<String> = (held - 38..=held).map(|n| format!("line {n}")).collect();
    expected.push(held_line.clone());
    assert_eq!(
        texts, expected,
        "the last 40 of the {missed} lines written while away, once, in order"
    );
    assert_eq!(
        dropped,
        missed - 40,
        "the {missed} lines missed less the 40 given are said lost"
    );
    server
}

// ---------------------------------------------------------------------------------------------
// 4. Backpressure

/// Lines of `fast` as one subscriber receives them, each accounted for: it is the one after
/// the last, or after the last plus the lines the server said were dropped in between.
#[derive(Default)]
struct Accounted {
    last: Option<u64>,
    /// Lines the server said were dropped since the last line.
    told: u64,
}

impl Accounted {
    fn take(&mut self, lines: &[LogLine]) {
        for line in lines {
            let n = fast_number(line);
            if let Some(prev) = self.last {
                assert_eq!(
                    n,
                    prev + 1 + self.told,
                    "line {n} after line {prev}, and the server said {} were dropped",
                    self.told
                );
            }
            self.told = 0;
            self.last = Some(n);
        }
    }
}

/// The number of fast's newest line in the engine's log.
async fn last_fast_line(id: &str) -> u64 {
    let last = docker_ok(&["logs", "--tail", "1", id]).await;
    last.trim()
        .strip_prefix("fast line ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the last line of fast: {last:?}"))
}

/// How long the slow subscriber stops reading: `LOOKOUT_TEST_STALL_SECS`, default 60 (the
/// issue's figure; set it lower for a quick run).
fn stall() -> Duration {
    let secs = std::env::var("LOOKOUT_TEST_STALL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_told_what_it_lost_and_costs_bounded_memory() {
    // The bound is a setting with a default.
    let help = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("--help")
        .output()
        .await
        .expect("run lookout --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let option: String = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--queue-lines "))
        .take(2)
        .collect();
    assert!(
        option.contains("LOOKOUT_QUEUE_LINES") && option.contains("[default: 10000]"),
        "--queue-lines has an environment variable and a default of 10000: {option}"
    );

    let _heavy = HEAVY.lock().await;
    let project = TempProject::fixture("backpressure", &["fast"]).await;
    let id = project.id("fast").await;
    let server = Server::start_for(&project.name, &["--queue-lines", "1000"]).await;
    set_fast_rate(&id, 10_000).await;
    let mut ws = server.ws().await;
    ws.subscribe("fast", 0).await;
    ws.expect_subscribed("fast").await;

    let mut lines_of = Accounted::default();

    // Reading for a while: the ring fills (10,000 lines).
    let warm = Instant::now() + 3 * SECOND;
    while let Some(msg) = ws
        .reply_within(warm.saturating_duration_since(Instant::now()))
        .await
    {
        match msg {
            ServerMessage::Lines { lines, .. } => lines_of.take(&lines),
            // 1000 lines are a tenth of a second here: a busy machine may fall behind.
            ServerMessage::Dropped { count, .. } => lines_of.told += count,
            other => panic!("while reading: {other:?}"),
        }
    }
    let before_stall = lines_of.last.expect("lines while reading");
    let baseline = server.rss_kib();

    // Stop reading, socket open: for `stall` at least, and until fast has written 5,000 lines
    // for each of its seconds (the flood the test needs, however slow the machine is today).
    let stall = stall();
    let flood = 5000 * stall.as_secs();
    let mut peak = baseline;
    let stalled = Instant::now();
    let mut read_in = vec![server.metric("lookout_lines_in_total").await];
    let written = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(server.rss_kib());
        if read_in.len() < (stalled.elapsed().as_secs() as usize) + 1 {
            read_in.push(server.metric("lookout_lines_in_total").await);
        }
        if stalled.elapsed() < stall {
            continue;
        }
        let written = last_fast_line(&id).await;
        if written.saturating_sub(before_stall) >= flood {
            break written;
        }
        assert!(
            stalled.elapsed() < 3 * stall,
            "fast wrote only {} lines in {:?}: not the flood the test needs",
            written.saturating_sub(before_stall),
            stalled.elapsed()
        );
    };
    let stall = stalled.elapsed();
    let resumed_ns = now_ns();

    // Reading again: first what the socket buffers held (written as the stall began; a small
    // `dropped` may be among them, from before the stall), then `dropped` with what was lost
    // during it, then fresh lines: written at most a second before reading resumed.
    let is_fresh = |l: &LogLine| l.cursor.ts_ns > resumed_ns - 1_000_000_000;
    let mut stale = 0usize;
    let mut dropped = 0u64;
    // The `dropped` messages since the last line.
    let mut told_just_before: Vec<u64> = Vec::new();
    let mut jump: Option<Vec<u64>> = None;
    let mut fresh: Vec<LogLine> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fresh.len() < 5000 {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.reply_within(left).await {
            None => panic!(
                "30 s after reading again: {stale} stale lines, told {dropped} dropped, \
                 {} fresh lines",
                fresh.len()
            ),
            Some(ServerMessage::Lines { lines, .. }) => {
                lines_of.take(&lines);
                for line in lines {
                    if fresh.is_empty() && is_fresh(&line) {
                        jump = Some(std::mem::take(&mut told_just_before));
                    }
                    if fresh.is_empty() && !is_fresh(&line) {
                        stale += 1;
                    } else {
                        fresh.push(line);
                    }
                    told_just_before.clear();
                }
            }
            Some(ServerMessage::Dropped { count, .. }) => {
                assert!(count > 0, "`dropped` with a count of 0");
                dropped += count;
                lines_of.told += count;
                told_just_before.push(count);
            }
            Some(other) => panic!("after the stall: {other:?}"),
        }
    }
    let first_fresh = &fresh[0];
    let jump = jump.expect("a first fresh line");
    assert!(
        !jump.is_empty(),
        "the first fresh line ({}) came without a `dropped` before it, after {stale} stale lines \
         (line {before_stall} was read before the stall; the engine held up to line {written} \
         when reading resumed); lines read from the engine, second by second during the \
         stall: {read_in:?}",
        first_fresh.text
    );
    let dropped_at_jump: u64 = jump.iter().sum();
    let metric_dropped = server.metric("lookout_lines_dropped_total").await;
    assert!(
        metric_dropped >= dropped as f64,
        "/metrics counts {metric_dropped} dropped lines, the subscriber was told {dropped}"
    );

    let growth_mib = (peak.saturating_sub(baseline)) as f64 / 1024.0;
    let during = written - before_stall;
    eprintln!(
        "[backpressure] --queue-lines 1000, stalled {stall:?} while fast wrote {during} lines \
         ({:.0}/s): {stale} stale lines came from the socket buffers, then `dropped` {dropped_at_jump}, \
         then fresh lines from {}; server RSS {:.1} MiB before, peak {:.1} MiB (+{growth_mib:.1} MiB)",
        during as f64 / stall.as_secs_f64(),
        first_fresh.text,
        baseline as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
    // Holding the lines written during the stall would take far more: each costs the server
    // about 200 bytes in memory (text, cursor, timestamp, replica), 20 MiB per 100,000 lines.
    assert!(
        growth_mib < 10.0,
        "the server grew by {growth_mib:.1} MiB while a subscriber did not read; the bound is 10 MiB"
    );
}

/// A project whose `fast` has its log rotated by the engine at every 250 KB (about 3,000 of
/// its lines), the newest 20 files kept (6 s of lines at 10,000 a second).
const ROTATING_YAML: &str = r#"version: "2.4"
services:
  fast:
    image: lookout-fixture:latest
    network_mode: none
    stop_grace_period: 1s
    command: ["/bin/sh", "/fixture/fast.sh"]
    logging:
      driver: json-file
      options:
        max-size: "250k"
        max-file: "20"
"#;

/// Docker's json-file reader, following a log as it rotates, sometimes sends a stream's last
/// entry again right after it (here, 3 times in 85 rotations of 250 KB in 30 s). The copy was taken for a line
/// of its own: a viewer saw it twice, or, when it fell among lines it had lost, was told of
/// one line too many (seen in CI in the test above).
#[tokio::test]
async fn a_log_the_engine_rotates_as_it_is_followed_reaches_the_viewer_once_in_order() {
    let _heavy = HEAVY.lock().await;
    let project = TempProject::from_yaml("rotating", ROTATING_YAML, &["fast"]).await;
    let id = project.id("fast").await;
    let server = Server::start_for(&project.name, &[]).await;
    set_fast_rate(&id, 10_000).await;
    let mut ws = server.ws().await;
    ws.subscribe("fast", 0).await;
    ws.expect_subscribed("fast").await;

    // 200,000 lines of at least 80 bytes each in the engine's files: 60 rotations or more.
    const LINES: u64 = 200_000;
    let mut lines_of = Accounted::default();
    let (mut first, mut taken, mut dropped) = (None, 0u64, 0u64);
    let started = Instant::now();
    while taken < LINES {
        match ws.reply_within(common::WAIT).await {
            None => panic!("no line for 10 s, after {taken} lines"),
            Some(ServerMessage::Lines { lines, .. }) => {
                lines_of.take(&lines);
                first = first.or_else(|| lines.first().map(fast_number));
                taken += lines.len() as u64;
            }
            // Legal, if the machine is slow; `Accounted` checks the count.
            Some(ServerMessage::Dropped { count, .. }) => {
                lines_of.told += count;
                dropped += count;
            }
            Some(other) => panic!("while reading: {other:?}"),
        }
    }
    let last = lines_of.last.expect("lines");
    eprintln!(
        "[rotation] fast line {}..={last}: {taken} lines in {:.1} s, once each and in order, \
         {dropped} said dropped",
        first.expect("a first line"),
        started.elapsed().as_secs_f64()
    );
}

/// A follow stream opened again reads the container's last lines (`tail`), not its whole log,
/// and checks that they reach back to lines delivered. Here they do not: the stream stalls
/// (the recording proxy holds it, as Docker's json-file reader does when it misses a
/// rotation) while the container writes 30,000 lines, more than the tail asked for. The
/// stream is opened once more from its start time alone, and the viewer gets every line, once.
#[tokio::test]
async fn a_stream_reopened_with_a_tail_too_short_reads_from_its_start_time_and_loses_nothing() {
    let project = TempProject::from_yaml("reopen", PROBES_YAML, &["probe"]).await;
    let id = project.id("probe").await;
    let server = Server::start_for(&project.name, &[]).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let m = marker("reopen");
    write_log(&id, "echo \"before $1\"", &m).await;
    ws.wait_line("probe", |l| l.text == format!("before {m}"))
        .await;

    let logs = format!("/containers/{id}/logs?");
    let follows = |r: &str| r.contains(&logs) && r.contains("follow=true");
    let before = server.engine_calls.requests().len();
    // The reopen waits until the engine holds all 30,000 lines, so that its tail (10,000 and
    // some) falls short of them however early the stall is found.
    let of = logs.clone();
    server
        .engine_calls
        .hold(move |r| r.contains(&of) && r.contains("follow=true"));
    assert_eq!(server.engine_calls.stall_open(follows), 1);
    write_log(&id, "seq 1 30000 | sed \"s/^/$1 /\"", &m).await;
    common::engine_logged(&id, &format!("{m} 30000"), WAIT).await;
    server.engine_calls.release();
    let mut numbers: Vec<u64> = Vec::new();
    // Found within about 3 s of the stall; the asks may have grown to one a minute.
    let deadline = Instant::now() + Duration::from_secs(75);
    while numbers.last() != Some(&30_000) {
        let Some((lines, _)) = ws.try_next_lines("probe", deadline).await else {
            panic!(
                "30,000 lines written after the stall, {} came",
                numbers.len()
            );
        };
        numbers.extend(
            lines
                .iter()
                .filter_map(|l| l.text.strip_prefix(&format!("{m} "))?.parse::<u64>().ok()),
        );
    }
    assert_eq!(
        numbers,
        (1..=30_000).collect::<Vec<_>>(),
        "each once, in order"
    );

    let reopened: Vec<String> = server.engine_calls.requests()[before..]
        .iter()
        .filter(|r| follows(r))
        .map(|r| {
            let tail = r.split(['?', '&']).find(|kv| kv.starts_with("tail="));
            tail.unwrap_or("no tail").to_owned()
        })
        .collect();
    let bounded = reopened.first().and_then(|t| t.strip_prefix("tail="));
    assert!(
        bounded.is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n < 30_000)),
        "first opened again with a tail shorter than the lines written: {reopened:?}"
    );
    assert_eq!(
        reopened.get(1).map(String::as_str),
        Some("tail=all"),
        "then from its start time alone: {reopened:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Long lines and TTY lines

/// A project with two silent services to write exact bytes into: `probe` and `ttyprobe`, the
/// same under a TTY (its output reaches the engine unmultiplexed, `\n` turned into `\r\n`).
const PROBES_YAML: &str = r#"version: "2.4"
x-base: &base
  image: lookout-fixture:latest
  network_mode: none
  stop_grace_period: 2s
  command: ["/bin/sh", "/fixture/probe.sh"]
services:
  probe:
    <<: *base
  ttyprobe:
    <<: *base
    tty: true
"#;

/// Writes to the log of container `id` through its process 1's stdout.
async fn write_log(id: &str, script: &str, m: &str) {
    let script = format!("{{ {script}; }} > /proc/1/fd/1");
    docker_ok(&["exec", id, "sh", "-c", &script, "sh", m]).await;
}

/// Subscribes to `service` of `server`, runs `script` (with `$1` = a fresh marker) writing to
/// the log of its container `id`, and returns the lines with the marker that came, once the
/// last one, `after <marker>`, has; and the marker.
async fn write_and_read(
    server: &Server,
    service: &str,
    id: &str,
    script: &str,
) -> (Vec<LogLine>, String) {
    let mut ws = server.ws().await;
    ws.subscribe(service, 0).await;
    ws.expect_subscribed(service).await;
    let m = marker(service);
    write_log(id, &format!("{script}; printf 'after %s\\n' \"$1\""), &m).await;
    let mut seen = Seen::default();
    let after = format!("after {m}");
    pump_until(
        &mut ws,
        service,
        &mut seen,
        Duration::from_secs(15),
        &format!("the lines written to {service}"),
        |s| s.lines.iter().any(|l| l.text == after),
    )
    .await;
    let lines = seen
        .lines
        .into_iter()
        .filter(|l| l.text.contains(&m))
        .collect();
    (lines, m)
}

/// The texts and `truncated` marks of lines, the long ones shortened.
fn shapes(lines: &[LogLine]) -> Vec<(String, usize, bool)> {
    lines
        .iter()
        .map(|l| (l.text.chars().take(50).collect(), l.text.len(), l.truncated))
        .collect()
}

#[tokio::test]
async fn a_1_mib_line_is_cut_at_64_kib_and_the_next_line_comes_whole() {
    let project = TempProject::from_yaml("long", PROBES_YAML, &["probe"]).await;
    let probe = project.id("probe").await;
    // The default --max-line-bytes, 65536.
    let server = Server::start_for(&project.name, &[]).await;
    let (lines, m) = write_and_read(
        &server,
        "probe",
        &probe,
        "printf 'big %s ' \"$1\"; head -c 1048576 /dev/zero | tr '\\0' x; printf '\\n'",
    )
    .await;
    assert_eq!(lines.len(), 2, "{:?}", shapes(&lines));
    let big = format!("big {m} {}", "x".repeat(1 << 20));
    assert_text(&lines[0], &big[..65536]);
    assert!(lines[0].truncated, "the cut line is marked truncated");
    assert_eq!(lines[0].stream, Stream::Stdout);
    assert_eq!(
        (lines[1].text.as_str(), lines[1].truncated),
        (format!("after {m}").as_str(), false),
        "the line after the long one"
    );

    // The same from the engine, over HTTP (with a tail that takes in every 16 KiB piece of the
    // long line: the engine's tail counts pieces, not lines).
    let tail: Vec<LogLine> = server
        .tail("probe", &[("tail", "1000")])
        .await
        .into_iter()
        .filter(|l| l.text.contains(&m))
        .collect();
    assert!(
        tail == lines,
        "/api/tail and the WebSocket differ: {:?} / {:?}",
        shapes(&tail),
        shapes(&lines)
    );
}

#[tokio::test]
async fn tty_lines_written_together_come_one_by_one_without_carriage_returns() {
    let project = TempProject::from_yaml("ttylines", PROBES_YAML, &["ttyprobe"]).await;
    let tty = project.id("ttyprobe").await;
    let server = Server::start_for(&project.name, &[]).await;
    // Three lines in one write (the TTY makes each `\n` a `\r\n`), the last of 10 KiB.
    let (lines, m) = write_and_read(
        &server,
        "ttyprobe",
        &tty,
        "s=$(head -c 10240 /dev/zero | tr '\\0' z); printf 'one %s\\ntwo %s\\nlong %s %s\\n' \"$1\" \"$1\" \"$1\" \"$s\"",
    )
    .await;
    let long = format!("long {m} {}", "z".repeat(10240));
    let expected = [
        format!("one {m}"),
        format!("two {m}"),
        long,
        format!("after {m}"),
    ];
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert!(
        texts == expected,
        "the lines as written, whole, without \\r: {:?}",
        shapes(&lines)
    );
    assert!(
        lines
            .iter()
            .all(|l| l.stream == Stream::Stdout && !l.truncated),
        "{lines:?}"
    );
}

// The engine stores a line over 16 KiB in pieces of 16 KiB, each with its own timestamp. From
// a TTY container the engine's stream is raw (not multiplexed) and bollard cuts it at newlines
// only, so one `LogOutput::Console` holds `<ts> <piece><ts> <piece>...\n`: none of those
// timestamps may end up inside the line.
#[tokio::test]
async fn a_1_mib_tty_line_is_cut_at_64_kib_with_nothing_added() {
    let project = TempProject::from_yaml("ttylong", PROBES_YAML, &["ttyprobe"]).await;
    let tty = project.id("ttyprobe").await;
    let server = Server::start_for(&project.name, &[]).await;
    let (lines, m) = write_and_read(
        &server,
        "ttyprobe",
        &tty,
        "printf 'big %s ' \"$1\"; head -c 1048576 /dev/zero | tr '\\0' y; printf '\\n'",
    )
    .await;
    assert_eq!(lines.len(), 2, "{:?}", shapes(&lines));
    let big = format!("big {m} {}", "y".repeat(1 << 20));
    assert_text(&lines[0], &big[..65536]);
    assert!(lines[0].truncated, "the cut line is marked truncated");
    assert_eq!(lines[1].text, format!("after {m}"));
}

#[tokio::test]
async fn sigterm_closes_sockets_with_going_away_and_exits_by_its_2_second_cut() {
    // Only reads the shared fixture. It times a 2 s deadline, so it does not run beside the
    // tests that load the machine with thousands of lines a second.
    let _heavy = HEAVY.lock().await;
    let mut server = Server::start().await;
    let mut ws = server.ws().await;
    ws.subscribe("web", 10).await;
    ws.expect_subscribed("web").await;
    ws.next_lines("web").await;

    let signalled = Instant::now();
    server.terminate().await;
    let frame = ws
        .close_frame_within(2 * SECOND)
        .await
        .expect("no close frame within 2 s of SIGTERM");
    let closed = signalled.elapsed();
    assert_eq!(
        u16::from(frame.code),
        1001,
        "the close code is 1001 (going away): {frame:?}"
    );
    // Lookout cuts itself off 2 s after it handles the signal, whatever is still open; the
    // third second is for a loaded machine to deliver the signal and reap the process.
    let status = server
        .wait_exit((3 * SECOND).saturating_sub(signalled.elapsed()))
        .await
        .unwrap_or_else(|| panic!("lookout still runs 3 s after SIGTERM"));
    let exited = signalled.elapsed();
    assert!(status.success(), "lookout exited with {status}");
    eprintln!("[shutdown] close frame after {closed:?}, exit after {exited:?}");
}

async fn restart_count(id: &str) -> u32 {
    docker_ok(&["inspect", "--format", "{{.RestartCount}}", id])
        .await
        .trim()
        .parse()
        .expect("a restart count")
}

/// An RFC 3339 time of the protocol as ns since the epoch.
fn time_ns(ts: &str) -> i64 {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("not an RFC 3339 time ({e}): {ts}"));
    i64::try_from(t.unix_timestamp_nanos()).expect("a time within i64 ns")
}

// A service that wrote 300 lines at once: a viewer of a ring of 20 asking for 20 gets the
// last 20, then what the service writes next, and never the 280 before them, which a follow
// reading from a little before the newest line finds. With history on and off.
#[tokio::test]
async fn the_lines_before_the_ring_never_reach_a_viewer_as_live() {
    let project = TempProject::numbered("ringstart", 300).await;
    let id = project.id("numbered").await;
    for (n, history) in ["on", "off"].into_iter().enumerate() {
        let server =
            Server::start_for(&project.name, &["--ring-lines", "20", "--history", history]).await;
        let mut ws = server.ws().await;
        ws.subscribe("numbered", 20).await;
        ws.expect_subscribed("numbered").await;
        let end = format!("end {n}");
        write_log(&id, "echo \"$1\"", &end).await;
        let got = ws
            .wait_lines("numbered", |all| all.iter().any(|l| l.text == end))
            .await;
        let texts: Vec<String> = got.into_iter().map(|l| l.text).collect();
        let mut want: Vec<String> = (281..=300).map(|i| format!("line {i}")).collect();
        // The end line of the round before, if any, is the newest before this one's.
        if n > 0 {
            want.drain(..1);
            want.push(format!("end {}", n - 1));
        }
        want.push(end);
        assert_eq!(
            texts, want,
            "history {history}: the ring's 20, then live lines"
        );
        // The follow went on from a little before the tail, where the lines left out are:
        // none of them was taken in again, and a new viewer's tail is the newest 20.
        let taken = server.metric("lookout_lines_in_total").await;
        assert_eq!(
            taken, 21.0,
            "history {history}: lines taken from the engine"
        );
        let mut late = server.ws().await;
        late.subscribe("numbered", 20).await;
        late.expect_subscribed("numbered").await;
        let tail: Vec<String> = late
            .wait_lines("numbered", |all| all.len() >= 20)
            .await
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert_eq!(tail, want[1..], "history {history}: a later viewer's tail");
    }
}
