//! The choice of what to follow: one service, or a project's services together (every one,
//! or those picked with the chips below the header), written to the URL.

use leptos::ev;
use leptos::prelude::*;

use crate::protocol::{Health, ServiceInfo, ServiceState, LOCAL_ENGINE};
use crate::target::{colour_of, Target};
use crate::ui::connection::Connection;
use crate::ui::url::{engine_param, UrlState, ALL_SERVICES};

/// What the past's parameters, the replica choice and an open build say belongs to one
/// service's view.
const ONE_SERVICE_ONLY: [&str; 5] = ["replica", "from", "to", "at", "build"];

#[component]
pub fn ServicePicker(
    conn: Connection,
    url: UrlState,
    target: Memo<Option<Target>>,
) -> impl IntoView {
    let on_change = move |ev: ev::Event| {
        let v = event_target_value(&ev);
        let (e, p, s) = match v.splitn(3, '/').collect::<Vec<_>>()[..] {
            [p, s] => (LOCAL_ENGINE, p, s),
            [e, p, s] => (e, p, s),
            _ => return,
        };
        let mut changes: Vec<(&str, Option<String>)> =
            ONE_SERVICE_ONLY.iter().map(|k| (*k, None)).collect();
        changes.push(("engine", engine_param(e)));
        changes.push(("project", Some(p.to_owned())));
        if s == ALL_SERVICES {
            changes.push(("service", None));
            changes.push(("services", Some(ALL_SERVICES.to_owned())));
            // Builds are shown for one service.
            changes.push(("builds", None));
        } else {
            changes.push(("service", Some(s.to_owned())));
            changes.push(("services", None));
        }
        url.set(&changes);
    };
    let value = move || {
        target.with(|t| match t {
            Some(Target::Service(k)) => option_value(&k.engine, &k.project, &k.service),
            Some(t) => option_value(t.engine(), t.project(), ALL_SERVICES),
            None => String::new(),
        })
    };
    view! {
        <label class="field">
            <span>"Service"</span>
            <select aria-label="Service" on:change=on_change prop:value=value>
                <Show when=move || target.with(Option::is_none)>
                    <option value="">"Choose a service"</option>
                </Show>
                {move || {
                let projects = conn.projects.get().unwrap_or_default();
                // Grouped by engine, then project: a group's label names its engine when
                // there are several.
                let several = projects.iter().any(|p| p.engine != projects[0].engine);
                projects.into_iter().map(|p| {
                    let all = option_value(&p.engine, &p.name, ALL_SERVICES);
                    let is_all = target.with_untracked(|t| t.as_ref().is_some_and(|t| t.single().is_none() && t.engine() == p.engine && t.project() == p.name));
                    let label = if several { format!("{}: {}", p.engine, p.name) } else { p.name.clone() };
                    view! {
                        <optgroup label=label>
                            <option value=all selected=is_all>{format!("all services of {}", p.name)}</option>
                            {p.services.into_iter().map(|s| {
                                let value = option_value(&s.engine, &s.project, &s.service);
                                let is_sel = target.with_untracked(|t| matches!(t, Some(Target::Service(k)) if *k == s.key()));
                                view! { <option value=value selected=is_sel>{service_label(&s)}</option> }
                            }).collect_view()}
                        </optgroup>
                    }
                }).collect_view()
                }}
            </select>
        </label>
    }
}

/// An option's value: `project/service` on the local engine, `engine/project/service` on
/// another (names hold no `/`).
fn option_value(engine: &str, project: &str, service: &str) -> String {
    if engine == LOCAL_ENGINE {
        format!("{project}/{service}")
    } else {
        format!("{engine}/{project}/{service}")
    }
}

/// What a service's option says, e.g. "web (1 of 2 running, unhealthy, 2 replicas)".
fn service_label(s: &ServiceInfo) -> String {
    // A stack's service: as many as its manager wants.
    let replicas = s.desired.unwrap_or(s.replicas);
    let state = match &s.state {
        ServiceState::Running { running } if *running == replicas => "running".to_owned(),
        ServiceState::Running { running } => format!("{running} of {replicas} running"),
        ServiceState::Restarting { exit_code: Some(c) } => format!("restarting, exit code {c}"),
        ServiceState::Restarting { exit_code: None } => "restarting".to_owned(),
        ServiceState::Exited { exit_code: Some(c) } => format!("exited with code {c}"),
        ServiceState::Exited { exit_code: None } => "exited".to_owned(),
        ServiceState::Created => "created".to_owned(),
        ServiceState::Removed => "removed, history kept".to_owned(),
    };
    let health = match s.health() {
        Some(Health::Healthy) => ", healthy",
        Some(Health::Starting) => ", health starting",
        Some(Health::Unhealthy) => ", unhealthy",
        None => "",
    };
    let replicas = if replicas <= 1 {
        String::new()
    } else {
        format!(", {replicas} replicas")
    };
    format!("{} ({state}{health}{replicas})", s.service)
}

/// In a view of several services, one toggle per service of the project, in its colour:
/// pressed ones are in the view. The last one pressed cannot be let go.
#[component]
pub fn ServiceChips(
    conn: Connection,
    url: UrlState,
    target: Memo<Option<Target>>,
) -> impl IntoView {
    // The project's services that have containers: those a whole-project view follows.
    let listed = Memo::new(move |_| {
        let (engine, project) = target.with(|t| {
            t.as_ref()
                .map(|t| (t.engine().to_owned(), t.project().to_owned()))
        })?;
        conn.projects.with(|ps| {
            let p = ps
                .as_ref()?
                .iter()
                .find(|p| p.engine == engine && p.name == project)?;
            let names = p.services.iter().filter(|s| !s.containers.is_empty());
            Some(names.map(|s| s.service.clone()).collect::<Vec<_>>())
        })
    });
    let shown = move || {
        let t = target.get()?;
        t.single().is_none().then_some(())?;
        let listed = listed.get().unwrap_or_default();
        let chosen: Vec<String> = t.named().map_or_else(|| listed.clone(), <[String]>::to_vec);
        let chips = listed.iter().map(|name| {
            let on = chosen.contains(name);
            let last = on && chosen.len() == 1;
            let next = toggled(&listed, &chosen, name);
            let class = format!("service-chip svc-{}", colour_of(name));
            view! {
                <button class=class aria-pressed=on.to_string() disabled=last
                    title=if last { "The view shows at least one service" } else { "Show or hide this service's lines" }
                    on:click=move |_| url.set_all("services", &next)>{name.clone()}</button>
            }
        });
        Some(view! {
            <nav class="service-chips" aria-label="Services in view">{chips.collect_view()}</nav>
        })
    };
    view! { {shown} }
}

/// The `services` values after `name` is pressed or let go: every service is `*`.
fn toggled(listed: &[String], chosen: &[String], name: &str) -> Vec<String> {
    let now: Vec<String> = listed
        .iter()
        .filter(|s| (*s == name) != chosen.contains(s))
        .cloned()
        .collect();
    if now.len() == listed.len() {
        vec![ALL_SERVICES.to_owned()]
    } else {
        now
    }
}
