//! What the user filters by: text or regex, case, inversion, stream, replica and level.
//! Everything is written to the URL; the viewer compiles the filter from there.

use leptos::html;
use leptos::prelude::*;

use crate::levels::{Levels, ALL};
use crate::protocol::{Level, ServiceInfo};
use crate::ui::url::UrlState;

#[component]
pub fn FilterBar(
    url: UrlState,
    /// The keyboard shortcuts focus it.
    input: NodeRef<html::Input>,
    /// Why the filter typed cannot apply.
    error: RwSignal<Option<String>>,
    /// The followed service, for its replicas.
    current: Memo<Option<ServiceInfo>>,
) -> impl IntoView {
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
        <div class="filter">
            <input type="search" aria-label="Filter" placeholder="Filter (press /)" node_ref=input
                prop:value=move || url.get("q").unwrap_or_default()
                on:input=move |ev| url.set(&[("q", Some(event_target_value(&ev)))])
                aria-invalid=move || error.get().is_some().to_string()/>
            <Flag url param="regex" label="Regex"/>
            <Flag url param="case" label="Match case"/>
            <Flag url param="invert" label="Invert"/>
            <select aria-label="Stream" prop:value=move || url.get("stream").unwrap_or_else(|| "both".into())
                on:change=move |ev| { let v = event_target_value(&ev); url.set(&[("stream", (v != "both").then_some(v))]) }>
                <option value="both">"stdout + stderr"</option>
                <option value="stdout">"stdout"</option>
                <option value="stderr">"stderr"</option>
            </select>
            <LevelChoice url/>
            // The JSON fields chosen by clicking them in a row, each removable.
            {move || url.all("field").into_iter().map(|f| {
                let label = format!("Stop filtering by {f}");
                let gone = f.clone();
                view! { <button class="field-term" title=label.clone() aria-label=label
                    on:click=move |_| {
                        let rest: Vec<String> = url.all("field").into_iter().filter(|x| *x != gone).collect();
                        url.set_all("field", &rest);
                    }>{f}" ×"</button> }
            }).collect_view()}
            // A choice of one would hide nothing.
            <Show when=move || { replicas.get().len() > 1 }>
                <select aria-label="Replica" prop:value=move || url.get("replica").unwrap_or_default()
                    on:change=move |ev| url.set(&[("replica", Some(event_target_value(&ev)))])>
                    <option value="">"All replicas"</option>
                    {move || replicas.get().into_iter().map(|n| view! { <option value=n.to_string()>{format!("#{n}")}</option> }).collect_view()}
                </select>
            </Show>
        </div>
    }
}

/// The Level control: a least level, or any. A choice it does not offer (`warn,error`,
/// from a shared link) is shown as written, so the control never hides what filters.
#[component]
fn LevelChoice(url: UrlState) -> impl IntoView {
    let chosen = move || url.levels().map(|l| l.to_string()).unwrap_or_default();
    let offered = move |value: &str| {
        value.is_empty()
            || ALL
                .iter()
                .any(|l| Levels::at_least(*l).to_string() == value)
    };
    view! {
        <select aria-label="Level" prop:value=chosen
            on:change=move |ev| url.set(&[("level", Some(event_target_value(&ev)))])>
            <option value="">"Any level"</option>
            {ALL.into_iter().map(|l| {
                let label = if l == Level::Fatal { "fatal".to_owned() } else { format!("{} and above", l.as_str()) };
                view! { <option value=Levels::at_least(l).to_string()>{label}</option> }
            }).collect_view()}
            {move || { let c = chosen(); (!offered(&c)).then(|| view! { <option value=c.clone()>{c.clone()}</option> }) }}
        </select>
    }
}

/// A checkbox for a URL parameter that is "1" when on and absent when off.
#[component]
fn Flag(url: UrlState, param: &'static str, label: &'static str) -> impl IntoView {
    view! {
        <label class="toggle"><input type="checkbox" prop:checked=move || url.flag(param)
            on:change=move |ev| url.set(&[(param, event_target_checked(&ev).then(|| "1".into()))])/>{label}</label>
    }
}
