//! The login page of `--auth users` (plain HTML, no script), signing in and out.

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::sessions::OverLimit;
use super::{cookie, over_https, session_cookie, users, Auth, TrustedProxies, Viewer};

/// The login page's own policy: no script at all, its one inline style, forms to here only.
const LOGIN_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    next: Option<String>,
}

/// Where to go after signing in: only a plain path of this server, else `/`. A browser reads
/// `//host`, `/\host` and, since it drops tabs and newlines from URLs, `/\t/host` as another
/// site; so the path starts with one `/` and holds visible ASCII only (what a URL path is
/// once percent-encoded), backslashes left out.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n
        }
        _ => "/",
    }
}

pub fn redirect_to_login(next: &str) -> Response {
    let next: String = url_encode(next);
    see_other(&format!("/login?next={next}"), None)
}

fn see_other(location: &str, set_cookie: Option<String>) -> Response {
    let mut res = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response();
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(header::SET_COOKIE, c);
    }
    res
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, next: &str, user: &str, message: Option<&str>) -> Response {
    let alert = message
        .map(|m| format!(r#"<p class="error" role="alert">{}</p>"#, escape(m)))
        .unwrap_or_default();
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Sign in · Lookout</title>
<link rel="icon" href="/favicon.svg">
<style>
body {{ font: 16px system-ui, sans-serif; display: grid; place-items: center; min-height: 100vh; margin: 0; }}
form {{ display: grid; gap: .75rem; width: min(20rem, 90vw); }}
input, button {{ font: inherit; padding: .5rem; }}
.error {{ color: #c62828; margin: 0; }}
</style>
</head>
<body>
<main>
<h1>Lookout</h1>
<form method="post" action="/login">
{alert}
<label>User <input name="user" autocomplete="username" required value="{user}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
"#,
        user = escape(user),
        next = escape(next),
    );
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(LOGIN_POLICY),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET /login`.
pub async fn show(
    State(auth): State<Arc<Auth>>,
    viewer: Option<Extension<Viewer>>,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = local_path(q.next.as_deref());
    if !matches!(*auth, Auth::Users { .. }) || viewer.is_some() {
        return see_other(next, None);
    }
    page(StatusCode::OK, next, "", None)
}

/// `POST /login`: signs in and goes on to `next`.
pub async fn submit(
    State(auth): State<Arc<Auth>>,
    State(proxies): State<Arc<TrustedProxies>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Auth::Users {
        users,
        sessions,
        limiter,
        checks,
        ..
    } = &*auth
    else {
        return (
            StatusCode::NOT_FOUND,
            "Lookout asks for no password (--auth)",
        )
            .into_response();
    };
    let next = local_path(form.next.as_deref());
    let client = proxies.client(peer.ip(), &headers);
    // The name is the client's to write, newlines included: logged escaped, never raw.
    let name = &form.user;
    if let Err(over) = limiter.attempt(client, name) {
        return too_many_attempts(over, client, name, next);
    }
    let wrong = || {
        tracing::info!(%client, user = ?name, "wrong user name or password");
        page(
            StatusCode::UNAUTHORIZED,
            next,
            name,
            Some("Wrong user name or password."),
        )
    };
    // No user has such a name, and saying so at once tells nothing about who exists.
    if !users::valid_name(name) {
        return wrong();
    }
    let Some(permit) = checks.permit().await else {
        return too_many_at_once(checks.wait(), client, name, next);
    };
    // Hashing is slow on purpose: off the async threads. The place is held until the check
    // ends, even if the client gives up first.
    let users = Arc::clone(users);
    let (user, password) = (name.clone(), form.password);
    let verified = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        users.verify(&user, &password).map(|u| u.scope.clone())
    })
    .await
    .ok()
    .flatten();
    let Some(scope) = verified else {
        return wrong();
    };
    limiter.signed_in(client, name);
    let token = sessions.open(name, scope);
    let secure = if over_https(&headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        session_cookie(&headers),
        sessions.ttl().as_secs()
    );
    tracing::info!(user = ?name, "signed in");
    see_other(next, Some(cookie))
}

fn too_many_attempts(over: OverLimit, client: IpAddr, name: &str, next: &str) -> Response {
    let secs = over.wait().as_secs().max(1);
    let whose = match over {
        OverLimit::Address(_) => "from your address",
        OverLimit::Name(_) => "for this user name",
    };
    tracing::warn!(%client, user = ?name, "login attempts {whose} over the limit");
    let message = format!("Too many attempts {whose}. Try again in {secs} s.");
    let res = page(StatusCode::TOO_MANY_REQUESTS, next, name, Some(&message));
    with_retry_after(res, secs)
}

fn too_many_at_once(wait: Duration, client: IpAddr, name: &str, next: &str) -> Response {
    let secs = wait.as_secs().max(1);
    tracing::warn!(%client, user = ?name, "login refused: too many password checks at once");
    let message = format!("Too many sign-ins at once. Try again in {secs} s.");
    let res = page(StatusCode::SERVICE_UNAVAILABLE, next, name, Some(&message));
    with_retry_after(res, secs)
}

fn with_retry_after(mut res: Response, secs: u64) -> Response {
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

/// `POST /logout`: ends the session and goes back to the login page.
pub async fn logout(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    let name = session_cookie(&headers);
    if let (Some(sessions), Some(token)) = (auth.sessions(), cookie(&headers, name)) {
        sessions.close(token);
    }
    // A browser drops a `__Host-` cookie only through a Set-Cookie that could have set it.
    let secure = if over_https(&headers) { "; Secure" } else { "" };
    let cleared = format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    see_other("/login", Some(cleared))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        for ok in [
            "/",
            "/?service=web",
            "/?project=shop&service=web&filter=a%20b",
            "/index.html#top",
            "/a//b",
        ] {
            assert_eq!(local_path(Some(ok)), ok);
        }
        for hostile in [
            "//evil.example/",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\t\tevil.example",
            "\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            " /x",
            "/x y",
            "/a\\b",
            "/\u{7f}x",
            "/\u{0}x",
            "/\u{a0}/evil.example",
            "/\u{3000}/evil.example",
            "/é",
            "https://evil.example/",
            "http:/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
        ] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn what_the_page_echoes_is_escaped() {
        assert_eq!(
            escape(r#""><script>alert(1)</script>"#),
            "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(url_encode("/?a=1&b=<x>"), "/%3Fa%3D1%26b%3D%3Cx%3E");
    }
}
