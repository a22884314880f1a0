//! The built web client (dist/), embedded in the binary so that `lookout` runs alone.

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::headers;

// In debug builds rust-embed reads the folder at run time; release builds carry it inside.
#[derive(RustEmbed)]
#[folder = "../dist"]
#[allow_missing = true]
struct Dist;

/// Serves a file of the client, or index.html for any other path so the client's router
/// can show it (SPA fallback).
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") {
        return (StatusCode::NOT_FOUND, "no such API endpoint").into_response();
    }
    if let Some(file) = (!path.is_empty()).then(|| Dist::get(path)).flatten() {
        let mime = file.metadata.mimetype().to_owned();
        // Trunk names assets by content hash: they can be cached for ever.
        let cache = if path.ends_with(".wasm") || path.ends_with(".js") || path.ends_with(".css") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let mut res = (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, cache.to_owned()),
            ],
            file.data.clone(),
        )
            .into_response();
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
