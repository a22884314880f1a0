//! The log viewer page. `Viewer` wires the state together; the toolbar, the filter bar, the
//! notices and the log view each render their part of it.

mod build_view;
mod builds;
mod connection;
mod details;
mod download;
mod filter_bar;
mod lines;
mod log_view;
mod notices;
mod past;
mod picture;
mod row_view;
mod search;
mod services;
mod toolbar;
mod url;

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use leptos_router::components::Router;

use crate::api::SessionInfo;
use crate::filter::Filter;
use crate::protocol::{find_service, ServiceInfo, ServiceKey};
use crate::target::Target;
use crate::ui::url::engine_param;
use builds::BuildsPanel;
use connection::{Connection, Wanted};
use details::Details;
use lines::Lines;
use log_view::LogView;
use notices::Notices;
use past::{Older, Past, Span};
use picture::Picture;
use search::SearchResults;
use services::ServiceChips;
use toolbar::Toolbar;
use url::UrlState;

/// The router gives the view its URL (`url.rs`); every path shows the one view, so no
/// routes are matched: their machinery is kilobytes of the client.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Viewer/>
        </Router>
    }
}

/// Whether the view sticks to the newest line, and how many arrived since it stopped.
#[derive(Clone, Copy)]
struct Follow {
    /// False once the user scrolls up.
    following: RwSignal<bool>,
    /// The user's Pause: scrolling back to the bottom does not end it; Resume or a jump to
    /// the latest line does.
    paused: RwSignal<bool>,
    /// `Lines::appended` when the view last showed the newest line.
    mark: RwSignal<u64>,
}

impl Follow {
    fn new() -> Follow {
        Follow {
            following: RwSignal::new(true),
            paused: RwSignal::new(false),
            mark: RwSignal::new(0),
        }
    }

    fn is_stopped(&self) -> bool {
        !self.following.get() || self.paused.get()
    }

    fn jump_to_latest(&self, lines: Lines) {
        self.paused.set(false);
        self.following.set(true);
        self.mark.set(lines.appended.get_untracked());
    }

    fn pause(&self) {
        self.paused.set(true);
        self.following.set(false);
    }

    /// Lines that arrived while the view did not follow them.
    fn new_lines(&self, lines: Lines) -> Memo<u64> {
        let f = *self;
        Memo::new(move |_| {
            if f.following.get() && !f.paused.get() {
                f.mark.set(lines.appended.get());
                0
            } else {
                lines.appended.get().saturating_sub(f.mark.get_untracked())
            }
        })
    }
}

/// What the view shows, as the URL says.
#[derive(Clone, Copy)]
struct Chosen {
    /// What it follows.
    target: Memo<Option<Target>>,
    /// The one service followed; None in a view of several, which has no past, picture or
    /// replica choice of its own.
    selected: Memo<Option<ServiceKey>>,
    /// A view of several services.
    merged: Memo<bool>,
    /// The one service, as the listing has it.
    current: Memo<Option<ServiceInfo>>,
    /// Live, or a window of the past; a view of several is always live.
    span: Memo<Span>,
}

impl Chosen {
    fn read(url: UrlState, conn: Connection) -> Chosen {
        let target = Memo::new(move |_| conn.default_engine.with(|d| url.target(d)));
        let selected = Memo::new(move |_| target.with(|t| t.as_ref()?.single().cloned()));
        let merged =
            Memo::new(move |_| target.with(|t| t.is_some()) && selected.with(Option::is_none));
        let current = Memo::new(move |_| {
            let key = selected.get()?;
            conn.projects
                .with(|p| find_service(p.as_deref()?, &key).cloned())
        });
        let one_span = past::shown(url, current);
        let span = Memo::new(move |_| {
            if merged.get() {
                Span::Live
            } else {
                one_span.get()
            }
        });
        Chosen {
            target,
            selected,
            merged,
            current,
            span,
        }
    }
}

#[component]
fn Viewer() -> impl IntoView {
    let url = UrlState::new();
    let lines = Lines::new();
    let conn = Connection::start(url.retries(), lines.feed());
    let session = load_session(conn);
    let follow = Follow::new();
    let show_timestamps = RwSignal::new(true);
    let wrap = RwSignal::new(false);
    let filter_input = NodeRef::<html::Input>::new();
    // The line whose details are open, until closed or the view starts anew.
    let details = RwSignal::new(None);

    let Chosen {
        target,
        selected,
        merged,
        current,
        span,
    } = Chosen::read(url, conn);
    let tail = Memo::new(move |_| url.tail());
    let past = Past::new();
    Effect::new(move |_| {
        let live = span.with(Span::is_live);
        let wanted = target.get().filter(|_| live).map(|target| Wanted {
            target,
            tail: tail.get(),
        });
        follow.following.set(live);
        if conn.follow(wanted) {
            lines.reset();
            details.set(None);
        }
    });
    let levels = Memo::new(move |_| url.levels());
    Effect::new(move |_| {
        let s = span.get();
        if let Some(key) = selected.get().filter(|_| !s.is_live()) {
            past.load(key, s, levels.get(), lines);
        }
    });
    let at_top = Older::on_scroll_to_top(conn, selected, span, lines, past);
    Effect::new(move |_| lines.set_cap(url.keep()));
    choose_a_service(url, conn, target);
    let filter_error = apply_filter(url, lines);
    keyboard(url, filter_input, follow, lines);
    let new_lines = follow.new_lines(lines);
    // The Builds panel takes the log's place, for one service only.
    let builds = Memo::new(move |_| {
        selected
            .with(Option::is_some)
            .then(|| url.builds())
            .flatten()
    });

    view! {
        <Toolbar conn lines url target tail current filter_input filter_error follow
            show_timestamps wrap session span/>
        <ServiceChips conn url target/>
        <Notices conn lines filter_error selected current span past/>
        <SearchResults url/>
        <Show when=move || builds.with(Option::is_none)
            fallback=move || view! { <BuildsPanel url selected open=builds/> }>
            <Picture url selected span/>
            <LogMain lines follow show_timestamps wrap merged span at_top details url new_lines/>
        </Show>
        <Details open=details/>
        <footer class="statusbar">
            <span class="counter">{move || lines.with(|b| format!("{} of {} lines", b.visible_line_count(), b.line_count()))}</span>
        </footer>
    }
}

/// The log, a note when the filter hides every line, and the way back to the newest.
#[component]
fn LogMain(
    lines: Lines,
    follow: Follow,
    show_timestamps: RwSignal<bool>,
    wrap: RwSignal<bool>,
    merged: Memo<bool>,
    span: Memo<Span>,
    at_top: Callback<()>,
    details: RwSignal<Option<std::sync::Arc<crate::buffer::Row>>>,
    url: UrlState,
    new_lines: Memo<u64>,
) -> impl IntoView {
    view! {
        <main class="viewer">
            <LogView lines show_timestamps=show_timestamps.into() merged=merged.into()
                following=follow.following
                paused=follow.paused.into() wrap=wrap.into()
                live=Signal::derive(move || span.with(Span::is_live))
                spotlight=Signal::derive(move || span.with(Span::spotlight)) at_top details
                choose_field=Callback::new(move |chip| url.add_to_all("field", chip))/>
            <Show when=move || lines.with(|b| !b.is_empty() && b.visible_len() == 0)>
                <p class="empty">"No lines match the filter."</p>
            </Show>
            <Show when=move || follow.is_stopped() && span.with(Span::is_live)>
                <button class="jump" on:click=move |_| follow.jump_to_latest(lines)>
                    {move || match new_lines.get() { 0 => "Jump to latest".to_owned(), n => format!("Jump to latest ({n} new)") }}
                </button>
            </Show>
        </main>
    }
}

/// Who is signed in, for the header; and whether a lost socket may mean a lost session.
fn load_session(conn: Connection) -> RwSignal<Option<SessionInfo>> {
    let session = RwSignal::new(None);
    leptos::task::spawn_local(async move {
        if let Ok(info) = crate::api::session().await {
            conn.signs_in.set(info.auth == "users");
            session.set(Some(info));
        }
    });
    session
}

/// A page opened without a service shows the first running one, rather than nothing.
fn choose_a_service(url: UrlState, conn: Connection, target: Memo<Option<Target>>) {
    Effect::new(move |_| {
        if target.with(Option::is_some) {
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
                ("engine", engine_param(&s.engine)),
                ("project", Some(s.project.clone())),
                ("service", Some(s.service.clone())),
            ]);
        }
    });
}

/// Applies the URL's filter to the lines. An invalid one is reported and leaves the last
/// valid one applied, so that typing a regex does not blank the view at every keystroke.
fn apply_filter(url: UrlState, lines: Lines) -> RwSignal<Option<String>> {
    let error = RwSignal::new(None);
    let spec = Memo::new(move |_| url.filter_spec());
    Effect::new(move |_| match Filter::compile(&spec.get()) {
        Ok(f) => {
            error.set(None);
            lines.set_filter(f);
        }
        Err(e) => error.set(Some(e.to_string())),
    });
    error
}

/// "/" or Ctrl+F focuses the filter, Esc clears it, End jumps to the latest line. "/" and
/// End are left alone while typing in a field.
fn keyboard(url: UrlState, filter_input: NodeRef<html::Input>, follow: Follow, lines: Lines) {
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
            follow.jump_to_latest(lines);
        }
    });
    on_cleanup(move || keys.remove());
}
