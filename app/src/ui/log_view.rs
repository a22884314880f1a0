//! The list of lines: virtual scrolling (only the rows on screen are in the DOM), following
//! the newest line, and rows rendered as text nodes only.

use std::ops::Range;
use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;

use crate::buffer::{wrapped_lines, Row};
use crate::protocol::Cursor;
use crate::ui::lines::{Landing, Lines};
use crate::ui::row_view::{log_row, Acts, Shown};

/// Height of one screen line in pixels (style/main.css agrees). Without soft wrap every row is
/// one line; with it, a row's height is computed from its length, so positions stay known
/// without measuring rows that are not on screen.
pub const ROW_PX: usize = 20;
/// [`ROW_PX`] for the scroll arithmetic; styles are written from the whole pixels, as
/// printing a float would add kilobytes to the web client.
pub const ROW_HEIGHT: f64 = ROW_PX as f64;
/// Rows rendered above and below the screen, so fast scrolling shows no gaps.
const OVERSCAN: usize = 20;
/// Rows rendered above the screen while following: there every new line shifts every row, so
/// each one above is built anew each frame lines come, and the user reading the newest ones
/// seldom flings upwards (a scroll up stops following, and the window widens at once).
const OVERSCAN_FOLLOWING: usize = 4;

#[component]
pub fn LogView(
    lines: Lines,
    show_timestamps: Signal<bool>,
    /// Lines of several services: each row says whose it is.
    merged: Signal<bool>,
    /// True while the view sticks to the newest line.
    following: RwSignal<bool>,
    paused: Signal<bool>,
    /// False while a window of the past is shown: it has no newest line to follow.
    live: Signal<bool>,
    /// Soft wrap: long lines wrap instead of scrolling sideways.
    wrap: Signal<bool>,
    /// A line to mark and bring into view (a search hit).
    spotlight: Signal<Option<Cursor>>,
    /// The view was scrolled to its top: older lines may be put before the first.
    at_top: Callback<()>,
    /// The row whose details are shown (a JSON line's `{}` button sets it).
    details: RwSignal<Option<Arc<Row>>>,
    /// A JSON line's field was clicked (`key=value`, as its row shows it): filter by it.
    choose_field: Callback<String>,
) -> impl IntoView {
    let scroll = Scroll::new();
    // Characters that fit in the text column, measured when wrapping.
    let cols = RwSignal::new(120_u32);
    let window = Window::new(lines, wrap, cols, scroll, following.into());
    // Rows are plain, non-reactive DOM: a change of filter (highlights) or of wrapping width
    // renders them anew through their key, which is cheaper than a reactive row each. A row is
    // keyed by its allocation, not its id: a lifecycle marker placed among the last lines
    // gives them new rows with reused ids.
    let filter_generation = Memo::new(move |_| lines.with(|b| b.filter_generation()));
    let layout = Memo::new(move |_| RowLayout {
        filter_generation: filter_generation.get(),
        wrap_cols: wrap.get().then(|| cols.get()),
        spotlight: spotlight.with(|c| c.as_ref().map(|c| (c.ts_ns, c.seq))),
        merged: merged.get(),
    });
    // Each row with the entry it begins, if lines continue it: its toggle is drawn anew when
    // lines join the entry or it is collapsed.
    let rows = Memo::new(move |_| {
        let Range { start, end } = window.range.get();
        lines.with(|b| {
            b.visible_rows(start, end)
                .into_iter()
                .map(|r| {
                    let entry = b.entry(&r);
                    (r, entry)
                })
                .collect::<Vec<_>>()
        })
    });
    let measure = NodeRef::<html::Span>::new();
    measure_columns(scroll, measure, cols, wrap, move || {
        let _ = show_timestamps.get();
        let _ = rows.with(|r| r.is_empty());
    });
    stick_to_bottom(scroll, window.height_lines, following, paused);
    bring_into_view(scroll, lines, spotlight, wrap, cols);
    keep_place_when_older_come(scroll, lines, wrap, cols);
    land_where_shown(scroll, lines);

    view! {
        <div class=move || match (wrap.get(), show_timestamps.get()) {
                (true, true) => "log wrap",
                (true, false) => "log wrap no-ts",
                (false, true) => "log",
                (false, false) => "log no-ts",
            }
            node_ref=scroll.el on:scroll=move |_| {
                scroll.scrolled(following, live);
                if scroll.top.get_untracked() < 3.0 * ROW_HEIGHT {
                    at_top.run(());
                }
            }
            on:wheel=move |e| scroll.wheeled(&e, following) role="log" aria-label="Log lines"
            // Focusable, so that the arrows and Page Up/Down scroll it without a mouse.
            tabindex="0">
            <span class="measure" aria-hidden="true" node_ref=measure>{"M".repeat(100)}</span>
            <div class="log-canvas" style:height=move || format!("{}px", window.height_lines.get() * ROW_PX)>
                <div
                    class="log-window"
                    style:transform=move || format!("translateY({}px)", window.offset_px.get())
                >
                    <For
                        each=move || {
                            let l = layout.get();
                            rows.get().into_iter().map(move |(r, e)| (l, r, e))
                        }
                        key=|(l, row, entry)| (Arc::as_ptr(row) as usize, *l, *entry)
                        children=move |(l, row, entry)| {
                            let height = l.wrap_cols.map(|c| wrapped_lines(row.chars, c));
                            let hit = spotlight.with_untracked(|c| c.is_some() && row.cursor() == c.as_ref());
                            let shown = Shown { height, hit, entry, merged: l.merged };
                            let acts = Acts { lines, details, choose_field };
                            lines.with_untracked(|b| log_row(&row, b.filter(), shown, acts))
                        }
                    />
                </div>
            </div>
        </div>
    }
}

/// The scrolling box and where it stands.
#[derive(Clone, Copy)]
struct Scroll {
    el: NodeRef<html::Div>,
    top: RwSignal<f64>,
    viewport: RwSignal<f64>,
    /// Where the view last put the scroll position itself. Content growing below does not move
    /// it; only the user scrolling up does, and only that stops following.
    auto_top: StoredValue<f64>,
}

impl Scroll {
    fn new() -> Scroll {
        Scroll {
            el: NodeRef::new(),
            top: RwSignal::new(0.0),
            viewport: RwSignal::new(600.0),
            auto_top: StoredValue::new(0.0),
        }
    }

    fn scrolled(&self, following: RwSignal<bool>, live: Signal<bool>) {
        let Some(el) = self.el.get_untracked() else {
            return;
        };
        let top = f64::from(el.scroll_top());
        self.top.set(top);
        self.viewport.set(f64::from(el.client_height()));
        let at_bottom =
            top + f64::from(el.client_height()) >= f64::from(el.scroll_height()) - ROW_HEIGHT;
        if at_bottom {
            if live.get_untracked() && !following.get_untracked() {
                following.set(true);
            }
        } else if top < self.auto_top.get_value() - 1.0 && following.get_untracked() {
            following.set(false);
        }
    }

    /// Scrolling up is the user's wish to stop following, even while a scroll to the bottom
    /// is still on its way (and would otherwise count as being at the bottom).
    fn wheeled(&self, e: &leptos::ev::WheelEvent, following: RwSignal<bool>) {
        if e.delta_y() < 0.0 && following.get_untracked() {
            following.set(false);
        }
    }
}

/// Which visible rows are on screen (with some to spare) and where they go. Rows' heights
/// are computed, never measured, so rows off screen need no DOM.
#[derive(Clone, Copy)]
struct Window {
    /// Screen lines all visible rows take.
    height_lines: Memo<usize>,
    range: Memo<Range<usize>>,
    /// Where the first row of `range` goes, in pixels.
    offset_px: Memo<usize>,
}

impl Window {
    fn new(
        lines: Lines,
        wrap: Signal<bool>,
        cols: RwSignal<u32>,
        scroll: Scroll,
        following: Signal<bool>,
    ) -> Window {
        let total = Memo::new(move |_| lines.with(|b| b.visible_len()));
        // With wrap on: the screen line each visible row starts at (and the total at the end).
        let offsets = Memo::new(move |_| {
            wrap.get()
                .then(|| Arc::new(lines.with(|b| b.wrapped_offsets(cols.get()))))
        });
        let height_lines = Memo::new(move |_| {
            offsets.with(|o| match o {
                Some(o) => o.last().copied().unwrap_or(0) as usize,
                None => total.get(),
            })
        });
        let range = Memo::new(move |_| {
            let top_line = (scroll.top.get() / ROW_HEIGHT).floor().max(0.0) as u32;
            let screen_lines = (scroll.viewport.get() / ROW_HEIGHT).ceil() as u32;
            let (first, last) = offsets.with(|o| match o {
                Some(o) => (
                    o.partition_point(|&at| at <= top_line).saturating_sub(1),
                    o.partition_point(|&at| at < top_line + screen_lines),
                ),
                None => (top_line as usize, (top_line + screen_lines) as usize),
            });
            let above = if following.get() {
                OVERSCAN_FOLLOWING
            } else {
                OVERSCAN
            };
            let start = first.saturating_sub(above);
            let end = (last + OVERSCAN).min(total.get());
            start..end.max(start)
        });
        let offset_px = Memo::new(move |_| {
            let start = range.get().start;
            offsets.with(|o| match o {
                Some(o) => o.get(start).copied().unwrap_or(0) as usize * ROW_PX,
                None => start * ROW_PX,
            })
        });
        Window {
            height_lines,
            range,
            offset_px,
        }
    }
}

/// Keeps `cols` at the characters that fit in a row's text while wrapping: when wrapping is
/// turned on, when the view's size changes, and whenever `also` says the text column may have
/// moved.
fn measure_columns(
    scroll: Scroll,
    probe: NodeRef<html::Span>,
    cols: RwSignal<u32>,
    wrap: Signal<bool>,
    also: impl Fn() + 'static,
) {
    let measure = move || {
        let (Some(el), Some(probe)) = (scroll.el.get_untracked(), probe.get_untracked()) else {
            return;
        };
        if let Some(n) = text_columns(&el, &probe) {
            if cols.get_untracked() != n {
                cols.set(n);
            }
        }
    };
    Effect::new(move |_| {
        if wrap.get() {
            let _ = scroll.viewport.get();
            also();
            request_animation_frame(measure);
        }
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| {
        if let Some(el) = scroll.el.get_untracked() {
            scroll.viewport.set(f64::from(el.client_height()));
        }
        if wrap.get_untracked() {
            measure();
        }
    });
    on_cleanup(move || resize.remove());
}

/// How many characters of the probe's (100 M's) font fit in the text column of a row; when no
/// row is shown yet, the column is guessed from the timestamp and replica's usual width.
fn text_columns(el: &web_sys::Element, probe: &web_sys::Element) -> Option<u32> {
    let char_px = probe.get_bounding_client_rect().width() / 100.0;
    let text_px = el
        .query_selector(".row .text")
        .ok()
        .flatten()
        .map(|t| {
            let left = t.get_bounding_client_rect().left() - el.get_bounding_client_rect().left();
            f64::from(el.client_width()) - left - 12.0
        })
        .unwrap_or(f64::from(el.client_width()) - 200.0);
    (char_px > 0.0).then(|| (text_px / char_px).floor().max(10.0) as u32)
}

/// While following, each new row (or the log growing taller) scrolls the view to the bottom,
/// a frame later, once the row is laid out.
fn stick_to_bottom(
    scroll: Scroll,
    height_lines: Memo<usize>,
    following: RwSignal<bool>,
    paused: Signal<bool>,
) {
    Effect::new(move |_| {
        // The log's height, not its count of rows: turning wrap on, or a narrower window,
        // makes it taller with no new row, and the newest line must stay in view.
        let _ = height_lines.get();
        if following.get() && !paused.get() {
            if let Some(el) = scroll.el.get() {
                request_animation_frame(move || {
                    if following.get_untracked() {
                        el.set_scroll_top(el.scroll_height());
                        scroll.auto_top.set_value(f64::from(el.scroll_top()));
                    }
                });
            }
        }
    });
}

/// Scrolls the marked line to a third of the way down the view, once it is held.
fn bring_into_view(
    scroll: Scroll,
    lines: Lines,
    spotlight: Signal<Option<Cursor>>,
    wrap: Signal<bool>,
    cols: RwSignal<u32>,
) {
    Effect::new(move |_| {
        let Some(c) = spotlight.get() else {
            return;
        };
        let line = lines.with(|b| {
            let i = b.visible_index_of(&c)?;
            Some(if wrap.get() {
                b.wrapped_offsets(cols.get()).get(i).copied().unwrap_or(0) as usize
            } else {
                i
            })
        });
        let (Some(line), Some(el)) = (line, scroll.el.get()) else {
            return;
        };
        request_animation_frame(move || {
            let top = line as f64 * ROW_HEIGHT - f64::from(el.client_height()) / 3.0;
            el.set_scroll_top(top.max(0.0) as i32);
        });
    });
}

/// A window of the past is shown from its start or its end, a frame later, once its rows
/// are laid out.
fn land_where_shown(scroll: Scroll, lines: Lines) {
    Effect::new(move |_| {
        let (n, landing) = lines.shown.get();
        let Some(el) = scroll.el.get_untracked() else {
            return;
        };
        if n == 0 {
            return;
        }
        request_animation_frame(move || {
            let top = match landing {
                Landing::Start => 0,
                Landing::End => el.scroll_height(),
                Landing::Marked => return,
            };
            el.set_scroll_top(top);
            scroll.auto_top.set_value(f64::from(el.scroll_top()));
        });
    });
}

/// Older rows put before the first push the rest down: the view moves down as far, so what
/// the user was reading stays where it was.
fn keep_place_when_older_come(
    scroll: Scroll,
    lines: Lines,
    wrap: Signal<bool>,
    cols: RwSignal<u32>,
) {
    Effect::new(move |_| {
        let (_, rows) = lines.prepended.get();
        let Some(el) = scroll.el.get_untracked() else {
            return;
        };
        if rows == 0 {
            return;
        }
        let screen_lines = if wrap.get_untracked() {
            lines
                .with_untracked(|b| b.wrapped_offsets(cols.get_untracked()).get(rows).copied())
                .unwrap_or(0) as usize
        } else {
            rows
        };
        let top = f64::from(el.scroll_top()) + screen_lines as f64 * ROW_HEIGHT;
        el.set_scroll_top(top as i32);
        scroll.auto_top.set_value(top);
    });
}

/// What a row's rendering depends on besides its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RowLayout {
    filter_generation: u64,
    wrap_cols: Option<u32>,
    spotlight: Option<(i64, u32)>,
    /// Rows of several services name theirs.
    merged: bool,
}
