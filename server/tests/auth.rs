//! Acceptance tests of authentication, scopes and per-user limits, at the HTTP and WebSocket
//! level: the real `lookout` binary, the real engine and the Compose fixture.
//!
//! ```sh
//! bash scripts/fixture.sh up lookout-test
//! cargo test -p lookout --test auth
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use app::protocol::{ErrorCode, Health, ProjectInfo, ServerMessage};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

use common::{launch, require_fixture, Server, Ws, WAIT};

/// A users file in a folder of its own under target/, removed when dropped.
struct UsersFile {
    dir: PathBuf,
}

impl UsersFile {
    fn new(tag: &str) -> UsersFile {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(common::marker(tag));
        std::fs::create_dir_all(&dir).expect("a folder for the users file");
        UsersFile { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("users")
    }
}

impl Drop for UsersFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `lookout --users-file FILE users ARGS...` with `stdin` piped in: exit code and stderr.
async fn users_command(file: &Path, args: &[&str], stdin: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("--users-file")
        .arg(file)
        .arg("users")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run lookout users");
    let mut input = child.stdin.take().expect("stdin");
    // A command refused for its arguments may exit before it reads its input: the pipe is
    // then closed, and what it said is still in its exit and stderr.
    match input.write_all(stdin.as_bytes()).await {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.expect("write the password"),
    }
    drop(input);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("lookout users finishes within 10 s")
        .expect("its exit");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn add_user(file: &Path, name: &str, password: &str, scope: Option<&str>) {
    let mut args = vec!["add", name];
    if let Some(s) = scope {
        args.extend(["--scope", s]);
    }
    let (code, stderr) = users_command(file, &args, &format!("{password}\n")).await;
    assert_eq!(code, Some(0), "users add {name}: {stderr}");
}

/// A `lookout --auth users <extra...>` whose users file (its own, removed with the returned
/// guard) holds one user: name, password and scope.
async fn users_server(
    project: &str,
    (name, password, scope): (&str, &str, Option<&str>),
    extra: &[&str],
) -> (UsersFile, Server) {
    let file = UsersFile::new(name);
    add_user(&file.path(), name, password, scope).await;
    let path = file.path();
    let mut args = vec!["--auth", "users", "--users-file", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let server = Server::start_for(project, &args).await;
    (file, server)
}

/// An HTTP client that follows no redirect and keeps no cookie: each test says what it sends.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .timeout(WAIT)
        .build()
        .expect("an HTTP client")
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = client().get(format!("http://127.0.0.1:{}{path}", server.port));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req).await
}

async fn answer(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("an answer");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.expect("a body"),
    }
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn login_with(
    server: &Server,
    user: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = client()
        .post(format!("http://127.0.0.1:{}/login", server.port))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[
            ("user", user),
            ("password", password),
            ("next", "/?service=probe"),
        ]));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req).await
}

/// Signs in; the `Cookie` header value to send from then on.
async fn sign_in(server: &Server, user: &str, password: &str) -> String {
    let a = login_with(server, user, password, &[]).await;
    assert_eq!(a.status, 303, "signing in as {user}: {}", a.body);
    let set = a
        .headers
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// Opens the WebSocket with these headers: 101, or the refusal's status.
async fn upgrade_status(server: &Server, headers: &[(&str, &str)]) -> u16 {
    let mut request = format!("ws://127.0.0.1:{}/ws", server.port)
        .into_client_request()
        .expect("a request");
    for (k, v) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("an answer within 10 s")
    {
        Ok((_, r)) => r.status().as_u16(),
        Err(WsError::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("the upgrade failed otherwise: {e}"),
    }
}

/// Every route that shows logs or their names, as a request would reach it.
fn guarded_paths(project: &str) -> Vec<String> {
    vec![
        "/api/projects".into(),
        format!("/api/tail?project={project}&service=probe&tail=1"),
        format!("/api/download?project={project}&service=probe"),
        "/api/session".into(),
        "/metrics".into(),
        "/".into(),
        "/index.html".into(),
    ]
}

#[tokio::test]
async fn with_users_every_route_wants_a_session_and_signing_in_gives_one() {
    let project = require_fixture().await;
    let (_file, server) = users_server(&project, ("alice", "correct horse", None), &[]).await;

    // No session: nothing but the login page and the health check.
    for p in guarded_paths(&project) {
        let a = get(&server, &p, &[]).await;
        assert_eq!(a.status, 401, "{p} without a session: {}", a.body);
        assert!(!a.body.contains("probe: ready"), "{p} leaks log text");
    }
    assert_eq!(
        upgrade_status(&server, &[]).await,
        401,
        "/ws without a session"
    );
    let page = get(&server, "/?service=web", &[("Accept", "text/html")]).await;
    assert_eq!(page.status, 303, "a browser is sent to the login page");
    assert_eq!(page.headers[LOCATION], "/login?next=/%3Fservice%3Dweb");
    assert_eq!(get(&server, "/healthz", &[]).await.status, 200);
    let login = get(&server, "/login", &[]).await;
    assert_eq!(login.status, 200);
    assert!(login
        .body
        .contains(r#"<form method="post" action="/login">"#));
    assert!(
        !login.body.contains("<script"),
        "the login page runs no script"
    );

    // A wrong password: the page again, no cookie.
    let wrong = login_with(&server, "alice", "battery staple", &[]).await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("Wrong user name or password."),
        "{}",
        wrong.body
    );
    assert!(wrong.headers.get(SET_COOKIE).is_none());
    let nobody = login_with(&server, "mallory", "correct horse", &[]).await;
    assert_eq!(nobody.status, 401, "an unknown user is told the same");
    assert!(nobody.body.contains("Wrong user name or password."));

    // Another site's page cannot sign anyone in.
    let forged = login_with(
        &server,
        "alice",
        "correct horse",
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.headers.get(SET_COOKIE).is_none());

    // The right password: a cookie scripts cannot read, sent to this site only.
    let ok = login_with(&server, "alice", "correct horse", &[]).await;
    assert_eq!(ok.status, 303);
    assert_eq!(
        ok.headers[LOCATION], "/?service=probe",
        "back where the user was going"
    );
    let set = ok.headers[SET_COOKIE].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain http: no Secure, or the browser drops it"
    );
    let behind_https = login_with(
        &server,
        "alice",
        "correct horse",
        &[("X-Forwarded-Proto", "https")],
    )
    .await;
    assert!(behind_https.headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("; Secure"));

    let cookie = set.split(';').next().unwrap().to_owned();
    for p in guarded_paths(&project) {
        let a = get(&server, &p, &[(COOKIE.as_str(), &cookie)]).await;
        assert_eq!(a.status, 200, "{p} with a session: {}", a.body);
    }
    let who = get(&server, "/api/session", &[("Cookie", &cookie)]).await;
    assert_eq!(who.body, r#"{"auth":"users","user":"alice"}"#);
    let ws = Ws::connect_with(server.port, &project, &[("Cookie", &cookie)]).await;
    assert!(
        !ws.projects.is_empty(),
        "the signed-in socket lists services"
    );

    // Signing out ends the session, there and then.
    let out = answer(
        client()
            .post(format!("http://127.0.0.1:{}/logout", server.port))
            .header("Cookie", &cookie),
    )
    .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.headers[LOCATION], "/login");
    assert!(out.headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        get(&server, "/api/projects", &[("Cookie", &cookie)])
            .await
            .status,
        401
    );
    assert_eq!(upgrade_status(&server, &[("Cookie", &cookie)]).await, 401);
}

#[tokio::test]
async fn a_session_expires_and_its_socket_is_closed() {
    let project = require_fixture().await;
    let (_file, server) = users_server(
        &project,
        ("alice", "correct horse", None),
        &["--session-ttl", "3s"],
    )
    .await;
    let cookie = sign_in(&server, "alice", "correct horse").await;
    let mut ws = Ws::connect_with(server.port, &project, &[("Cookie", &cookie)]).await;
    assert_eq!(
        get(&server, "/api/projects", &[("Cookie", &cookie)])
            .await
            .status,
        200
    );
    let frame = ws
        .close_frame_within(Duration::from_secs(8))
        .await
        .expect("the socket is closed when the session expires");
    assert_eq!(u16::from(frame.code), 4401, "{frame:?}");
    assert_eq!(
        get(&server, "/api/projects", &[("Cookie", &cookie)])
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn login_attempts_are_limited_per_address() {
    let project = require_fixture().await;
    let (_file, server) = users_server(
        &project,
        ("alice", "correct horse", None),
        &["--login-attempts-per-minute", "3"],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(login_with(&server, "alice", "guess", &[]).await.status, 401);
    }
    let held = login_with(&server, "alice", "correct horse", &[]).await;
    assert_eq!(
        held.status, 429,
        "even the right password waits: {}",
        held.body
    );
    assert!(held.body.contains("Too many attempts"), "{}", held.body);
    let wait: u64 = held.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(held.headers.get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn a_scoped_user_reaches_nothing_out_of_scope() {
    let project = require_fixture().await;
    let (_file, server) = users_server(
        &project,
        ("bob", "battery staple", Some(&format!("{project}/probe"))),
        &[],
    )
    .await;
    let cookie = sign_in(&server, "bob", "battery staple").await;
    let with = [("Cookie", cookie.as_str())];

    // Listing: the one service, over HTTP and over the socket.
    let listed: Vec<app::protocol::ProjectInfo> =
        serde_json::from_str(&get(&server, "/api/projects", &with).await.body).unwrap();
    let names: Vec<String> = listed
        .iter()
        .flat_map(|p| &p.services)
        .map(|s| s.key().to_string())
        .collect();
    assert_eq!(names, [format!("{project}/probe")]);
    let mut ws = Ws::connect_with(server.port, &project, &with).await;
    let names: Vec<String> = ws
        .projects
        .iter()
        .flat_map(|p| &p.services)
        .map(|s| s.key().to_string())
        .collect();
    assert_eq!(names, [format!("{project}/probe")], "the socket's listing");

    // Out of scope is told as unknown, word for word as a service that does not exist.
    ws.subscribe("web", 10).await;
    let (code, web) = ws.expect_error().await;
    assert_eq!(code, ErrorCode::UnknownService);
    ws.subscribe("no-such-service", 10).await;
    let (_, missing) = ws.expect_error().await;
    assert_eq!(
        web.replace("web", "X"),
        missing.replace("no-such-service", "X")
    );
    ws.subscribe("probe", 1).await;
    ws.expect_subscribed("probe").await;

    for p in [
        format!("/api/tail?project={project}&service=web&tail=5"),
        format!("/api/download?project={project}&service=web"),
    ] {
        let a = get(&server, &p, &with).await;
        assert_eq!(a.status, 404, "{p}: {}", a.body);
        assert!(a.body.contains("unknown service"), "{p}: {}", a.body);
    }
    let a = get(
        &server,
        &format!("/api/tail?project={project}&service=probe&tail=1"),
        &with,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn a_scoped_user_finds_nothing_out_of_scope_in_history() {
    let project = require_fixture().await;
    let file = UsersFile::new("history-scope");
    let scope = format!("{project}/probe");
    add_user(&file.path(), "bob", "battery staple", Some(&scope)).await;
    add_user(&file.path(), "alice", "correct horse", None).await;
    let path = file.path();
    let users = ["--auth", "users", "--users-file", path.to_str().unwrap()];
    let server = Server::start_for(&project, &users).await;
    let bob = sign_in(&server, "bob", "battery staple").await;
    let alice = sign_in(&server, "alice", "correct horse").await;
    let (bob, alice) = ([("Cookie", bob.as_str())], [("Cookie", alice.as_str())]);
    let word = common::marker("scoped").replace('-', "");
    common::Probe::find(&project)
        .await
        .printf(common::Fd::Stdout, "probe %s\n", &[&word])
        .await;

    // The same queries for both: the probe's marker, and web's newest line (web writes
    // thousands, so each is asked for on its own).
    let ask = |q: String| format!("/api/search?{}", form(&[("q", &q), ("limit", "1")]));
    let marked = ask(format!("{word} project:{project}"));
    let of_web = ask(format!("line project:{project} service:web"));
    let anything = ask(format!("/line|{word}/ project:{project}"));
    let services = |a: &Answer| -> Vec<String> {
        assert_eq!(a.status, 200, "{}", a.body);
        let page: app::history::SearchPage = serde_json::from_str(&a.body).unwrap();
        page.hits.into_iter().map(|h| h.service).collect()
    };
    // Alice, in no scope, finds both once history holds them...
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let probe = services(&get(&server, &marked, &alice).await);
        let web = services(&get(&server, &of_web, &alice).await);
        if probe == ["probe"] && web == ["web"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history holds web's and the probe's lines within 10 s: {probe:?} {web:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...Bob finds only the probe's: web's lines are not his, asked for by name or not.
    assert_eq!(services(&get(&server, &marked, &bob).await), ["probe"]);
    assert!(services(&get(&server, &of_web, &bob).await).is_empty());
    assert_eq!(services(&get(&server, &anything, &bob).await), ["probe"]);
    // History of a service out of scope is unknown, as a tail is.
    let a = get(
        &server,
        &format!("/api/history?project={project}&service=web"),
        &bob,
    )
    .await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.body.contains("unknown service"), "{}", a.body);
    let a = get(
        &server,
        &format!("/api/history?project={project}&service=web"),
        &alice,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn a_scoped_user_gets_no_histogram_of_a_service_out_of_scope() {
    let project = require_fixture().await;
    let scope = format!("{project}/probe");
    let (_file, server) =
        users_server(&project, ("bob", "battery staple", Some(&scope)), &[]).await;
    let cookie = sign_in(&server, "bob", "battery staple").await;
    let with = [("Cookie", cookie.as_str())];
    let of = |what: &str, service: &str| format!("/api/{what}?project={project}&service={service}");
    // Refused as its history is, word for word.
    let web = get(&server, &of("histogram", "web"), &with).await;
    assert_eq!(web.status, 404, "{}", web.body);
    assert!(web.body.contains("unknown service"), "{}", web.body);
    let history = get(&server, &of("history", "web"), &with).await;
    assert_eq!((web.status, web.body), (history.status, history.body));
    let probe = get(&server, &of("histogram", "probe"), &with).await;
    assert_eq!(probe.status, 200, "{}", probe.body);
    // A query naming a service out of scope counts nothing of it.
    let q = format!("{}&q=service%3Aweb", of("histogram", "probe"));
    let a = get(&server, &q, &with).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let h: app::history::Histogram = serde_json::from_str(&a.body).unwrap();
    assert!(h.buckets.iter().all(|b| b.stdout + b.stderr == 0), "{h:?}");
}

/// Reads `services` messages until `done` holds of the latest listing (within 10 s); every
/// listing read on the way, the first included, goes through `each`.
async fn watch_listings(
    ws: &mut Ws,
    what: &str,
    each: impl Fn(&[ProjectInfo]),
    done: impl Fn(&[ProjectInfo]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut listed = ws.projects.clone();
    each(&listed);
    while !done(&listed) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.recv_within(left).await {
            Some(ServerMessage::Services { projects }) => {
                each(&projects);
                listed = projects;
            }
            Some(_) => {}
            None => panic!("{what}: not told within 10 s; last listing {listed:?}"),
        }
    }
}

/// The health of `service` in a listing.
fn health_of(projects: &[ProjectInfo], service: &str) -> Option<Health> {
    projects
        .iter()
        .flat_map(|p| &p.services)
        .find(|s| s.service == service)
        .and_then(|s| s.health())
}

#[tokio::test]
async fn a_change_to_a_service_out_of_scope_is_not_told() {
    // Two services of a project of the test's own, each unhealthy once /tmp/unhealthy exists.
    let yaml = r#"version: "2.4"
x-base: &base
  image: lookout-fixture:latest
  network_mode: none
  stop_grace_period: 1s
  command: ["/bin/sh", "/fixture/probe.sh"]
  healthcheck:
    test: ["CMD", "/bin/sh", "-c", "test ! -e /tmp/unhealthy"]
    interval: 1s
    timeout: 2s
    retries: 1
services:
  seen:
    <<: *base
  hidden:
    <<: *base
"#;
    let project = common::TempProject::from_yaml("scope-status", yaml, &["seen", "hidden"]).await;
    let file = UsersFile::new("scope-status");
    let seen = format!("{}/seen", project.name);
    add_user(&file.path(), "bob", "battery staple", Some(&seen)).await;
    add_user(&file.path(), "alice", "correct horse", None).await;
    let path = file.path();
    let server = Server::start_for(
        &project.name,
        &["--auth", "users", "--users-file", path.to_str().unwrap()],
    )
    .await;
    let bob = sign_in(&server, "bob", "battery staple").await;
    let alice = sign_in(&server, "alice", "correct horse").await;
    let mut bob_ws = Ws::connect_with(server.port, &project.name, &[("Cookie", &bob)]).await;
    let mut alice_ws = Ws::connect_with(server.port, &project.name, &[("Cookie", &alice)]).await;
    let only_seen = |projects: &[ProjectInfo]| {
        for s in projects.iter().flat_map(|p| &p.services) {
            assert_eq!(
                s.key().to_string(),
                seen,
                "bob's socket told of a service out of his scope: {projects:?}"
            );
        }
    };
    let healthy = |projects: &[ProjectInfo]| {
        health_of(projects, "seen") == Some(Health::Healthy)
            && health_of(projects, "hidden") == Some(Health::Healthy)
    };
    watch_listings(&mut alice_ws, "both services healthy", |_| {}, healthy).await;

    // `hidden` turns unhealthy: alice, who may see it, is told.
    let hidden_id = project.id("hidden").await;
    common::docker_ok(&["exec", &hidden_id, "touch", "/tmp/unhealthy"]).await;
    watch_listings(
        &mut alice_ws,
        "alice told hidden is unhealthy",
        |_| {},
        |p| health_of(p, "hidden") == Some(Health::Unhealthy),
    )
    .await;

    // Then `seen` does: bob is told of it, and of nothing else, before or with it.
    let seen_id = project.id("seen").await;
    common::docker_ok(&["exec", &seen_id, "touch", "/tmp/unhealthy"]).await;
    watch_listings(&mut bob_ws, "bob told seen is unhealthy", only_seen, |p| {
        health_of(p, "seen") == Some(Health::Unhealthy)
    })
    .await;
}

#[tokio::test]
async fn the_proxy_user_header_counts_only_from_a_trusted_proxy() {
    let project = require_fixture().await;
    let trusting = Server::start_for(
        &project,
        &["--auth", "forward-proxy", "--trusted-proxy", "127.0.0.1"],
    )
    .await;
    let a = get(&trusting, "/api/session", &[("Remote-User", "alice")]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, r#"{"auth":"forward-proxy","user":"alice"}"#);
    assert_eq!(
        get(&trusting, "/api/projects", &[("Remote-User", "alice")])
            .await
            .status,
        200
    );
    assert_eq!(
        upgrade_status(&trusting, &[("Remote-User", "alice")]).await,
        101
    );
    assert_eq!(
        get(&trusting, "/api/projects", &[]).await.status,
        401,
        "no header, no user"
    );
    assert_eq!(upgrade_status(&trusting, &[]).await, 401);

    // The proxy is 127.0.0.2: a request from 127.0.0.1 that names a user is not believed.
    let elsewhere = Server::start_for(
        &project,
        &[
            "--auth",
            "forward-proxy",
            "--trusted-proxy",
            "127.0.0.2",
            "--user-header",
            "X-User",
        ],
    )
    .await;
    for p in guarded_paths(&project) {
        let a = get(&elsewhere, &p, &[("X-User", "alice")]).await;
        assert_eq!(a.status, 401, "{p} from an untrusted address: {}", a.body);
    }
    assert_eq!(
        upgrade_status(&elsewhere, &[("X-User", "alice")]).await,
        401
    );
    let from_proxy = reqwest::Client::builder()
        .no_proxy()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .timeout(WAIT)
        .build()
        .unwrap();
    let a = answer(
        from_proxy
            .get(format!("http://127.0.0.1:{}/api/session", elsewhere.port))
            .header("X-User", "alice"),
    )
    .await;
    assert_eq!(a.status, 200, "from the proxy's address: {}", a.body);
}

#[tokio::test]
async fn sockets_per_user_and_request_bodies_are_bounded() {
    let project = require_fixture().await;
    let server = Server::start_for(
        &project,
        &["--max-sockets-per-user", "3", "--max-body-bytes", "1024"],
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(Ws::connect(server.port, &project).await);
    }
    let refused = upgrade_status(&server, &[]).await;
    assert_eq!(refused, 429, "the fourth socket");
    drop(open.pop());
    // The server notices the close a moment later.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if upgrade_status(&server, &[]).await == 101 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed socket frees its place"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The ones left still work.
    let ws = &mut open[0];
    ws.subscribe("probe", 1).await;
    ws.expect_subscribed("probe").await;

    let big = "x".repeat(4096);
    let a = answer(
        client()
            .post(format!("http://127.0.0.1:{}/api/projects", server.port))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(big),
    )
    .await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(
        get(&server, "/api/projects", &[]).await.status,
        200,
        "and nothing else broke"
    );
}

#[tokio::test]
async fn sockets_are_counted_per_signed_in_user() {
    // Both users come from the same address: the count is per user, not per address.
    let project = require_fixture().await;
    let file = UsersFile::new("sockets");
    add_user(&file.path(), "alice", "correct horse", None).await;
    add_user(&file.path(), "bob", "battery staple", None).await;
    let path = file.path();
    let server = Server::start_for(
        &project,
        &[
            "--auth",
            "users",
            "--users-file",
            path.to_str().unwrap(),
            "--max-sockets-per-user",
            "2",
        ],
    )
    .await;
    let alice = sign_in(&server, "alice", "correct horse").await;
    let bob = sign_in(&server, "bob", "battery staple").await;
    let as_alice = [("Cookie", alice.as_str())];
    let as_bob = [("Cookie", bob.as_str())];

    let mut alices = Vec::new();
    for _ in 0..2 {
        alices.push(Ws::connect_with(server.port, &project, &as_alice).await);
    }
    assert_eq!(
        upgrade_status(&server, &as_alice).await,
        429,
        "alice's third socket"
    );
    // Alice over her limit takes nothing from bob: he opens his two, and they work.
    let mut bobs = Vec::new();
    for _ in 0..2 {
        bobs.push(Ws::connect_with(server.port, &project, &as_bob).await);
    }
    for ws in &mut bobs {
        ws.subscribe("probe", 1).await;
        ws.expect_subscribed("probe").await;
    }
    assert_eq!(
        upgrade_status(&server, &as_bob).await,
        429,
        "bob's third socket"
    );
    // And alice's sockets still work.
    for ws in &mut alices {
        ws.subscribe("probe", 1).await;
        ws.expect_subscribed("probe").await;
    }
}

#[tokio::test]
async fn bad_auth_settings_and_users_are_clear_errors() {
    let file = UsersFile::new("bad");
    let path = file.path();
    let p = path.to_str().unwrap();

    let (code, err) = launch(&["--listen", "127.0.0.1:0", "--auth", "users"])
        .await
        .unwrap_err();
    assert_eq!(code, Some(2));
    assert!(err.contains("--users-file"), "{err}");
    let (code, err) = launch(&[
        "--listen",
        "127.0.0.1:0",
        "--auth",
        "users",
        "--users-file",
        p,
    ])
    .await
    .unwrap_err();
    assert_eq!(code, Some(2));
    assert!(err.contains("has no users"), "{err}");
    let (code, err) = launch(&["--listen", "127.0.0.1:0", "--auth", "forward-proxy"])
        .await
        .unwrap_err();
    assert_eq!(code, Some(2));
    assert!(err.contains("--trusted-proxy"), "{err}");

    let (code, err) = users_command(&path, &["add", "bad name"], "long enough\n").await;
    assert_eq!(code, Some(1));
    assert!(err.contains("user name"), "{err}");
    let (code, err) = users_command(&path, &["add", "alice"], "short\n").await;
    assert_eq!(code, Some(1));
    assert!(err.contains("at least 8"), "{err}");
    let (code, err) = users_command(
        &path,
        &["add", "alice", "--scope", "noslash"],
        "long enough\n",
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("project/service"), "{err}");
    assert!(!path.exists(), "nothing was written");

    add_user(&path, "alice", "long enough", None).await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("alice:$argon2id$"), "{text}");
    assert!(
        !text.contains("long enough"),
        "the password itself is not kept"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only its owner reads the users file");

    // With users, Lookout may listen beyond loopback without the unauthenticated flag.
    launch(&[
        "--listen",
        "0.0.0.0:0",
        "--auth",
        "users",
        "--users-file",
        p,
    ])
    .await
    .unwrap_or_else(|(c, e)| panic!("exited {c:?}: {e}"));

    let (code, err) = users_command(&path, &["remove", "alice"], "").await;
    assert_eq!(code, Some(0), "{err}");
    assert!(!std::fs::read_to_string(&path).unwrap().contains("alice:"));
}

/// Signs in (or tries to) as `user` with `password`, going on to `next`.
async fn login_next(server: &Server, user: &str, password: &str, next: &str) -> Answer {
    answer(
        client()
            .post(format!("http://127.0.0.1:{}/login", server.port))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[
                ("user", user),
                ("password", password),
                ("next", next),
            ])),
    )
    .await
}

#[tokio::test]
async fn after_login_next_is_only_a_path_of_this_server() {
    let project = require_fixture().await;
    let (_file, server) = users_server(&project, ("alice", "correct horse", None), &[]).await;
    let page = get(&server, "/login?next=/%09/evil.example", &[]).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"name="next" value="/">"#),
        "the page carries / instead: {}",
        page.body
    );
    for hostile in [
        "/\t/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/\n/evil.example",
        "",
    ] {
        let a = login_next(&server, "alice", "correct horse", hostile).await;
        assert_eq!(a.status, 303, "{hostile:?}: {}", a.body);
        assert_eq!(a.headers[LOCATION], "/", "{hostile:?}");
    }
    let a = login_next(&server, "alice", "correct horse", "/?service=probe").await;
    assert_eq!(a.headers[LOCATION], "/?service=probe");
}

#[tokio::test]
async fn behind_proxies_the_client_is_read_from_every_forwarded_line() {
    let project = require_fixture().await;
    let (_file, server) = users_server(
        &project,
        ("alice", "correct horse", None),
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--login-attempts-per-minute",
            "2",
        ],
    )
    .await;
    let xff = "X-Forwarded-For";
    // Two lines (a second proxy wrote its own): one list, read from the right.
    let a = login_with(
        &server,
        "alice",
        "guess",
        &[(xff, "6.6.6.6"), (xff, "1.2.3.4")],
    )
    .await;
    assert_eq!(a.status, 401, "{}", a.body);
    // What the client wrote on the left is passed over; a proxy written IPv4-mapped is trusted.
    let a = login_with(
        &server,
        "alice",
        "guess",
        &[(xff, "9.9.9.9, 1.2.3.4, ::ffff:127.0.0.1")],
    )
    .await;
    assert_eq!(a.status, 401, "{}", a.body);
    let a = login_with(&server, "alice", "guess", &[(xff, "1.2.3.4")]).await;
    assert_eq!(a.status, 429, "the third attempt of 1.2.3.4: {}", a.body);
    assert!(a.body.contains("from your address"), "{}", a.body);
    let a = login_with(&server, "alice", "guess", &[(xff, "1.2.3.5")]).await;
    assert_eq!(a.status, 401, "another client: {}", a.body);
}

#[tokio::test]
async fn one_name_is_limited_across_addresses_and_ipv6_clients_by_their_64() {
    let project = require_fixture().await;
    let (_file, server) = users_server(
        &project,
        ("alice", "correct horse", None),
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--login-attempts-per-minute",
            "2",
            "--login-attempts-per-name-per-minute",
            "3",
        ],
    )
    .await;
    let from = |ip: &'static str| [("X-Forwarded-For", ip)];
    // Alice signs in from home: that address is known from then on.
    let home = login_with(&server, "alice", "correct horse", &from("192.0.2.9")).await;
    assert_eq!(home.status, 303, "{}", home.body);
    // Many addresses guess her password: the name is held after the limit...
    for ip in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(
            login_with(&server, "alice", "guess", &from(ip))
                .await
                .status,
            401
        );
    }
    let held = login_with(&server, "alice", "guess", &from("198.51.100.3")).await;
    assert_eq!(held.status, 429, "{}", held.body);
    assert!(held.body.contains("for this user name"), "{}", held.body);
    assert!(held.headers.contains_key("retry-after"));
    let held = login_with(&server, "alice", "correct horse", &from("198.51.100.4")).await;
    assert_eq!(
        held.status, 429,
        "even the right password, from a new address"
    );
    // ...but not for where she signed in before, so the limit locks her out of nothing.
    let back = login_with(&server, "alice", "correct horse", &from("192.0.2.9")).await;
    assert_eq!(back.status, 303, "{}", back.body);
    // A name no one has is held the same way: the answer tells no one who exists.
    for ip in ["198.51.100.5", "198.51.100.6", "198.51.100.7"] {
        assert_eq!(
            login_with(&server, "mallory", "x", &from(ip)).await.status,
            401
        );
    }
    let a = login_with(&server, "mallory", "x", &from("198.51.100.8")).await;
    assert_eq!(a.status, 429, "{}", a.body);

    // One IPv6 /64 is one client.
    for (ip, name) in [("2001:db8:1:2::1", "bob"), ("2001:db8:1:2::ffff", "carol")] {
        assert_eq!(login_with(&server, name, "x", &from(ip)).await.status, 401);
    }
    let a = login_with(&server, "dave", "x", &from("2001:db8:1:2:abcd::1")).await;
    assert_eq!(a.status, 429, "the same /64: {}", a.body);
    let a = login_with(&server, "dave", "x", &from("2001:db8:1:3::1")).await;
    assert_eq!(a.status, 401, "another /64: {}", a.body);
}

#[tokio::test]
async fn password_checks_at_once_are_bounded_and_the_rest_get_503() {
    let project = require_fixture().await;
    let (_file, server) = users_server(
        &project,
        ("alice", "correct horse", None),
        &[
            "--max-concurrent-logins",
            "1",
            "--login-wait",
            "1ms",
            "--login-attempts-per-minute",
            "100",
            "--login-attempts-per-name-per-minute",
            "100",
        ],
    )
    .await;
    let attempts =
        futures::future::join_all((0..8).map(|_| login_with(&server, "alice", "guess", &[]))).await;
    let statuses: Vec<u16> = attempts.iter().map(|a| a.status).collect();
    assert!(statuses.contains(&401), "one check ran: {statuses:?}");
    let busy = attempts
        .iter()
        .find(|a| a.status == 503)
        .unwrap_or_else(|| panic!("one check at a time: {statuses:?}"));
    assert!(
        busy.body.contains("Too many sign-ins at once"),
        "{}",
        busy.body
    );
    assert!(busy.headers.contains_key("retry-after"));
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 503)),
        "{statuses:?}"
    );
    // Every place was given back.
    let ok = login_with(&server, "alice", "correct horse", &[]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
}

#[tokio::test]
async fn a_failed_login_logs_the_name_escaped_so_it_cannot_forge_a_line() {
    let file = UsersFile::new("log");
    add_user(&file.path(), "alice", "correct horse", None).await;
    let path = file.path();
    let server = common::Logging::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--auth",
            "users",
            "--users-file",
            path.to_str().unwrap(),
        ],
        &[
            ("LOOKOUT_LOG", "info"),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ],
    )
    .await;
    let forged = "mallory\n2099-01-01T00:00:00.000000Z  INFO lookout: signed in user=admin";
    let a = answer(
        client()
            .post(format!("http://127.0.0.1:{}/login", server.port))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[("user", forged), ("password", "x")])),
    )
    .await;
    assert_eq!(a.status, 401, "{}", a.body);
    let log = server.stop().await;
    let said = log
        .iter()
        .find(|l| l.contains("wrong user name or password"))
        .unwrap_or_else(|| panic!("the failure is logged: {log:#?}"));
    assert!(said.contains(r"mallory\n2099"), "escaped: {said}");
    assert!(
        !log.iter().any(|l| l.starts_with("2099")),
        "a forged line: {log:#?}"
    );
}

#[tokio::test]
async fn users_add_follows_no_symlink_planted_where_it_writes() {
    let file = UsersFile::new("symlink");
    let victim = file.dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, file.dir.join("users.tmp")).unwrap();
    add_user(&file.path(), "alice", "long enough", None).await;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(file.path()).unwrap();
    assert!(meta.is_file(), "the users file is a file of its own");
    assert!(std::fs::read_to_string(file.path())
        .unwrap()
        .contains("alice:$argon2id$"));
    let mut left: Vec<String> = std::fs::read_dir(&file.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["users", "users.tmp", "victim"],
        "no temporary file left"
    );
}

#[tokio::test]
async fn over_https_the_session_cookie_is_host_prefixed() {
    let project = require_fixture().await;
    let (_file, server) = users_server(&project, ("alice", "correct horse", None), &[]).await;
    let https = ("X-Forwarded-Proto", "https");
    let ok = login_with(&server, "alice", "correct horse", &[https]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let set = ok.headers[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.starts_with("__Host-lookout_session="), "{set}");
    for attr in ["; Path=/;", "; Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain"), "{set}");
    let prefixed = set.split(';').next().unwrap().to_owned();
    let token = prefixed.split_once('=').unwrap().1.to_owned();

    let who = get(&server, "/api/session", &[("Cookie", &prefixed), https]).await;
    assert_eq!(who.status, 200, "{}", who.body);
    assert!(who.body.contains("alice"));
    let plain = format!("lookout_session={token}");
    let a = get(&server, "/api/session", &[("Cookie", &plain), https]).await;
    assert_eq!(a.status, 401, "over https only the prefixed name counts");
    let a = get(&server, "/api/session", &[("Cookie", &prefixed)]).await;
    assert_eq!(
        a.status, 401,
        "over http the prefixed cookie is not the session"
    );

    let out = answer(
        client()
            .post(format!("http://127.0.0.1:{}/logout", server.port))
            .header("Cookie", &prefixed)
            .header(https.0, https.1),
    )
    .await;
    assert_eq!(out.status, 303);
    let cleared = out.headers[SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with("__Host-lookout_session=;"), "{cleared}");
    for attr in ["Max-Age=0", "; Secure", "Path=/"] {
        assert!(cleared.contains(attr), "{attr} in {cleared}");
    }
    let a = get(&server, "/api/session", &[("Cookie", &prefixed), https]).await;
    assert_eq!(a.status, 401, "signed out");
}

#[tokio::test]
async fn a_metrics_token_lets_prometheus_in_whatever_the_auth() {
    let project = require_fixture().await;
    let token = "prometheus-0123456789";
    let (file, server) = users_server(
        &project,
        ("alice", "correct horse", None),
        &["--metrics-token", token],
    )
    .await;
    let bearer = format!("Bearer {token}");
    let a = get(&server, "/metrics", &[("Authorization", &bearer)]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("lookout_engine_up{engine=\"local\"} 1"),
        "{}",
        a.body
    );
    for wrong in [
        "Bearer prometheus-012345678",
        "Bearer prometheus-01234567890",
        "Bearer ",
    ] {
        let a = get(&server, "/metrics", &[("Authorization", wrong)]).await;
        assert_eq!(a.status, 401, "{wrong}: {}", a.body);
        assert!(!a.body.contains("lookout_"), "{}", a.body);
    }
    assert_eq!(
        get(&server, "/metrics", &[]).await.status,
        401,
        "no token, no session"
    );
    let a = get(&server, "/api/projects", &[("Authorization", &bearer)]).await;
    assert_eq!(a.status, 401, "the token opens /metrics only");
    let cookie = sign_in(&server, "alice", "correct horse").await;
    assert_eq!(
        get(&server, "/metrics", &[("Cookie", &cookie)])
            .await
            .status,
        200
    );

    // From a file, as a secret is usually mounted.
    let token_file = file.dir.join("metrics-token");
    std::fs::write(&token_file, "from-a-file-0123\n").unwrap();
    let from_file = Server::start_for(
        &project,
        &[
            "--auth",
            "users",
            "--users-file",
            file.path().to_str().unwrap(),
            "--metrics-token-file",
            token_file.to_str().unwrap(),
        ],
    )
    .await;
    let a = get(
        &from_file,
        "/metrics",
        &[("Authorization", "Bearer from-a-file-0123")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = get(&from_file, "/metrics", &[("Authorization", &bearer)]).await;
    assert_eq!(a.status, 401);

    // Without authentication /metrics stays open, but a wrong token is still wrong.
    let open = Server::start_for(&project, &["--metrics-token", token]).await;
    assert_eq!(get(&open, "/metrics", &[]).await.status, 200);
    assert_eq!(
        get(&open, "/metrics", &[("Authorization", "Bearer nope")])
            .await
            .status,
        401
    );
    let (code, err) = launch(&["--listen", "127.0.0.1:0", "--metrics-token", "two words"])
        .await
        .unwrap_err();
    assert_eq!(code, Some(2), "{err}");
}
