//! The **Builds** panel, in place of the log: the builds `lookout capture` sent of the
//! service in view, newest first, asked again every few seconds while shown; one build's
//! lines are `build_view.rs`'s. Its state is the URL's: `builds=1` for the list, `build=N`
//! for one build.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;
use serde::de::DeserializeOwned;

use crate::build_log::{result_class, shown_duration};
use crate::builds::{BuildInfo, BuildResult};
use crate::protocol::ServiceKey;
use crate::ui::build_view::OneBuild;
use crate::ui::url::UrlState;

/// How often the list is asked again while it is shown: new builds, and running ones
/// ending, show without a reload.
const LIST_EVERY: Duration = Duration::from_secs(3);

/// What the panel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildsOpen {
    /// The service's builds.
    List,
    /// One build, by its number in the project.
    Build(u64),
}

/// Opens the panel's list, closing any build.
pub fn open_list(url: UrlState) {
    url.set(&[("builds", Some("1".into())), ("build", None)]);
}

/// Back to the log: the panel's parameters gone.
pub fn close(url: UrlState) {
    url.set(&[("builds", None), ("build", None)]);
}

fn open_build(url: UrlState, number: u64) {
    url.set(&[
        ("builds", Some("1".into())),
        ("build", Some(number.to_string())),
    ]);
}

/// The panel, for the one service in view.
#[component]
pub fn BuildsPanel(
    url: UrlState,
    selected: Memo<Option<ServiceKey>>,
    open: Memo<Option<BuildsOpen>>,
) -> impl IntoView {
    let now = ticker();
    let shown = Memo::new(move |_| Some((selected.get()?, open.get()?)));
    view! {
        <section class="builds" aria-label="Builds">
            {move || shown.get().map(|(key, open)| match open {
                BuildsOpen::List => view! { <BuildList url key now/> }.into_any(),
                BuildsOpen::Build(number) => view! { <OneBuild url key number now/> }.into_any(),
            })}
        </section>
    }
}

/// The panel's way out: back to the log, and from one build back to the list.
#[component]
pub fn BuildsNav(url: UrlState, in_build: bool) -> impl IntoView {
    view! {
        <div class="builds-nav">
            <button on:click=move |_| close(url)>"Back to logs"</button>
            {in_build.then(|| view! { <button on:click=move |_| open_list(url)>"All builds"</button> })}
        </div>
    }
}

#[component]
fn BuildList(url: UrlState, key: ServiceKey, now: ReadSignal<i64>) -> impl IntoView {
    let builds = RwSignal::new(None::<Vec<BuildInfo>>);
    let error = RwSignal::new(None::<String>);
    keep_listing(&key, builds, error);
    let empty = format!("No builds of {} yet: capture one with ", key.service);
    let command = format!(
        "lookout capture --project {} --service {} -- docker compose build",
        key.project, key.service
    );
    view! {
        <header class="builds-head">
            <BuildsNav url in_build=false/>
            <h2>{format!("Builds of {}", key.service)}</h2>
        </header>
        {move || error.get().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
        {move || match builds.with(|b| b.as_ref().map(Vec::is_empty)) {
            None => Some(view! { <p class="builds-note">"Loading builds…"</p> }.into_any()),
            Some(true) => Some(view! {
                <p class="builds-note">{empty.clone()}<code>{command.clone()}</code></p>
            }.into_any()),
            Some(false) => None,
        }}
        <ol class="build-list">
            <For each=move || builds.get().unwrap_or_default()
                key=|b| (b.number, b.result.describe(), b.ended_ns)
                children=move |b| build_row(url, b, now)/>
        </ol>
    }
}

/// Asks for the service's builds now and every few seconds, until the list is left or
/// the server refuses (a 4xx).
fn keep_listing(
    key: &ServiceKey,
    builds: RwSignal<Option<Vec<BuildInfo>>>,
    error: RwSignal<Option<String>>,
) {
    let alive = Alive::new();
    let query = vec![
        ("project", key.project.clone()),
        ("service", key.service.clone()),
    ];
    leptos::task::spawn_local(async move {
        loop {
            let answer = get_json::<Vec<BuildInfo>>("/api/builds", &query, None).await;
            if !alive.is() {
                return;
            }
            match answer {
                Ok(list) => {
                    if builds.with_untracked(|b| b.as_ref() != Some(&list)) {
                        builds.set(Some(list));
                    }
                    if error.with_untracked(Option::is_some) {
                        error.set(None);
                    }
                }
                Err(f) => {
                    let lasting = f.lasting();
                    error.set(Some(f.message));
                    if lasting {
                        return;
                    }
                }
            }
            gloo_timers::future::sleep(LIST_EVERY).await;
            if !alive.is() {
                return;
            }
        }
    });
}

/// One build in the list: its number, start, duration and result; it opens the build.
fn build_row(url: UrlState, build: BuildInfo, now: ReadSignal<i64>) -> impl IntoView {
    let number = build.number;
    let class = result_class(&build.result);
    let started = local_datetime(build.started_ns);
    let utc = crate::export::rfc3339(build.started_ns);
    let result = build.result.describe();
    let running = build.result == BuildResult::Running;
    let duration = move || shown_duration(&build, if running { now.get() } else { 0 });
    view! {
        <li>
            <button class=format!("build-row {class}") on:click=move |_| open_build(url, number)>
                <span class="build-number">{format!("#{number}")}</span>
                <time class="build-start" title=utc>{started}</time>
                <span class="build-duration">{duration}</span>
                <span class=format!("build-result {class}")>{result}</span>
            </button>
        </li>
    }
}

/// Now, in nanoseconds, every second: running builds' durations count up.
fn ticker() -> ReadSignal<i64> {
    let now = RwSignal::new(now_ns());
    let handle = set_interval_with_handle(move || now.set(now_ns()), Duration::from_secs(1)).ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
    now.read_only()
}

fn now_ns() -> i64 {
    (js_sys::Date::now() * 1e6) as i64
}

/// A date and time of day in the browser's time zone: "2024-05-01 14:03:12".
pub fn local_datetime(ts_ns: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64((ts_ns / 1_000_000) as f64));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}

/// True until the reactive owner it was made in is cleaned up (its view left): a loop of
/// requests checks it after every wait and ends.
#[derive(Clone)]
pub struct Alive(Arc<AtomicBool>);

impl Alive {
    pub fn new() -> Alive {
        let alive = Alive(Arc::new(AtomicBool::new(true)));
        let flag = alive.0.clone();
        on_cleanup(move || flag.store(false, Ordering::Relaxed));
        alive
    }

    pub fn is(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A failed request, as the user reads it.
pub struct Failure {
    /// None when no answer came.
    status: Option<u16>,
    pub message: String,
}

impl Failure {
    /// Asking again would get the same answer (4xx): the question was wrong, or not allowed.
    pub fn lasting(&self) -> bool {
        self.status.is_some_and(|s| (400..500).contains(&s))
    }
}

/// `GET path?query` as JSON. A failure's message is the server's own (its plain-text body).
pub async fn get_json<T: DeserializeOwned>(
    path: &str,
    query: &[(&str, String)],
    abort: Option<&web_sys::AbortSignal>,
) -> Result<T, Failure> {
    let answer = gloo_net::http::Request::get(path)
        .query(query.iter().map(|(k, v)| (*k, v.as_str())))
        .abort_signal(abort)
        .send()
        .await
        .map_err(|e| Failure {
            status: None,
            message: format!("Lookout could not be reached: {e}"),
        })?;
    if !answer.ok() {
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        let message = match body.trim() {
            "" => format!("Lookout answered {status} {}", answer.status_text()),
            text => text.to_owned(),
        };
        return Err(Failure {
            status: Some(status),
            message,
        });
    }
    answer.json::<T>().await.map_err(|e| Failure {
        status: None,
        message: format!("Lookout's answer did not read: {e}"),
    })
}
