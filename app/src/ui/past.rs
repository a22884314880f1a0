//! A window of a service's past, read from history: between **From** and **To**, or around
//! a search hit (which is marked). While one is shown the socket follows nothing; **Follow
//! live** goes back to the live end.

use leptos::prelude::*;

use crate::export::rfc3339;
use crate::history::{HistoryPage, MAX_PAGE};
use crate::levels::Levels;
use crate::protocol::{Cursor, ServiceInfo, ServiceKey, ServiceState};
use crate::ui::connection::Connection;
use crate::ui::lines::{Landing, Lines};
use crate::ui::url::UrlState;

/// What the view shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Span {
    /// The live end, followed over the socket.
    Live,
    /// The stored lines between two times (RFC 3339); either end may be open.
    Between {
        from: Option<String>,
        to: Option<String>,
    },
    /// The lines around one line, which is marked.
    Around(Cursor),
}

impl Span {
    pub fn is_live(&self) -> bool {
        *self == Span::Live
    }

    /// Where the view stands once this span's page is shown: a window with a From is read
    /// from its start, any other from its end.
    pub fn landing(&self) -> Landing {
        match self {
            Span::Between { from: Some(_), .. } => Landing::Start,
            Span::Live | Span::Between { from: None, .. } => Landing::End,
            Span::Around(_) => Landing::Marked,
        }
    }

    /// The line to mark and bring into view.
    pub fn spotlight(&self) -> Option<Cursor> {
        match self {
            Span::Around(c) => Some(c.clone()),
            _ => None,
        }
    }
}

/// What the view shows: the URL's span, except that a removed service has no live end, so
/// its history is shown instead.
pub fn shown(url: UrlState, current: Memo<Option<ServiceInfo>>) -> Memo<Span> {
    let removed = Memo::new(move |_| {
        current.with(|c| c.as_ref().is_some_and(|s| s.state == ServiceState::Removed))
    });
    Memo::new(move |_| match url.span() {
        Span::Live if removed.get() => Span::Between {
            from: None,
            to: None,
        },
        s => s,
    })
}

/// Lines shown before and after a line opened from a search.
const CONTEXT: u32 = 200;

/// What a past window holds besides its lines: whether it was cut, or why it failed.
#[derive(Clone, Copy)]
pub struct Past {
    /// Says the window holds more than is shown, or why it could not be read.
    pub note: RwSignal<Option<String>>,
    /// Counts loads, so that an answer to an older one is thrown away.
    generation: StoredValue<u64>,
}

impl Past {
    pub fn new() -> Past {
        Past {
            note: RwSignal::new(None),
            generation: StoredValue::new(0),
        }
    }

    /// Reads `span` of `key` from history into `lines`, in place of what they held. A window
    /// between two times holds only the lines stating `levels`, so that its page of
    /// `MAX_PAGE` lines is of those (the lines around a search hit are all read: the hit
    /// may state none).
    pub fn load(&self, key: ServiceKey, span: Span, levels: Option<Levels>, lines: Lines) {
        let past = *self;
        let generation = self.generation.get_value() + 1;
        self.generation.set_value(generation);
        self.note.set(None);
        leptos::task::spawn_local(async move {
            let read = read(&key, &span, levels).await;
            if past.generation.get_value() != generation {
                return;
            }
            match read {
                Ok(page) => {
                    let cut = page.before.is_some() || page.after.is_some();
                    past.note.set(if page.lines.is_empty() {
                        Some("History holds no lines of this service here.".into())
                    } else if cut {
                        Some(format!(
                            "This window holds more than {MAX_PAGE} lines; {MAX_PAGE} are shown. Narrow From and To to see the rest."
                        ))
                    } else {
                        None
                    });
                    lines.show(&key.service, page.lines, page.events, span.landing());
                }
                Err(e) => past
                    .note
                    .set(Some(format!("History could not be read: {e}"))),
            }
        });
    }
}

/// One page for `span`: the window from its start, or the lines around a line.
async fn read(
    key: &ServiceKey,
    span: &Span,
    levels: Option<Levels>,
) -> Result<HistoryPage, String> {
    let ask = |since: Option<String>,
               until: Option<String>,
               limit: u32,
               after: Option<String>,
               levels: Option<Levels>| {
        crate::api::history(
            key.project.clone(),
            key.service.clone(),
            since,
            until,
            Some(limit.to_string()),
            None,
            after,
            levels.map(|l| l.to_string()),
            Some(key.engine.clone()),
        )
    };
    let err = |e: leptos::prelude::ServerFnError| e.to_string();
    match span {
        Span::Live => Ok(HistoryPage::default()),
        Span::Between { from, to } => ask(from.clone(), to.clone(), MAX_PAGE, None, levels)
            .await
            .map_err(err),
        Span::Around(c) => {
            // Up to the line and the line itself, then what came after it.
            let upto = ask(None, Some(rfc3339(c.ts_ns + 1)), CONTEXT, None, None)
                .await
                .map_err(err)?;
            let after = ask(None, None, CONTEXT, Some(c.to_string()), None)
                .await
                .map_err(err)?;
            let mut lines = upto.lines;
            lines.extend(after.lines.into_iter().filter(|l| l.cursor > *c));
            let mut events = upto.events;
            events.extend(after.events);
            events.dedup();
            Ok(HistoryPage {
                lines,
                events,
                before: None,
                after: None,
            })
        }
    }
}

/// Older lines from history, loaded when the view is scrolled to its top.
#[derive(Clone, Copy)]
pub struct Older {
    loading: StoredValue<bool>,
    /// History holds nothing older, or the browser's bound is reached: stop asking.
    done: StoredValue<bool>,
}

/// Lines asked for at a time when scrolling back.
const OLDER_PAGE: u32 = 500;

impl Older {
    pub fn new() -> Older {
        Older {
            loading: StoredValue::new(false),
            done: StoredValue::new(false),
        }
    }

    /// With history kept, scrolling to the top brings older lines of the service shown
    /// (a new service or window may have older lines again).
    pub fn on_scroll_to_top(
        conn: Connection,
        selected: Memo<Option<ServiceKey>>,
        span: Memo<Span>,
        lines: Lines,
        past: Past,
    ) -> Callback<()> {
        let older = Older::new();
        Effect::new(move |_| {
            let _ = (selected.get(), span.get());
            older.done.set_value(false);
        });
        Callback::new(move |()| {
            let keeps = conn.history.get_untracked().is_some();
            if let Some(key) = selected.get_untracked().filter(|_| keeps) {
                if span.with_untracked(Older::reaches_back) {
                    older.load(key, lines, past);
                }
            }
        })
    }

    /// Whether `span` has a past before its first line (a window's From is its start).
    pub fn reaches_back(span: &Span) -> bool {
        !matches!(span, Span::Between { from: Some(_), .. })
    }

    pub fn load(&self, key: ServiceKey, lines: Lines, past: Past) {
        if self.loading.get_value() || self.done.get_value() {
            return;
        }
        let Some(oldest) = lines.oldest_cursor() else {
            return;
        };
        self.loading.set_value(true);
        let older = *self;
        leptos::task::spawn_local(async move {
            let page = crate::api::history(
                key.project.clone(),
                key.service.clone(),
                None,
                None,
                Some(OLDER_PAGE.to_string()),
                Some(oldest.to_string()),
                None,
                None,
                Some(key.engine.clone()),
            )
            .await;
            older.loading.set_value(false);
            // The view moved on (another service, a reset) while this was read.
            if lines.oldest_cursor().as_ref() != Some(&oldest) {
                return;
            }
            match page {
                Ok(page) => {
                    let more = page.before.is_some();
                    let taken = lines.prepend(&key.service, page.lines, page.events);
                    older.done.set_value(!more || taken == 0);
                }
                Err(e) => {
                    older.done.set_value(true);
                    past.note
                        .set(Some(format!("Older lines could not be read: {e}")));
                }
            }
        });
    }
}

/// **From**, **To** (local time, to the second) and **Follow live**.
#[component]
pub fn WhenControls(url: UrlState) -> impl IntoView {
    let set = move |param: &'static str, local: String| {
        url.set(&[(param, utc_of_local(&local)), ("at", None)]);
    };
    view! {
        <div class="when">
            <label class="field"><span>"From"</span>
                <input type="datetime-local" step="1" aria-label="From"
                    prop:value=move || url.get("from").map(|t| local_of_utc(&t)).unwrap_or_default()
                    on:change=move |ev| set("from", event_target_value(&ev))/>
            </label>
            <label class="field"><span>"To"</span>
                <input type="datetime-local" step="1" aria-label="To"
                    prop:value=move || url.get("to").map(|t| local_of_utc(&t)).unwrap_or_default()
                    on:change=move |ev| set("to", event_target_value(&ev))/>
            </label>
            // Only a window asked for in the URL: a removed service has no live end.
            <Show when=move || !url.span().is_live()>
                <button class="follow-live" on:click=move |_| url.set(&[("from", None), ("to", None), ("at", None)])>"Follow live"</button>
            </Show>
        </div>
    }
}

/// A `datetime-local` value (the browser's local time) as RFC 3339 in UTC; None if empty
/// or not a time.
fn utc_of_local(local: &str) -> Option<String> {
    if local.is_empty() {
        return None;
    }
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(local));
    (!d.get_time().is_nan()).then(|| String::from(d.to_iso_string()))
}

/// RFC 3339 as a `datetime-local` value in the browser's local time.
fn local_of_utc(utc: &str) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(utc));
    if d.get_time().is_nan() {
        return String::new();
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}
