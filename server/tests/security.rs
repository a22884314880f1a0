//! Acceptance tests of what keeps Lookout safe to run: which pages may open its WebSocket,
//! and where it agrees to listen. Real `lookout` binary and real sockets:
//!
//! ```sh
//! bash scripts/fixture.sh up lookout-test
//! cargo test -p lookout --test security
//! ```

mod common;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Error;

use common::{launch, Server, WAIT};

/// Opens the WebSocket with `origin` (as a browser on that page would); the HTTP status of a
/// refusal and its text, or 101.
async fn upgrade(server: &Server, origin: Option<&str>) -> (u16, String) {
    let mut request = format!("ws://127.0.0.1:{}/ws", server.port)
        .into_client_request()
        .expect("a request");
    if let Some(o) = origin {
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(o).expect("a header"));
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("an answer within 10 s")
    {
        Ok((_, response)) => (response.status().as_u16(), String::new()),
        Err(Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (response.status().as_u16(), body)
        }
        Err(e) => panic!("the upgrade failed otherwise: {e}"),
    }
}

#[tokio::test]
async fn a_page_of_another_site_cannot_open_the_websocket() {
    let server = Server::start().await;
    let own = format!("http://127.0.0.1:{}", server.port);
    assert_eq!(
        upgrade(&server, Some(&own)).await.0,
        101,
        "Lookout's own page"
    );
    assert_eq!(
        upgrade(&server, None).await.0,
        101,
        "a client that is not a browser"
    );

    for foreign in [
        "http://evil.example",
        "http://127.0.0.1:1",
        "null",
        "http://localhost.evil.example",
    ] {
        let (status, text) = upgrade(&server, Some(foreign)).await;
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
        upgrade(&allowing, Some("https://dash.example.com")).await.0,
        101
    );
    assert_eq!(upgrade(&allowing, Some("http://evil.example")).await.0, 403);
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
