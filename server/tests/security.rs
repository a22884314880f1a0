//! Acceptance tests of what keeps Lookout safe to run: which names it answers to, which pages
//! may open its WebSocket, where it agrees to listen, and what it tells anyone who asks. Real `lookout` binary and real sockets:
//!
//! ```sh
//! bash scripts/fixture.sh up lookout-test
//! cargo test -p lookout --test security
//! ```

mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{launch, Logging, Server, WAIT};

/// An answer read off the wire.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` byte for byte over a new connection (so the test says what Host is sent,
/// or none); reads the head and the body its Content-Length announces.
async fn raw(port: u16, request: &str) -> Raw {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(request.as_bytes()).await.expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).into_owned();
                // An upgraded connection stays open: its head is the whole answer.
                if head.starts_with("HTTP/1.1 101 ") {
                    return (head, String::new());
                }
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok());
                if length.is_some_and(|n| got.len() >= end + 4 + n) {
                    let body = &got[end + 4..end + 4 + length.unwrap_or_default()];
                    return (head, String::from_utf8_lossy(body).into_owned());
                }
            }
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                let text = String::from_utf8_lossy(&got).into_owned();
                let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                return (head.to_owned(), body.to_owned());
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    let (head, body) = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("an answer within 10 s");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    Raw { status, head, body }
}

/// `GET path` with this Host header (or none).
async fn get_as(port: u16, path: &str, host: Option<&str>) -> Raw {
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    raw(
        port,
        &format!("GET {path} HTTP/1.1\r\n{host}Connection: close\r\n\r\n"),
    )
    .await
}

/// A WebSocket upgrade of `/ws` as a browser on `origin` sends it, naming `host`.
async fn upgrade_as(port: u16, host: &str, origin: &str) -> Raw {
    raw(
        port,
        &format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ),
    )
    .await
}

#[tokio::test]
async fn a_request_for_another_host_name_gets_421_and_reaches_no_route() {
    let server = Server::start().await;
    let port = server.port;
    let evil = format!("evil.tld:{port}");

    let a = get_as(port, "/api/projects", Some(&evil)).await;
    assert_eq!(a.status, 421, "{} {}", a.head, a.body);
    assert!(
        a.body.ends_with('\n') && a.body.trim_end().lines().count() == 1,
        "one line: {:?}",
        a.body
    );
    assert!(a.body.contains("evil.tld"), "{:?}", a.body);
    assert!(
        !a.body.contains(&server.project),
        "nothing of the route: {:?}",
        a.body
    );
    for path in ["/", "/healthz", "/metrics", "/login", "/index.html"] {
        assert_eq!(get_as(port, path, Some(&evil)).await.status, 421, "{path}");
    }
    let a = get_as(port, "/api/projects", None).await;
    assert_eq!(a.status, 421, "no Host at all: {}", a.body);
    let a = raw(port, "GET /api/projects HTTP/1.0\r\n\r\n").await;
    assert_eq!(a.status, 421, "HTTP/1.0 without Host: {}", a.body);
    let a = raw(
        port,
        &format!(
            "GET http://evil.tld/api/projects HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(a.status, 421, "an absolute target naming another host");

    // A rebinding page: its own name in Host and Origin, which then agree with each other.
    let ws = upgrade_as(port, &evil, &format!("http://{evil}")).await;
    assert_eq!(ws.status, 421, "{}", ws.head);

    // Loopback names, with any port.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("lookout.localhost:{port}"),
        format!("127.0.0.2:{port}"),
        format!("[::1]:{port}"),
    ] {
        let a = get_as(port, "/api/projects", Some(&host)).await;
        assert_eq!(a.status, 200, "{host}: {}", a.body);
    }
    let own = format!("localhost:{port}");
    let ws = upgrade_as(port, &own, &format!("http://{own}")).await;
    assert_eq!(ws.status, 101, "{}", ws.head);
}

#[tokio::test]
async fn allowed_host_names_are_answered_and_the_websocket_opens_for_them() {
    let project = common::require_fixture().await;
    let server =
        Server::start_for(&project, &["--allowed-host", "logs.example.com,192.0.2.10"]).await;
    let port = server.port;
    for host in [
        "logs.example.com",
        "LOGS.example.com:443",
        "192.0.2.10:8080",
    ] {
        let a = get_as(port, "/api/projects", Some(host)).await;
        assert_eq!(a.status, 200, "{host}: {}", a.body);
    }
    let ws = upgrade_as(port, "logs.example.com", "https://logs.example.com").await;
    assert_eq!(ws.status, 101, "{}", ws.head);
    for host in ["evil.tld", "sub.logs.example.com", "192.0.2.11"] {
        assert_eq!(get_as(port, "/", Some(host)).await.status, 421, "{host}");
    }
    let (code, err) = launch(&[
        "--listen",
        "127.0.0.1:0",
        "--allowed-host",
        "logs.example.com:443",
    ])
    .await
    .unwrap_err();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("without a port"), "{err}");

    // Listening on every address names none of them: only loopback and allowed names.
    let anywhere = Logging::start(
        &["--listen", "0.0.0.0:0", "--allow-unauthenticated-remote"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    )
    .await;
    let p = anywhere.port;
    assert_eq!(
        get_as(p, "/healthz", Some(&format!("0.0.0.0:{p}")))
            .await
            .status,
        421
    );
    assert_eq!(
        get_as(p, "/healthz", Some(&format!("127.0.0.1:{p}")))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn login_sends_nowhere_but_a_path_of_this_server() {
    let server = Server::start().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()
        .unwrap();
    for (next, to) in [
        ("/%09/evil.example", "/"),
        ("/%0A/evil.example", "/"),
        ("//evil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("https://evil.example/", "/"),
        ("/%20/evil.example", "/"),
        ("/?service=web", "/?service=web"),
    ] {
        let resp = client
            .get(format!(
                "http://127.0.0.1:{}/login?next={next}",
                server.port
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{next}");
        assert_eq!(resp.headers()["location"], to, "{next}");
    }
}

#[tokio::test]
async fn healthz_tells_anyone_only_whether_each_engine_answers_and_its_api_version() {
    let server = Server::start().await;
    let (status, body) = server.get("/healthz", &[]).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let api = common::docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]).await;
    assert_eq!(
        v,
        serde_json::json!({
            "status": "ok",
            "engine": {"reachable": true, "api_version": api.trim()},
            "engines": [{"name": "local", "reachable": true, "api_version": api.trim()}],
        }),
        "{body}"
    );

    let secret = "/run/secret-socket-dir/docker.sock";
    let lost = Logging::start(
        &["--listen", "127.0.0.1:0"],
        &[("DOCKER_HOST", &format!("unix://{secret}"))],
    )
    .await;
    let body = reqwest::get(format!("http://127.0.0.1:{}/healthz", lost.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "status": "ok",
            "engine": {"reachable": false, "api_version": null},
            "engines": [{"name": "local", "reachable": false, "api_version": null}],
        }),
        "{body}"
    );
    assert!(!body.contains("secret-socket-dir"), "{body}");
}

#[tokio::test]
async fn a_page_of_another_site_cannot_open_the_websocket() {
    let server = Server::start().await;
    let own = format!("http://127.0.0.1:{}", server.port);
    assert_eq!(
        server.upgrade("/ws", Some(&own)).await.0,
        101,
        "Lookout's own page"
    );
    assert_eq!(
        server.upgrade("/ws", None).await.0,
        101,
        "a client that is not a browser"
    );

    for foreign in [
        "http://evil.example",
        "http://127.0.0.1:1",
        "null",
        "http://localhost.evil.example",
    ] {
        let (status, text) = server.upgrade("/ws", Some(foreign)).await;
        assert_eq!(status, 403, "{foreign}: {text}");
        assert!(
            text.contains("WebSocket refused"),
            "{foreign}: the refusal says why: {text:?}"
        );
    }

    // An origin the operator allows.
    let allowing = Server::start_for(
        &server.project,
        &["--allowed-origin", "https://dash.example.com"],
    )
    .await;
    assert_eq!(
        allowing
            .upgrade("/ws", Some("https://dash.example.com"))
            .await
            .0,
        101
    );
    assert_eq!(
        allowing.upgrade("/ws", Some("http://evil.example")).await.0,
        403
    );
}

#[tokio::test]
async fn without_authentication_it_listens_on_loopback_only_unless_told() {
    let (code, stderr) = launch(&["--listen", "0.0.0.0:0"])
        .await
        .expect_err("lookout must refuse 0.0.0.0 without --allow-unauthenticated-remote");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0")
            && stderr.contains("--allow-unauthenticated-remote"),
        "the refusal says why and what to do: {stderr}"
    );

    let line = launch(&["--listen", "0.0.0.0:0", "--allow-unauthenticated-remote"])
        .await
        .unwrap_or_else(|(code, stderr)| panic!("exited {code:?}: {stderr}"));
    assert!(
        line.starts_with("Lookout listening on http://0.0.0.0:"),
        "{line}"
    );

    let line = launch(&["--listen", "127.0.0.1:0"])
        .await
        .unwrap_or_else(|(code, stderr)| panic!("exited {code:?}: {stderr}"));
    assert!(
        line.starts_with("Lookout listening on http://127.0.0.1:"),
        "{line}"
    );
}

/// Lines with secrets of every kind, and near-misses, written into the probe's log; each line
/// starts with `tag`. Returns them with what a viewer must be shown.
fn secret_lines(tag: &str) -> Vec<(String, String)> {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.3q2-7wAbCdEfGhIjKlMnOp";
    [
        (
            "login user=bob password=hunter2 ok".to_owned(),
            "login user=bob password=[REDACTED:assignment] ok".to_owned(),
        ),
        (
            format!("Authorization: Bearer {jwt}"),
            "Authorization: Bearer [REDACTED:jwt]".to_owned(),
        ),
        (
            "db postgres://shop:Tr0ub4dor@db:5432/shop up".to_owned(),
            "db postgres://shop:[REDACTED:url-password]@db:5432/shop up".to_owned(),
        ),
        (
            "s3 key AKIAIOSFODNN7EXAMPLE".to_owned(),
            "s3 key [REDACTED:aws-access-key]".to_owned(),
        ),
        (
            "password reset requested for alice".to_owned(),
            "password reset requested for alice".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(raw, shown)| (format!("{tag} {raw}"), format!("{tag} {shown}")))
    // A private key over three lines: every line of the block goes, whatever it holds.
    .chain([
        (
            format!("{tag} -----BEGIN EC PRIVATE KEY-----"),
            format!("{tag} [REDACTED:private-key]"),
        ),
        (
            "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oSw8ZfL6D7cNoAoGCCqGSM49".to_owned(),
            "[REDACTED:private-key]".to_owned(),
        ),
        (
            "-----END EC PRIVATE KEY-----".to_owned(),
            "[REDACTED:private-key]".to_owned(),
        ),
    ])
    .collect()
}

/// Writes the lines into the probe's stdout, one write. The caller holds the probe: the
/// tests here write key lines, which would show in each other's views.
async fn write_probe(probe: &common::ProbeGuard<'_>, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    probe.printf(common::Fd::Stdout, "%s", &[&text]).await;
}

#[tokio::test]
async fn secrets_are_redacted_live_in_tails_and_in_downloads() {
    let server = Server::start().await;
    let probe = common::Probe::find(&server.project).await;
    let probe = probe.lock().await;
    let tag = common::marker("secret");
    let cases = secret_lines(&tag);
    let raw: Vec<String> = cases.iter().map(|(r, _)| r.clone()).collect();
    let shown: Vec<String> = cases.iter().map(|(_, s)| s.clone()).collect();
    let ours = |text: &str| text.starts_with(&tag) || text.starts_with("[REDACTED:private-key]");

    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    write_probe(&probe, &raw).await;
    let live = ws
        .wait_lines("probe", |ls| {
            ls.iter().filter(|l| ours(&l.text)).count() >= shown.len()
        })
        .await;
    let live: Vec<&str> = live
        .iter()
        .map(|l| l.text.as_str())
        .filter(|t| ours(t))
        .collect();
    // Key lines of other tests' runs could interleave only if they wrote keys; none do.
    assert_eq!(live, shown, "live");

    let tail = server.tail("probe", &[("tail", "200")]).await;
    let tail: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
    let at = tail
        .iter()
        .position(|t| t.starts_with(&tag))
        .expect("the tail holds the lines");
    assert_eq!(&tail[at..at + shown.len()], shown.as_slice(), "tail");

    let (status, file) = server
        .get(
            "/api/download",
            &[("project", &server.project), ("service", "probe")],
        )
        .await;
    assert_eq!(status, 200, "{file}");
    for (raw, shown) in &cases {
        assert!(
            file.lines().any(|l| l.ends_with(shown.as_str())),
            "download: {shown:?} missing"
        );
        if raw != shown {
            assert!(!file.contains(raw.as_str()), "download leaks {raw:?}");
        }
    }
    assert!(!file.contains("hunter2") && !file.contains("Tr0ub4dor"));

    // The setting: off, or the operator's own pattern.
    let plain = Server::start_for(&server.project, &["--redact", "none"]).await;
    let mut ws = plain.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    let tag2 = common::marker("plain");
    let line = format!("{tag2} password=hunter2 order ORD-123456");
    write_probe(&probe, std::slice::from_ref(&line)).await;
    let (got, _) = ws.wait_line("probe", |l| l.text.starts_with(&tag2)).await;
    assert_eq!(got.text, line, "--redact none shows the line as written");

    let own = Server::start_for(
        &server.project,
        &[
            "--redact",
            "assignment",
            "--redact-pattern",
            "order=ORD-[0-9]{6}",
        ],
    )
    .await;
    let tail = own.tail("probe", &[("tail", "200")]).await;
    let got = tail
        .iter()
        .find(|l| l.text.starts_with(&tag2))
        .expect("the line in the tail");
    assert_eq!(
        got.text,
        format!("{tag2} password=[REDACTED:assignment] order [REDACTED:order]")
    );
}

#[tokio::test]
async fn a_begin_line_alone_hides_nothing_after_it() {
    let server = Server::start().await;
    let probe = common::Probe::find(&server.project).await;
    let probe = probe.lock().await;
    let tag = common::marker("lone");
    let after = [
        format!("{tag} GET /health 200 1ms"),
        format!("{tag} worker 3 started"),
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj".to_owned(),
        format!("{tag} done"),
    ];
    let mut lines = vec![format!("{tag} ua=-----BEGIN PRIVATE KEY-----")];
    lines.extend(after.iter().cloned());

    let mut ws = server.ws().await;
    ws.subscribe("probe", 0).await;
    ws.expect_subscribed("probe").await;
    write_probe(&probe, &lines).await;
    let done = format!("{tag} done");
    let live = ws
        .wait_lines("probe", |ls| ls.iter().any(|l| l.text == done))
        .await;
    let live: Vec<&str> = live.iter().map(|l| l.text.as_str()).collect();
    let at = live.len() - lines.len();
    assert_eq!(live[at], format!("{tag} ua=[REDACTED:private-key]"), "live");
    assert_eq!(&live[at + 1..], after.as_slice(), "live");

    let tail = server.tail("probe", &[("tail", "4")]).await;
    let tail: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(tail, after, "a tail");
    let tail = server.tail("probe", &[("tail", "50")]).await;
    let tail: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        &tail[tail.len() - after.len()..],
        after.as_slice(),
        "a longer tail"
    );

    let (status, file) = server
        .get(
            "/api/download",
            &[("project", &server.project), ("service", "probe")],
        )
        .await;
    assert_eq!(status, 200, "{file}");
    let file: Vec<&str> = file.lines().collect();
    let shown: Vec<&str> = file[file.len() - after.len()..]
        .iter()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or_default())
        .collect();
    assert_eq!(shown, after, "download");
}

/// An encrypted RSA key in PEM, made for these tests.
const ENCRYPTED_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-128-CBC,53ED84C97C638D622F0F308AA317025C

0h9r+0GkWoiklflYDF1/6wUwhIMdN8II7TXv3zv6JeirDPWf3SOzs9FipknBJJ0i
ijcUQQwdvmDqSe5pl6SfrZg46uMkPrgsrN37p8448f1Ieml8hLVPYbuAQndL1Bq7
GLf1fetTMki76rKz5WuIu6gyDFrhfwXgfp8XBe2cefkv3JZvFomHqf5CL8ztc+Yv
Cp2eK5zeJ9KnNuV2/Q/gAybq/gPsOKWTOzZG/eZRbWE25Ddwg2dZysfljfk+CF54
P7wDuuWQdydMB9EGKs8ZUJA9lNnPed1t7s5rM5WVx+aRh84YPJmt0Cy4pL5raaMt
+ePo2btwPF5l8LAfVzDeROIg/NNxCcGk+ExRkakIRLXzs0m/ZDhf1w8NRNo0wIuG
AKInkT7xic2EMeWBMPFJX6Ot7L7OZlsv3wWk5QquiHM=
-----END RSA PRIVATE KEY-----";

#[tokio::test]
async fn a_tail_that_starts_inside_a_key_shows_none_of_it() {
    let server = Server::start().await;
    let probe = common::Probe::find(&server.project).await;
    let probe = probe.lock().await;
    let tag = common::marker("cut");
    let loaded = format!("{tag} key loaded");
    let mut lines: Vec<String> = vec![format!("{tag} loading key")];
    lines.extend(ENCRYPTED_KEY.lines().map(str::to_owned));
    lines.push(loaded.clone());
    write_probe(&probe, &lines).await;

    // Every tail that starts after the BEGIN line: at a header, the blank line, a body line,
    // the END line.
    for n in 2..lines.len() {
        let tail = server.tail("probe", &[("tail", &n.to_string())]).await;
        let tail: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(tail.len(), n, "tail={n}: {tail:?}");
        assert_eq!(tail[n - 1], loaded, "tail={n}");
        assert!(
            tail[..n - 1].iter().all(|t| *t == "[REDACTED:private-key]"),
            "tail={n} shows part of the key: {tail:?}"
        );
    }
}

#[tokio::test]
async fn too_many_or_too_large_secret_patterns_are_a_clear_error() {
    let many: Vec<String> = (0..65)
        .map(|i| format!("--redact-pattern=p{i}=ORD-{i}-[0-9]{{6}}"))
        .collect();
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend(many.iter().map(String::as_str));
    let (code, stderr) = launch(&args).await.expect_err("65 secret patterns");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("lookout: too many secret patterns: 65 given, at most 64"),
        "{stderr}"
    );

    // Each one within its own bound, all of them together too large.
    let big: Vec<String> = (0..48)
        .map(|i| format!("--redact-pattern=big{i}=(?:[a-z]{{100}}){{30}}"))
        .collect();
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend(big.iter().map(String::as_str));
    let (code, stderr) = launch(&args)
        .await
        .expect_err("patterns too large together");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("lookout: the secret patterns compile to more than 8 MiB together"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_bad_redaction_setting_is_a_clear_error() {
    let (code, stderr) = launch(&["--listen", "127.0.0.1:0", "--redact", "jwt,pasword"])
        .await
        .expect_err("an unknown kind of secret");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("\"pasword\""), "{stderr}");
    let (code, stderr) = launch(&["--listen", "127.0.0.1:0", "--redact-pattern", "x=("])
        .await
        .expect_err("a pattern that does not compile");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("secret pattern x"), "{stderr}");
}

#[tokio::test]
async fn lookout_only_reads_from_the_engine() {
    let server = Server::start().await;
    // Listing, a live subscription, a one-off tail and a download: every path to the engine.
    let mut ws = server.ws().await;
    ws.subscribe("web", 5).await;
    ws.expect_subscribed("web").await;
    ws.next_lines("web").await;
    server.tail("web", &[("tail", "3")]).await;
    let (status, _) = server
        .get(
            "/api/download",
            &[("project", &server.project), ("service", "web")],
        )
        .await;
    assert_eq!(status, 200);
    let calls = server.engine_calls.calls();
    let mut distinct = calls.clone();
    distinct.sort();
    distinct.dedup();
    eprintln!("[engine calls] {distinct:?}");
    for expected in [
        "GET /version",
        "GET /containers/json",
        "GET /containers/{id}/logs",
        "GET /events",
    ] {
        assert!(
            calls.iter().any(|c| c == expected),
            "the recorder saw {expected}: {calls:?}"
        );
    }
    assert_eq!(
        server.engine_calls.unexpected(),
        Vec::<String>::new(),
        "calls beyond {:?}",
        common::ALLOWED_ENGINE_CALLS
    );
}

#[tokio::test]
async fn listening_beyond_loopback_without_authentication_is_warned_about() {
    let no_engine = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let mut anywhere = Logging::start(
        &["--listen", "0.0.0.0:0", "--allow-unauthenticated-remote"],
        &no_engine,
    )
    .await;
    let warned = tokio::time::timeout(WAIT, async {
        while let Some(l) = anywhere.log.next_line().await.expect("read lookout's log") {
            if l.contains("without authentication") {
                return l;
            }
        }
        panic!("lookout ended without warning that it listens beyond loopback unauthenticated")
    })
    .await
    .expect("the warning comes within 10 s");
    assert!(
        warned.contains("WARN") && warned.contains("0.0.0.0") && warned.contains("every log"),
        "a warning naming the address and what anyone there reads: {warned}"
    );
    drop(anywhere);

    // On loopback there is nothing to warn about.
    let local = Logging::start(&["--listen", "127.0.0.1:0"], &no_engine).await;
    let said = local.stop().await;
    assert!(
        !said.iter().any(|l| l.contains("without authentication")),
        "a warning on loopback: {said:?}"
    );
}

#[tokio::test]
async fn the_settings_that_take_lists_read_them_from_the_environment() {
    let project = common::require_fixture().await;

    // LOOKOUT_ALLOWED_HOSTS and LOOKOUT_ALLOWED_ORIGINS: comma-separated.
    let server = Server::start_with(
        Some(&project),
        &[],
        &[
            (
                "LOOKOUT_ALLOWED_HOSTS",
                "logs.example.com,other.example.org",
            ),
            (
                "LOOKOUT_ALLOWED_ORIGINS",
                "https://dash.example.com,https://board.example.org",
            ),
        ],
    )
    .await;
    let p = server.port;
    for host in ["logs.example.com", "other.example.org"] {
        let a = get_as(p, "/healthz", Some(host)).await;
        assert_eq!(a.status, 200, "Host {host}: {}", a.body);
    }
    assert_eq!(
        get_as(p, "/healthz", Some("evil.example")).await.status,
        421
    );
    for origin in ["https://dash.example.com", "https://board.example.org"] {
        let (status, body) = server.upgrade("/ws", Some(origin)).await;
        assert_eq!(status, 101, "Origin {origin}: {body}");
    }
    assert_eq!(
        server.upgrade("/ws", Some("https://evil.example")).await.0,
        403
    );
    drop(server);

    // LOOKOUT_TRUSTED_PROXIES: comma-separated; the tests' requests come from the second.
    let server = Server::start_with(
        Some(&project),
        &["--auth", "forward-proxy"],
        &[("LOOKOUT_TRUSTED_PROXIES", "10.9.8.7,127.0.0.1")],
    )
    .await;
    let a = raw(
        server.port,
        "GET /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nRemote-User: alice\r\n\
         Connection: close\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, r#"{"auth":"forward-proxy","user":"alice"}"#);
    drop(server);

    // LOOKOUT_REDACT: a comma-separated list of kinds; LOOKOUT_REDACT_PATTERNS: one pattern a
    // line.
    let server = Server::start_with(
        Some(&project),
        &[],
        &[
            ("LOOKOUT_REDACT", "url-password,bearer"),
            (
                "LOOKOUT_REDACT_PATTERNS",
                "order=ORD-[0-9]{6}\nticket=TCK-[0-9]{4}",
            ),
        ],
    )
    .await;
    let tag = common::marker("env-lists");
    let written = format!(
        "{tag} pw password=hunter2 db postgres://shop:Tr0ub4dor@db:5432/shop \
         auth Bearer abcdefghijklmnop1234 order ORD-123456 ticket TCK-9876"
    );
    let shown = format!(
        "{tag} pw password=hunter2 db postgres://shop:[REDACTED:url-password]@db:5432/shop \
         auth Bearer [REDACTED:bearer] order [REDACTED:order] ticket [REDACTED:ticket]"
    );
    let probe = common::Probe::find(&project).await;
    probe.printf(common::Fd::Stdout, "%s\n", &[&written]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let line = loop {
        let tail = server.tail("probe", &[("tail", "100")]).await;
        if let Some(l) = tail.into_iter().find(|l| l.text.starts_with(&tag)) {
            break l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the line written is not in the tail within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        line.text, shown,
        "only the kinds listed, and both patterns, are redacted"
    );
}
