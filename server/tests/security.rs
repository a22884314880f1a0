//! Acceptance tests of what keeps Lookout safe to run: which pages may open its WebSocket,
//! and where it agrees to listen. Real `lookout` binary and real sockets:
//!
//! ```sh
//! bash scripts/fixture.sh up lookout-test
//! cargo test -p lookout --test security
//! ```

mod common;

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Error;

use common::{Server, WAIT};

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

/// Runs `lookout <args>` until it says where it listens (Ok, with the line) or exits (Err,
/// with its exit code and stderr).
async fn launch(args: &[&str]) -> Result<String, (Option<i32>, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .env_remove("LOOKOUT_ALLOW_UNAUTHENTICATED_REMOTE")
        .env("LOOKOUT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the lookout binary");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(WAIT, stdout.next_line())
        .await
        .expect("lookout says something or exits within 10 s")
        .expect("read stdout");
    if let Some(line) = first {
        child.kill().await.expect("end lookout");
        return Ok(line);
    }
    let out = child.wait_with_output().await.expect("lookout's exit");
    Err((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
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
