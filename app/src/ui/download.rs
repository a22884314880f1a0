//! Saving the lines in view as a file, built in the browser.

use wasm_bindgen::{JsCast, JsValue};

use crate::buffer::Row;
use crate::protocol::Stream;

/// `{project}-{service}-{timestamp}.log`, with a timestamp safe in file names.
pub fn file_name(project: &str, service: &str) -> String {
    let now = js_sys::Date::new_0();
    let stamp: String = String::from(now.to_iso_string())
        .chars()
        .take(19)
        .map(|c| if c == ':' { '-' } else { c })
        .collect();
    format!("{project}-{service}-{stamp}.log")
}

/// One line per row: timestamp, replica, stream, text (escapes removed).
pub fn render(rows: &[std::sync::Arc<Row>]) -> String {
    let mut out = String::with_capacity(rows.len() * 100);
    for r in rows {
        let stream = match (r.lifecycle, r.line.stream) {
            (true, _) => "event",
            (false, Stream::Stdout) => "stdout",
            (false, Stream::Stderr) => "stderr",
        };
        out.push_str(&r.line.ts);
        out.push(' ');
        out.push_str(&r.line.replica.name);
        out.push(' ');
        out.push_str(stream);
        out.push(' ');
        out.push_str(&r.styled.plain);
        out.push('\n');
    }
    out
}

/// Hands `text` to the browser as a download.
pub fn save(name: &str, text: &str) -> Result<(), JsValue> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("text/plain;charset=utf-8");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let a: web_sys::HtmlAnchorElement = leptos::prelude::document()
        .create_element("a")?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url)?;
    Ok(())
}
