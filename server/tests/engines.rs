//! Acceptance test: Lookout reads two engines at once, the machine's (`local`, through the
//! recording proxy, with the Compose fixture) and a private `dockerd` of the test's own
//! (`b`), reached over TCP with TLS (`--tlsverify`, certificates made here with `openssl`).
//!
//! - Both engines' services are listed, each with its engine, and streamed.
//! - `b` is killed while a viewer follows one of its services and another follows a local
//!   one: the local viewer keeps getting lines all the while; the `b` viewer is told `b` is
//!   unreachable (and /healthz says so), then that it is back, and gets every line the
//!   container wrote, none twice: at the end its lines are exactly the engine's log.
//! - `lookout logs b/PROJECT/SERVICE` and `lookout ps` name the engine.
//! - A client certificate of another CA is refused, and the engine's status says why.
//!
//! It starts a private dockerd, so it must run as root, in a test binary of its own:
//!
//! ```sh
//! cargo test -p lookout --test engines -- --nocapture
//! ```

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::private_engine::{require_root, PrivateEngine};
use common::viewer::{free_port, health, refusal, told, Viewer};
use common::{marker, Server, Ws};

const SERVICE: &str = "ticker";

/// A numbered line every 50 ms, counting on where it stopped; SIGTERM ends it at once.
const COUNTER: &str = r#"trap 'exit 0' TERM
n=0
while :; do
  n=$((n+1))
  echo "tick $n"
  usleep 50000
done"#;

/// Runs `openssl` with `args` in `dir`; it must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (is it installed?)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and in `dir`: `ca.pem`, a certificate it signs for `usage` (`serverAuth` for the
/// engine, `clientAuth` for Lookout) as `cert.pem` and `key.pem`.
fn certificates(dir: &Path, usage: &str, ca_dir: &Path) {
    std::fs::create_dir_all(dir).expect("a certificates directory");
    let ext = dir.join("ext.cnf");
    let san = if usage == "serverAuth" {
        "subjectAltName=IP:127.0.0.1\n"
    } else {
        ""
    };
    std::fs::write(&ext, format!("{san}extendedKeyUsage={usage}\n")).expect("write ext.cnf");
    let ca_key = ca_dir.join("ca-key.pem").display().to_string();
    let ca_pem = ca_dir.join("ca.pem").display().to_string();
    openssl(dir, &["genrsa", "-out", "key.pem", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "key.pem",
            "-subj",
            "/CN=127.0.0.1",
            "-out",
            "req.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "req.csr",
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-extfile",
            "ext.cnf",
        ],
    );
    std::fs::copy(&ca_pem, dir.join("ca.pem")).expect("copy ca.pem");
}

/// A self-signed CA in `dir` (`ca.pem`, `ca-key.pem`).
fn authority(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).expect("a CA directory");
    openssl(dir, &["genrsa", "-out", "ca-key.pem", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-key",
            "ca-key.pem",
            "-subj",
            &format!("/CN={name}"),
            "-out",
            "ca.pem",
        ],
    );
}

/// `lookout ARGS` as a client of `server`: its stdout, which must come with status 0.
async fn cli(server: &Server, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .env(
            "LOOKOUT_SERVER",
            format!("http://127.0.0.1:{}", server.port),
        )
        .env_remove("LOOKOUT_TOKEN")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run lookout as a client");
    assert!(
        out.status.success(),
        "lookout {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A token scoped `b/*/*` sees b's services and none of the local engine's, whose
/// services read as unknown to it.
async fn scoped_to_b(dir: &Path, engines: &[&str], b_project: &str, local_project: &str) {
    let users = dir.join("users").display().to_string();
    let tokens = dir.join("tokens").display().to_string();
    let lookout = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run lookout");
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.as_bytes())
            .expect("write the password");
        drop(input);
        let out = child.wait_with_output().expect("lookout's exit");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    lookout(
        &["--users-file", &users, "users", "add", "alice"],
        "a long password\n",
    );
    let token = lookout(
        &[
            "--tokens-file",
            &tokens,
            "users",
            "token",
            "add",
            "b-only",
            "--scope",
            "b/*/*",
        ],
        "",
    );
    let mut args = vec![
        "--auth",
        "users",
        "--users-file",
        &users,
        "--tokens-file",
        &tokens,
    ];
    args.extend_from_slice(engines);
    let server = Server::start_with(None, &args, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !health(&server).await.iter().all(|(_, up)| *up) {
        assert!(Instant::now() < deadline, "b is not reached within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bearer = format!("Bearer {token}");
    let projects: Vec<app::protocol::ProjectInfo> = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/api/projects", server.port))
        .header("Authorization", &bearer)
        .send()
        .await
        .expect("/api/projects")
        .json()
        .await
        .expect("the projects as JSON");
    let shown: Vec<(&str, &str)> = projects
        .iter()
        .map(|p| (p.engine.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(shown, [("b", b_project)], "a b/*/* token's listing");
    let mut ws = Ws::connect_with(server.port, local_project, &[("Authorization", &bearer)]).await;
    let told: Vec<&str> = ws.engines.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(told, ["b"], "a b/*/* token is told of b's state alone");
    let ask = serde_json::json!({
        "type": "subscribe", "engine": "local", "project": local_project, "service": "fast",
    });
    ws.send_text(&ask.to_string()).await;
    let (code, message) = ws.expect_error().await;
    assert_eq!(code, app::protocol::ErrorCode::UnknownService, "{message}");
}

#[test]
fn two_engines_are_read_apart_and_one_down_never_stalls_the_other() {
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
    let certs = engine.dir.join("certs");
    authority(&certs.join("ca"), "lookout test CA");
    authority(&certs.join("other-ca"), "another CA");
    certificates(&certs.join("engine"), "serverAuth", &certs.join("ca"));
    certificates(&certs.join("lookout"), "clientAuth", &certs.join("ca"));
    certificates(
        &certs.join("stranger"),
        "clientAuth",
        &certs.join("other-ca"),
    );
    let port = free_port();
    let file = |d: &str, f: &str| certs.join(d).join(f).display().to_string();
    engine.extra = vec![
        "--host".into(),
        format!("tcp://127.0.0.1:{port}"),
        "--tlsverify".into(),
        "--tlscacert".into(),
        file("engine", "ca.pem"),
        "--tlscert".into(),
        file("engine", "cert.pem"),
        "--tlskey".into(),
        file("engine", "key.pem"),
    ];
    // Live restore: the container runs on while its engine is away, and what it writes
    // meanwhile is logged when the engine is back.
    engine.spawn(true);
    engine.wait_answers(Duration::from_secs(60)).await;
    engine.build_fixture_image().await;
    let project = marker("lookout-b");
    let name = format!("{project}_{SERVICE}_1");
    let labels = [
        format!("com.docker.compose.project={project}"),
        format!("com.docker.compose.service={SERVICE}"),
        "com.docker.compose.container-number=1".to_owned(),
    ];
    let mut run = vec!["run", "-d", "--name", &name, "--network", "none"];
    for l in &labels {
        run.extend(["--label", l]);
    }
    run.extend(["lookout-fixture:latest", "sh", "-c", COUNTER]);
    let id = engine.cli(&run).await.trim().to_owned();
    engine.container = Some(id.clone());

    let b_url = format!("b=tcp://127.0.0.1:{port}");
    let b_tls = format!("b={}", certs.join("lookout").display());
    let args = [
        "--engine",
        "local={engine_calls}",
        "--engine",
        &b_url,
        "--engine-tls",
        &b_tls,
    ];
    let server = Server::start_with(None, &args, &[]).await;
    let local_project = server.project.clone();

    // Listed, each with its engine.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let projects = server.projects().await;
        let on = |e: &str, p: &str| projects.iter().any(|x| x.engine == e && x.name == p);
        if on("b", &project) && on("local", &local_project) {
            assert!(!on("local", &project) && !on("b", &local_project));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both engines' projects are not listed: {projects:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        health(&server).await,
        [("b".to_owned(), true), ("local".to_owned(), true)]
    );

    // The CLI names a service of `b` in three parts, and `ps` shows the engines.
    let printed = cli(
        &server,
        &[
            "logs",
            "-n",
            "3",
            "--no-log-prefix",
            &format!("b/{project}/{SERVICE}"),
        ],
    )
    .await;
    let printed: Vec<&str> = printed.lines().collect();
    assert_eq!(printed.len(), 3, "{printed:?}");
    assert!(
        printed.iter().all(|l| l.starts_with("tick ")),
        "{printed:?}"
    );
    let ps = cli(&server, &["ps"]).await;
    assert!(ps.starts_with("ENGINE"), "{ps}");
    assert!(
        ps.lines()
            .any(|l| l.starts_with("b ") && l.contains(&project)),
        "{ps}"
    );

    let mut far = Viewer::follow(&server, "b", &project, SERVICE).await;
    let mut near = Viewer::follow(&server, "local", &local_project, "fast").await;
    far.until(Duration::from_secs(10), "b's first lines", |v, _| {
        v.lines.len() >= 10
    })
    .await;

    // b goes away; the local viewer keeps getting lines while it is away.
    engine.stop_with("KILL", Duration::from_secs(30)).await;
    far.until(Duration::from_secs(15), "told b is unreachable", |_, m| {
        told(m, "b", false)
    })
    .await;
    assert_eq!(
        health(&server).await,
        [("b".to_owned(), false), ("local".to_owned(), true)]
    );
    let before = near.lines.len();
    near.until(
        Duration::from_secs(5),
        "local lines while b is away",
        |v, _| v.lines.len() >= before + 20,
    )
    .await;
    assert!(
        near.engines.iter().all(|e| e.name == "b"),
        "only b changed: {:?}",
        near.engines
    );

    engine.spawn(true);
    engine.wait_answers(Duration::from_secs(60)).await;
    far.until(Duration::from_secs(20), "told b is back", |_, m| {
        told(m, "b", true)
    })
    .await;
    let seen = far.lines.len();
    far.until(
        Duration::from_secs(15),
        "b's lines after it came back",
        |v, _| v.lines.len() >= seen + 20,
    )
    .await;

    // Every line b holds, once, in order.
    engine.cli(&["stop", "-t", "5", &id]).await;
    let held = engine.log_of(&id).await;
    let want = held.values().map(Vec::len).sum::<usize>();
    far.until(Duration::from_secs(15), "every line of b's log", |v, _| {
        v.lines.len() >= want
    })
    .await;
    assert_eq!(
        common::per_stream(&far.lines),
        held,
        "the viewer's lines are not b's log: repeated or missing lines"
    );

    // A search without `engine` reads every engine's history: b's lines are found. The
    // expression is the counter's line whole: a word would find local lines too (the
    // fixture's stack traces hold `processTicksAndRejections`, and the local engine's every
    // project is shown), and whether one came first was the timing of their writes.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page: app::history::SearchPage = server
            .get_json("/api/search", &[("q", r"/^tick \d+$/"), ("limit", "5")])
            .await;
        if !page.hits.is_empty() {
            assert!(
                page.hits
                    .iter()
                    .all(|h| h.engine == "b" && h.project == project),
                "a counter's line found is not b's: {:?}",
                page.hits
                    .iter()
                    .map(|h| (&h.engine, &h.project, &h.service))
                    .collect::<Vec<_>>()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b's lines are not found by a search"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    scoped_to_b(&engine.dir, &args, &project, &local_project).await;

    // A client certificate of another CA: b is unreachable, and says why.
    let stranger = format!("b={}", certs.join("stranger").display());
    let args = [
        "--engine",
        "local={engine_calls}",
        "--engine",
        &b_url,
        "--engine-tls",
        &stranger,
    ];
    let refused = Server::start_with(None, &args, &[]).await;
    let why = refusal(&refused, "b").await;
    assert!(
        !health(&refused).await[0].1,
        "b is reachable with a stranger's certificate"
    );
    assert!(
        why.to_lowercase().contains("certificate") || why.contains("alert"),
        "the reason does not say the certificate was refused: {why}"
    );
    // Certificates that do not read stop the start, naming the file.
    let broken = certs.join("broken");
    std::fs::create_dir_all(&broken).expect("a directory");
    for f in ["ca.pem", "cert.pem"] {
        std::fs::copy(certs.join("lookout").join(f), broken.join(f)).expect("copy a certificate");
    }
    std::fs::write(broken.join("key.pem"), "not a key\n").expect("write key.pem");
    let tls = format!("b={}", broken.display());
    let (code, stderr) = common::launch(&["--engine", &b_url, "--engine-tls", &tls])
        .await
        .expect_err("lookout starts with a key that does not read");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("engine b: ") && stderr.contains("key.pem"),
        "{stderr}"
    );

    for s in [&server, &refused] {
        let calls = s.engine_calls.calls();
        assert!(
            calls
                .iter()
                .all(|c| common::ALLOWED_ENGINE_CALLS.contains(&c.as_str())),
            "the local engine was called beyond reads: {calls:?}"
        );
    }
}
