//! The header: which service and how many lines, the filter bar, what to do with the lines,
//! who is signed in and the connection's state.

use leptos::html;
use leptos::prelude::*;

use crate::api::SessionInfo;
use crate::protocol::ServiceInfo;
use crate::target::Target;
use crate::ui::builds;
use crate::ui::connection::{ConnState, Connection};
use crate::ui::download;
use crate::ui::filter_bar::FilterBar;
use crate::ui::lines::Lines;
use crate::ui::past::{Span, WhenControls};
use crate::ui::search::SearchBox;
use crate::ui::services::ServicePicker;
use crate::ui::url::{UrlState, TAILS};
use crate::ui::Follow;

#[component]
pub fn Toolbar(
    conn: Connection,
    lines: Lines,
    url: UrlState,
    target: Memo<Option<Target>>,
    tail: Memo<u32>,
    current: Memo<Option<ServiceInfo>>,
    filter_input: NodeRef<html::Input>,
    filter_error: RwSignal<Option<String>>,
    follow: Follow,
    show_timestamps: RwSignal<bool>,
    wrap: RwSignal<bool>,
    session: RwSignal<Option<SessionInfo>>,
    span: Memo<Span>,
) -> impl IntoView {
    // On a phone the header folds to the service, the filter and the connection's state,
    // so that the log keeps most of the screen; More shows the rest (style/main.css).
    let more = RwSignal::new(false);
    view! {
        <header class=move || if more.get() { "toolbar" } else { "toolbar folded" }>
            <h1 class="brand">"Lookout"</h1>
            <ServicePicker conn url target/>
            <button class="more" aria-expanded=move || more.get().to_string()
                on:click=move |_| more.update(|m| *m = !*m)>
                {move || if more.get() { "Less" } else { "More" }}
            </button>
            <div class="extra">
                <label class="field">
                    <span>"Lines"</span>
                    <select aria-label="Lines"
                        on:change=move |ev| url.set(&[("tail", Some(event_target_value(&ev)))])
                        prop:value=move || tail.get().to_string()>
                        {TAILS.iter().map(|t| view! { <option value=t.to_string()>{t.to_string()}</option> }).collect_view()}
                    </select>
                </label>
                // A window of the past is one service's.
                <Show when=move || target.with(|t| t.as_ref().is_none_or(|t| t.single().is_some()))>
                    <WhenControls url/>
                </Show>
            </div>
            <FilterBar url input=filter_input error=filter_error current/>
            <div class="extra">
                <SearchBox url/>
                <Actions lines target follow show_timestamps wrap span url/>
                <SignedIn session conn/>
            </div>
            <ConnStatus conn/>
        </header>
    }
}

#[component]
fn Actions(
    lines: Lines,
    target: Memo<Option<Target>>,
    follow: Follow,
    show_timestamps: RwSignal<bool>,
    wrap: RwSignal<bool>,
    span: Memo<Span>,
    url: UrlState,
) -> impl IntoView {
    let pause_or_resume = move |_| {
        if follow.paused.get_untracked() {
            follow.jump_to_latest(lines);
        } else {
            follow.pause();
        }
    };
    // What the user sees is what they get: the filtered rows, built here, not asked again.
    let download_view = move |_| {
        let Some(target) = target.get_untracked() else {
            return;
        };
        let rows = lines.with_untracked(|b| b.all_passing());
        if let Err(e) = download::save_rows(&target, &rows) {
            leptos::logging::error!("download failed: {e:?}");
        }
    };
    let full_log = move || {
        target
            .get()
            .and_then(|t| t.single().cloned())
            .map(|k| {
                // A window holds the lines of the chosen levels; the full log, every line.
                let window = window_of(&span.get(), lines)
                    .map(|(since, until)| {
                        let level = url
                            .levels()
                            .map(|l| format!("&level={}", encode(&l.to_string())))
                            .unwrap_or_default();
                        format!("&since={}&until={}{level}", encode(&since), encode(&until))
                    })
                    .unwrap_or_default();
                format!(
                    "/api/download?engine={}&project={}&service={}{window}",
                    encode(&k.engine),
                    encode(&k.project),
                    encode(&k.service)
                )
            })
            .unwrap_or_default()
    };
    view! {
        <div class="actions">
            <label class="toggle"><input type="checkbox" prop:checked=move || show_timestamps.get()
                on:change=move |ev| show_timestamps.set(event_target_checked(&ev))/>"Timestamps"</label>
            <label class="toggle"><input type="checkbox" prop:checked=move || wrap.get()
                on:change=move |ev| wrap.set(event_target_checked(&ev))/>"Wrap"</label>
            <button on:click=pause_or_resume>{move || if follow.paused.get() { "Resume" } else { "Pause" }}</button>
            <button on:click=move |_| lines.clear()>"Clear"</button>
            <button on:click=download_view title="The lines in view, as filtered">"Download"</button>
            // The server keeps each service's log apart: a view of several saves what it holds.
            <Show when=move || target.with(|t| t.as_ref().is_some_and(|t| t.single().is_some()))>
                <a class="button" download="" href=full_log>{move || if span.with(Span::is_live) { "Download full log" } else { "Download window" }}</a>
                // The builds `lookout capture` sent of this service, in the log's place.
                <button aria-pressed=move || url.builds().is_some().to_string()
                    title="What lookout capture recorded of this service's builds"
                    on:click=move |_| if url.builds().is_some() { builds::close(url) } else { builds::open_list(url) }>"Builds"</button>
            </Show>
        </div>
    }
}

/// The span a past window's download takes: From and To as given (an open end is the
/// oldest line kept, or now), or the first and last line shown around a search hit.
fn window_of(span: &Span, lines: Lines) -> Option<(String, String)> {
    match span {
        Span::Live => None,
        Span::Between { from, to } => Some((
            from.clone().unwrap_or_else(|| "0".into()),
            to.clone().unwrap_or_else(|| "0s".into()),
        )),
        Span::Around(_) => lines.with(|b| {
            let rows = b.all_visible();
            let (first, last) = (rows.first()?, rows.last()?);
            Some((
                crate::export::rfc3339(first.ts_ns()),
                crate::export::rfc3339(last.ts_ns() + 1),
            ))
        }),
    }
}

fn encode(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

#[component]
fn SignedIn(session: RwSignal<Option<SessionInfo>>, conn: Connection) -> impl IntoView {
    view! {
        <Show when=move || session.get().is_some_and(|s| s.user.is_some())>
            <div class="who">
                <span class="user" title="Signed in">{move || session.get().and_then(|s| s.user).unwrap_or_default()}</span>
                // Only Lookout's own sign-in can be ended from here; a proxy's cannot.
                <Show when=move || session.get().is_some_and(|s| s.auth == "users")>
                    <form method="post" action="/logout" on:submit=move |_| conn.signing_out.set(true)>
                        <button type="submit">"Log out"</button>
                    </form>
                </Show>
            </div>
        </Show>
    }
}

#[component]
fn ConnStatus(conn: Connection) -> impl IntoView {
    // Ticks twice a second so that "Reconnecting in N s" counts down.
    let now = RwSignal::new(js_sys::Date::now());
    let ticker = set_interval_with_handle(
        move || now.set(js_sys::Date::now()),
        std::time::Duration::from_millis(500),
    )
    .ok();
    on_cleanup(move || {
        if let Some(t) = ticker {
            t.clear();
        }
    });
    let status = move || match conn.state.get() {
        ConnState::Connecting => ("connecting", "Connecting…".to_owned()),
        ConnState::Live => ("live", "Live".to_owned()),
        ConnState::Reconnecting { retry_at, attempt } => {
            let secs = ((retry_at - now.get()) / 1000.0).ceil().max(0.0);
            (
                "reconnecting",
                format!("Reconnecting in {secs} s (attempt {attempt})"),
            )
        }
        ConnState::Disconnected => ("disconnected", "Disconnected".to_owned()),
    };
    view! {
        <div role="status" class=move || format!("conn conn-{}", status().0) aria-live="polite">
            <span class="dot"></span>
            <span class="conn-text">{move || status().1}</span>
            <Show when=move || conn.state.get() == ConnState::Disconnected>
                <button on:click=move |_| conn.reconnect()>"Reconnect"</button>
            </Show>
        </div>
    }
}
