//! Acceptance tests of builds: the real `lookout capture` around real commands (a real
//! `docker-compose build` on the real engine among them), a real server keeping them in a
//! real store on disk, read back over HTTP and by `lookout logs --build`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use app::builds::{BuildInfo, BuildResult};
use common::{marker, require_fixture, Logging, Server, WAIT};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// A file whose existence lets a test's command end: made when dropped too, so that a
/// failed test leaves no command waiting for it.
struct Flag(PathBuf);

impl Flag {
    fn new() -> Flag {
        Flag(std::env::temp_dir().join(marker("lookout-build-flag")))
    }
    fn raise(&self) {
        std::fs::write(&self.0, "").unwrap();
    }
}

impl Drop for Flag {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

/// `lookout <command> <args>` against `server`, with `token` if any.
fn lookout(server: &str, token: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lookout"));
    cmd.args(args)
        .env("LOOKOUT_SERVER", server)
        .env_remove("LOOKOUT_TOKEN")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.env("LOOKOUT_TOKEN", t);
    }
    cmd
}

/// Runs a command to its end, within `wait`: exit code, stdout, stderr.
async fn output(mut cmd: Command, wait: Duration) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(wait, cmd.output())
        .await
        .expect("the command ends in time")
        .expect("the command runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// `lookout capture --project P [--service S] -- sh -c SCRIPT` to its end.
async fn capture(
    server: &str,
    token: Option<&str>,
    project: &str,
    service: Option<&str>,
    script: &str,
) -> (Option<i32>, String, String) {
    let mut args = vec!["capture", "--project", project];
    args.extend(service.iter().flat_map(|s| ["--service", s]));
    args.extend(["--", "sh", "-c", script]);
    output(lookout(server, token, &args), WAIT).await
}

fn address(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

async fn builds(port: u16, project: &str, service: &str) -> Vec<BuildInfo> {
    let url = format!("{}/api/builds", address(port));
    let answer = reqwest::Client::new()
        .get(url)
        .query(&[("project", project), ("service", service)])
        .send()
        .await
        .expect("ask for the builds");
    assert!(answer.status().is_success(), "{answer:?}");
    answer.json().await.expect("a list of builds")
}

/// A fresh project name: builds need no containers.
fn fresh_project() -> String {
    marker("lkbuild").replace(['-', '_'], "").to_lowercase()
}

/// A Compose file whose two services build the fixture's image (FROM scratch, so nothing
/// is pulled): `web` and `worker`.
fn compose_file(dir: &Path) -> PathBuf {
    let context = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end/fixture/image");
    let file = dir.join("docker-compose.yml");
    let service = |name: &str| {
        format!(
            "  {name}:\n    build: {context}\n    image: lookout-fixture:latest\n    \
             network_mode: none\n"
        )
    };
    let text = format!(
        "version: \"2.4\"\nservices:\n{}{}",
        service("web"),
        service("worker")
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compose_build_is_passed_through_and_kept_by_service() {
    require_fixture().await;
    let server = Server::start_with(None, &[], &[]).await;
    let at = address(server.port);
    let project = fresh_project();
    let dir = std::env::temp_dir().join(marker("lookout-compose-build"));
    let file = compose_file(&dir);
    let file = file.to_str().unwrap();
    let build = ["docker-compose", "-p", &project, "-f", file, "build"];
    // Once alone (so the second run is all cache and prints the same), then captured.
    let mut alone = Command::new(build[0]);
    alone
        .args(&build[1..])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let (code, plain, plain_err) = output(alone, Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{plain}{plain_err}");
    let mut args = vec!["capture", "--project", &project, "--"];
    args.extend(build);
    let (code, out, err) = output(lookout(&at, None, &args), Duration::from_secs(120)).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, plain, "the output passes through unchanged");
    assert_eq!(err, plain_err, "and its errors: {err}");

    let listed = builds(server.port, &project, "web").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].result, BuildResult::Exited { code: 0 });
    assert_eq!(listed[0].services, ["web", "worker"]);
    assert!(listed[0].ended_ns.unwrap() >= listed[0].started_ns);

    let by_service = |service: &'static str| {
        let name = format!("{project}/{service}");
        let at = at.clone();
        async move { output(lookout(&at, None, &["logs", "--build", &name]), WAIT).await }
    };
    let (code, web, err) = by_service("web").await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("build #1") && err.contains("exit 0"), "{err}");
    assert!(web.starts_with("Building web\n"), "{web}");
    assert!(web.contains("Step 1/"), "{web}");
    assert!(!web.contains("worker"), "only web's part: {web}");
    let (_, worker, _) = by_service("worker").await;
    assert!(worker.contains("Building worker\n"), "{worker}");
    assert!(!web.contains("Building worker") && !worker.contains("Building web"));
    // The two outputs are two pipes: their lines are in order within each, and each
    // service's part holds its own (a line read just across a part's edge may fall in the
    // other part, so parts are compared as sets).
    let mut stored: Vec<&str> = web.lines().chain(worker.lines()).collect();
    let plain_lines = plain.replace("\r\n", "\n");
    let mut written_lines: Vec<&str> = plain_lines.lines().chain(plain_err.lines()).collect();
    stored.sort_unstable();
    written_lines.sort_unstable();
    assert_eq!(stored, written_lines, "every line kept once, by service");
    assert_eq!(
        web.matches("Step 1/").count() + worker.matches("Step 1/").count(),
        2
    );
    assert!(web.contains("Step 1/") && worker.contains("Step 1/"));
}

/// A build's lines as the server shows them: (stream, text).
async fn shown(at: &str, project: &str, service: &str, number: u64) -> Vec<(String, String)> {
    let url = format!("{at}/api/builds/lines?project={project}&service={service}&number={number}");
    let page: app::builds::BuildPage = reqwest::get(url).await.unwrap().json().await.unwrap();
    page.lines
        .into_iter()
        .map(|l| (format!("{:?}", l.stream).to_lowercase(), l.text))
        .collect()
}

/// Lines grouped by output, stderr first, each output's in its order.
fn by_stream(mut lines: Vec<(String, String)>) -> Vec<(String, String)> {
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_command_keeps_its_status_and_its_output_redacted_across_a_restart() {
    require_fixture().await;
    let dir = std::env::temp_dir().join(marker("lookout-build-data"));
    let data = format!("--data-dir={}", dir.display());
    let server = Server::start_with(None, &[&data], &[]).await;
    let at = address(server.port);
    let project = fresh_project();
    let script = "echo one; echo two >&2; echo password=hunter2; printf 'no newline'; exit 7";
    let (code, out, err) = capture(&at, None, &project, Some("api"), script).await;
    assert_eq!(code, Some(7));
    assert_eq!(out, "one\npassword=hunter2\nno newline");
    assert_eq!(err, "two\n", "nothing of the capture's own on a success");

    let (code, _, _) = capture(&at, None, &project, Some("api"), "kill -TERM $$").await;
    assert_eq!(code, Some(143), "a signal's end as a shell reports it");

    // Each output in its order (the two are two pipes: which of two lines written to
    // each at once came first cannot be known), redacted.
    let want = [
        ("stderr", "two"),
        ("stdout", "one"),
        ("stdout", "password=[REDACTED:assignment]"),
        ("stdout", "no newline"),
    ]
    .map(|(s, t)| (s.to_owned(), t.to_owned()));
    assert_eq!(by_stream(shown(&at, &project, "api", 1).await), want);
    let mut server = server;
    server.terminate().await;
    assert!(
        server.wait_exit(WAIT).await.is_some(),
        "lookout stops on TERM"
    );
    drop(server);

    // Read back from disk by a new server: the store holds the build, redacted.
    let server = Server::start_with(None, &[&data], &[]).await;
    let at = address(server.port);
    let listed = builds(server.port, &project, "api").await;
    let results: Vec<_> = listed.iter().map(|b| (b.number, b.result)).collect();
    assert_eq!(
        results,
        [
            (2, BuildResult::Exited { code: 143 }),
            (1, BuildResult::Exited { code: 7 })
        ]
    );
    assert_eq!(by_stream(shown(&at, &project, "api", 1).await), want);
    let (code, _, _) = capture(&at, None, &project, Some("api"), "echo again").await;
    assert_eq!(code, Some(0));
    assert_eq!(
        builds(server.port, &project, "api").await[0].number,
        3,
        "numbers go on"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_build_is_followed_live_until_it_ends() {
    require_fixture().await;
    let server = Server::start_with(None, &[], &[]).await;
    let at = address(server.port);
    let project = fresh_project();
    let flag = Flag::new();
    let script = format!(
        "echo first; while [ ! -e {f} ]; do sleep 0.05; done; echo second; exit 0",
        f = flag.0.display()
    );
    let args = [
        "capture",
        "--project",
        &project,
        "--service",
        "app",
        "--",
        "sh",
        "-c",
        &script,
    ];
    let mut running = lookout(&at, None, &args).spawn().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while builds(server.port, &project, "app").await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the build is listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let name = format!("{project}/app");
    let mut follow = lookout(&at, None, &["logs", "--build", "-f", &name])
        .spawn()
        .unwrap();
    let mut followed = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first = wait_line(&mut followed).await;
    assert_eq!(first, "first");
    let listed = builds(server.port, &project, "app").await;
    assert_eq!(listed[0].result, BuildResult::Running);
    flag.raise();
    assert_eq!(wait_line(&mut followed).await, "second");
    let status = tokio::time::timeout(WAIT, follow.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let status = tokio::time::timeout(WAIT, running.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        builds(server.port, &project, "app").await[0].result,
        BuildResult::Exited { code: 0 }
    );
}

async fn wait_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("a line within 10 s")
        .unwrap()
        .expect("a line before the end")
}

/// `lookout <args>` with `stdin` fed, to its end.
async fn admin(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .env_remove("LOOKOUT_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn capturing_needs_a_token_made_to_write_within_its_scope() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(marker("build-tokens"));
    std::fs::create_dir_all(&dir).unwrap();
    let (users, tokens) = (dir.join("users"), dir.join("tokens"));
    let (users, tokens) = (users.to_str().unwrap(), tokens.to_str().unwrap());
    let added = admin(
        &["--users-file", users, "users", "add", "alice"],
        "a long password\n",
    )
    .await;
    assert_eq!(added.0, Some(0), "{added:?}");
    let project = fresh_project();
    let token = |name: &'static str, scope: Option<String>, write: bool| {
        let mut args = vec!["--tokens-file".to_owned(), tokens.to_owned()];
        args.extend(["users", "token", "add", name].map(String::from));
        args.extend(scope.into_iter().flat_map(|s| ["--scope".to_owned(), s]));
        args.extend(write.then(|| "--write".to_owned()));
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out, err) = admin(&args, "").await;
            assert_eq!(code, Some(0), "{err}");
            out.trim().to_owned()
        }
    };
    let reader = token("reader", None, false).await;
    let writer = token("deploy", Some(format!("{project}/web")), true).await;
    let data = dir.join("data");
    let env = [
        ("LOOKOUT_USERS_FILE", users),
        ("LOOKOUT_TOKENS_FILE", tokens),
        ("LOOKOUT_DATA_DIR", data.to_str().unwrap()),
    ];
    let server = Logging::start(&["--listen", "127.0.0.1:0", "--auth", "users"], &env).await;
    let at = address(server.port);
    let ran = dir.join("ran");
    let script = format!("touch {}; echo built", ran.display());
    let try_as = |token: Option<&str>, service: Option<&'static str>| {
        let (at, project, script) = (at.clone(), project.clone(), script.clone());
        let token = token.map(str::to_owned);
        async move { capture(&at, token.as_deref(), &project, service, &script).await }
    };

    let (web, db) = (Some("web"), Some("db"));
    let refusals = [
        (None, web, "asks for a token (401)"),
        (Some(reader.as_str()), web, "token reader may only read"),
        (
            Some(writer.as_str()),
            db,
            "token deploy's scope does not reach",
        ),
        (Some(writer.as_str()), None, "does not reach all of"),
    ];
    for (token, service, said) in refusals {
        let (code, out, err) = try_as(token, service).await;
        assert_eq!((code, out.as_str()), (Some(1), ""), "{err}");
        assert!(err.contains(said), "{said:?} in {err:?}");
        assert!(!ran.exists(), "a refused capture does not run its command");
    }
    let (code, out, err) = try_as(Some(&writer), web).await;
    assert_eq!((code, out.as_str(), err.as_str()), (Some(0), "built\n", ""));
    assert!(ran.exists());

    let removed = admin(
        &[
            "--tokens-file",
            tokens,
            "users",
            "token",
            "remove",
            "deploy",
        ],
        "",
    )
    .await;
    assert_eq!(removed.0, Some(0));
    let (code, _, err) = try_as(Some(&writer), web).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("refused the token (401)"), "{err}");

    let log = server.stop().await;
    assert!(
        !log.iter()
            .any(|l| l.contains(&writer[3..]) || l.contains(&reader[3..])),
        "no token in the server's log"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_bound_of_builds_is_kept_and_said() {
    let server = Server::start_with(
        None,
        &[
            "--max-build-lines=5",
            "--max-running-builds=1",
            "--build-idle-timeout=1s",
        ],
        &[],
    )
    .await;
    let at = address(server.port);
    let project = fresh_project();
    let (code, _, err) = capture(&at, None, &project, Some("app"), "seq 1 8").await;
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let texts: Vec<String> = shown(&at, &project, "app", 1)
        .await
        .into_iter()
        .map(|l| l.1)
        .collect();
    assert_eq!(
        texts,
        [
            "1",
            "2",
            "3",
            "4",
            "5",
            "[lookout] 3 more lines were not kept: a build keeps at most 5 (--max-build-lines)"
        ]
    );

    // A capture killed mid-build leaves it running until the idle timeout ends it. The build
    // talks until then, so that the idle timeout cannot end it before the second capture
    // asks for a slot on a busy machine.
    let flag = Flag::new();
    let script = format!(
        "echo started; while [ ! -e {} ]; do echo tick; sleep 0.2; done",
        flag.0.display()
    );
    let args = [
        "capture",
        "--project",
        &project,
        "--service",
        "app",
        "--",
        "sh",
        "-c",
        &script,
    ];
    let mut first = lookout(&at, None, &args).spawn().unwrap();
    let mut out = BufReader::new(first.stdout.take().unwrap()).lines();
    assert_eq!(wait_line(&mut out).await, "started");
    // Only one build at a time: a second runs uncaptured, with its status, and says so.
    let (code, out2, err) = capture(&at, None, &project, Some("app"), "echo alone; exit 4").await;
    assert_eq!((code, out2.as_str()), (Some(4), "alone\n"));
    assert!(
        err.contains("--max-running-builds") && err.contains("without capturing it"),
        "{err}"
    );
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let listed = builds(server.port, &project, "app").await;
        if listed[0].result == BuildResult::Interrupted {
            assert_eq!(listed[0].number, 2);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The command the killed capture left goes too.
    flag.raise();
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_of_two_projects_at_once_keep_apart_and_a_proxied_request_writes_nothing() {
    let server = Server::start_with(None, &[], &[]).await;
    let at = address(server.port);
    let (shop, blog) = (fresh_project(), fresh_project());
    let flag = Flag::new();
    let script = format!(
        "echo shop one; while [ ! -e {} ]; do sleep 0.05; done; echo shop two",
        flag.0.display()
    );
    let args = [
        "capture", "-p", &shop, "-s", "web", "--", "sh", "-c", &script,
    ];
    let mut first = lookout(&at, None, &args).spawn().unwrap();
    let mut out = BufReader::new(first.stdout.take().unwrap()).lines();
    assert_eq!(wait_line(&mut out).await, "shop one");
    // Build #1 of another project, while shop's #1 gathers its lines.
    let (code, _, err) = capture(&at, None, &blog, Some("web"), "echo blog one").await;
    assert_eq!(code, Some(0), "{err}");
    flag.raise();
    assert!(first.wait().await.unwrap().success());
    let texts = |project: String| {
        let at = at.clone();
        async move {
            let lines = shown(&at, &project, "web", 1).await;
            lines.into_iter().map(|l| l.1).collect::<Vec<_>>()
        }
    };
    assert_eq!(texts(shop.clone()).await, ["shop one", "shop two"]);
    assert_eq!(texts(blog.clone()).await, ["blog one"]);

    // Under --auth none a proxy on this machine would make anyone a loopback client.
    let start = reqwest::Client::new()
        .post(format!("{at}/api/builds/start"))
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&serde_json::json!({"project": shop, "service": "web"}))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 403);
    assert!(start.text().await.unwrap().contains("not through a proxy"));
    assert_eq!(builds(server.port, &shop, "web").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_capture_never_holds_its_command_up_and_says_what_it_could_not_send() {
    let server = Server::start_with(None, &[], &[]).await;
    let at = address(server.port);
    let project = fresh_project();
    // 50,000 lines in a few milliseconds, 10 of them allowed to wait: the command does not
    // wait for the server, so most are not sent, and both the terminal and the build say so.
    let args = [
        "capture",
        "-p",
        &project,
        "-s",
        "app",
        "--max-waiting-lines",
        "10",
        "--",
        "seq",
        "1",
        "50000",
    ];
    let (code, out, err) = output(lookout(&at, None, &args), WAIT).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 50_000, "all of it passed through");
    assert!(
        err.contains("lines were not sent: more than 10 waited (--max-waiting-lines)"),
        "{err}"
    );
    let name = format!("{project}/app");
    let (_, kept, _) = output(lookout(&at, None, &["logs", "--build", &name]), WAIT).await;
    let kept: Vec<&str> = kept.lines().collect();
    assert!(kept.len() < 50_000, "{}", kept.len());
    let not_sent = 50_000 - (kept.len() - 1);
    assert_eq!(
        kept.last().copied(),
        Some(format!(
            "[lookout capture] {not_sent} lines were not sent: the command wrote faster than \
             the server took them, and more than 10 waited (--max-waiting-lines)"
        ))
        .as_deref()
    );
}
