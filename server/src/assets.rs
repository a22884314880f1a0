//! The built web client (dist/), embedded in the binary so that `lookout` runs alone.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::headers;

// In debug builds rust-embed reads the folder at run time; release builds carry it inside.
#[derive(RustEmbed)]
#[folder = "../dist"]
#[allow_missing = true]
struct Dist;

/// Whether a file is one of Trunk's assets, named by its content's hash: it can be cached for
/// ever, and `scripts/build.sh` keeps a gzipped copy of it beside it (`NAME.gz`).
fn is_hashed_asset(path: &str) -> bool {
    path.ends_with(".wasm") || path.ends_with(".js") || path.ends_with(".css")
}

/// Whether the request's `Accept-Encoding` takes gzip (`gzip` or `*`, without `q=0`).
fn takes_gzip(headers: &HeaderMap) -> bool {
    let Some(accepted) = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    accepted.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

/// Serves a file of the client, or index.html for any other path so the client's router
/// can show it (SPA fallback). The client's code goes gzipped to a browser that takes it:
/// about a third of its size over the wire.
pub async fn serve(uri: Uri, request: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") {
        return (StatusCode::NOT_FOUND, "no such API endpoint").into_response();
    }
    if let Some(file) = (!path.is_empty()).then(|| Dist::get(path)).flatten() {
        let mime = file.metadata.mimetype().to_owned();
        let cache = if is_hashed_asset(path) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let gzipped = is_hashed_asset(path)
            .then(|| Dist::get(&format!("{path}.gz")))
            .flatten();
        let (body, encoding) = match gzipped {
            Some(gz) if takes_gzip(&request) => (gz.data, Some("gzip")),
            _ => (file.data.clone(), None),
        };
        let mut res = (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, cache.to_owned()),
            ],
            body,
        )
            .into_response();
        if let Some(encoding) = encoding {
            let h = res.headers_mut();
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if path.ends_with(".html") {
            if let Ok(policy) = HeaderValue::from_str(&headers::page_policy(&file.data)) {
                res.headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, policy);
            }
        }
        return res;
    }
    match Dist::get("index.html") {
        Some(index) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
                (header::CACHE_CONTROL, "no-cache".to_owned()),
                (
                    header::CONTENT_SECURITY_POLICY,
                    headers::page_policy(&index.data),
                ),
            ],
            index.data,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The web client was not built into this binary: run `trunk build --release` and rebuild.",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn gzip_is_sent_only_to_a_client_that_takes_it() {
        assert!(takes_gzip(&accepting("gzip, deflate, br, zstd")));
        assert!(takes_gzip(&accepting("br;q=1.0, GZIP;q=0.5")));
        assert!(takes_gzip(&accepting("*")));
        assert!(!takes_gzip(&accepting("gzip;q=0, br")));
        assert!(!takes_gzip(&accepting("identity")));
        assert!(!takes_gzip(&accepting("gzipx")));
        assert!(!takes_gzip(&HeaderMap::new()));
    }
}
