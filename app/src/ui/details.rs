//! The details of one line: a JSON object line whole, pretty-printed and coloured by kind,
//! with Copy. Opened from its row's `{}` button, closed with Close; rendered as text nodes
//! like every row.

use std::sync::Arc;

use leptos::prelude::*;

use crate::ansi::Styled;
use crate::buffer::Row;
use crate::json;
use crate::ui::row_view::local_time;

#[component]
pub fn Details(open: RwSignal<Option<Arc<Row>>>) -> impl IntoView {
    let copied = RwSignal::new(None::<String>);
    // A new line's details say nothing of the last one's copy.
    Effect::new(move |_| {
        open.track();
        copied.set(None);
    });
    move || {
        let row = open.get()?;
        let pretty = json::pretty(row.json()?)?;
        let text = pretty.plain.clone();
        let copy = move |_| {
            let text = text.clone();
            leptos::task::spawn_local(async move { copied.set(Some(copy_text(&text).await)) });
        };
        Some(view! {
            <section class="details" aria-label="Line details">
                <header>
                    <time title=crate::export::rfc3339(row.ts_ns())>{local_time(row.ts_ns())}</time>
                    <span>{format!("#{}", row.replica().number)}</span>
                    <button on:click=copy>"Copy"</button>
                    <button on:click=move |_| open.set(None)>"Close"</button>
                    <span role="status">{move || copied.get()}</span>
                </header>
                <pre class="pretty">{styled_view(&pretty)}</pre>
            </section>
        })
    }
}

/// Puts `text` on the clipboard, and says how that went. The clipboard exists only in a
/// secure context (https, or a loopback address): elsewhere it is refused in words, never
/// by an exception.
async fn copy_text(text: &str) -> String {
    let window = window();
    if !window.is_secure_context() {
        return "Copy needs https (or a loopback address)".into();
    }
    let promise = window.navigator().clipboard().write_text(text);
    match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(_) => "Copied".into(),
        Err(e) => format!("Copy failed: {}", e.as_string().unwrap_or_default()),
    }
}

/// Styled text as spans of text nodes, never HTML.
fn styled_view(styled: &Styled) -> impl IntoView {
    crate::ansi::runs(&styled.plain, &styled.spans, &[])
        .into_iter()
        .map(|(r, style, _)| {
            let css = Some(style.css()).filter(|c| !c.is_empty());
            view! { <span style=css>{styled.plain[r].to_owned()}</span> }
        })
        .collect_view()
}
