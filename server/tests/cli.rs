//! Acceptance tests of `lookout logs`: the real binary as a client of a real server that
//! follows the Compose fixture on the real engine. Its output is compared with what
//! `docker-compose logs` and `docker logs` print for the same containers, and `--follow` is
//! cut five times and has its server restarted under it.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::protocol::ProjectInfo;
use common::{container_ids, docker_ok, marker, Fd, Probe, Server, WAIT};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::task::JoinSet;

/// `lookout logs <args>` against `server` (an http://… address).
fn logs(server: &str, args: &[&str]) -> Command {
    client(server, "logs", args)
}

/// `lookout <command> <args>` against `server`.
fn client(server: &str, command: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lookout"));
    cmd.arg(command)
        .args(args)
        .env("LOOKOUT_SERVER", server)
        .env_remove("LOOKOUT_TOKEN")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `lookout logs <args>` to its end: exit code, stdout, stderr.
async fn run(server: &str, args: &[&str]) -> (Option<i32>, String, String) {
    run_command(server, "logs", args).await
}

/// Runs `lookout <command> <args>` to its end: exit code, stdout, stderr.
async fn run_command(server: &str, command: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(WAIT, client(server, command, args).output())
        .await
        .unwrap_or_else(|_| panic!("`lookout {command} {args:?}` did not end within 10 s"))
        .expect("run lookout logs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn address(server: &Server) -> String {
    format!("http://127.0.0.1:{}", server.port)
}

/// `docker-compose logs <args>` of the fixture, without the line v1 prints first.
async fn compose_logs(project: &str, args: &[&str]) -> String {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../end2end/fixture/docker-compose.yml"
    );
    let out = Command::new("docker-compose")
        .args(["-p", project, "-f", file, "logs", "--no-color"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run docker-compose logs");
    assert!(
        out.status.success(),
        "docker-compose logs {args:?}: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("Attaching to "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Waits until `lookout logs` and the engine's own client print the same, for lines that
/// may arrive between the two reads; fails with both outputs after 20 s.
async fn agree<A, B>(mut ours: A, mut theirs: B)
where
    A: AsyncFnMut() -> String,
    B: AsyncFnMut() -> String,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (a, b) = (ours().await, theirs().await);
        if a == b && !a.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "lookout printed:\n{a}\nthe engine's client:\n{b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `lookout logs -n N -t` against `docker-compose logs --tail -t`, read before and after it:
/// the service goes on writing meanwhile, so ours must be the engine's N lines (or all, for
/// a shorter log) that end where ours ends, and hold the newest line the engine had before.
async fn agree_tail(
    n: usize,
    ours: impl AsyncFnOnce() -> String,
    mut theirs: impl AsyncFnMut(usize) -> String,
) {
    let before = theirs(n).await;
    let a = ours().await;
    let after = theirs(n + 100).await;
    let (ours, all): (Vec<&str>, Vec<&str>) = (a.lines().collect(), after.lines().collect());
    let shown = || format!("lookout printed:\n{a}\nthe engine's client, after:\n{after}");
    let last = ours
        .last()
        .unwrap_or_else(|| panic!("lookout printed nothing"));
    let end = all
        .iter()
        .rposition(|l| l == last)
        .unwrap_or_else(|| panic!("{}", shown()))
        + 1;
    let start = end
        .checked_sub(ours.len())
        .unwrap_or_else(|| panic!("{}", shown()));
    assert_eq!(all[start..end], ours[..], "{}", shown());
    assert!(
        ours.len() == n || start == 0,
        "fewer than {n} lines, not from the start: {}",
        shown()
    );
    let newest = before
        .lines()
        .last()
        .expect("the engine's client printed lines");
    assert!(
        ours.contains(&newest),
        "lookout missed {newest:?}: {}",
        shown()
    );
}

#[tokio::test]
async fn one_service_prints_as_docker_compose_logs_prints_it() {
    let server = Server::start().await;
    let (at, project) = (address(&server), server.project.clone());
    for n in [5, 20_000] {
        let count = n.to_string();
        let args = ["json", "--no-log-prefix", "-t", "-n", &count];
        let ours = run(&at, &args);
        let theirs = async |tail: usize| {
            let tail = tail.to_string();
            compose_logs(
                &project,
                &["--no-log-prefix", "-t", "--tail", &tail, "json"],
            )
            .await
        };
        agree_tail(n, async || ours.await.1, theirs).await;
    }

    // The whole log (from the engine): the lines docker-compose printed come first, and a
    // line or two written in between may follow.
    let theirs = compose_logs(&project, &["--no-log-prefix", "json"]).await;
    let (code, ours, _) = run(&at, &["json", "--no-log-prefix"]).await;
    assert_eq!(code, Some(0));
    assert!(
        theirs.lines().count() > 5,
        "the fixture's json service has written lines"
    );
    assert!(
        ours.starts_with(&theirs),
        "lookout:\n{ours}\ndocker-compose:\n{theirs}"
    );
    assert!(ours.lines().count() <= theirs.lines().count() + 5);

    // With its prefix, as docker compose names a replica.
    let (_, ours, _) = run(&at, &["json", "-n", "3"]).await;
    assert_eq!(ours.lines().count(), 3);
    assert!(ours.lines().all(|l| l.starts_with("json-1 | {")), "{ours}");
}

#[tokio::test]
async fn a_window_of_time_is_the_one_docker_logs_prints() {
    let server = Server::start().await;
    let at = address(&server);
    let id = container_ids(&server.project, Some("json")).await.remove(0);
    let now = time::OffsetDateTime::now_utc();
    let rfc = |t: time::OffsetDateTime| {
        t.replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let (since, until) = (
        rfc(now - Duration::from_secs(30)),
        rfc(now - Duration::from_secs(3)),
    );
    // History fills from the engine as the server starts: wait until it holds the window.
    agree(
        async || {
            run(
                &at,
                &[
                    "json",
                    "--no-log-prefix",
                    "-t",
                    "--since",
                    &since,
                    "--until",
                    &until,
                ],
            )
            .await
            .1
        },
        async || docker_ok(&["logs", "-t", "--since", &since, "--until", &until, &id]).await,
    )
    .await;
}

#[tokio::test]
async fn filters_and_json_choose_and_describe_the_lines() {
    let server = Server::start().await;
    let at = address(&server);
    let (code, out, err) = run(&at, &["json", "-n", "40", "--json", "--level", ">=warn"]).await;
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object a line"))
        .collect();
    assert!(
        !rows.is_empty(),
        "the json service writes warnings and errors"
    );
    for row in &rows {
        assert_eq!(row["project"], server.project.as_str());
        assert_eq!(row["service"], "json");
        assert!(
            ["warn", "error", "fatal"].contains(&row["level"].as_str().unwrap()),
            "{row}"
        );
        assert!(row["cursor"].is_string() && row["text"].is_string());
    }

    let (_, out, _) = run(
        &at,
        &["web", "-n", "40", "--stream", "stderr", "--grep", "LINE"],
    )
    .await;
    assert!(out.lines().count() >= 10, "{out}");
    assert!(out.lines().all(|l| l.contains("stderr line")), "{out}");
    let (_, out, _) = run(
        &at,
        &["web", "-n", "40", "--grep", "std(out|err)", "-E", "-v"],
    )
    .await;
    assert_eq!(out, "", "every web line names its stream");
    let (code, _, err) = run(&at, &["web", "--grep", "(", "-E"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("lookout: --grep: invalid regular expression"),
        "{err}"
    );

    // The whole project, as `docker compose logs` with no service: merged in time order.
    let (code, out, err) = run(&at, &["-p", &server.project, "-n", "30", "-t"]).await;
    assert_eq!(code, Some(0), "{err}");
    let stamps: Vec<&str> = out
        .lines()
        .map(|l| {
            l.split_once(" | ")
                .expect("a prefix")
                .1
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "in time order:\n{out}"
    );
    for service in ["web-1", "json-1"] {
        assert!(
            out.lines().any(|l| l.starts_with(service)),
            "{service} in\n{out}"
        );
    }
    let (code, _, err) = run(&at, &["-p", "no-such-project"]).await;
    assert_eq!(
        (code, err.as_str()),
        (Some(1), "lookout: unknown project no-such-project\n")
    );

    // The download the client reads, asked for in a format it does not have.
    let (status, body) = server
        .get(
            "/api/download",
            &[
                ("project", &server.project),
                ("service", "json"),
                ("format", "xml"),
            ],
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "format must be text or jsonl, got \"xml\"")
    );
}

#[tokio::test]
async fn each_failure_exits_1_with_one_clear_line_and_a_closed_pipe_exits_quietly() {
    let server = Server::start().await;
    let at = address(&server);
    let (code, out, err) = run(&at, &["nosuch"]).await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (Some(1), "", "lookout: unknown service nosuch\n")
    );
    let (code, _, err) = run(&at, &[&format!("{}/nosuch", server.project)]).await;
    assert_eq!((code, err.lines().count()), (Some(1), 1), "{err}");

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nobody = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (code, _, err) = run(&nobody, &["web"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!("lookout: cannot reach Lookout at {nobody}: Connection refused (os error 111)\n")
    );
    let (code, _, err) =
        run_command("http://192.0.2.1:8080", "logs", &["web", "--token", "lk_x"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("lookout: a token sent over plain http to 192.0.2.1"),
        "{err}"
    );
    let (code, _, err) = run("ftp://example", &["web"]).await;
    assert_eq!((code, err.lines().count()), (Some(1), 1), "{err}");

    // `| head -1`: the reader takes one line and goes; lookout ends with 0 and says nothing.
    let mut child = logs(&at, &["web", "-f"]).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).await.unwrap();
    assert!(first.starts_with("web-"), "{first}");
    drop(out);
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("ends once its reader left")
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    assert_eq!((status.code(), err.as_str()), (Some(0), ""));
}

#[tokio::test]
async fn ps_lists_each_service_with_its_replicas_as_the_engine_has_them() {
    let server = Server::start().await;
    let at = address(&server);
    let (code, table, err) = run_command(&at, "ps", &[]).await;
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let mut rows = table.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["PROJECT", "SERVICE", "STATE", "REPLICAS", "HEALTH", "EXIT"]
    );
    let web = rows
        .map(|r| r.split_whitespace().collect::<Vec<_>>())
        .find(|r| r[0] == server.project && r[1] == "web")
        .unwrap_or_else(|| panic!("no web row in\n{table}"));
    let replicas = container_ids(&server.project, Some("web")).await.len();
    assert_eq!(
        web[2..4],
        ["running".to_owned(), format!("{replicas}/{replicas}")]
    );

    let (_, json, _) = run_command(&at, "ps", &["--json"]).await;
    let projects: Vec<ProjectInfo> = serde_json::from_str(&json).expect("the protocol's listing");
    let fixture = projects.iter().find(|p| p.name == server.project).unwrap();
    let web = fixture
        .services
        .iter()
        .find(|s| s.service == "web")
        .unwrap();
    assert_eq!(web.containers.len(), replicas);
}

#[tokio::test]
async fn search_prints_the_newest_hits_of_history_oldest_first() {
    let server = Server::start().await;
    let at = address(&server);
    let m = marker("cli-search");
    let probe = Probe::find(&server.project).await;
    for n in 1..=4 {
        probe
            .printf(Fd::Stdout, "%s hit %s\\n", &[&m, &n.to_string()])
            .await;
    }
    // History takes the lines as the follower reads them: wait until the four are found.
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let (code, out, err) = run_command(&at, "search", &[&m, "-n", "3"]).await;
        assert_eq!(code, Some(0), "{err}");
        if out.lines().count() == 3 && out.contains("hit 4") {
            break out;
        }
        assert!(Instant::now() < deadline, "three hits within 20 s: {out}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let lines: Vec<&str> = out.lines().collect();
    for (line, n) in lines.iter().zip(2..=4) {
        let (prefix, rest) = line.split_once(" | ").expect("a prefix");
        assert_eq!(prefix, "probe-1");
        let (ts, text) = rest.split_once(' ').expect("a timestamp");
        assert!(ts.ends_with('Z') && ts.len() == 30, "{ts}");
        assert_eq!(text, format!("{m} hit {n}"));
    }
    let (_, json, _) = run_command(&at, "search", &[&format!("{m} \"hit 1\""), "--json"]).await;
    let hit: serde_json::Value = serde_json::from_str(json.trim()).expect("one hit");
    assert_eq!(
        (hit["service"].as_str(), hit["text"].as_str()),
        (Some("probe"), Some(format!("{m} hit 1").as_str()))
    );
    let (code, _, err) = run_command(&at, "search", &["/(/"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A TCP relay between the client and the server: it can cut every connection through it,
/// and be pointed at another server (the same one restarted).
struct Relay {
    port: u16,
    target: Arc<AtomicU16>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(AtomicU16::new(target));
        let (cut, mut cuts) = tokio::sync::watch::channel(0);
        let to = target.clone();
        tokio::spawn(async move {
            let mut open = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { return };
                        let port = to.load(Ordering::SeqCst);
                        open.spawn(async move {
                            let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await else { return };
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        });
                    }
                    _ = cuts.changed() => open.abort_all(),
                }
            }
        });
        Relay { port, target, cut }
    }

    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// Reads the client's stdout as it comes; the web service's numbered lines, by replica
/// and stream, and how many lines came.
#[derive(Default)]
struct Numbers {
    seen: BTreeMap<(String, String), Vec<u64>>,
    lines: usize,
}

impl Numbers {
    /// `<timestamp> web <host> <stream> line <n>`, or `<timestamp> {"n":<n>,…}` of `json`;
    /// its timestamp in nanoseconds.
    fn take(&mut self, line: &str) -> i64 {
        let (ts, text) = line.split_once(' ').expect("a timestamp, then the line");
        let (key, n) = if text.starts_with('{') {
            let object: serde_json::Value = serde_json::from_str(text).expect("a json line");
            (
                ("json".into(), "stdout".into()),
                object["n"].as_u64().unwrap(),
            )
        } else {
            let words: Vec<&str> = text.split_whitespace().collect();
            let [_, host, stream, _, n] = words[..] else {
                panic!("not a web line: {line:?}");
            };
            ((host.to_owned(), stream.to_owned()), n.parse().unwrap())
        };
        self.seen.entry(key).or_default().push(n);
        self.lines += 1;
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let at = time::OffsetDateTime::parse(ts, rfc3339).expect("an RFC 3339 timestamp");
        at.unix_timestamp_nanos() as i64
    }
}

/// Waits until the server counts `n` subscribers.
async fn subscribers(server: &Server, n: f64) {
    let deadline = Instant::now() + WAIT;
    while server.metric("lookout_subscribers").await != n {
        assert!(Instant::now() < deadline, "{n} subscribers within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_line_written_while_cut_before_any_line_came_is_not_lost() {
    let server = Server::start().await;
    let relay = Relay::start(server.port).await;
    let at = format!("http://127.0.0.1:{}", relay.port);
    let probe = Probe::find(&server.project).await;
    let quiet = probe.lock().await;
    let mut child = logs(&at, &["probe", "-f", "-n", "0", "--no-log-prefix"])
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    subscribers(&server, 1.0).await;
    // The relay now leads nowhere: the client tries again and again while a line is written.
    let nowhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    relay
        .target
        .store(nowhere.local_addr().unwrap().port(), Ordering::SeqCst);
    drop(nowhere);
    relay.cut();
    subscribers(&server, 0.0).await;
    let m = marker("while-cut");
    quiet.printf(Fd::Stdout, "%s\\n", &[&m]).await;
    relay.target.store(server.port, Ordering::SeqCst);
    let line = tokio::time::timeout(Duration::from_secs(20), out.next_line()).await;
    assert_eq!(
        line.expect("the line within 20 s").unwrap().as_deref(),
        Some(m.as_str())
    );
    drop(quiet);
}

#[tokio::test]
async fn follow_survives_five_cuts_and_a_server_restart_with_every_line_once() {
    let mut server = Server::start().await;
    let relay = Relay::start(server.port).await;
    let at = format!("http://127.0.0.1:{}", relay.port);
    // Two services of a project, each with a line taken: one socket follows both.
    let follow = ["web", "json", "-f", "-n", "1", "--no-log-prefix", "-t"];
    let mut child = logs(&at, &follow).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut numbers = Numbers::default();
    // Reads lines until 4 were stamped after `since_ns`: written after that moment, not
    // waiting in the pipe from before it.
    let mut after = async |numbers: &mut Numbers, since_ns: i64| {
        let mut fresh = 0;
        while fresh < 4 {
            let line = tokio::time::timeout(Duration::from_secs(20), out.next_line()).await;
            let line = line
                .expect("lines go on within 20 s")
                .unwrap()
                .expect("stdout open");
            if numbers.take(&line) > since_ns {
                fresh += 1;
            }
        }
    };
    let mut notices = Vec::new();
    let mut reconnected = async |notices: &mut Vec<String>| loop {
        let line = tokio::time::timeout(Duration::from_secs(20), err.next_line()).await;
        let line = line
            .expect("a reconnection within 20 s")
            .unwrap()
            .expect("stderr open");
        notices.push(line.clone());
        if line.contains("reconnected to") {
            return;
        }
    };
    after(&mut numbers, common::now_ns()).await;
    for _ in 0..5 {
        relay.cut();
        reconnected(&mut notices).await;
        after(&mut numbers, common::now_ns()).await;
    }
    server.terminate().await;
    server
        .wait_exit(WAIT)
        .await
        .expect("the server stops on SIGTERM");
    let again = Server::start().await;
    relay.target.store(again.port, Ordering::SeqCst);
    reconnected(&mut notices).await;
    after(&mut numbers, common::now_ns()).await;

    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl+C exits 130");
    let lost = notices
        .iter()
        .filter(|l| l.contains("reconnecting"))
        .count();
    assert_eq!(
        lost, 6,
        "stderr says each time it lost the server: {notices:#?}"
    );

    assert_eq!(
        numbers.seen.len(),
        5,
        "web's two replicas and two streams, and json: {:?}",
        numbers.seen.keys()
    );
    for (key, got) in &numbers.seen {
        let expected: Vec<u64> = (got[0]..got[0] + got.len() as u64).collect();
        assert_eq!(got, &expected, "{key:?}: every number once, none missing");
    }
}
