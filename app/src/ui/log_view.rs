//! The list of lines: virtual scrolling (only the rows on screen are in the DOM), following
//! the newest line, and rows rendered as text nodes only.

use std::ops::Range;
use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;

use crate::ansi::Style;
use crate::buffer::{wrapped_lines, Row};
use crate::filter::Filter;
use crate::protocol::Stream;
use crate::ui::connection::Connection;

/// Height of one screen line in pixels (style/main.css agrees). Without soft wrap every row is
/// one line; with it, a row's height is computed from its length, so positions stay known
/// without measuring rows that are not on screen.
pub const ROW_HEIGHT: f64 = 20.0;
/// Rows rendered above and below the screen, so fast scrolling shows no gaps.
const OVERSCAN: usize = 20;

#[component]
pub fn LogView(
    conn: Connection,
    show_timestamps: Signal<bool>,
    /// True while the view sticks to the newest line.
    following: RwSignal<bool>,
    paused: Signal<bool>,
    /// The filter in force, for highlighting; changes only when the user changes it.
    filter: Signal<FilterKey>,
    /// Soft wrap: long lines wrap instead of scrolling sideways.
    wrap: Signal<bool>,
) -> impl IntoView {
    let scroller = NodeRef::<html::Div>::new();
    let scroll_top = RwSignal::new(0.0_f64);
    // Where the view last put the scroll position itself. Content growing below does not move
    // it; only the user scrolling up does, and only that stops following.
    let auto_top = StoredValue::new(0.0_f64);
    let viewport = RwSignal::new(600.0_f64);

    let total = Memo::new(move |_| conn.buffer.with(|b| b.visible_len()));
    // Characters that fit in the text column, measured when wrapping.
    let cols = RwSignal::new(120_u32);
    // With wrap on: the screen line each visible row starts at (and the total at the end).
    let offsets = Memo::new(move |_| {
        wrap.get()
            .then(|| Arc::new(conn.buffer.with(|b| b.wrapped_offsets(cols.get()))))
    });
    let height_lines = Memo::new(move |_| {
        offsets.with(|o| match o {
            Some(o) => o.last().copied().unwrap_or(0) as usize,
            None => total.get(),
        })
    });
    let range = Memo::new(move |_| {
        let top_line = (scroll_top.get() / ROW_HEIGHT).floor().max(0.0) as u32;
        let screen_lines = (viewport.get() / ROW_HEIGHT).ceil() as u32;
        let (first, last) = offsets.with(|o| match o {
            Some(o) => (
                o.partition_point(|&at| at <= top_line).saturating_sub(1),
                o.partition_point(|&at| at < top_line + screen_lines),
            ),
            None => (top_line as usize, (top_line + screen_lines) as usize),
        });
        let start = first.saturating_sub(OVERSCAN);
        let end = (last + OVERSCAN).min(total.get());
        start..end.max(start)
    });
    let offset_px = Memo::new(move |_| {
        let start = range.get().start;
        offsets.with(|o| match o {
            Some(o) => o.get(start).copied().unwrap_or(0) as f64 * ROW_HEIGHT,
            None => start as f64 * ROW_HEIGHT,
        })
    });
    // Rows are plain, non-reactive DOM: a change of filter (highlights) or of wrapping width
    // renders them anew through their key, which is cheaper than a reactive row each. A row is
    // keyed by its allocation, not its id: a lifecycle marker placed among the last lines
    // gives them new rows with reused ids.
    let layout = Memo::new(move |_| {
        let generation = filter.with(|f| f.1);
        RowLayout {
            generation,
            wrap_cols: wrap.get().then(|| cols.get()),
        }
    });
    let rows = Memo::new(move |_| {
        let Range { start, end } = range.get();
        conn.buffer.with(|b| b.visible_rows(start, end))
    });

    // Measure how many characters fit in a row's text when wrapping is turned on, and when
    // the view's size changes.
    let measure = NodeRef::<html::Span>::new();
    let measure_cols = move || {
        let (Some(el), Some(probe)) = (scroller.get_untracked(), measure.get_untracked()) else {
            return;
        };
        let char_px = probe.get_bounding_client_rect().width() / 100.0;
        let text_px = el
            .query_selector(".row .text")
            .ok()
            .flatten()
            .map(|t| {
                let left =
                    t.get_bounding_client_rect().left() - el.get_bounding_client_rect().left();
                f64::from(el.client_width()) - left - 12.0
            })
            .unwrap_or(f64::from(el.client_width()) - 200.0);
        if char_px > 0.0 {
            let n = (text_px / char_px).floor().max(10.0) as u32;
            if cols.get_untracked() != n {
                cols.set(n);
            }
        }
    };
    Effect::new(move |_| {
        if wrap.get() {
            let _ = viewport.get();
            let _ = show_timestamps.get();
            let _ = rows.with(|r| r.is_empty());
            request_animation_frame(measure_cols);
        }
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| {
        if let Some(el) = scroller.get_untracked() {
            viewport.set(f64::from(el.client_height()));
        }
        if wrap.get_untracked() {
            measure_cols();
        }
    });
    on_cleanup(move || resize.remove());

    // Stick to the bottom when following and lines arrive.
    Effect::new(move |_| {
        let _ = total.get();
        if following.get() && !paused.get() {
            if let Some(el) = scroller.get() {
                request_animation_frame(move || {
                    if following.get_untracked() {
                        el.set_scroll_top(el.scroll_height());
                        auto_top.set_value(f64::from(el.scroll_top()));
                    }
                });
            }
        }
    });

    // Scrolling up is the user's wish to stop following, even while a scroll to the bottom
    // is still on its way.
    let on_wheel = move |e: leptos::ev::WheelEvent| {
        if e.delta_y() < 0.0 && following.get_untracked() {
            following.set(false);
        }
    };
    let on_scroll = move |_| {
        if let Some(el) = scroller.get_untracked() {
            let top = f64::from(el.scroll_top());
            scroll_top.set(top);
            viewport.set(f64::from(el.client_height()));
            let at_bottom =
                top + f64::from(el.client_height()) >= f64::from(el.scroll_height()) - ROW_HEIGHT;
            if at_bottom {
                if !following.get_untracked() {
                    following.set(true);
                }
            } else if top < auto_top.get_value() - 1.0 && following.get_untracked() {
                following.set(false);
            }
        }
    };

    view! {
        <div class=move || match (wrap.get(), show_timestamps.get()) {
                (true, true) => "log wrap",
                (true, false) => "log wrap no-ts",
                (false, true) => "log",
                (false, false) => "log no-ts",
            }
            node_ref=scroller on:scroll=on_scroll on:wheel=on_wheel role="log" aria-label="Log lines">
            <span class="measure" aria-hidden="true" node_ref=measure>{"M".repeat(100)}</span>
            <div class="log-canvas" style:height=move || format!("{}px", height_lines.get() as f64 * ROW_HEIGHT)>
                <div
                    class="log-window"
                    style:transform=move || format!("translateY({}px)", offset_px.get())
                >
                    <For
                        each=move || {
                            let l = layout.get();
                            rows.get().into_iter().map(move |r| (l, r))
                        }
                        key=|(l, row)| (Arc::as_ptr(row) as usize, *l)
                        children=move |(l, row)| {
                            let lines = l.wrap_cols.map(|c| wrapped_lines(row.chars, c));
                            filter.with_untracked(|f| log_row(&row, &f.0, lines))
                        }
                    />
                </div>
            </div>
        </div>
    }
}

/// The filter in force, as the rows need it for highlighting, and a number that changes with
/// it.
#[derive(Clone, Default)]
pub struct FilterKey(pub Filter, pub u64);

/// What a row's rendering depends on besides its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RowLayout {
    generation: u64,
    wrap_cols: Option<u32>,
}

/// One row, as plain DOM: text nodes and styled spans, never HTML.
fn log_row(row: &Row, filter: &Filter, lines: Option<u32>) -> impl IntoView {
    let line = &row.line;
    let stream_class = match (row.lifecycle, line.stream) {
        (true, _) => "row lifecycle",
        (false, Stream::Stdout) => "row stdout",
        (false, Stream::Stderr) => "row stderr",
    };
    let replica_class = format!("replica replica-{}", line.replica.number % 8);
    let replica_label = format!("#{}", line.replica.number);
    let replica_title = line.replica.name.clone();
    let utc = line.ts.clone();
    let local = local_time(line.cursor.ts_ns);
    let truncated = line.truncated;
    let text = segments(row, filter)
        .into_iter()
        .map(|(text, style, marked)| {
            let css = style.css();
            let span = view! { <span style=(!css.is_empty()).then_some(css)>{text}</span> };
            if marked {
                view! { <mark>{span}</mark> }.into_any()
            } else {
                span.into_any()
            }
        })
        .collect_view();
    view! {
        <div class=stream_class
            style:height=lines.map(|n| format!("{}px", f64::from(n) * ROW_HEIGHT))>
            <time class="ts" title=utc>{local}</time>
            <span class=replica_class title=replica_title>{replica_label}</span>
            <span class="text">{text}</span>
            {truncated.then(|| view! { <span class="truncated" title="This line was longer than the server's limit and was cut">"[truncated]"</span> })}
        </div>
    }
}

/// Splits a row's visible text into runs of one style, marking the filter's matches.
fn segments(row: &Row, filter: &Filter) -> Vec<(String, Style, bool)> {
    let plain = &row.styled.plain;
    let marks = filter.highlights(plain);
    // Every position where the style or the marking changes.
    let mut cuts: Vec<usize> = vec![0, plain.len()];
    for (r, _) in &row.styled.spans {
        cuts.extend([r.start, r.end]);
    }
    for r in &marks {
        cuts.extend([r.start, r.end]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts.retain(|&c| plain.is_char_boundary(c));
    cuts.windows(2)
        .filter(|w| w[0] < w[1])
        .map(|w| {
            let at = w[0];
            let style = row
                .styled
                .spans
                .iter()
                .find(|(r, _)| r.contains(&at))
                .map(|(_, s)| *s)
                .unwrap_or_default();
            let marked = marks.iter().any(|r| r.contains(&at));
            (plain[w[0]..w[1]].to_owned(), style, marked)
        })
        .collect()
}

/// The time of day in the browser's time zone, with milliseconds.
pub fn local_time(ts_ns: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64((ts_ns / 1_000_000) as f64));
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds(),
        d.get_milliseconds()
    )
}
