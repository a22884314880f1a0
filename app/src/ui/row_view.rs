//! One row of the log as plain DOM: text nodes and styled spans, never HTML; an entry's
//! toggle, a JSON line's `{}` and field buttons.

use std::ops::Range;
use std::sync::Arc;

use leptos::prelude::*;

use crate::ansi::Style;
use crate::buffer::{Entry, Row, RowKind};
use crate::export;
use crate::filter::Filter;
use crate::json;
use crate::protocol::Stream;
use crate::target::colour_of;
use crate::ui::lines::Lines;
use crate::ui::log_view::ROW_PX;

/// How a row is shown besides its line.
pub struct Shown {
    /// Screen lines, when wrapping.
    pub height: Option<u32>,
    /// It is the marked line.
    pub hit: bool,
    /// The entry it begins, when lines continue it.
    pub entry: Option<Entry>,
    /// In a view of several services: the row names its service.
    pub merged: bool,
}

/// What a row's buttons do.
#[derive(Clone, Copy)]
pub struct Acts {
    /// Collapses and expands entries.
    pub lines: Lines,
    pub details: RwSignal<Option<Arc<Row>>>,
    pub choose_field: Callback<String>,
}

/// One row, as plain DOM: text nodes and styled spans, never HTML.
pub fn log_row(row: &Arc<Row>, filter: &Filter, shown: Shown, acts: Acts) -> impl IntoView {
    let Shown {
        height,
        hit,
        entry,
        merged,
    } = shown;
    let Acts {
        lines,
        details,
        choose_field,
    } = acts;
    let (row_class, utc, truncated) = match &row.kind {
        RowKind::Line { line, .. } => (
            match line.stream {
                Stream::Stdout => "row stdout",
                Stream::Stderr => "row stderr",
            },
            line.ts.clone(),
            line.truncated,
        ),
        RowKind::Marker { ts_ns, .. } => ("row lifecycle", export::rfc3339(*ts_ns), false),
    };
    let replica = row.replica();
    let replica_class = format!("replica replica-{}", replica.number % 8);
    let replica_label = format!("#{}", replica.number);
    let replica_title = replica.name.clone();
    // Only in a view of several services: a row of one service is built without it.
    let service = merged.then(|| {
        let class = format!("service svc-{}", colour_of(&row.service));
        view! { <span class=class>{row.service.to_string()}</span> }
    });
    let local = local_time(row.ts_ns());
    let text = row_text(row, filter, choose_field);
    let level = match &row.kind {
        RowKind::Line { line, .. } => line.level,
        RowKind::Marker { .. } => None,
    };
    let mut row_class = row_class.to_owned();
    if let Some(level) = level {
        row_class.push_str(" level-");
        row_class.push_str(level.as_str());
    }
    if hit {
        row_class.push_str(" hit");
    }
    if row.continues {
        row_class.push_str(" continued");
    }
    let id = row.id;
    let toggle = entry.map(|e| {
        let label = format!(
            "{} {} more line{}",
            if e.collapsed { "Show" } else { "Hide" },
            e.more,
            if e.more == 1 { "" } else { "s" }
        );
        view! { <button class="entry-toggle" aria-expanded=(!e.collapsed).to_string() title=label.clone() aria-label=label
            on:click=move |_| lines.toggle_entry(id)>{if e.collapsed { "▸" } else { "▾" }}</button> }
    });
    let folded = entry
        .filter(|e| e.collapsed)
        .map(|e| view! { <span class="folded">{format!(" … {} more", e.more)}</span> });
    view! {
        <div class=row_class aria-current=hit.then_some("true")
            style:height=height.map(|n| format!("{}px", n as usize * ROW_PX))>
            <time class="ts" title=utc>{local}</time>
            {service}
            <span class=replica_class title=replica_title>{replica_label}</span>
            <span class="text">{toggle}{row.json().is_some().then(|| {
                let row = row.clone();
                view! { <button class="expand" title="Show the whole object" aria-label="Show the whole object"
                    on:click=move |_| details.set(Some(row.clone()))>"{}"</button> }
            })}{text}{folded}</span>
            {truncated.then(|| view! { <span class="truncated" title="This line was longer than the server's limit and was cut">"[truncated]"</span> })}
        </div>
    }
}

/// A row's text as styled runs, the filter's matches marked, a JSON line's fields as
/// buttons that filter by them.
fn row_text(row: &Row, filter: &Filter, choose_field: Callback<String>) -> impl IntoView {
    let chips = row.json().map(json::field_chips).unwrap_or_default();
    segments(row, filter, &chips)
        .into_iter()
        .map(|(chip, runs)| {
            let runs = runs
                .into_iter()
                .map(|(text, style, marked)| {
                    let css = style.css();
                    // A plain run is a bare text node: most lines are one, and an element
                    // less per row is less to build while following a busy service.
                    match (css.is_empty(), marked) {
                        (true, false) => text.into_any(),
                        (true, true) => view! { <mark>{text}</mark> }.into_any(),
                        (false, false) => view! { <span style=css>{text}</span> }.into_any(),
                        (false, true) => {
                            view! { <mark><span style=css>{text}</span></mark> }.into_any()
                        }
                    }
                })
                .collect_view();
            match chip {
                Some(chip) => {
                    let title = format!("Filter by {chip}");
                    view! { <button class="chip" title=title.clone() aria-label=title
                    on:click=move |_| choose_field.run(chip.clone())>{runs}</button> }
                    .into_any()
                }
                None => runs.into_any(),
            }
        })
        .collect_view()
}

/// A stretch of a row's text, in runs of one style (marked where the filter matched),
/// and the field chip it is (`key=value`), if it is one.
type Stretch = (Option<String>, Vec<(String, Style, bool)>);

/// Splits a row's visible text into runs of one style, marking the filter's matches, and
/// gathers the runs of each chip (byte ranges of the text) into one stretch.
fn segments(row: &Row, filter: &Filter, chips: &[Range<usize>]) -> Vec<Stretch> {
    let plain = row.plain();
    let marks = filter.highlights(plain);
    let mut cuts: Vec<usize> = chips.iter().flat_map(|c| [c.start, c.end]).collect();
    cuts.sort_unstable();
    let mut out: Vec<Stretch> = Vec::new();
    for (r, style, marked) in crate::ansi::runs(plain, row.spans(), &marks) {
        let inner = cuts.iter().copied().filter(|&c| c > r.start && c < r.end);
        let ends: Vec<usize> = inner.chain([r.end]).collect();
        let mut start = r.start;
        for end in ends {
            let chip = chips
                .iter()
                .find(|c| c.contains(&start))
                .map(|c| &plain[c.clone()]);
            let piece = (plain[start..end].to_owned(), style, marked);
            match out.last_mut() {
                Some((last, runs)) if chip.is_some() && last.as_deref() == chip => runs.push(piece),
                _ => out.push((chip.map(str::to_owned), vec![piece])),
            }
            start = end;
        }
    }
    out
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
