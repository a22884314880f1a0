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

/// For requests that change something (POST: sign in, sign out, server functions): the same
/// rule as for upgrades, and a browser's word that the request comes from another site
/// (`Sec-Fetch-Site: cross-site`) is enough to refuse it.
pub fn check_request(headers: &HeaderMap, allowed: &[String]) -> Result<(), Refused> {
    let origin = || {
        headers
            .get(header::ORIGIN)
            .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned())
            .unwrap_or_else(|| "another site".to_owned())
    };
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if cross_site && headers.get(header::ORIGIN).is_none() {
        return Err(Refused::CrossSiteRequest(origin()));
    }
    check(headers, allowed).map_err(|_| Refused::CrossSiteRequest(origin()))
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
}
