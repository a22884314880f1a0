//! The notices above the lines: what is wrong or missing, and what the view left out.

use leptos::prelude::*;

use crate::protocol::{ServiceInfo, ServiceKey, ServiceState};
use crate::ui::connection::Connection;
use crate::ui::lines::Lines;
use crate::ui::past::{Past, Span};

#[component]
pub fn Notices(
    conn: Connection,
    lines: Lines,
    filter_error: RwSignal<Option<String>>,
    selected: Memo<Option<ServiceKey>>,
    current: Memo<Option<ServiceInfo>>,
    span: Memo<Span>,
    past: Past,
) -> impl IntoView {
    // Only once the listing came can a service be known to be missing from it.
    let service_gone = Memo::new(move |_| {
        let removed = current.with(|c| c.as_ref().is_none_or(|s| s.state == ServiceState::Removed));
        selected.get().is_some() && conn.projects.with(|p| p.is_some()) && removed
    });
    view! {
        <Show when=move || filter_error.get().is_some()>
            <p class="notice error" role="alert">{move || filter_error.get().unwrap_or_default()}" (the last valid filter stays applied)"</p>
        </Show>
        {move || {
            let engines = conn.engines.get();
            let several = engines.len() > 1;
            engines.into_iter().filter(|e| !e.reachable).map(|e| {
                // With one engine, its name says nothing.
                let which = if several { format!("Docker engine {} unreachable: ", e.name) } else { "Docker engine unreachable: ".to_owned() };
                view! { <p class="notice error" data-engine=e.name.clone()>{which}{e.error.unwrap_or_default()}</p> }
            }).collect_view()
        }}
        <Show when=move || conn.history.get().is_some_and(|h| !h.kept)>
            <p class="notice error">"History is not being kept (lines still arrive live): "{move || conn.history.get().and_then(|h| h.error).unwrap_or_default()}</p>
        </Show>
        <Show when=move || !span.get().is_live()>
            <p class="notice past">{move || past_label(&span.get())}" Follow live returns to the newest lines."</p>
        </Show>
        <Show when=move || past.note.get().is_some()>
            <p class="notice">{move || past.note.get().unwrap_or_default()}</p>
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

/// What a past window is, in words.
fn past_label(span: &Span) -> String {
    match span {
        Span::Live => String::new(),
        Span::Around(_) => "Showing history around the line found (marked).".into(),
        Span::Between { from, to } => {
            let at = |t: &Option<String>, open: &str| t.clone().unwrap_or_else(|| open.into());
            format!(
                "Showing history from {} to {}.",
                at(from, "the oldest kept"),
                at(to, "now")
            )
        }
    }
}
