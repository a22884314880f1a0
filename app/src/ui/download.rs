//! Saving the lines in view as a file, built in the browser: the server has nothing to add
//! to what the user already sees, and a filtered view could not be asked of it anyway.

use std::sync::Arc;

use wasm_bindgen::{JsCast, JsValue};

use crate::buffer::Row;
use crate::export;
use crate::target::Target;

/// Saves `rows` in the download format, named as the server names a full log (a view of
/// several services, after them: `all`, or those chosen).
pub fn save_rows(target: &Target, rows: &[Arc<Row>]) -> Result<(), JsValue> {
    let mut text = String::with_capacity(rows.len() * 100);
    for r in rows {
        r.export(&mut text);
    }
    let now_secs = (js_sys::Date::now() / 1000.0).floor() as i64;
    save(
        &export::file_name(
            target.engine(),
            target.project(),
            &target.file_part(),
            now_secs,
        ),
        &text,
    )
}

/// Hands `text` to the browser as a download.
fn save(name: &str, text: &str) -> Result<(), JsValue> {
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
