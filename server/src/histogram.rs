//! The answer of `/api/histogram`, a picture of a service's log: its stored lines counted in
//! stretches of time, by level and by stream, or only those a search query matches.
//! Parameters are checked as `/api/history` checks its own, and only a service the viewer
//! may see is read. The store is read on a blocking thread, the newest blocks first, and no
//! line is made into a `LogLine`: a block whose lines all fall in one bucket and state one
//! level is counted from its row alone, others from their records.

use std::ops::ControlFlow;

use app::api::backend::{ApiError, HistogramAsk};
use app::history::{Histogram, DEFAULT_BUCKETS, MAX_BUCKETS};
use app::protocol::{ServiceKey, Stream, Streams, UnknownService};
use axum::http::StatusCode;

use crate::auth::scope::Scope;
use crate::clock::{now_ns, parse_when, Timestamp};
use crate::history::History;
use crate::hub::Hub;
use crate::recall::{bad, history_of};
use crate::search::{self, query, query::Query};
use crate::store::day::BlockRow;
use crate::store::{End, Owner, Scanned, ServiceSpan, StoreError, View};

/// Without `since`, a histogram shows at least this much before `until`: a service that
/// began writing a minute ago is not drawn as one minute stretched over the whole chart.
const LEAST_SPAN_NS: i64 = 3_600 * 1_000_000_000;

fn buckets(value: Option<&str>) -> Result<u32, ApiError> {
    let Some(v) = value else {
        return Ok(DEFAULT_BUCKETS);
    };
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_BUCKETS).contains(&n) => Ok(n),
        _ => Err(bad(format!(
            "buckets must be between 1 and {MAX_BUCKETS}, got {v:?}"
        ))),
    }
}

/// `/api/histogram`.
pub async fn histogram(hub: &Hub, scope: &Scope, ask: HistogramAsk) -> Result<Histogram, ApiError> {
    let history = history_of(hub)?.clone();
    // A search's picture counts every engine's matches, or `engine`'s alone.
    let engines: Vec<String> = match &ask.engine {
        Some(e) => vec![e.clone()],
        None => hub.engines().iter().map(|e| e.name().to_owned()).collect(),
    };
    let engine = hub.engines().name_or_default(ask.engine.clone());
    let key = match (ask.project, ask.service) {
        (Some(project), Some(service)) => Some(ServiceKey {
            engine,
            project,
            service,
        }),
        (None, None) if ask.q.is_some() => None,
        _ => {
            return Err(bad(
                "project and service name one service, and go together; leave both out only \
                 with q, to count a search's matches in every service"
                    .into(),
            ))
        }
    };
    if let Some(key) = key.as_ref().filter(|k| !hub.may_see(k, scope)) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND.as_u16(),
            message: UnknownService(key.clone()).to_string(),
        });
    }
    // One now for every time of the request: `since=1h` is then an hour before `until`,
    // exactly, and the buckets are whole minutes.
    let now = now_ns();
    let when = |name: &str, value: Option<&str>| {
        value
            .map(|v| parse_when(v, now).map_err(|e| bad(format!("{name}: {e}"))))
            .transpose()
    };
    let since = when("since", ask.since.as_deref())?;
    let until = when("until", ask.until.as_deref())?.unwrap_or(now);
    if let Some(s) = since.filter(|s| *s >= until) {
        let at = |ns| Timestamp { ns }.to_rfc3339();
        return Err(bad(format!(
            "since must be before until, got since {} and until {}",
            at(s),
            at(until)
        )));
    }
    let buckets = buckets(ask.buckets.as_deref())?;
    let query = ask
        .q
        .as_deref()
        .map(|q| query::parse(q, now).map_err(|e| bad(format!("the query, {e}"))))
        .transpose()?;
    let Some(key) = key else {
        let every = Everywhere {
            engines,
            since,
            until,
            buckets,
            query: query.expect("q is given without a service"),
            oldest_ns: history.oldest_ns(),
            max_lines: history.config().search_max_lines,
        };
        return search_picture(hub, scope, &history, every).await;
    };
    let count = Count {
        key,
        since,
        until,
        buckets,
        query,
        oldest_ns: history.oldest_ns(),
        max_lines: history.config().search_max_lines,
    };
    Ok(history
        .read(count.wants(), move |view| count.read(view))
        .await?)
}

/// The picture of a search's matches in every service of `every`'s engines the viewer may see.
async fn search_picture(
    hub: &Hub,
    scope: &Scope,
    history: &History,
    every: Everywhere,
) -> Result<Histogram, ApiError> {
    let (hub, scope) = (hub.clone(), scope.clone());
    let visible = move |engine: &str, project: &str, service: &str| {
        hub.may_see(&ServiceKey::new(engine, project, service), &scope)
    };
    let (any, engines) = (visible.clone(), every.engines.clone());
    let wants = search::wanted(every.query.clone(), move |p: &str, s: &str| {
        engines.iter().any(|e| any(e, p, s))
    });
    Ok(history
        .read(wants, move |view| every.read(view, visible))
        .await?)
}

/// One histogram, as asked.
pub struct Count {
    pub key: ServiceKey,
    /// None: the older of the service's oldest stored line and `LEAST_SPAN_NS` before
    /// `until`.
    pub since: Option<i64>,
    pub until: i64,
    pub buckets: u32,
    /// Only the lines it matches are counted; none: every line.
    pub query: Option<Query>,
    /// The oldest time history still shows: no line before it is counted.
    pub oldest_ns: i64,
    /// Lines read from blocks before the count answers with what it has
    /// (`--search-max-lines`).
    pub max_lines: u64,
}

impl Count {
    /// The containers whose lines still being gathered are counted.
    fn wants(&self) -> impl Fn(&Owner) -> bool + Send + 'static {
        let key = self.key.clone();
        move |o: &Owner| {
            o.engine == key.engine && o.project == key.project && o.service == key.service
        }
    }

    pub fn read(&self, view: &View) -> Result<Histogram, StoreError> {
        let mut span = ServiceSpan {
            engine: &self.key.engine,
            project: &self.key.project,
            service: &self.key.service,
            since_ns: self.oldest_ns,
            until_ns: self.until,
            levels: None,
        };
        let since = match self.since {
            Some(s) => s,
            None => default_since(view, &span)?,
        };
        let mut h = Histogram::empty(since, self.until, self.buckets);
        span.since_ns = span.since_ns.max(since);
        let query = match &self.query {
            None => None,
            Some(q) => {
                let named =
                    |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
                if !named(&q.projects, span.project) || !named(&q.services, span.service) {
                    return Ok(h);
                }
                span.since_ns = span.since_ns.max(q.since_ns.unwrap_or(i64::MIN));
                span.until_ns = span.until_ns.min(q.until_ns.unwrap_or(i64::MAX));
                // A query of fields alone that leave every line of the span: blocks may
                // then be counted from their rows.
                let every_line = q.is_text_free() && q.stream.is_none() && q.levels.is_none();
                (!every_line).then_some(q)
            }
        };
        if span.since_ns < span.until_ns {
            tally(view, &span, query, self.max_lines, &mut h)?;
        }
        Ok(h)
    }
}

/// A search's matches in every service the viewer may see, counted over time: the
/// histogram of search results.
pub struct Everywhere {
    /// The engines whose services are counted, each read up to its share of `max_lines`.
    pub engines: Vec<String>,
    /// None: the older of the oldest stored line of the services searched and
    /// `LEAST_SPAN_NS` before `until`.
    pub since: Option<i64>,
    pub until: i64,
    pub buckets: u32,
    pub query: Query,
    pub oldest_ns: i64,
    pub max_lines: u64,
}

impl Everywhere {
    /// Counts newest blocks first across services, as a search reads them, until
    /// `max_lines` lines were read.
    pub fn read(
        &self,
        view: &View,
        visible: impl Fn(&str, &str, &str) -> bool,
    ) -> Result<Histogram, StoreError> {
        let q = &self.query;
        let since = match self.since {
            Some(s) => s,
            None => self.default_since(view, &visible)?,
        };
        let mut h = Histogram::empty(since, self.until, self.buckets);
        let since_ns = since
            .max(self.oldest_ns)
            .max(q.since_ns.unwrap_or(i64::MIN));
        let until_ns = self.until.min(q.until_ns.unwrap_or(i64::MAX));
        if since_ns >= until_ns {
            return Ok(h);
        }
        let share = (self.max_lines / self.engines.len().max(1) as u64).max(1);
        for engine in &self.engines {
            let visible = |p: &str, s: &str| visible(engine, p, s);
            let wanted = search::wanted(q, &visible);
            let (mut read, mut plain) = (0_u64, String::new());
            view.scan(engine, since_ns, until_ns, wanted, q.levels, |block| {
                if read >= share {
                    h.partial = true;
                    let from = block.top.saturating_add(1).max(h.since_ns);
                    h.complete_from_ns = h.complete_from_ns.max(from);
                    return ControlFlow::Break(());
                }
                read += block.records.count() as u64;
                search::each_match(&block, q, &mut plain, |r| {
                    h.add(r.ts_ns, r.level(), r.stream, 1);
                });
                ControlFlow::Continue(())
            })?;
        }
        Ok(h)
    }

    /// The older of the oldest stored line of the services searched and `LEAST_SPAN_NS`
    /// before `until`.
    fn default_since(
        &self,
        view: &View,
        visible: impl Fn(&str, &str, &str) -> bool,
    ) -> Result<i64, StoreError> {
        let q = &self.query;
        let mut since = self.until.saturating_sub(LEAST_SPAN_NS);
        for engine in &self.engines {
            for (project, service) in view.services(engine, self.oldest_ns)? {
                let named =
                    |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
                if !visible(engine, &project, &service)
                    || !named(&q.projects, &project)
                    || !named(&q.services, &service)
                {
                    continue;
                }
                let span = ServiceSpan {
                    engine,
                    project: &project,
                    service: &service,
                    since_ns: self.oldest_ns,
                    until_ns: self.until,
                    levels: None,
                };
                since = since.min(default_since(view, &span)?);
            }
        }
        Ok(since)
    }
}

/// The older of the oldest line `span` holds and `LEAST_SPAN_NS` before its end.
fn default_since(view: &View, span: &ServiceSpan<'_>) -> Result<i64, StoreError> {
    let least = span.until_ns.saturating_sub(LEAST_SPAN_NS);
    // A span ending before the retention holds nothing (and has no days to read).
    if span.since_ns >= span.until_ns {
        return Ok(least);
    }
    let oldest = view
        .lines(span, 1, End::Oldest)?
        .first()
        .map(|(_, l)| l.ts.ns);
    Ok(oldest.map_or(least, |o| o.min(least)))
}

/// Counts into `h` the lines of `span` (those `query` matches, if any), newest blocks first,
/// until about `max_lines` lines were read from blocks: then `h` is partial, and complete
/// only from the newest time the blocks not counted may hold.
fn tally(
    view: &View,
    span: &ServiceSpan<'_>,
    query: Option<&Query>,
    max_lines: u64,
    h: &mut Histogram,
) -> Result<(), StoreError> {
    let mut read = 0u64;
    let mut plain = String::new();
    view.service_blocks(span, |block| {
        if let Some(row) = block.row() {
            if surely_unmatched(row, query) || (query.is_none() && counted_from_row(row, span, h)) {
                return Ok(ControlFlow::Continue(()));
            }
        }
        if read >= max_lines {
            h.partial = true;
            h.complete_from_ns = block.top.saturating_add(1).max(h.since_ns);
            return Ok(ControlFlow::Break(()));
        }
        let scanned = Scanned {
            owner: block.owner,
            top: block.top,
            records: block.records()?,
            since_ns: span.since_ns,
            until_ns: span.until_ns,
        };
        read += scanned.records.count() as u64;
        let mut count = |r: &crate::store::block::Record<'_>| {
            h.add(r.ts_ns, r.level(), r.stream, 1);
        };
        match query {
            None => scanned
                .records
                .iter()
                .filter(|r| scanned.in_span(r))
                .for_each(|r| count(&r)),
            Some(q) => search::each_match(&scanned, q, &mut plain, count),
        }
        Ok(ControlFlow::Continue(()))
    })
}

/// Whether the row says that no line of the block matches `query`.
fn surely_unmatched(row: &BlockRow, query: Option<&Query>) -> bool {
    let Some(q) = query else {
        return false;
    };
    let streams = q.stream.map(|s| match s {
        Stream::Stdout => Streams::Stdout,
        Stream::Stderr => Streams::Stderr,
    });
    q.levels.is_some_and(|l| row.lacks_levels(l)) || streams.is_some_and(|s| row.lacks(s))
}

/// Counts a stored block into `h` from its row alone, if the row says it all: every line
/// within `span` and in one bucket, all stating one level, and how many of them are of
/// stderr. False if its records must be read.
fn counted_from_row(row: &BlockRow, span: &ServiceSpan<'_>, h: &mut Histogram) -> bool {
    let (first, last) = (row.first.0, row.last.0);
    if first < span.since_ns || last >= span.until_ns {
        return false;
    }
    let (Some(level), Some(stderr)) = (row.only_level(), row.stderr_lines) else {
        return false;
    };
    let bucket = h.bucket_of(first);
    if bucket.is_none() || bucket != h.bucket_of(last) {
        return false;
    }
    let stderr = u64::from(stderr);
    h.add(first, level, Stream::Stderr, stderr);
    h.add(
        first,
        level,
        Stream::Stdout,
        u64::from(row.lines).saturating_sub(stderr),
    );
    true
}

#[cfg(test)]
mod tests {
    //! Against a real store in a temporary folder, with made-up lines: each count is checked
    //! against every line read back one by one.
    use app::history::Bucket;
    use app::protocol::{Level, Replica};

    use super::*;
    use crate::clock::Timestamp;
    use crate::docker::frames::RawLine;
    use crate::search::query::Candidate;
    use crate::store::day::tests::tempdir;
    use crate::store::{Retention, Store};

    /// 2026-12-02T00:00:00Z.
    const T: i64 = 1_796_169_600 * 1_000_000_000;
    const S: i64 = 1_000_000_000;

    fn owner(service: &str, container: &str) -> Owner {
        Owner {
            engine: app::protocol::LOCAL_ENGINE.into(),
            project: "shop".into(),
            service: service.into(),
            container: container.into(),
            replica: Replica {
                number: 1,
                name: format!("shop-{service}-1"),
            },
        }
    }

    fn line(ts_ns: i64, level: Option<Level>, stream: Stream, text: String) -> RawLine {
        RawLine {
            ts: Timestamp { ns: ts_ns },
            seq: 0,
            stream,
            text,
            truncated: false,
            level,
        }
    }

    fn open() -> (Store, std::path::PathBuf) {
        let dir = tempdir();
        let retention = Retention {
            age: std::time::Duration::from_secs(86_400),
            bytes: u64::MAX,
        };
        (Store::open(&dir, retention).unwrap(), dir)
    }

    /// web's container `a`: 300 lines a tenth of a second apart from T, of every level and
    /// none, on both streams, in two written blocks and one still gathered; its container
    /// `b`: 40 warnings within one second, 5 s in, one block; and db's lines alike, which
    /// no count of web's holds.
    fn store() -> (Store, std::path::PathBuf) {
        let (mut store, dir) = open();
        for service in ["web", "db"] {
            let lines: Vec<RawLine> = (0..300i64)
                .map(|i| {
                    let level = match i {
                        _ if i % 7 == 0 => Some(Level::Error),
                        _ if i % 5 == 0 => Some(Level::Warn),
                        _ if i % 3 == 0 => None,
                        _ => Some(Level::Info),
                    };
                    let stream = if i % 7 == 0 || i % 11 == 0 {
                        Stream::Stderr
                    } else {
                        Stream::Stdout
                    };
                    let word = if i % 4 == 0 { "boom" } else { "fine" };
                    line(
                        T + i * S / 10,
                        level,
                        stream,
                        format!("{service} {word} {i}"),
                    )
                })
                .collect();
            let a = owner(service, &format!("{service}-a"));
            store.append(&a, &lines[..120]).unwrap();
            store.flush().unwrap();
            store.append(&a, &lines[120..240]).unwrap();
            store.flush().unwrap();
            store.append(&a, &lines[240..]).unwrap();
        }
        let warnings: Vec<RawLine> = (0..40i64)
            .map(|j| {
                let stream = [Stream::Stdout, Stream::Stderr][j as usize % 2];
                line(
                    T + 5 * S + j * 1_000_000,
                    Some(Level::Warn),
                    stream,
                    format!("slow {j}"),
                )
            })
            .collect();
        store.append(&owner("web", "web-b"), &warnings).unwrap();
        store.seal_for_tests("local/web-b");
        (store, dir)
    }

    fn count(since: Option<i64>, until: i64, buckets: u32, q: Option<&str>) -> Count {
        Count {
            key: ServiceKey::local("shop", "web"),
            since,
            until,
            buckets,
            query: q.map(|q| query::parse(q, T).unwrap()),
            oldest_ns: T - 86_400 * S,
            max_lines: u64::MAX,
        }
    }

    /// What `c` should count, from every line of web's read back one by one.
    fn truth(store: &Store, c: &Count, since: i64) -> Histogram {
        let mut h = Histogram::empty(since, c.until, c.buckets);
        let span = ServiceSpan {
            engine: app::protocol::LOCAL_ENGINE,
            project: "shop",
            service: "web",
            since_ns: since,
            until_ns: c.until,
            levels: None,
        };
        for (o, l) in store
            .view_all()
            .lines(&span, usize::MAX, End::Oldest)
            .unwrap()
        {
            let matched = c.query.as_ref().is_none_or(|q| {
                q.matches(&Candidate {
                    project: &o.project,
                    service: &o.service,
                    stream: l.stream,
                    level: l.level,
                    ts_ns: l.ts.ns,
                    text: &l.text,
                })
            });
            if matched {
                h.add(l.ts.ns, l.level, l.stream, 1);
            }
        }
        h
    }

    fn total(h: &Histogram) -> u64 {
        h.buckets.iter().map(Bucket::lines).sum()
    }

    #[test]
    fn every_line_is_counted_in_its_bucket_by_level_and_stream() {
        let (store, dir) = store();
        let c = count(Some(T), T + 30 * S, 30, None);
        let h = c.read(&store.view_all()).unwrap();
        assert_eq!(h, truth(&store, &c, T));
        assert_eq!(total(&h), 340, "web's 300 and 40, not db's");
        assert_eq!(h.buckets[5].of_level(Some(Level::Warn)), 40 + 2);
        let errors: u64 = h
            .buckets
            .iter()
            .map(|b| b.of_level(Some(Level::Error)))
            .sum();
        assert_eq!(errors, 43);
        for b in &h.buckets {
            assert_eq!(b.levels.iter().sum::<u64>(), b.lines());
        }
        // A span that cuts blocks and buckets across.
        let c = count(Some(T + 5 * S + 20_000_000), T + 17 * S + 1, 7, None);
        assert_eq!(
            c.read(&store.view_all()).unwrap(),
            truth(&store, &c, c.since.unwrap())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_query_counts_only_the_lines_it_matches() {
        let (store, dir) = store();
        for q in [
            "boom",
            "BOOM stream:stderr",
            "level:>=warn",
            "-boom level:info",
            "/ 1\\d\\d$/",
            "since:2026-12-02T00:00:10Z until:2026-12-02T00:00:20Z",
            "stream:stdout",
        ] {
            let c = count(Some(T), T + 30 * S, 30, Some(q));
            let h = c.read(&store.view_all()).unwrap();
            assert_eq!(h, truth(&store, &c, T), "{q}");
            assert!(total(&h) > 0 && total(&h) < 340, "{q}: {}", total(&h));
        }
        for q in ["service:db", "project:other fine", "nowhere"] {
            let c = count(Some(T), T + 30 * S, 30, Some(q));
            assert_eq!(total(&c.read(&store.view_all()).unwrap()), 0, "{q}");
        }
        let every = count(Some(T), T + 30 * S, 30, Some("service:web"));
        assert_eq!(total(&every.read(&store.view_all()).unwrap()), 340);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_block_of_one_level_within_one_bucket_is_counted_without_reading_it() {
        let (store, dir) = store();
        // Of the blocks in two buckets of a second from 4 s, web-b's is in the second.
        let view = store.view_all();
        let mut h = Histogram::empty(T + 4 * S, T + 6 * S - 1, 2);
        let span = ServiceSpan {
            engine: app::protocol::LOCAL_ENGINE,
            project: "shop",
            service: "web",
            since_ns: T + 4 * S,
            until_ns: T + 6 * S - 1,
            levels: None,
        };
        let mut counted = 0;
        view.service_blocks(&span, |block| {
            let row = block.row().filter(|r| r.lines == 40);
            if row.is_some_and(|r| counted_from_row(r, &span, &mut h)) {
                counted += 1;
            }
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        assert_eq!(counted, 1, "web-b's block, from its row");
        assert_eq!(h.buckets[1].of_level(Some(Level::Warn)), 40);
        assert_eq!((h.buckets[1].stdout, h.buckets[1].stderr), (20, 20));
        // Across two buckets, or with lines of several levels, a block is read.
        let mut across = Histogram::empty(T + 4 * S, T + 6 * S, 200);
        let mut read_rows = 0;
        view.service_blocks(&span, |block| {
            if let Some(row) = block.row() {
                read_rows += usize::from(!counted_from_row(row, &span, &mut across));
            }
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        assert_eq!(
            read_rows, 2,
            "web-a's first block, and web-b's across buckets"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_bound_on_lines_read_keeps_the_newest_counts_and_says_from_when() {
        let (store, dir) = store();
        let mut c = count(Some(T), T + 30 * S, 30, None);
        c.max_lines = 1;
        let h = c.read(&store.view_all()).unwrap();
        let whole = truth(&store, &c, T);
        assert!(h.partial);
        // The gathered lines (24 s on) are read; the block before them is not.
        assert_eq!(h.complete_from_ns, T + 239 * S / 10 + 1);
        assert_eq!(h.buckets[24..], whole.buckets[24..]);
        assert_eq!(total(&h), 60);
        let mut c = count(Some(T), T + 30 * S, 30, Some("boom"));
        c.max_lines = 61;
        let h = c.read(&store.view_all()).unwrap();
        assert!(h.partial);
        assert_eq!(h.complete_from_ns, T + 119 * S / 10 + 1);
        let whole = truth(&store, &c, T);
        assert_eq!(h.buckets[12..], whole.buckets[12..]);
        assert!(h.buckets[..12].iter().all(|b| b.lines() == 0));
        c.max_lines = u64::MAX;
        let h = c.read(&store.view_all()).unwrap();
        assert_eq!((h.partial, h.complete_from_ns), (false, T));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn without_since_a_histogram_begins_at_the_oldest_line_or_an_hour_back() {
        let (store, dir) = store();
        let hours = count(None, T + 10 * 3_600 * S, 60, None);
        let h = hours.read(&store.view_all()).unwrap();
        assert_eq!(h.since_ns, T, "the oldest line");
        assert_eq!(h.bucket_ns, 10 * 60 * S);
        assert_eq!(total(&h), 340);
        let recent = count(None, T + 40 * S, 60, None);
        let h = recent.read(&store.view_all()).unwrap();
        assert_eq!(h.since_ns, T + 40 * S - LEAST_SPAN_NS);
        assert_eq!(h.buckets.len(), 60);
        assert_eq!(total(&h), 340);
        let mut gone = count(None, T + 40 * S, 60, None);
        gone.oldest_ns = T + 2 * 86_400 * S;
        let h = gone.read(&store.view_all()).unwrap();
        assert_eq!(
            h.since_ns,
            T + 40 * S - LEAST_SPAN_NS,
            "before the retention"
        );
        assert_eq!((h.buckets.len(), total(&h)), (60, 0));
        let (empty, empty_dir) = open();
        let h = recent.read(&empty.view_all()).unwrap();
        assert_eq!(h.since_ns, T + 40 * S - LEAST_SPAN_NS);
        assert_eq!((h.buckets.len(), total(&h)), (60, 0));
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(empty_dir).unwrap();
    }

    #[test]
    fn buckets_are_bounded_and_a_bad_number_is_named() {
        assert_eq!(buckets(None).unwrap(), DEFAULT_BUCKETS);
        assert_eq!(buckets(Some(" 500")).unwrap(), 500);
        for bad in ["0", "501", "100000", "-1", "ten", ""] {
            let e = buckets(Some(bad)).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(
                e.message,
                format!("buckets must be between 1 and 500, got {bad:?}")
            );
        }
    }
}
