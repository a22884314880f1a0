//! Response headers that keep the browser on Lookout's side: the page runs only its own
//! code, cannot be framed, and sends no referrer.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// For everything that is not the page: nothing may run or load from it.
const NOT_A_PAGE: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the headers every response carries.
pub async fn secure(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(NOT_A_PAGE));
    res
}

/// The page's policy: its own scripts and WebAssembly, plus the one inline module script
/// Trunk writes to start the app, allowed by its hash (so no other inline script runs).
/// Styles may be inline: the app sets element styles; styles cannot run code.
pub fn page_policy(html: &[u8]) -> String {
    let hashes: String = inline_scripts(&String::from_utf8_lossy(html))
        .map(|s| {
            let digest = Sha256::digest(s.as_bytes());
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The bodies of the page's inline `<script>` elements.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (attrs, body) = rest.split_once('>')?;
        if attrs.contains("src=") {
            return None;
        }
        body.split_once("</script>").map(|(script, _)| script)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_allowed_by_their_hash_and_external_ones_are_not_listed() {
        let html =
            br#"<head><script type="module">boot()</script><script src="/x.js"></script></head>"#;
        let policy = page_policy(html);
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"boot()"));
        assert!(
            policy.contains(&format!(
                "script-src 'self' 'wasm-unsafe-eval' 'sha256-{expected}';"
            )),
            "{policy}"
        );
        assert_eq!(policy.matches("sha256-").count(), 1, "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("'unsafe-eval'"), "{policy}");
    }
}
