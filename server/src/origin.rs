//! Which pages may open a WebSocket here. A browser sends the page's origin with every
//! upgrade, and a WebSocket is not bound by the same-origin policy: without this check any
//! site a user visits could read their logs through their browser.

use axum::http::{header, HeaderMap, Uri};

/// Why an upgrade was refused, for the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("cross-origin WebSocket refused: {origin} is not this server ({host}); allow it with --allowed-origin")]
    Foreign { origin: String, host: String },
    #[error("WebSocket refused: the Origin header {0:?} is not an origin")]
    Unreadable(String),
    #[error(
        "cross-site request refused: a page of {0} may not send requests that change anything here"
    )]
    CrossSiteRequest(String),
}

/// For requests that change something (POST: sign in, sign out, server functions). A
/// browser says where a request comes from in `Sec-Fetch-Site`, which no page can forge: from
/// this origin (or typed by the user) it passes; from elsewhere only an allowed origin does.
/// Without it (an older browser, or not a browser) the Origin rule of upgrades applies. The
/// Origin alone is not enough: under `Referrer-Policy: no-referrer` a browser sends
/// `Origin: null` even for a form of this very page.
pub fn check_request(headers: &HeaderMap, allowed: &[String]) -> Result<(), Refused> {
    let refused = || {
        Refused::CrossSiteRequest(
            headers
                .get(header::ORIGIN)
                .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned())
                .unwrap_or_else(|| "another site".to_owned()),
        )
    };
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        Some(b"same-origin" | b"none") => Ok(()),
        Some(_) if headers.get(header::ORIGIN).is_none() => Err(refused()),
        _ => check(headers, allowed).map_err(|_| refused()),
    }
}

/// Accepts an upgrade without an Origin (not from a browser), one from a page served by this
/// server (the origin's host and port are the request's Host), or from an allowed origin.
pub fn check(headers: &HeaderMap, allowed: &[String]) -> Result<(), Refused> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| Refused::Unreadable(String::from_utf8_lossy(origin.as_bytes()).into()))?;
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let authority = origin
        .parse::<Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
        .and_then(|u| u.authority().map(|a| a.as_str().to_ascii_lowercase()))
        .ok_or_else(|| Refused::Unreadable(origin.to_owned()))?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !host.is_empty() && authority == host {
        Ok(())
    } else {
        Err(Refused::Foreign {
            origin: origin.to_owned(),
            host,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Pure unit tests on made-up headers; tests/security.rs upgrades real sockets.
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_and_no_origin_pass() {
        assert_eq!(check(&headers(None, "127.0.0.1:8080"), &[]), Ok(()));
        let same = headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(check(&same, &[]), Ok(()));
        let upper = headers(Some("https://Logs.Example.com"), "logs.example.com");
        assert_eq!(check(&upper, &[]), Ok(()));
    }

    #[test]
    fn another_site_or_port_is_refused() {
        for origin in [
            "http://evil.example",
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8080.evil.example",
            "http://localhost:8080",
        ] {
            let h = headers(Some(origin), "127.0.0.1:8080");
            assert!(
                matches!(check(&h, &[]), Err(Refused::Foreign { .. })),
                "{origin}"
            );
        }
    }

    #[test]
    fn null_and_other_schemes_are_refused() {
        for origin in ["null", "file://", "chrome-extension://abc"] {
            let h = headers(Some(origin), "127.0.0.1:8080");
            assert!(check(&h, &[]).is_err(), "{origin}");
        }
    }

    #[test]
    fn an_allowed_origin_passes() {
        let h = headers(Some("https://dash.example.com"), "10.0.0.5:8080");
        assert!(check(&h, &[]).is_err());
        assert_eq!(check(&h, &["https://dash.example.com/".into()]), Ok(()));
    }

    #[test]
    fn a_post_is_judged_by_the_browser_s_word_first() {
        let mut h = headers(Some("null"), "127.0.0.1:8080");
        assert!(
            check_request(&h, &[]).is_err(),
            "null without Sec-Fetch-Site"
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(
            check_request(&h, &[]).is_ok(),
            "a form of this page under no-referrer"
        );
        let mut h = headers(Some("http://evil.example"), "127.0.0.1:8080");
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_request(&h, &[]).is_err());
        assert!(
            check_request(&h, &["http://evil.example".into()]).is_ok(),
            "allowed"
        );
        let mut h = headers(None, "127.0.0.1:8080");
        assert!(check_request(&h, &[]).is_ok(), "not a browser");
        h.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(check_request(&h, &[]).is_err());
    }
}
