//! The answers of `/api/history` and `/api/search`: parameters checked (a bad one is a 400
//! that names it), the store read on a blocking thread, and what it holds turned into the
//! protocol's lines and lifecycle changes. Only services the viewer may see are read.

use app::api::backend::{ApiError, HistoryAsk, SearchAsk};
use app::history::{HistoryPage, SearchHit, SearchPage, DEFAULT_PAGE, MAX_PAGE};
use app::levels::Levels;
use app::protocol::{Cursor, Lifecycle, LogLine, ServiceKey, UnknownService};
use axum::http::StatusCode;

use crate::auth::scope::Scope;
use crate::clock::{now_ns, parse_when, Timestamp};
use crate::history::{History, ReadError};
use crate::hub::Hub;
use crate::search::{self, query};
use crate::store::{End, Owner, ServiceSpan, StoreError, StoredEvent, View};

pub(crate) fn bad(message: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST.as_u16(),
        message,
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        let status = match e {
            ReadError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ReadError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status: status.as_u16(),
            message: format!("history could not be read: {e}"),
        }
    }
}

pub(crate) fn history_of(hub: &Hub) -> Result<&History, ApiError> {
    hub.history().ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND.as_u16(),
        message: "history is off on this server (--history off)".into(),
    })
}

fn when(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| parse_when(v, now_ns()).map_err(|e| bad(format!("{name}: {e}"))))
        .transpose()
}

fn cursor(name: &str, value: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    value
        .map(|v| {
            v.parse::<Cursor>().map_err(|_| {
                bad(format!(
                    "{name} must be a cursor from an earlier answer, got {v:?}"
                ))
            })
        })
        .transpose()
}

fn limit(value: Option<&str>) -> Result<usize, ApiError> {
    let Some(v) = value else {
        return Ok(DEFAULT_PAGE as usize);
    };
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n as usize),
        _ => Err(bad(format!(
            "limit must be between 1 and {MAX_PAGE}, got {v:?}"
        ))),
    }
}

/// A `level` parameter: the levels a line must state.
pub fn levels(value: Option<&str>) -> Result<Option<Levels>, ApiError> {
    value
        .map(|v| v.parse().map_err(|e| bad(format!("level: {e}"))))
        .transpose()
}

fn lifecycle(e: StoredEvent) -> Lifecycle {
    Lifecycle {
        ts_ns: e.ts_ns,
        ts: Timestamp { ns: e.ts_ns }.to_rfc3339(),
        replica: e.owner.replica,
        event: e.event,
    }
}

/// `/api/history`. Without `since`, `after` or `before`, the newest lines up to `until`.
pub async fn history(hub: &Hub, scope: &Scope, ask: HistoryAsk) -> Result<HistoryPage, ApiError> {
    let history = history_of(hub)?.clone();
    let key = hub.key(ask.engine, ask.project, ask.service);
    if !hub.may_see(&key, scope) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND.as_u16(),
            message: UnknownService(key).to_string(),
        });
    }
    let since = when("since", ask.since.as_deref())?
        .unwrap_or(i64::MIN)
        .max(history.oldest_ns());
    let until = when("until", ask.until.as_deref())?.unwrap_or(i64::MAX);
    let before = cursor("before", ask.before.as_deref())?;
    let after = cursor("after", ask.after.as_deref())?;
    if before.is_some() && after.is_some() {
        return Err(bad(
            "ask for lines before a cursor or after one, not both".into()
        ));
    }
    let page = PageAsk {
        key,
        since,
        until,
        limit: limit(ask.limit.as_deref())?,
        end: if (ask.since.is_some() || after.is_some()) && before.is_none() {
            End::Oldest
        } else {
            End::Newest
        },
        before,
        after,
        levels: levels(ask.level.as_deref())?,
    };
    Ok(history
        .read(page.wants(), move |view| page.read(view))
        .await?)
}

/// The oldest page of `key`'s stored lines in `[since, until)` after `after`: a download of
/// a window reads it a page at a time. `since` earlier than the retention is its start.
pub async fn page_after(
    history: &History,
    key: &ServiceKey,
    since: i64,
    until: i64,
    after: Option<Cursor>,
    levels: Option<Levels>,
) -> Result<HistoryPage, ReadError> {
    let page = PageAsk {
        key: key.clone(),
        since: since.max(history.oldest_ns()),
        until,
        before: None,
        after,
        limit: MAX_PAGE as usize,
        end: End::Oldest,
        levels,
    };
    history
        .read(page.wants(), move |view| page.read(view))
        .await
}

/// One page of a service's history, as asked.
struct PageAsk {
    key: ServiceKey,
    since: i64,
    until: i64,
    before: Option<Cursor>,
    after: Option<Cursor>,
    limit: usize,
    /// Which end of the span the page is taken from.
    end: End,
    levels: Option<Levels>,
}

impl PageAsk {
    /// The containers whose lines still being gathered the page may hold.
    fn wants(&self) -> impl Fn(&Owner) -> bool + Send + 'static {
        let key = self.key.clone();
        move |o: &Owner| {
            o.engine == key.engine && o.project == key.project && o.service == key.service
        }
    }

    fn read(&self, store: &View) -> Result<HistoryPage, StoreError> {
        let whole = ServiceSpan {
            engine: &self.key.engine,
            project: &self.key.project,
            service: &self.key.service,
            since_ns: self.since,
            until_ns: self.until,
            levels: self.levels,
        };
        let mut span = whole;
        if let Some(a) = &self.after {
            span.since_ns = span.since_ns.max(a.ts_ns);
        }
        if let Some(b) = &self.before {
            span.until_ns = span.until_ns.min(b.ts_ns.saturating_add(1));
        }
        // Lines at the cursor's own instant may be left out below: ask for a few more.
        let mut lines: Vec<LogLine> = store
            .lines(&span, self.limit + 17, self.end)?
            .into_iter()
            .map(|(owner, raw)| owner.log_line(raw))
            .filter(|l| self.after.as_ref().is_none_or(|a| l.cursor > *a))
            .filter(|l| self.before.as_ref().is_none_or(|b| l.cursor < *b))
            .collect();
        let more = lines.len() > self.limit;
        match self.end {
            End::Oldest => lines.truncate(self.limit),
            End::Newest => drop(lines.drain(..lines.len().saturating_sub(self.limit))),
        }
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
            return Ok(HistoryPage::default());
        };
        let older = self.end == End::Newest && more || has_before(store, &whole, &first.cursor)?;
        let newer = self.end == End::Oldest && more || has_after(store, &whole, &last.cursor)?;
        // At either end of the history, the changes beyond the last line shown belong on
        // the page too (a removal comes after the last line). Between pages, the changes
        // up to the cursor asked from: pages of rare lines (a level) lose none between them.
        let events = store
            .events(&ServiceSpan {
                since_ns: match (&self.after, older) {
                    (_, false) => self.since,
                    (Some(a), true) => a.ts_ns.saturating_add(1).min(first.cursor.ts_ns),
                    (None, true) => first.cursor.ts_ns,
                },
                until_ns: match (&self.before, newer) {
                    (_, false) => self.until,
                    (Some(b), true) => b.ts_ns.max(last.cursor.ts_ns.saturating_add(1)),
                    (None, true) => last.cursor.ts_ns.saturating_add(1),
                },
                ..span
            })?
            .into_iter()
            .map(lifecycle)
            .collect();
        Ok(HistoryPage {
            before: older.then(|| first.cursor.clone()),
            after: newer.then(|| last.cursor.clone()),
            lines,
            events,
        })
    }
}

/// Whether `span` holds a line before `c`.
fn has_before(store: &View, span: &ServiceSpan<'_>, c: &Cursor) -> Result<bool, StoreError> {
    let upto = ServiceSpan {
        until_ns: span.until_ns.min(c.ts_ns.saturating_add(1)),
        ..*span
    };
    let lines = store.lines(&upto, 64, End::Newest)?;
    Ok(lines.iter().any(|(o, l)| o.log_line(l.clone()).cursor < *c))
}

/// Whether `span` holds a line after `c`.
fn has_after(store: &View, span: &ServiceSpan<'_>, c: &Cursor) -> Result<bool, StoreError> {
    let from = ServiceSpan {
        since_ns: span.since_ns.max(c.ts_ns),
        ..*span
    };
    let lines = store.lines(&from, 64, End::Oldest)?;
    Ok(lines.iter().any(|(o, l)| o.log_line(l.clone()).cursor > *c))
}

/// `/api/search`.
pub async fn search(hub: &Hub, scope: &Scope, ask: SearchAsk) -> Result<SearchPage, ApiError> {
    let history = history_of(hub)?.clone();
    let mut q = query::parse(&ask.q, now_ns()).map_err(|e| bad(format!("the query, {e}")))?;
    if !narrow(&mut q.projects, ask.project) || !narrow(&mut q.services, ask.service) {
        return Ok(SearchPage::default());
    }
    let since = when("since", ask.since.as_deref())?;
    let until = when("until", ask.until.as_deref())?;
    q.since_ns = [q.since_ns, since, Some(history.oldest_ns())]
        .into_iter()
        .flatten()
        .max();
    q.until_ns = [q.until_ns, until].into_iter().flatten().min();
    let before = cursor("before", ask.before.as_deref())?;
    let bounds = search::Bounds {
        hits: limit(ask.limit.as_deref())?,
        lines: history.config().search_max_lines,
    };
    // The engine asked for, or every one, each with its share of the lines to read.
    let engines: Vec<String> = match ask.engine {
        Some(e) => vec![e],
        None => hub.engines().iter().map(|e| e.name().to_owned()).collect(),
    };
    let share = search::Bounds {
        lines: (bounds.lines / engines.len() as u64).max(1),
        ..bounds
    };
    let (hub, scope, searched) = (hub.clone(), scope.clone(), engines.clone());
    let visible = move |engine: &str, project: &str, service: &str| {
        hub.may_see(&ServiceKey::new(engine, project, service), &scope)
    };
    let any = visible.clone();
    let wants = search::wanted(q.clone(), move |p: &str, s: &str| {
        searched.iter().any(|e| any(e, p, s))
    });
    let found = history
        .read(wants, move |view| {
            let mut found = Vec::new();
            for e in &engines {
                let visible = |p: &str, s: &str| visible(e, p, s);
                found.push(search::find(view, e, &q, visible, before.as_ref(), share)?);
            }
            Ok(search::merge(found, bounds.hits))
        })
        .await?;
    Ok(SearchPage {
        hits: found
            .hits
            .into_iter()
            .map(|h| SearchHit {
                engine: h.owner.engine.clone(),
                project: h.owner.project.clone(),
                service: h.owner.service.clone(),
                line: h.owner.log_line(h.line),
            })
            .collect(),
        before: found.before,
        scanned: found.scanned,
    })
}

/// A `project=`/`service=` parameter narrows the query's own list; false when the two
/// leave nothing.
fn narrow(list: &mut Vec<String>, param: Option<String>) -> bool {
    let Some(p) = param else {
        return true;
    };
    if !list.is_empty() && !list.contains(&p) {
        return false;
    }
    *list = vec![p];
    true
}
