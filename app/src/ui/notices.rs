//! The notices above the lines: what is wrong or missing, and what the view left out.

use leptos::prelude::*;

use crate::protocol::{ServiceInfo, ServiceKey};
use crate::ui::connection::Connection;
use crate::ui::lines::Lines;

#[component]
pub fn Notices(
    conn: Connection,
    lines: Lines,
    filter_error: RwSignal<Option<String>>,
    selected: Memo<Option<ServiceKey>>,
    current: Memo<Option<ServiceInfo>>,
) -> impl IntoView {
    // Only once the listing came can a service be known to be missing from it.
    let service_gone = Memo::new(move |_| {
        selected.get().is_some() && conn.projects.with(|p| p.is_some()) && current.get().is_none()
    });
    view! {
        <Show when=move || filter_error.get().is_some()>
            <p class="notice error" role="alert">{move || filter_error.get().unwrap_or_default()}" (the last valid filter stays applied)"</p>
        </Show>
        <Show when=move || conn.engine.get().is_some_and(|e| !e.reachable)>
            <p class="notice error">"Docker engine unreachable: "{move || conn.engine.get().and_then(|e| e.error).unwrap_or_default()}</p>
        </Show>
        <Show when=move || conn.error.get().is_some()>
            <p class="notice error">{move || conn.error.get().unwrap_or_default()}</p>
        </Show>
        <Show when=move || service_gone.get()>
            <p class="notice">{move || format!("The service {} is gone: it has no containers any more.", selected.get().map(|k| k.to_string()).unwrap_or_default())}</p>
        </Show>
        <Show when=move || conn.projects.get().is_some_and(|p| p.is_empty())>
            <p class="notice">"No Compose projects found. Start one with docker compose up, and it appears here."</p>
        </Show>
        <Show when=move || { lines.dropped.get() > 0 }>
            <p class="notice">{move || format!("{} lines were skipped because this view fell behind.", lines.dropped.get())}</p>
        </Show>
        <Show when=move || lines.with(|b| b.evicted() > 0)>
            <p class="notice subtle">{move || format!("{} older lines were dropped to stay within the browser's limit.", lines.with(|b| b.evicted()))}</p>
        </Show>
    }
}
