//! One build: how it stands, the services it touched, and its lines as text (never HTML),
//! stderr's tinted. While it runs the lines keep coming: the next page is asked after the
//! last line held, the server holding the question (`wait=1`) until a line comes or the
//! build ends; the loop ends with the build, or when the view is left.

use std::time::Duration;

use leptos::html;
use leptos::prelude::*;
use send_wrapper::SendWrapper;

use crate::build_log::{
    next_ask, result_class, shown_duration, shown_services, BuildLog, Next, MAX_BUILD_LINES,
};
use crate::builds::{BuildInfo, BuildPage, BuildResult};
use crate::protocol::{LogLine, ServiceKey, Stream};
use crate::ui::builds::{get_json, local_datetime, Alive, BuildsNav};
use crate::ui::row_view::local_time;
use crate::ui::url::UrlState;

/// How long to wait before asking again after a request failed on its way (the server
/// restarting, say).
const RETRY_AFTER: Duration = Duration::from_secs(3);

/// The build as the page holds it.
#[derive(Clone, Copy)]
struct Shown {
    info: RwSignal<Option<BuildInfo>>,
    log: RwSignal<BuildLog>,
    error: RwSignal<Option<String>>,
    /// The lines' scrolling box: kept at its bottom while it is there.
    lines_el: NodeRef<html::Div>,
}

impl Shown {
    fn new() -> Shown {
        Shown {
            info: RwSignal::new(None),
            log: RwSignal::new(BuildLog::default()),
            error: RwSignal::new(None),
            lines_el: NodeRef::new(),
        }
    }

    /// Takes a page: the build as it stands now, and its lines after those held.
    fn take(&self, page: BuildPage) {
        if self.error.with_untracked(Option::is_some) {
            self.error.set(None);
        }
        if self
            .info
            .with_untracked(|i| i.as_ref() != Some(&page.build))
        {
            self.info.set(Some(page.build));
        }
        if page.lines.is_empty() {
            return;
        }
        let el = self.lines_el.get_untracked();
        let at_bottom = el
            .as_ref()
            .is_none_or(|el| el.scroll_top() + el.client_height() >= el.scroll_height() - 4);
        self.log.update(|l| l.push(page.lines));
        if let (true, Some(el)) = (at_bottom, el) {
            request_animation_frame(move || el.set_scroll_top(el.scroll_height()));
        }
    }
}

/// Which build's lines to ask for.
struct Ask {
    key: ServiceKey,
    number: u64,
}

#[component]
pub fn OneBuild(
    url: UrlState,
    key: ServiceKey,
    number: u64,
    now: ReadSignal<i64>,
) -> impl IntoView {
    let shown = Shown::new();
    let heading = format!("Build #{number} of {}", key.service);
    follow(Ask { key, number }, shown);
    let dropped = move || {
        let n = shown.log.with(BuildLog::dropped);
        (n > 0).then(|| {
            view! { <p class="notice subtle">{format!("The oldest {n} lines are not shown: the page keeps the newest {MAX_BUILD_LINES}.")}</p> }
        })
    };
    let note = move || {
        let running = shown
            .info
            .with(|i| i.as_ref().map(|b| b.result == BuildResult::Running))?;
        shown.log.with(BuildLog::is_empty).then(|| {
            let text = if running {
                "No lines yet."
            } else {
                "This build wrote no lines."
            };
            view! { <p class="builds-note">{text}</p> }
        })
    };
    view! {
        <header class="builds-head">
            <BuildsNav url in_build=true/>
            <h2>{heading}</h2>
            {move || shown.info.get().map(|b| summary(b, now))}
        </header>
        {move || shown.error.get().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
        {dropped}
        {note}
        <div class="build-lines" data-testid="build-lines" role="log" aria-label="Build lines"
            tabindex="0" node_ref=shown.lines_el>
            <For each=move || shown.log.with(|l| l.chunks().cloned().collect::<Vec<_>>())
                key=|c| c.id
                children=|c| c.lines.iter().map(line_view).collect_view()/>
        </div>
    }
}

/// The build's result, duration, services and start.
fn summary(build: BuildInfo, now: ReadSignal<i64>) -> impl IntoView {
    let class = format!("build-result {}", result_class(&build.result));
    let result = build.result.describe();
    let services = shown_services(&build);
    let started = local_datetime(build.started_ns);
    let utc = crate::export::rfc3339(build.started_ns);
    let running = build.result == BuildResult::Running;
    let duration = move || shown_duration(&build, if running { now.get() } else { 0 });
    view! {
        <p class="build-summary">
            <span class=class data-testid="build-result">{result}</span>
            <span class="build-duration" title="Duration">{duration}</span>
            <span class="build-services">{services}</span>
            <time class="build-start" title=utc>{started}</time>
        </p>
    }
}

/// One line: its time, and its text with its colours as text nodes, never HTML.
fn line_view(line: &LogLine) -> impl IntoView {
    let class = match line.stream {
        Stream::Stdout => "build-line",
        Stream::Stderr => "build-line stderr",
    };
    let styled = crate::ansi::parse(&line.text);
    let text = if styled.spans.is_empty() {
        styled.plain.into_any()
    } else {
        crate::ansi::runs(&styled.plain, &styled.spans, &[])
            .into_iter()
            .map(|(r, style, _)| {
                let css = style.css();
                view! { <span style=(!css.is_empty()).then_some(css)>{styled.plain[r].to_owned()}</span> }
            })
            .collect_view()
            .into_any()
    };
    let truncated = line.truncated.then(|| {
        view! { <span class="truncated" title="This line was longer than the server's limit and was cut">"[truncated]"</span> }
    });
    view! {
        <div class=class>
            <time class="ts" title=line.ts.clone()>{local_time(line.cursor.ts_ns)}</time>
            <span class="text">{text}</span>
            {truncated}
        </div>
    }
}

/// Reads the build's lines page by page, then, while it runs, waits for more; ends with the
/// build, at a refusal (a 4xx), or when the view is left (its request then aborted).
fn follow(ask: Ask, shown: Shown) {
    let alive = Alive::new();
    let abort = web_sys::AbortController::new().ok().map(SendWrapper::new);
    let signal = abort.as_ref().map(|a| a.signal());
    on_cleanup(move || {
        if let Some(a) = abort {
            a.abort();
        }
    });
    leptos::task::spawn_local(async move {
        let mut wait = false;
        // Checked before the signals are touched: the view may be gone before this runs.
        while alive.is() {
            let after = shown.log.with_untracked(BuildLog::after);
            let answer = page(&ask, after, wait, signal.as_ref()).await;
            if !alive.is() {
                return;
            }
            match answer {
                Ok(page) => {
                    let next = next_ask(&page);
                    shown.take(page);
                    match next {
                        Next::Now => wait = false,
                        Next::Wait => wait = true,
                        Next::Done => return,
                    }
                }
                Err(f) => {
                    let lasting = f.lasting();
                    shown.error.set(Some(f.message));
                    if lasting {
                        return;
                    }
                    gloo_timers::future::sleep(RETRY_AFTER).await;
                }
            }
        }
    });
}

/// `GET /api/builds/lines`: the build's lines after `after`, waiting for one if `wait`.
async fn page(
    ask: &Ask,
    after: Option<(i64, u32)>,
    wait: bool,
    abort: Option<&web_sys::AbortSignal>,
) -> Result<BuildPage, crate::ui::builds::Failure> {
    let mut query = vec![
        ("project", ask.key.project.clone()),
        ("service", ask.key.service.clone()),
        ("number", ask.number.to_string()),
    ];
    if let Some((ns, seq)) = after {
        query.push(("after_ns", ns.to_string()));
        query.push(("after_seq", seq.to_string()));
    }
    if wait {
        query.push(("wait", "1".into()));
    }
    get_json("/api/builds/lines", &query, abort).await
}
