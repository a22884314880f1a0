//! Acceptance tests of API tokens: `lookout users token` writes the file, and a real server
//! on the real engine lets `Authorization: Bearer` in as the token's user, with its scopes,
//! over HTTP, the socket and `lookout logs`, until the token is removed.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use app::protocol::{ErrorCode, ProjectInfo};
use common::{launch, require_fixture, Logging, Ws, WAIT};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// A folder of its own under target/ for the users and tokens files, removed when dropped.
struct Files(PathBuf);

impl Files {
    fn new() -> Files {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(common::marker("tokens"));
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    fn users(&self) -> String {
        self.0.join("users").to_string_lossy().into_owned()
    }

    fn tokens(&self) -> String {
        self.0.join("tokens").to_string_lossy().into_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `lookout <args>` with `stdin` fed: exit code, stdout, stderr.
async fn lookout(
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .env_remove("LOOKOUT_TOKEN")
        .env_remove("LOOKOUT_TOKENS_FILE")
        .envs(env.iter().copied())
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

async fn add_token(file: &str, name: &str, scope: Option<&str>) -> String {
    let mut args = vec!["--tokens-file", file, "users", "token", "add", name];
    args.extend(scope.iter().flat_map(|s| ["--scope", s]));
    let (code, out, err) = lookout(&args, "", &[]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 1, "the token alone on stdout: {out}");
    out.trim().to_owned()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .unwrap()
}

/// GET `path` of the server on `port` with `Authorization: Bearer token`, when given.
async fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = http().get(format!("http://127.0.0.1:{port}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Waits until the server reaches the engine, as `/healthz` says.
async fn wait_for_engine(port: u16) {
    let deadline = std::time::Instant::now() + WAIT;
    while !get(port, "/healthz", None)
        .await
        .1
        .contains(r#""reachable":true"#)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the server reaches the engine within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn services(body: &str) -> Vec<String> {
    let projects: Vec<ProjectInfo> = serde_json::from_str(body).unwrap();
    projects
        .iter()
        .flat_map(|p| {
            p.services
                .iter()
                .map(|s| format!("{}/{}", s.project, s.service))
        })
        .collect()
}

#[tokio::test]
async fn a_token_acts_as_its_user_with_its_scopes_until_it_is_removed() {
    let project = require_fixture().await;
    let files = Files::new();
    let (code, _, err) = lookout(
        &["--users-file", &files.users(), "users", "add", "alice"],
        "a long password\n",
        &[],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let token = add_token(&files.tokens(), "ci", Some(&format!("{project}/web"))).await;
    let wide = add_token(&files.tokens(), "deploy", None).await;
    let (_, listed, _) = lookout(
        &["--tokens-file", &files.tokens(), "users", "token", "list"],
        "",
        &[],
    )
    .await;
    assert_eq!(
        listed,
        format!("ci\t{project}/web\tread\ndeploy\t*\tread\n")
    );
    assert!(!std::fs::read_to_string(files.tokens())
        .unwrap()
        .contains(&token[3..]));

    let server = Logging::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--project",
            &project,
            "--auth",
            "users",
        ],
        &[
            ("LOOKOUT_USERS_FILE", &files.users()),
            ("LOOKOUT_TOKENS_FILE", &files.tokens()),
            ("LOOKOUT_LOG", "info,lookout=debug"),
        ],
    )
    .await;
    let port = server.port;
    wait_for_engine(port).await;

    let (status, body) = get(port, "/api/projects", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(services(&body), [format!("{project}/web")]);
    let (status, body) = get(port, "/api/session", Some(&token)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"auth":"users","user":"ci"}"#)
    );
    let json_tail = format!("/api/tail?project={project}&service=json&tail=1");
    assert_eq!(
        get(port, &json_tail, Some(&token)).await.0,
        404,
        "out of its scope"
    );
    assert_eq!(get(port, &json_tail, Some(&wide)).await.0, 200);
    assert_eq!(get(port, "/api/projects", None).await.0, 401);
    let (status, body) = get(port, "/api/projects", Some("lk_not-a-token")).await;
    assert_eq!(
        (status, body.as_str()),
        (
            401,
            "this API token is not one of this server's (--tokens-file)"
        )
    );

    // No CSRF rule for a request a token let in: a page cannot send a token it lacks.
    let logout = |t: Option<&str>| {
        let mut req = http()
            .post(format!("http://127.0.0.1:{port}/logout"))
            .header("Origin", "http://elsewhere.example");
        if let Some(t) = t {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_ne!(logout(Some(&token)).await.unwrap().status().as_u16(), 403);
    assert_eq!(logout(None).await.unwrap().status().as_u16(), 403);

    // The socket, as the token's user.
    let auth = format!("Bearer {token}");
    let mut ws = Ws::connect_with(port, &project, &[("Authorization", &auth)]).await;
    ws.subscribe("web", 1).await;
    ws.expect_subscribed("web").await;
    let mut other = Ws::connect_with(port, &project, &[("Authorization", &auth)]).await;
    other.subscribe("json", 1).await;
    assert_eq!(other.expect_error().await.0, ErrorCode::UnknownService);
    // The whole project, as the token sees it: its one service.
    let whole = serde_json::json!({"type": "subscribe_project", "project": project, "tail": 5});
    other.send_text(&whole.to_string()).await;
    other.expect_subscribed("web").await;
    let lines = other.wait_lines("web", |l| !l.is_empty()).await;
    assert!(!lines.is_empty(), "the web service's lines, and no other's");
    let named = serde_json::json!({"type": "subscribe_project", "project": project, "services": ["web", "json"]});
    other.send_text(&named.to_string()).await;
    assert_eq!(
        other.expect_error().await.0,
        ErrorCode::UnknownService,
        "json is out of scope"
    );

    // `lookout logs`, with the token from the environment, without it, with a wrong one.
    let at = format!("http://127.0.0.1:{port}");
    let with_token = [
        ("LOOKOUT_SERVER", at.as_str()),
        ("LOOKOUT_TOKEN", token.as_str()),
    ];
    let (code, out, err) = lookout(&["logs", "web", "-n", "3"], "", &with_token).await;
    assert_eq!((code, out.lines().count()), (Some(0), 3), "{err}");
    let (code, _, err) = lookout(&["logs", "web"], "", &[("LOOKOUT_SERVER", &at)]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with(&format!("lookout: {at} asks for a token (401)")),
        "{err}"
    );
    let (code, _, err) = lookout(
        &["logs", "web"],
        "",
        &[("LOOKOUT_SERVER", &at), ("LOOKOUT_TOKEN", "lk_wrong")],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with(&format!("lookout: {at} refused the token (401)")),
        "{err}"
    );

    // Removed: refused at the next request, its open socket closed.
    let (code, _, err) = lookout(
        &[
            "--tokens-file",
            &files.tokens(),
            "users",
            "token",
            "remove",
            "ci",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(get(port, "/api/projects", Some(&token)).await.0, 401);
    assert_eq!(
        get(port, "/api/projects", Some(&wide)).await.0,
        200,
        "the other token still holds"
    );
    let frame = ws
        .close_frame_within(Duration::from_secs(5))
        .await
        .expect("the socket is closed");
    assert_eq!(u16::from(frame.code), app::protocol::CLOSE_SESSION_ENDED);

    let log = server.stop().await;
    assert!(!log.is_empty(), "the server logged");
    for line in &log {
        assert!(
            !line.contains(&token) && !line.contains(&wide),
            "a token in the log: {line}"
        );
    }
}

#[tokio::test]
async fn under_forward_proxy_a_token_lets_in_without_the_proxy() {
    let project = require_fixture().await;
    let files = Files::new();
    let token = add_token(&files.tokens(), "ci", None).await;
    // The trusted proxy is 127.0.0.2; the requests come from 127.0.0.1.
    let server = Logging::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--project",
            &project,
            "--auth",
            "forward-proxy",
            "--trusted-proxy",
            "127.0.0.2",
        ],
        &[("LOOKOUT_TOKENS_FILE", &files.tokens())],
    )
    .await;
    wait_for_engine(server.port).await;
    let (status, body) = get(server.port, "/api/session", Some(&token)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"auth":"forward-proxy","user":"ci"}"#)
    );
    assert_eq!(get(server.port, "/api/session", None).await.0, 401);
    server.stop().await;
}

#[tokio::test]
async fn a_tokens_file_that_does_not_read_stops_the_start_with_its_line() {
    let files = Files::new();
    std::fs::write(files.tokens(), "ci:0123\n").unwrap();
    let tokens = files.tokens();
    let (code, err) = launch(&[
        "--listen",
        "127.0.0.1:0",
        "--auth",
        "forward-proxy",
        "--trusted-proxy",
        "127.0.0.2",
        "--tokens-file",
        &tokens,
    ])
    .await
    .expect_err("the server refuses to start");
    assert_eq!(code, Some(2), "a setting that does not hold");
    assert!(
        err.contains(&format!("{tokens}, line 1: the hash is not 64 hex digits")),
        "{err}"
    );
}
