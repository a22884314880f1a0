//! A picture of the log: the shown service's stored lines over time, as bars stacked by
//! level (or by stream, where no line states a level), read from history and drawn anew
//! every few seconds while live. Hovering a bar tells its counts; dragging over bars (or
//! clicking one) shows that stretch of time: the view's From and To.

use std::time::Duration;

use leptos::prelude::*;

use crate::history::{level_slot, Bucket, Histogram};
use crate::levels::ALL;
use crate::protocol::ServiceKey;
use crate::ui::past::Span;
use crate::ui::row_view::local_time;
use crate::ui::url::UrlState;

/// Bars in the picture.
pub const BARS: u32 = 60;
/// What the live picture shows: the last hour.
const LIVE_SPAN: &str = "1h";
/// How often the live picture is read again: each read counts up to an hour of lines on the
/// server, so not often, and never while the tab is hidden.
const REFRESH: Duration = Duration::from_secs(30);
/// Each bar's width in the drawing's own units; the drawing is stretched to the page.
const BAR: usize = 10;
const HEIGHT: f64 = 100.0;

/// The picture above the log: the shown service's stored lines; a stretch chosen is shown
/// as the view's From and To.
#[component]
pub fn Picture(
    url: UrlState,
    selected: Memo<Option<ServiceKey>>,
    span: Memo<Span>,
) -> impl IntoView {
    let chart = read(selected, span);
    let choose = Callback::new(move |(from, to): (String, String)| {
        url.set(&[("from", Some(from)), ("to", Some(to)), ("at", None)]);
    });
    view! { <Chart chart what="stored lines" choose/> }
}

/// Bars of counts over time, stacked by level (by stream where no line states one); hovering
/// a bar tells its counts, and dragging over bars (or clicking one) chooses that stretch,
/// handed to `choose` as From and To (UTC, to the millisecond).
#[component]
pub fn Chart(
    chart: RwSignal<Option<Histogram>>,
    /// What is counted, for the chart's label: "stored lines", "matching lines".
    what: &'static str,
    choose: Callback<(String, String)>,
) -> impl IntoView {
    let drag = RwSignal::new(None::<(usize, usize)>);
    let bar_at = move |ev: &leptos::ev::PointerEvent| -> Option<usize> {
        let n = chart.with_untracked(|c| c.as_ref().map(|h| h.buckets.len()))?;
        let el: web_sys::Element = event_target(ev);
        let svg = el.closest("svg").ok()??;
        let rect = svg.get_bounding_client_rect();
        let x = (f64::from(ev.client_x()) - rect.left()) / rect.width().max(1.0);
        Some(((x * n as f64).floor().max(0.0) as usize).min(n.saturating_sub(1)))
    };
    let choose = move |(a, b): (usize, usize)| {
        let Some((from, to)) = chart.with_untracked(|c| {
            let h = c.as_ref()?;
            let (lo, hi) = (a.min(b) as i64, a.max(b) as i64);
            Some((
                h.since_ns + lo * h.bucket_ns,
                (h.since_ns + (hi + 1) * h.bucket_ns).min(h.until_ns),
            ))
        }) else {
            return;
        };
        // To the millisecond, as the From and To fields show times: a bar's edges, widened.
        choose.run((
            iso(from.div_euclid(1_000_000)),
            iso((to + 999_999).div_euclid(1_000_000)),
        ));
    };
    view! {
        {move || chart.get().map(|h| {
            let label = describe(&h, what);
            let title = label.clone();
            let n = h.buckets.len();
            let by_level = h.buckets.iter().any(|b| b.levels[..ALL.len()].iter().any(|&c| c > 0));
            let top = h.buckets.iter().map(Bucket::lines).max().unwrap_or(0).max(1) as f64;
            let bars = h.buckets.iter().enumerate().map(|(k, b)| bar(k, b, h.bucket_ns, by_level, top)).collect_view();
            view! {
                <figure class="picture">
                    <svg role="img" aria-label=label viewBox=format!("0 0 {} {HEIGHT}", n * BAR)
                        preserveAspectRatio="none"
                        on:pointerdown=move |ev| {
                            if let Some(k) = bar_at(&ev) {
                                drag.set(Some((k, k)));
                            }
                        }
                        on:pointermove=move |ev| {
                            if let (Some((a, _)), Some(k)) = (drag.get_untracked(), bar_at(&ev)) {
                                drag.set(Some((a, k)));
                            }
                        }
                        on:pointerup=move |_| {
                            if let Some(d) = drag.get_untracked() {
                                drag.set(None);
                                choose(d);
                            }
                        }
                        on:pointerleave=move |_| drag.set(None)>
                        <title>{title}</title>
                        {bars}
                        {move || drag.get().map(|(a, b)| {
                            let (lo, hi) = (a.min(b), a.max(b));
                            view! { <rect class="selection" x=(lo * BAR).to_string() y="0"
                                width=((hi - lo + 1) * BAR).to_string() height=HEIGHT.to_string()/> }
                        })}
                    </svg>
                </figure>
            }
        })}
    }
}

/// One bar: its parts stacked from the bottom, and its counts told on hover.
fn bar(k: usize, b: &Bucket, width_ns: i64, by_level: bool, top: f64) -> impl IntoView {
    let parts: Vec<(&'static str, u64)> = if by_level {
        ALL.iter()
            .map(|l| (l.as_str(), b.levels[level_slot(Some(*l))]))
            .chain([("none", b.levels[level_slot(None)])])
            .collect()
    } else {
        vec![("stdout", b.stdout), ("stderr", b.stderr)]
    };
    let told: Vec<String> = parts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    let title = format!(
        "{} – {}: {} line{}{}",
        local_time(b.start_ns),
        local_time(b.start_ns + width_ns),
        b.lines(),
        if b.lines() == 1 { "" } else { "s" },
        if told.is_empty() {
            String::new()
        } else {
            format!(" ({})", told.join(", "))
        }
    );
    let mut y = HEIGHT;
    let rects = parts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| {
            let h = n as f64 / top * HEIGHT;
            y -= h;
            view! { <rect class=format!("part-{name}") x=(k * BAR).to_string() y=y.to_string()
            width=(BAR - 1).to_string() height=h.to_string()/> }
        })
        .collect_view();
    view! {
        <g class="bar" data-lines=b.lines().to_string()>
            <title>{title}</title>
            // The whole column answers the pointer, not only the drawn part.
            <rect class="column" x=(k * BAR).to_string() y="0" width=BAR.to_string() height=HEIGHT.to_string()/>
            {rects}
        </g>
    }
}

/// What the chart shows, in words.
fn describe(h: &Histogram, what: &str) -> String {
    let total: u64 = h.buckets.iter().map(Bucket::lines).sum();
    format!(
        "{total} {what} from {} to {}{}; drag over the bars to choose a stretch of time",
        local_time(h.since_ns),
        local_time(h.until_ns),
        if h.partial {
            " (only the newest were counted)"
        } else {
            ""
        }
    )
}

/// A time in milliseconds as the URL's From and To hold it.
fn iso(ms: i64) -> String {
    String::from(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64)).to_iso_string())
}

/// The picture's counts, read when the service or window changes, and again every
/// [`REFRESH`] while live.
fn read(selected: Memo<Option<ServiceKey>>, span: Memo<Span>) -> RwSignal<Option<Histogram>> {
    let chart = RwSignal::new(None::<Histogram>);
    let tick = RwSignal::new(0_u64);
    let ticker = set_interval_with_handle(
        move || {
            let hidden = document().hidden();
            if span.with_untracked(Span::is_live) && !hidden {
                tick.update(|t| *t += 1);
            }
        },
        REFRESH,
    )
    .ok();
    on_cleanup(move || {
        if let Some(t) = ticker {
            t.clear();
        }
    });
    // Counts reads, so that an answer to an older one is thrown away.
    let generation = StoredValue::new(0_u64);
    Effect::new(move |_| {
        let _ = tick.get();
        let g = generation.get_value() + 1;
        generation.set_value(g);
        let Some(key) = selected.get() else {
            chart.set(None);
            return;
        };
        // Live, the last hour: a read bounded by what an hour holds, not by the retention.
        let (since, until) = match span.get() {
            Span::Between { from, to } => (from, to),
            _ => (Some(LIVE_SPAN.to_owned()), None),
        };
        leptos::task::spawn_local(async move {
            let answer = crate::api::histogram(
                Some(key.project),
                Some(key.service),
                since,
                until,
                Some(BARS.to_string()),
                None,
                Some(key.engine),
            )
            .await;
            if generation.get_value() == g {
                // History off, or not yet holding the service: no picture, not an error.
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
