//! The log viewer page.

mod connection;
mod download;
mod log_view;

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::{path, NavigateOptions};

use crate::buffer::{DEFAULT_MAX_LINES, MAX_LINES_RANGE};
use crate::filter::{Filter, FilterSpec, StreamChoice};
use crate::protocol::{find_service, Health, ProjectInfo, ServiceInfo, ServiceKey, ServiceState};
use connection::{ConnState, Connection, Wanted};
use log_view::{FilterKey, LogView};

/// Tail sizes offered in the "Lines" choice.
const TAILS: [u32; 4] = [100, 500, 1000, 5000];

#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Routes fallback=|| view! { <Viewer/> }>
                <Route path=path!("/") view=Viewer/>
            </Routes>
        </Router>
    }
}

/// Reads and writes the view's state in the URL's query, so a view can be shared and
/// survives a reload.
#[derive(Clone, Copy)]
struct UrlState {
    query: Memo<leptos_router::params::ParamsMap>,
    navigate: StoredValue<Navigate>,
}

type Navigate = std::sync::Arc<dyn Fn(&str, NavigateOptions) + Send + Sync>;

impl UrlState {
    fn get(&self, key: &str) -> Option<String> {
        self.query.with(|q| q.get(key)).filter(|v| !v.is_empty())
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v == "1")
    }

    fn set(&self, changes: &[(&str, Option<String>)]) {
        let mut q = self.query.get_untracked();
        for (k, v) in changes {
            match v {
                Some(v) if !v.is_empty() => q.replace((*k).to_owned(), v.clone()),
                _ => {
                    q.remove(k);
                }
            }
        }
        let navigate = self.navigate.get_value();
        navigate(
            &format!("/{}", q.to_query_string()),
            NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            },
        );
    }
}

fn service_label(s: &ServiceInfo) -> String {
    let state = match &s.state {
        ServiceState::Running { running } if *running == s.replicas => "running".to_owned(),
        ServiceState::Running { running } => format!("{running} of {} running", s.replicas),
        ServiceState::Restarting { exit_code: Some(c) } => format!("restarting, exit code {c}"),
        ServiceState::Restarting { exit_code: None } => "restarting".to_owned(),
        ServiceState::Exited { exit_code: Some(c) } => format!("exited with code {c}"),
        ServiceState::Exited { exit_code: None } => "exited".to_owned(),
        ServiceState::Created => "created".to_owned(),
    };
    let health = match s.health() {
        Some(Health::Healthy) => ", healthy",
        Some(Health::Starting) => ", health starting",
        Some(Health::Unhealthy) => ", unhealthy",
        None => "",
    };
    let replicas = if s.replicas == 1 {
        String::new()
    } else {
        format!(", {} replicas", s.replicas)
    };
    format!("{} ({state}{health}{replicas})", s.service)
}

fn encode(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

#[component]
fn Viewer() -> impl IntoView {
    let navigate = use_navigate();
    let url = UrlState {
        query: use_query_map(),
        navigate: StoredValue::new(std::sync::Arc::new(move |to: &str, opts| {
            navigate(to, opts)
        })),
    };
    let retries = url
        .query
        .with_untracked(|q| q.get("retries"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(connection::DEFAULT_RETRIES);
    let conn = Connection::start(retries);
    // Who is signed in, for the header; and whether a lost socket may mean a lost session.
    let session = RwSignal::new(None::<crate::api::SessionInfo>);
    leptos::task::spawn_local(async move {
        if let Ok(info) = crate::api::session().await {
            conn.signs_in.set(info.auth == "users");
            session.set(Some(info));
        }
    });
    let filter_input = NodeRef::<html::Input>::new();
    let following = RwSignal::new(true);
    let paused = RwSignal::new(false);
    let show_timestamps = RwSignal::new(true);
    let wrap = RwSignal::new(false);
    let seen_at_pause = RwSignal::new(0_u64);
    let follow_mark = RwSignal::new(0_u64);
    let filter_error = RwSignal::new(None::<String>);

    let selected = Memo::new(move |_| {
        Some(ServiceKey {
            project: url.get("project")?,
            service: url.get("service")?,
        })
    });
    let tail = Memo::new(move |_| {
        url.get("tail")
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|t| TAILS.contains(t))
            .unwrap_or(TAILS[0])
    });

    // Follow what the URL names.
    Effect::new(move |_| {
        let wanted = selected.get().map(|key| Wanted {
            key,
            tail: tail.get(),
        });
        following.set(true);
        conn.follow(wanted);
    });

    // How many lines the browser keeps (`keep`, within MAX_LINES_RANGE).
    Effect::new(move |_| {
        let keep = url
            .get("keep")
            .and_then(|k| k.parse::<usize>().ok())
            .map(|k| k.clamp(*MAX_LINES_RANGE.start(), *MAX_LINES_RANGE.end()))
            .unwrap_or(DEFAULT_MAX_LINES);
        conn.buffer.update(|b| b.set_cap(keep));
    });

    // Nothing chosen yet: the first running service.
    Effect::new(move |_| {
        if selected.get().is_some() {
            return;
        }
        let Some(projects) = conn.projects.get() else {
            return;
        };
        let all: Vec<&ServiceInfo> = projects.iter().flat_map(|p| &p.services).collect();
        if let Some(s) = all
            .iter()
            .find(|s| s.state.is_running())
            .or_else(|| all.first())
        {
            url.set(&[
                ("project", Some(s.project.clone())),
                ("service", Some(s.service.clone())),
            ]);
        }
    });

    // The filter, from the URL; an invalid one leaves the last valid one applied.
    let spec = Memo::new(move |_| FilterSpec {
        text: url.get("q").unwrap_or_default(),
        regex: url.flag("regex"),
        match_case: url.flag("case"),
        invert: url.flag("invert"),
        stream: match url.get("stream").as_deref() {
            Some("stdout") => StreamChoice::Stdout,
            Some("stderr") => StreamChoice::Stderr,
            _ => StreamChoice::Both,
        },
        replica: url.get("replica").and_then(|r| r.parse().ok()),
    });
    let active_filter = RwSignal::new(FilterKey::default());
    Effect::new(move |_| match Filter::compile(&spec.get()) {
        Ok(f) => {
            filter_error.set(None);
            conn.buffer.update(|b| b.set_filter(f.clone()));
            active_filter.update(|k| *k = FilterKey(f, k.1 + 1));
        }
        Err(e) => filter_error.set(Some(e.to_string())),
    });

    let current = Memo::new(move |_| {
        let key = selected.get()?;
        conn.projects
            .with(|p| find_service(p.as_deref()?, &key).cloned())
    });
    let service_gone = Memo::new(move |_| {
        selected.get().is_some() && conn.projects.with(|p| p.is_some()) && current.get().is_none()
    });

    let jump_to_latest = move || {
        paused.set(false);
        following.set(true);
        follow_mark.set(conn.appended.get_untracked());
    };
    let new_lines = Memo::new(move |_| {
        if following.get() && !paused.get() {
            follow_mark.set(conn.appended.get());
            0
        } else {
            conn.appended
                .get()
                .saturating_sub(follow_mark.get_untracked())
        }
    });

    // Keyboard: "/" or Ctrl+F focuses the filter, Esc clears it, End jumps to the latest.
    let keys = window_event_listener(ev::keydown, move |e: web_sys::KeyboardEvent| {
        let in_field = document()
            .active_element()
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
        let key = e.key();
        if (key == "/" && !in_field) || (key == "f" && (e.ctrl_key() || e.meta_key())) {
            e.prevent_default();
            if let Some(input) = filter_input.get_untracked() {
                let _ = input.focus();
                input.select();
            }
        } else if key == "Escape" {
            url.set(&[("q", None)]);
        } else if key == "End" && !in_field {
            e.prevent_default();
            jump_to_latest();
        }
    });
    on_cleanup(move || keys.remove());

    // Ticks once a second so "Reconnecting in N s" counts down.
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

    let on_service = move |ev: ev::Event| {
        let v = event_target_value(&ev);
        if let Some((p, s)) = v.split_once('/') {
            url.set(&[
                ("project", Some(p.to_owned())),
                ("service", Some(s.to_owned())),
                ("replica", None),
            ]);
        }
    };

    let download = move |_| {
        let Some(key) = selected.get_untracked() else {
            return;
        };
        let rows = conn.buffer.with_untracked(|b| b.all_visible());
        let text = download::render(&rows);
        if let Err(e) = download::save(&download::file_name(&key.project, &key.service), &text) {
            leptos::logging::error!("download failed: {e:?}");
        }
    };

    let replicas = Memo::new(move |_| {
        current
            .get()
            .map(|s| {
                s.containers
                    .iter()
                    .map(|c| c.replica.number)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });

    view! {
        <header class="toolbar">
            <h1 class="brand">"Lookout"</h1>
            <label class="field">
                <span>"Service"</span>
                <select aria-label="Service" on:change=on_service
                    prop:value=move || selected.get().map(|k| format!("{}/{}", k.project, k.service)).unwrap_or_default()>
                    <Show when=move || selected.get().is_none()>
                        <option value="">"Choose a service"</option>
                    </Show>
                    {move || conn.projects.get().unwrap_or_default().into_iter().map(|p| {
                        let project = p.name.clone();
                        view! {
                            <optgroup label=project.clone()>
                                {p.services.into_iter().map(|s| {
                                    let value = format!("{}/{}", s.project, s.service);
                                    let is_sel = selected.get_untracked().is_some_and(|k| k.project == s.project && k.service == s.service);
                                    view! { <option value=value selected=is_sel>{service_label(&s)}</option> }
                                }).collect_view()}
                            </optgroup>
                        }
                    }).collect_view()}
                </select>
            </label>
            <label class="field">
                <span>"Lines"</span>
                <select aria-label="Lines"
                    on:change=move |ev| url.set(&[("tail", Some(event_target_value(&ev)))])
                    prop:value=move || tail.get().to_string()>
                    {TAILS.iter().map(|t| view! { <option value=t.to_string()>{t.to_string()}</option> }).collect_view()}
                </select>
            </label>
            <div class="filter">
                <input type="search" aria-label="Filter" placeholder="Filter (press /)" node_ref=filter_input
                    prop:value=move || url.get("q").unwrap_or_default()
                    on:input=move |ev| url.set(&[("q", Some(event_target_value(&ev)))])
                    aria-invalid=move || filter_error.get().is_some().to_string()/>
                <label class="toggle"><input type="checkbox" prop:checked=move || url.flag("regex")
                    on:change=move |ev| url.set(&[("regex", event_target_checked(&ev).then(|| "1".into()))])/>"Regex"</label>
                <label class="toggle"><input type="checkbox" prop:checked=move || url.flag("case")
                    on:change=move |ev| url.set(&[("case", event_target_checked(&ev).then(|| "1".into()))])/>"Match case"</label>
                <label class="toggle"><input type="checkbox" prop:checked=move || url.flag("invert")
                    on:change=move |ev| url.set(&[("invert", event_target_checked(&ev).then(|| "1".into()))])/>"Invert"</label>
                <select aria-label="Stream" prop:value=move || url.get("stream").unwrap_or_else(|| "both".into())
                    on:change=move |ev| { let v = event_target_value(&ev); url.set(&[("stream", (v != "both").then_some(v))]) }>
                    <option value="both">"stdout + stderr"</option>
                    <option value="stdout">"stdout"</option>
                    <option value="stderr">"stderr"</option>
                </select>
                <Show when=move || { replicas.get().len() > 1 }>
                    <select aria-label="Replica" prop:value=move || url.get("replica").unwrap_or_default()
                        on:change=move |ev| url.set(&[("replica", Some(event_target_value(&ev)))])>
                        <option value="">"All replicas"</option>
                        {move || replicas.get().into_iter().map(|n| view! { <option value=n.to_string()>{format!("#{n}")}</option> }).collect_view()}
                    </select>
                </Show>
            </div>
            <div class="actions">
                <label class="toggle"><input type="checkbox" prop:checked=move || show_timestamps.get()
                    on:change=move |ev| show_timestamps.set(event_target_checked(&ev))/>"Timestamps"</label>
                <label class="toggle"><input type="checkbox" prop:checked=move || wrap.get()
                    on:change=move |ev| wrap.set(event_target_checked(&ev))/>"Wrap"</label>
                <button on:click=move |_| {
                    if paused.get_untracked() { jump_to_latest() } else { paused.set(true); following.set(false); seen_at_pause.set(conn.appended.get_untracked()); }
                }>{move || if paused.get() { "Resume" } else { "Pause" }}</button>
                <button on:click=move |_| conn.buffer.update(|b| b.clear())>"Clear"</button>
                <button on:click=download title="The lines in view, as filtered">"Download"</button>
                <a class="button" download=""
                    href=move || selected.get().map(|k| format!("/api/download?project={}&service={}", encode(&k.project), encode(&k.service))).unwrap_or_default()>
                    "Download full log"
                </a>
            </div>
            <Show when=move || session.get().is_some_and(|s| s.user.is_some())>
                <div class="who">
                    <span class="user" title="Signed in">{move || session.get().and_then(|s| s.user).unwrap_or_default()}</span>
                    <Show when=move || session.get().is_some_and(|s| s.auth == "users")>
                        <form method="post" action="/logout">
                            <button type="submit">"Log out"</button>
                        </form>
                    </Show>
                </div>
            </Show>
            <div role="status" class=move || format!("conn conn-{}", status().0) aria-live="polite">
                <span class="dot"></span>
                <span class="conn-text">{move || status().1}</span>
                <Show when=move || conn.state.get() == ConnState::Disconnected>
                    <button on:click=move |_| conn.reconnect()>"Reconnect"</button>
                </Show>
            </div>
        </header>
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
        <Show when=move || { conn.dropped.get() > 0 }>
            <p class="notice">{move || format!("{} lines were skipped because this view fell behind.", conn.dropped.get())}</p>
        </Show>
        <Show when=move || conn.buffer.with(|b| b.evicted() > 0)>
            <p class="notice subtle">{move || format!("{} older lines were dropped to stay within the browser's limit.", conn.buffer.with(|b| b.evicted()))}</p>
        </Show>
        <main class="viewer">
            <LogView conn=conn show_timestamps=show_timestamps.into() following=following paused=paused.into() filter=active_filter.into() wrap=wrap.into()/>
            <Show when=move || conn.buffer.with(|b| !b.is_empty() && b.visible_len() == 0)>
                <p class="empty">"No lines match the filter."</p>
            </Show>
            <Show when=move || !following.get() || paused.get()>
                <button class="jump" on:click=move |_| jump_to_latest()>
                    {move || match new_lines.get() { 0 => "Jump to latest".to_owned(), n => format!("Jump to latest ({n} new)") }}
                </button>
            </Show>
        </main>
        <footer class="statusbar">
            <span class="counter">{move || conn.buffer.with(|b| format!("{} of {} lines", b.visible_line_count(), b.line_count()))}</span>
        </footer>
    }
}
