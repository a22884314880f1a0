//! The view's state lives in the URL's query, so that a view can be shared and survives a
//! reload. This reads it into typed values and writes changes back.

use std::sync::Arc;

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate};
use leptos_router::NavigateOptions;
use web_sys::UrlSearchParams;

use crate::buffer::{DEFAULT_MAX_LINES, MAX_LINES_RANGE};
use crate::filter::FilterSpec;
use crate::levels::Levels;
use crate::protocol::ServiceKey;
use crate::target::Target;
use crate::ui::builds::BuildsOpen;
use crate::ui::connection::DEFAULT_RETRIES;
use crate::ui::past::Span;

/// `services=*`: every service of the project, in one view.
pub const ALL_SERVICES: &str = "*";

/// Tail sizes offered in the "Lines" choice; any other `tail` reads as the first.
pub const TAILS: [u32; 4] = [100, 500, 1000, 5000];

type Navigate = Arc<dyn Fn(&str, NavigateOptions) + Send + Sync>;

/// The query's parameters in order, a name given more than once kept each time. Read from
/// the raw query string with the browser's own parser, so that each value is decoded once:
/// the router's map decodes again, and a `%41` typed in the filter would become `A`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(search: &str) -> Query {
        let Ok(params) = UrlSearchParams::new_with_str(search) else {
            return Query::default();
        };
        let mut all = Vec::new();
        for pair in js_sys::try_iter(&params)
            .ok()
            .flatten()
            .into_iter()
            .flatten()
        {
            let pair = js_sys::Array::from(&pair.unwrap_or_default());
            if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                all.push((k, v));
            }
        }
        Query(all)
    }

    /// The last value of a parameter.
    fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn get_all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    /// Puts the value last, in place of any the parameter had.
    fn replace(&mut self, key: &str, value: String) {
        self.remove(key);
        self.0.push((key.to_owned(), value));
    }

    fn push(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }

    /// `?a=b&…`, encoded by the browser, or nothing.
    fn to_query_string(&self) -> String {
        let Ok(params) = UrlSearchParams::new() else {
            return String::new();
        };
        for (k, v) in &self.0 {
            params.append(k, v);
        }
        let s = String::from(params.to_string());
        if s.is_empty() {
            s
        } else {
            format!("?{s}")
        }
    }
}

#[derive(Clone, Copy)]
pub struct UrlState {
    query: Memo<Query>,
    navigate: StoredValue<Navigate>,
}

impl UrlState {
    /// Needs the router's context.
    pub fn new() -> UrlState {
        let navigate = use_navigate();
        let search = use_location().search;
        UrlState {
            query: Memo::new(move |_| search.with(|s| Query::parse(s))),
            navigate: StoredValue::new(Arc::new(move |to: &str, opts| navigate(to, opts))),
        }
    }

    /// A parameter, tracked; an empty one is as good as none.
    pub fn get(&self, key: &str) -> Option<String> {
        self.query.with(|q| q.get(key)).filter(|v| !v.is_empty())
    }

    /// Every value of a parameter given more than once, tracked.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.query
            .with(|q| q.get_all(key))
            .into_iter()
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Gives a parameter these values, each once, in order; none removes it.
    pub fn set_all(&self, key: &str, values: &[String]) {
        let mut q = self.query.get_untracked();
        q.remove(key);
        for v in values {
            q.push(key, v.clone());
        }
        self.go(q);
    }

    /// Adds a value to a parameter given more than once, unless it is there.
    pub fn add_to_all(&self, key: &str, value: String) {
        let mut values = self.query.with_untracked(|q| q.get_all(key));
        if !values.contains(&value) {
            values.push(value);
            self.set_all(key, &values);
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v == "1")
    }

    /// Applies the changes at once; `None` or an empty value removes the parameter.
    pub fn set(&self, changes: &[(&str, Option<String>)]) {
        let mut q = self.query.get_untracked();
        for (k, v) in changes {
            match v {
                Some(v) if !v.is_empty() => q.replace(k, v.clone()),
                _ => {
                    q.remove(k);
                }
            }
        }
        self.go(q);
    }

    fn go(&self, q: Query) {
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

    /// Read once: the connection is made once per page.
    pub fn retries(&self) -> u32 {
        self.query
            .with_untracked(|q| q.get("retries"))
            .and_then(|r| r.parse().ok())
            .unwrap_or(DEFAULT_RETRIES)
    }

    /// A parameter, untracked.
    pub fn get_untracked(&self, key: &str) -> Option<String> {
        self.query
            .with_untracked(|q| q.get(key))
            .filter(|v| !v.is_empty())
    }

    /// The live end, or a window of the past: around the line `at`, or between `from`
    /// and `to`. An `at` that is not a cursor is left out.
    pub fn span(&self) -> Span {
        if let Some(c) = self.get("at").and_then(|c| c.parse().ok()) {
            return Span::Around(c);
        }
        match (self.get("from"), self.get("to")) {
            (None, None) => Span::Live,
            (from, to) => Span::Between { from, to },
        }
    }

    /// What the view follows: several services of `project` when `services` is given (once
    /// per service, or [`ALL_SERVICES`] for every one), else its one `service`.
    /// Its `engine`, or (none named) the server's `default_engine`.
    pub fn target(&self, default_engine: &str) -> Option<Target> {
        let engine = self
            .get("engine")
            .unwrap_or_else(|| default_engine.to_owned());
        let project = self.get("project")?;
        let services = self.all("services");
        if services.is_empty() {
            let service = self.get("service")?;
            return Some(Target::Service(ServiceKey {
                engine,
                project,
                service,
            }));
        }
        let every = services.iter().any(|s| s == ALL_SERVICES);
        Some(Target::chosen(
            engine,
            project,
            if every { Vec::new() } else { services },
        ))
    }

    /// The Builds panel, when open: one build (`build=N`), or the list (`builds=1`).
    pub fn builds(&self) -> Option<BuildsOpen> {
        if let Some(n) = self.get("build").and_then(|n| n.parse().ok()) {
            return Some(BuildsOpen::Build(n));
        }
        self.flag("builds").then_some(BuildsOpen::List)
    }

    pub fn tail(&self) -> u32 {
        self.get("tail")
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|t| TAILS.contains(t))
            .unwrap_or(TAILS[0])
    }

    /// How many lines the browser keeps; out of range is brought within it.
    pub fn keep(&self) -> usize {
        self.get("keep")
            .and_then(|k| k.parse::<usize>().ok())
            .map(|k| k.clamp(*MAX_LINES_RANGE.start(), *MAX_LINES_RANGE.end()))
            .unwrap_or(DEFAULT_MAX_LINES)
    }

    /// The JSON fields chosen, each once.
    pub fn fields(&self) -> Vec<String> {
        let mut fields = self.all("field");
        let mut seen = std::collections::HashSet::new();
        fields.retain(|f| seen.insert(f.clone()));
        fields
    }

    /// The Level choice; one that does not read (a hand-edited URL) chooses nothing.
    pub fn levels(&self) -> Option<Levels> {
        self.get("level").and_then(|l| l.parse().ok())
    }

    /// An unknown `stream` word shows both, as a missing one does.
    pub fn filter_spec(&self) -> FilterSpec {
        FilterSpec {
            text: self.get("q").unwrap_or_default(),
            regex: self.flag("regex"),
            match_case: self.flag("case"),
            invert: self.flag("invert"),
            stream: self
                .get("stream")
                .and_then(|w| w.parse().ok())
                .unwrap_or_default(),
            replica: self.get("replica").and_then(|r| r.parse().ok()),
            levels: self.levels(),
            fields: self.fields(),
        }
    }
}

/// The URL's `engine`: left out for `local`, so that the links of a server of one local
/// engine read as they always did.
pub fn engine_param(engine: &str) -> Option<String> {
    (engine != crate::protocol::LOCAL_ENGINE).then(|| engine.to_owned())
}
