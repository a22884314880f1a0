//! The byte bounds beside the line bounds, each hit on the real engine: the ring of a service
//! (`--ring-bytes`), one message to a viewer (`--max-batch-bytes`), a viewer's queue
//! (`--queue-bytes`) and a log read's frames read ahead of Lookout (`--read-ahead-bytes`);
//! and the pace a socket asks for (`/ws?pace_ms=`). Each test has a Compose project of its own with the fixture's `probe`,
//! whose log it writes into.

mod common;

use std::time::{Duration, Instant};

use app::protocol::{LogLine, ServerMessage};
use common::*;

/// Writes `count` lines of about 1,000 bytes, `<tag> <n> xxx…`, into the container's log at
/// once.
async fn write_kib_lines(id: &str, tag: &str, count: u32) {
    let script = format!(
        "awk 'BEGIN {{ pad = sprintf(\"%990s\", \"\"); gsub(/ /, \"x\", pad); \
         for (i = 1; i <= {count}; i++) print \"{tag} \" i \" \" pad }}' > /proc/1/fd/1"
    );
    docker_ok(&["exec", id, "sh", "-c", &script]).await;
}

fn number(line: &LogLine, tag: &str) -> Option<u32> {
    line.text
        .strip_prefix(tag)?
        .trim_start()
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// Subscribes with tail 0 and reads until the line `<tag> <count>` has come.
async fn follow_until(ws: &mut Ws, tag: &str, count: u32) -> Vec<LogLine> {
    ws.wait_lines("probe", |seen| {
        seen.iter().any(|l| number(l, tag) == Some(count))
    })
    .await
}

#[tokio::test]
async fn the_ring_keeps_at_most_ring_bytes_of_lines() {
    require_fixture().await;
    let project = TempProject::fixture("ringbytes", &["probe"]).await;
    let id = project.id("probe").await;
    // With history off: with it on, a tail longer than the ring is made up from history
    // (tested in history.rs), and the ring's bound could not be seen from outside.
    let server =
        Server::start_for(&project.name, &["--ring-bytes", "8192", "--history", "off"]).await;
    // The ring lives while someone follows the service.
    let mut follower = server.ws().await;
    follower.subscribe("probe", 0).await;
    follower.expect_subscribed("probe").await;
    let tag = marker("ring");
    write_kib_lines(&id, &tag, 50).await;
    follow_until(&mut follower, &tag, 50).await;

    let mut late = server.ws().await;
    late.subscribe("probe", 100).await;
    late.expect_subscribed("probe").await;
    let tail = late.next_lines("probe").await;
    let numbers: Vec<u32> = tail.iter().filter_map(|l| number(l, &tag)).collect();
    // About 2.5 KB each as the bound counts them (the text, and again in its JSON): three
    // fit in 8 KiB.
    assert!(
        (1..=7).contains(&numbers.len()),
        "a ring of 8 KiB holds a handful of 1 KB lines, not {}: {numbers:?}",
        numbers.len()
    );
    assert_eq!(numbers.last(), Some(&50), "the newest lines stay");
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1));
    // Nothing more is queued behind the tail: the ring gave all it holds.
    assert!(late
        .reply_within(Duration::from_millis(500))
        .await
        .is_none());
}

#[tokio::test]
async fn a_read_ahead_of_a_single_line_loses_no_line() {
    require_fixture().await;
    let project = TempProject::fixture("readahead", &["probe"]).await;
    let id = project.id("probe").await;
    // Room for one line of 1 KB ahead of Lookout: the log is read a line at a time, the rest
    // waiting in the engine.
    let server = Server::start_for(&project.name, &["--read-ahead-bytes", "1KiB"]).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let tag = marker("ahead");
    write_kib_lines(&id, &tag, 500).await;
    let lines = follow_until(&mut ws, &tag, 500).await;
    let numbers: Vec<u32> = lines.iter().filter_map(|l| number(l, &tag)).collect();
    assert_eq!(
        numbers,
        (1..=500).collect::<Vec<u32>>(),
        "every line, once, in order"
    );
}

#[tokio::test]
async fn a_lines_message_holds_at_most_max_batch_bytes() {
    require_fixture().await;
    let project = TempProject::fixture("batchbytes", &["probe"]).await;
    let id = project.id("probe").await;
    let server = Server::start_for(&project.name, &["--max-batch-bytes", "4096"]).await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let tag = marker("batch");
    write_kib_lines(&id, &tag, 30).await;
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut messages = 0;
    while !got.contains(&30) {
        let (lines, _) = ws
            .try_next_lines("probe", deadline)
            .await
            .unwrap_or_else(|| panic!("the 30 lines did not come within 10 s: {got:?}"));
        assert!(
            lines.len() <= 3,
            "a message of 4 KiB holds at most three lines of 1 KB, not {}",
            lines.len()
        );
        messages += 1;
        got.extend(lines.iter().filter_map(|l| number(l, &tag)));
    }
    assert_eq!(got, (1..=30).collect::<Vec<u32>>(), "every line, in order");
    assert!(messages >= 10, "30 lines in {messages} messages");
}

#[tokio::test]
async fn a_paced_socket_gets_a_burst_in_messages_a_pace_apart_and_a_pace_beyond_100_ms_is_refused()
{
    require_fixture().await;
    let project = TempProject::fixture("pace", &["probe"]).await;
    let id = project.id("probe").await;
    // Batches bound by their 1,000 lines only.
    let server = Server::start_for(&project.name, &["--max-batch-bytes", "4194304"]).await;
    for (query, why) in [
        ("pace_ms=101", "pace_ms must be between 0 and 100, got 101"),
        ("pace_ms=soon", "pace_ms"),
    ] {
        let refused = server.upgrade(&format!("/ws?{query}"), None).await;
        assert_eq!(refused.0, 400, "{query}: {}", refused.1);
        assert!(refused.1.contains(why), "{query}: {}", refused.1);
    }
    let mut ws = server.ws_at("/ws?pace_ms=100").await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let tag = marker("pace");
    let count = 3000;
    let script = format!(
        "awk 'BEGIN {{ for (i = 1; i <= {count}; i++) print \"{tag} \" i }}' > /proc/1/fd/1"
    );
    docker_ok(&["exec", &id, "sh", "-c", &script]).await;
    let deadline = Instant::now() + WAIT;
    let (mut got, mut messages, mut first, mut last) = (0, 0, None, Instant::now());
    while got < count {
        let (lines, at) = ws
            .try_next_lines("probe", deadline)
            .await
            .unwrap_or_else(|| panic!("{got} of the {count} lines came within 10 s"));
        got += lines.iter().filter(|l| number(l, &tag).is_some()).count() as u32;
        messages += 1;
        first.get_or_insert(at);
        last = at;
    }
    // After its first message a busy socket sends one every 100 ms at most, but for a full
    // batch (1,000 lines), which goes at once. The span is as this test read them: a first
    // message read up to 100 ms late shortens it by that.
    let span = last - first.expect("a message came");
    let paced = (span.as_millis() as u32 + 100) / 100 + 2;
    let full = count / 1000;
    assert!(
        messages <= paced + full,
        "{messages} messages in {span:?}: at most {paced} paced and {full} full batches"
    );
}

#[tokio::test]
async fn a_viewer_that_stops_reading_loses_lines_past_queue_bytes_and_is_told_how_many() {
    require_fixture().await;
    let project = TempProject::fixture("queuebytes", &["probe"]).await;
    let id = project.id("probe").await;
    // The line bound is far away: only the byte bound can cut.
    let server = Server::start_for(
        &project.name,
        &["--queue-bytes", "65536", "--queue-lines", "1000000"],
    )
    .await;
    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    // 30 MB while this viewer reads nothing: far more than the sockets' buffers hold.
    let tag = marker("queue");
    const COUNT: u32 = 30_000;
    write_kib_lines(&id, &tag, COUNT).await;
    let read_in = Instant::now() + Duration::from_secs(20);
    while server.metric("lookout_lines_in_total").await < f64::from(COUNT) {
        assert!(
            Instant::now() < read_in,
            "lookout did not read the {COUNT} lines within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (mut received, mut dropped) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = 0;
    while last != COUNT {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.reply_within(left).await {
            Some(ServerMessage::Lines { lines, .. }) => {
                for l in &lines {
                    let n = number(l, &tag).expect("a line of the burst");
                    assert!(n > last, "line {n} came after {last}: out of order or twice");
                    last = n;
                    received += 1;
                }
            }
            Some(ServerMessage::Dropped { count, service }) => {
                assert_eq!(service.as_deref(), Some("probe"), "says whose lines they were");
                dropped += count;
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!(
                "the burst's last line did not come within 30 s ({received} lines, {dropped} dropped)"
            ),
        }
    }
    assert!(
        dropped > 0,
        "a stalled viewer of a 64 KiB queue loses lines"
    );
    assert_eq!(
        received + dropped,
        u64::from(COUNT),
        "every line is either received or counted as dropped"
    );
}
