//! The **Search** box and its results: the stored lines of every service the user may see
//! that match a query, newest first. Choosing one opens its service at that moment, with
//! the lines around it and the hit marked.

use leptos::prelude::*;

use crate::history::{marked_terms, split_marked, Histogram, SearchHit, SearchPage};
use crate::ui::picture::{Chart, BARS};
use crate::ui::row_view::local_time;
use crate::ui::url::UrlState;

/// Hits asked for at a time.
const PAGE: u32 = 100;

#[component]
pub fn SearchBox(url: UrlState) -> impl IntoView {
    let text = RwSignal::new(url.get_untracked("find").unwrap_or_default());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        url.set(&[
            ("find", Some(text.get_untracked())),
            ("found_from", None),
            ("found_to", None),
        ]);
    };
    view! {
        <form class="search" role="search" on:submit=submit>
            <input type="search" aria-label="Search" placeholder="Search history (Enter)"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))/>
        </form>
    }
}

/// The results of the URL's `find`, while there is one.
#[component]
pub fn SearchResults(url: UrlState) -> impl IntoView {
    let query = Memo::new(move |_| url.get("find"));
    let found = RwSignal::new(Vec::<SearchHit>::new());
    let state = RwSignal::new(Found::Waiting);
    // Counts searches, so that an answer to an older one is thrown away.
    let generation = StoredValue::new(0_u64);
    let fetch = move |q: String, before: Option<String>| {
        let g = generation.get_value() + 1;
        generation.set_value(g);
        state.set(Found::Waiting);
        leptos::task::spawn_local(async move {
            let (since, until) = (
                url.get_untracked("found_from"),
                url.get_untracked("found_to"),
            );
            let page = crate::api::search(
                q,
                None,
                None,
                since,
                until,
                Some(PAGE.to_string()),
                before,
                None,
            )
            .await;
            if generation.get_value() != g {
                return;
            }
            match page {
                Ok(SearchPage { hits, before, .. }) => {
                    found.update(|f| f.extend(hits));
                    state.set(Found::Done {
                        more: before.map(|b| b.to_string()),
                    });
                }
                Err(e) => state.set(Found::Failed(e.to_string())),
            }
        });
    };
    let within = Memo::new(move |_| (url.get("found_from"), url.get("found_to")));
    Effect::new(move |_| {
        found.set(Vec::new());
        let _ = within.get();
        if let Some(q) = query.get() {
            fetch(q, None);
        }
    });
    let over_time = over_time(query, within);
    let choose = Callback::new(move |(from, to): (String, String)| {
        url.set(&[("found_from", Some(from)), ("found_to", Some(to))]);
    });
    let open = move |hit: &SearchHit| open_at(url, hit);
    let terms = Memo::new(move |_| query.get().map(|q| marked_terms(&q)).unwrap_or_default());
    view! {
        <Show when=move || query.get().is_some()>
            <section class="search-results" aria-label="Search results">
                <header>
                    <span class="summary">{move || summary(&state.get(), found.with(Vec::len))}</span>
                    <Show when=move || within.with(|(f, t)| f.is_some() || t.is_some())>
                        <button on:click=move |_| url.set(&[("found_from", None), ("found_to", None)])>"All times"</button>
                    </Show>
                    <button on:click=move |_| url.set(&[("find", None), ("found_from", None), ("found_to", None)])>"Close"</button>
                </header>
                <Chart chart=over_time what="matching lines" choose/>
                <ol>
                    <For each=move || found.get().into_iter().enumerate()
                        key=|(i, h)| (*i, h.line.cursor.to_string())
                        children=move |(_, hit)| view! { <HitRow hit terms open/> }/>
                </ol>
                {move || match state.get() {
                    Found::Done { more: Some(before) } => view! {
                        <button class="more" on:click=move |_| if let Some(q) = query.get_untracked() { fetch(q, Some(before.clone())) }>"Older hits"</button>
                    }.into_any(),
                    _ => ().into_any(),
                }}
            </section>
        </Show>
    }
}

/// Opens a hit's service at its moment, the search (and any build) closed.
fn open_at(url: UrlState, hit: &SearchHit) {
    url.set(&[
        ("engine", crate::ui::url::engine_param(&hit.engine)),
        ("project", Some(hit.project.clone())),
        ("service", Some(hit.service.clone())),
        ("at", Some(hit.line.cursor.to_string())),
        ("from", None),
        ("to", None),
        ("replica", None),
        ("find", None),
        ("found_from", None),
        ("found_to", None),
        ("builds", None),
        ("build", None),
    ]);
}

/// The matches of `query` counted over time in every service the viewer may see, within
/// the stretch chosen.
fn over_time(
    query: Memo<Option<String>>,
    within: Memo<(Option<String>, Option<String>)>,
) -> RwSignal<Option<Histogram>> {
    let chart = RwSignal::new(None::<Histogram>);
    // Counts reads, so that an answer to an older one is thrown away.
    let generation = StoredValue::new(0_u64);
    Effect::new(move |_| {
        let g = generation.get_value() + 1;
        generation.set_value(g);
        let (since, until) = within.get();
        let Some(q) = query.get() else {
            chart.set(None);
            return;
        };
        leptos::task::spawn_local(async move {
            let answer = crate::api::histogram(
                None,
                None,
                since,
                until,
                Some(BARS.to_string()),
                Some(q),
                None,
            )
            .await;
            if generation.get_value() == g {
                chart.set(
                    answer
                        .ok()
                        .filter(|h| h.buckets.iter().any(|b| b.lines() > 0)),
                );
            }
        });
    });
    chart
}

/// One result: whose, when, and the line with the words found marked.
#[component]
fn HitRow(
    hit: SearchHit,
    terms: Memo<Vec<String>>,
    open: impl Fn(&SearchHit) + Copy + 'static,
) -> impl IntoView {
    let parts = split_marked(
        &crate::ansi::parse(&hit.line.text).plain,
        &terms.get_untracked(),
    );
    let when = local_time(hit.line.cursor.ts_ns);
    let who = format!("{}/{}", hit.project, hit.service);
    let utc = hit.line.ts.clone();
    view! {
        <li>
            <button class="search-hit" on:click=move |_| open(&hit)>
                <span class="hit-service">{who}</span>
                <time class="ts" title=utc>{when}</time>
                <span class="text">{parts.into_iter().map(|(t, m)| if m {
                    view! { <mark>{t}</mark> }.into_any()
                } else {
                    view! { <span>{t}</span> }.into_any()
                }).collect_view()}</span>
            </button>
        </li>
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Found {
    Waiting,
    /// `more`: the cursor to go on from, when older hits may exist.
    Done {
        more: Option<String>,
    },
    Failed(String),
}

fn summary(state: &Found, hits: usize) -> String {
    match state {
        Found::Waiting => "Searching…".into(),
        Found::Failed(e) => format!("Search failed: {e}"),
        Found::Done { .. } if hits == 0 => "No lines match.".into(),
        Found::Done { more } => {
            let lines = if hits == 1 {
                "line matches"
            } else {
                "lines match"
            };
            let so_far = if more.is_some() { " so far" } else { "" };
            format!("{hits} {lines}{so_far}.")
        }
    }
}
