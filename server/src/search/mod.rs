//! Searching history: the query language people type (`query`), and a scan of the store
//! that answers it newest first, bounded in lines read and hits held.

use std::ops::ControlFlow;

use app::protocol::Cursor;

pub mod query;

use query::{Candidate, Query};

use crate::docker::frames::RawLine;
use crate::store::block::Record;
use crate::store::{Owner, Scanned, StoreError, View};

/// What one search may do.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Hits returned.
    pub hits: usize,
    /// Stored lines read before the search answers with what it has.
    pub lines: u64,
}

/// A line found, with whose it is.
pub struct Hit {
    pub owner: Owner,
    pub line: RawLine,
}

impl Hit {
    fn cursor(&self) -> Cursor {
        Cursor {
            ts_ns: self.line.ts.ns,
            seq: self.line.seq,
            container: self.owner.container.as_str().into(),
        }
    }
}

pub struct Found {
    /// Newest first.
    pub hits: Vec<Hit>,
    /// Where the next page begins (exclusive), when there may be more.
    pub before: Option<Cursor>,
    pub scanned: u64,
}

/// The lines of `engine` matching `query` that `visible(project, service)` allows, older
/// than `before`, newest first.
pub fn find(
    store: &View,
    engine: &str,
    query: &Query,
    visible: impl Fn(&str, &str) -> bool,
    before: Option<&Cursor>,
    bounds: Bounds,
) -> Result<Found, StoreError> {
    let bounds = Bounds {
        hits: bounds.hits.max(1),
        ..bounds
    };
    let since = query.since_ns.unwrap_or(i64::MIN);
    // The newest time a line of this page may have.
    let mut page_top = query.until_ns.unwrap_or(i64::MAX).saturating_sub(1);
    if let Some(b) = before {
        page_top = page_top.min(b.newest_before());
    }
    let wanted = wanted(query, visible);
    let mut hits: Vec<Hit> = Vec::new();
    let mut scanned = 0u64;
    // Where the line bound stopped the scan: every line newer than it was read.
    let mut cut_at: Option<i64> = None;
    let mut plain = String::new();
    // Enough hits were found before the older blocks: there may be more in them.
    let mut full = false;
    let until = page_top.saturating_add(1);
    store.scan(engine, since, until, wanted, query.levels, |block| {
        if hits.len() >= bounds.hits {
            keep_newest(&mut hits, bounds.hits);
            // No block from here on holds a line newer than `block.top`.
            let kth = hits[bounds.hits - 1].line.ts.ns;
            if block.top < kth {
                full = true;
                return ControlFlow::Break(());
            }
        }
        // The bound is checked before a block, not after, so that the page ends below
        // its top: a block as new as the top is read anyway, and the next page always
        // begins further back than this one (at most one block per container is that new).
        if scanned >= bounds.lines && block.top < page_top {
            cut_at = Some(block.top);
            return ControlFlow::Break(());
        }
        scanned += block.records.count() as u64;
        take_matches(&block, query, before, &mut hits, &mut plain);
        if hits.len() > bounds.hits * 2 {
            keep_newest(&mut hits, bounds.hits);
        }
        ControlFlow::Continue(())
    })?;
    keep_newest(&mut hits, usize::MAX);
    let before = where_to_go_on(&mut hits, cut_at, full, bounds.hits);
    Ok(Found {
        hits,
        before,
        scanned,
    })
}

/// Several engines' finds of one query as one page, newest first, at most `limit`. Below
/// the newest place where some engine's find stopped short nothing is sure yet: the page ends
/// there, and the next goes on from it in every engine.
pub fn merge(found: Vec<Found>, limit: usize) -> Found {
    let stop = found.iter().filter_map(|f| f.before.clone()).max();
    let scanned = found.iter().map(|f| f.scanned).sum();
    let mut hits: Vec<Hit> = found
        .into_iter()
        .flat_map(|f| f.hits)
        .filter(|h| stop.as_ref().is_none_or(|s| h.cursor() >= *s))
        .collect();
    hits.sort_by_cached_key(|h| std::cmp::Reverse(h.cursor()));
    let before = if hits.len() > limit {
        hits.truncate(limit);
        hits.last().map(Hit::cursor)
    } else {
        stop
    };
    Found {
        hits,
        before,
        scanned,
    }
}

/// Whether a container's lines are the query's to read: `visible(project, service)`
/// allows them, and they are of the projects and services it names.
pub fn wanted<Q: std::borrow::Borrow<Query>>(
    query: Q,
    visible: impl Fn(&str, &str) -> bool,
) -> impl Fn(&Owner) -> bool {
    move |o: &Owner| {
        let q = query.borrow();
        visible(&o.project, &o.service)
            && (q.projects.is_empty() || q.projects.contains(&o.project))
            && (q.services.is_empty() || q.services.contains(&o.service))
    }
}

/// Adds to `hits` the lines of `block` before `before` that match `query`.
fn take_matches(
    block: &Scanned<'_>,
    query: &Query,
    before: Option<&Cursor>,
    hits: &mut Vec<Hit>,
    plain: &mut String,
) {
    let owner = block.owner;
    each_match(block, query, plain, |r| {
        let place = (r.ts_ns, owner.container.as_str(), r.seq);
        if before.is_some_and(|b| place >= (b.ts_ns, &*b.container, b.seq)) {
            return;
        }
        hits.push(Hit {
            owner: owner.clone(),
            line: r.line(),
        });
    });
}

/// Hands `found` each line of `block` in the scan's span that matches `query`. With words
/// to look for, the block's records are searched for them as one text, and only the lines
/// they are found in are read: most lines of a search are never copied. A block with
/// colour codes is read line by line: a code the viewer does not see may split a word.
pub fn each_match(
    block: &Scanned<'_>,
    query: &Query,
    plain: &mut String,
    mut found: impl FnMut(&Record<'_>),
) {
    let kind = block.records.kind();
    let Some(words) = query.anchor().filter(|_| !kind.escapes) else {
        for r in block.records.iter() {
            if matches(block, &r, query, plain) {
                found(&r);
            }
        }
        return;
    };
    let bytes = block.records.bytes();
    // ASCII words in ASCII text: any case is found as lower case in lower-cased text, by
    // a plain search, several times faster than a case-insensitive expression.
    let lowered = words
        .ascii_lower
        .as_deref()
        .filter(|_| kind.ascii)
        .map(|w| (memchr::memmem::Finder::new(w), bytes.to_ascii_lowercase()));
    let find_from = |from: usize| match &lowered {
        Some((finder, text)) => finder.find(&text[from..]).map(|i| from + i),
        None => words.raw.find_at(bytes, from).map(|m| m.start()),
    };
    let mut records = block.records.iter().peekable();
    let mut from = 0;
    while let Some(at) = find_from(from) {
        // The record whose header or text the words were found at; those before it end
        // before them. It is read whole, so a find that runs into the next header is
        // harmless, and the search goes on after its text.
        while records.next_if(|r| r.at + r.text.len() <= at).is_some() {}
        let Some(r) = records.next() else { break };
        if matches(block, &r, query, plain) {
            found(&r);
        }
        from = r.at + r.text.len();
    }
}

/// Whether `r` is in the scan's span and matches `query`.
fn matches(block: &Scanned<'_>, r: &Record<'_>, query: &Query, plain: &mut String) -> bool {
    if !block.in_span(r) {
        return false;
    }
    // Stored text was a `String`: checking is faster than `from_utf8_lossy`'s chunks.
    let text = match std::str::from_utf8(r.text) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(r.text),
    };
    let candidate = Candidate {
        project: &block.owner.project,
        service: &block.owner.service,
        stream: r.stream,
        // Found only when asked for: a record from before levels were kept finds its own
        // from its text, which a search of millions of lines need not pay for.
        level: query.levels.and_then(|_| r.level()),
        ts_ns: r.ts_ns,
        text: visible_text(&text, plain),
    };
    query.matches(&candidate)
}

/// The page's hits (`hits`, newest first) cut to `limit`, and where the next page begins.
/// `cut_at`: the line bound stopped the scan there, and only hits newer than it are sure;
/// `full`: enough hits were found before the older blocks.
fn where_to_go_on(
    hits: &mut Vec<Hit>,
    cut_at: Option<i64>,
    full: bool,
    limit: usize,
) -> Option<Cursor> {
    match cut_at {
        Some(t) => {
            hits.retain(|h| h.line.ts.ns > t);
            Some(if hits.len() >= limit {
                hits.truncate(limit);
                hits[limit - 1].cursor()
            } else {
                Cursor::start_of(t.saturating_add(1))
            })
        }
        None if full || hits.len() > limit => {
            hits.truncate(limit);
            hits.last().map(Hit::cursor)
        }
        None => None,
    }
}

/// Newest first, at most `n`.
fn keep_newest(hits: &mut Vec<Hit>, n: usize) {
    hits.sort_by_key(|h| std::cmp::Reverse(h.cursor()));
    if n < hits.len() {
        // One more than asked, so that the caller knows there is more.
        hits.truncate(n + 1);
    }
}

/// The text as a viewer sees it: colour codes removed (only parsed when there are any).
fn visible_text<'a>(text: &'a str, plain: &'a mut String) -> &'a str {
    if text.contains('\x1b') {
        *plain = app::ansi::parse(text).plain;
        plain
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    //! Against a real store in a temporary folder, with made-up lines.
    use super::*;
    use crate::store::day::tests::{raw, tempdir};
    use crate::store::Retention;
    use crate::store::Store;
    use app::protocol::Replica;

    #[test]
    fn engines_finds_merge_into_pages_that_end_where_one_stopped_short() {
        let hit = |engine: &str, ts: i64| Hit {
            owner: Owner {
                engine: engine.into(),
                ..owner("web", engine)
            },
            line: raw(ts, "x"),
        };
        let found = |engine: &str, ts: &[i64], before: Option<Cursor>| Found {
            hits: ts.iter().map(|t| hit(engine, *t)).collect(),
            before,
            scanned: 10,
        };
        let finds = || {
            vec![
                found("a", &[10, 8, 6], Some(hit("a", 6).cursor())),
                found("b", &[9, 7, 5, 3], None),
            ]
        };
        let page = merge(finds(), 10);
        let got: Vec<(String, i64)> = page
            .hits
            .iter()
            .map(|h| (h.owner.engine.clone(), h.line.ts.ns))
            .collect();
        let want = [("a", 10), ("b", 9), ("a", 8), ("b", 7), ("a", 6)];
        assert_eq!(got, want.map(|(e, t)| (e.to_owned(), t)));
        assert_eq!(
            page.before,
            Some(hit("a", 6).cursor()),
            "b's 5 and 3 come next"
        );
        assert_eq!(page.scanned, 20);
        let short = merge(finds(), 3);
        assert_eq!(short.hits.len(), 3);
        assert_eq!(short.before, Some(hit("a", 8).cursor()));
        let done = merge(vec![found("a", &[4], None), found("b", &[5], None)], 10);
        assert_eq!(done.before, None);
    }

    fn owner(service: &str, container: &str) -> Owner {
        Owner {
            engine: "local".into(),
            project: "shop".into(),
            service: service.into(),
            container: container.into(),
            replica: Replica {
                number: 1,
                name: format!("shop-{service}-1"),
            },
        }
    }

    /// 300 lines each of `web` (even times) and `db` (odd times), every tenth an error;
    /// half of them written to disk in blocks, the rest still being gathered.
    fn store() -> (Store, std::path::PathBuf) {
        let dir = tempdir();
        let retention = Retention {
            age: std::time::Duration::from_secs(86_400),
            bytes: u64::MAX,
        };
        let mut store = Store::open(&dir, retention).unwrap();
        const T: i64 = 1_796_169_600 * 1_000_000_000;
        for (service, offset) in [("web", 0), ("db", 1)] {
            let lines: Vec<RawLine> = (0..300)
                .map(|i| {
                    let word = if i % 10 == 0 { "error" } else { "ok" };
                    raw(T + i * 2 + offset, &format!("{service} {word} {i}"))
                })
                .collect();
            store
                .append(&owner(service, service), &lines[..150])
                .unwrap();
            store.flush().unwrap();
            store
                .append(&owner(service, service), &lines[150..])
                .unwrap();
        }
        (store, dir)
    }

    fn texts(found: &Found) -> Vec<String> {
        found.hits.iter().map(|h| h.line.text.clone()).collect()
    }

    const WIDE: Bounds = Bounds {
        hits: 1000,
        lines: u64::MAX,
    };

    #[test]
    fn hits_come_newest_first_across_services_and_blocks() {
        let (store, dir) = store();
        let q = query::parse("error", 0).unwrap();
        let found = find(&store.view_all(), "local", &q, |_, _| true, None, WIDE).unwrap();
        assert_eq!(found.hits.len(), 60);
        assert_eq!(texts(&found)[..2], ["db error 290", "web error 290"]);
        assert_eq!(texts(&found)[59], "web error 0");
        assert!(found.before.is_none());
        assert_eq!(found.scanned, 600);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pages_follow_one_another_without_gap_or_repeat() {
        let (store, dir) = store();
        let q = query::parse("error", 0).unwrap();
        let bounds = Bounds {
            hits: 7,
            lines: u64::MAX,
        };
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let found = find(
                &store.view_all(),
                "local",
                &q,
                |_, _| true,
                before.as_ref(),
                bounds,
            )
            .unwrap();
            assert!(found.hits.len() <= 7);
            all.extend(texts(&found));
            match found.before {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        let whole = find(&store.view_all(), "local", &q, |_, _| true, None, WIDE).unwrap();
        assert_eq!(all, texts(&whole));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_search_that_would_read_too_much_answers_with_where_to_go_on() {
        let (store, dir) = store();
        let q = query::parse("error", 0).unwrap();
        let bounds = Bounds {
            hits: 1000,
            lines: 100,
        };
        let first = find(&store.view_all(), "local", &q, |_, _| true, None, bounds).unwrap();
        assert!(
            first.scanned >= 100 && first.scanned < 600,
            "{}",
            first.scanned
        );
        let before = first.before.clone().expect("told where to go on");
        let mut all = texts(&first);
        let mut next = Some(before);
        let mut pages = 0;
        while let Some(b) = next {
            pages += 1;
            assert!(pages < 100, "the pages make progress: stuck before {b}");
            let page = find(
                &store.view_all(),
                "local",
                &q,
                |_, _| true,
                Some(&b),
                bounds,
            )
            .unwrap();
            all.extend(texts(&page));
            next = page.before;
        }
        let whole = find(&store.view_all(), "local", &q, |_, _| true, None, WIDE).unwrap();
        assert_eq!(all, texts(&whole), "the pages hold every hit once");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pages_cut_by_the_line_bound_progress_through_overlapping_blocks() {
        // `slow` writes a line now and then, so its one block spans everything the others
        // write in small blocks; its newest lines are still being gathered.
        let dir = tempdir();
        let retention = Retention {
            age: std::time::Duration::from_secs(86_400),
            bytes: u64::MAX,
        };
        let mut store = Store::open(&dir, retention).unwrap();
        const T: i64 = 1_796_169_600 * 1_000_000_000;
        for i in 0..400i64 {
            let (service, text) = match i % 4 {
                0 if i % 40 == 0 => ("slow", format!("slow error {i}")),
                0 => continue,
                k => (["", "a", "b", "c"][k as usize], format!("error {i}")),
            };
            store
                .append(&owner(service, service), &[raw(T + i, &text)])
                .unwrap();
            if i % 7 == 0 {
                for key in ["local/a", "local/b", "local/c"] {
                    store.seal_for_tests(key);
                }
            }
            if i == 200 {
                store.seal_for_tests("local/slow");
            }
        }
        let q = query::parse("error", 0).unwrap();
        let bounds = Bounds {
            hits: 1000,
            lines: 3,
        };
        let (mut all, mut before, mut pages) = (Vec::new(), None, 0);
        loop {
            pages += 1;
            assert!(pages < 400, "stuck before {before:?}");
            let page = find(
                &store.view_all(),
                "local",
                &q,
                |_, _| true,
                before.as_ref(),
                bounds,
            )
            .unwrap();
            all.extend(texts(&page));
            match page.before {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        let whole = find(&store.view_all(), "local", &q, |_, _| true, None, WIDE).unwrap();
        assert_eq!(whole.hits.len(), 310);
        assert_eq!(all, texts(&whole), "every hit once, newest first");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn services_out_of_sight_are_never_read() {
        let (store, dir) = store();
        let q = query::parse("error", 0).unwrap();
        let found = find(&store.view_all(), "local", &q, |_, s| s == "db", None, WIDE).unwrap();
        assert!(found.hits.iter().all(|h| h.owner.service == "db"));
        assert_eq!(found.hits.len(), 30);
        assert_eq!(found.scanned, 300, "web's blocks are not even opened");
        let q = query::parse("error service:web", 0).unwrap();
        let found = find(&store.view_all(), "local", &q, |_, s| s == "db", None, WIDE).unwrap();
        assert!(found.hits.is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn words_are_found_in_any_case_also_beyond_ascii_and_across_colour_codes() {
        let dir = tempdir();
        let retention = Retention {
            age: std::time::Duration::from_secs(86_400),
            bytes: u64::MAX,
        };
        let mut store = Store::open(&dir, retention).unwrap();
        const T: i64 = 1_796_169_600 * 1_000_000_000;
        // ſ (long s) and K (the Kelvin sign) are s and k in any case.
        let texts = [
            "STATUS ok",
            "\u{17F}tatus ok",
            "\u{212A}ey",
            "sta\x1b[31mtus red",
            "nothing",
        ];
        let lines: Vec<RawLine> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| raw(T + i as i64, t))
            .collect();
        // The colour code in a block of its own: a block with one is read line by line.
        store.append(&owner("web", "web"), &lines[..3]).unwrap();
        store.flush().unwrap();
        store.append(&owner("web", "web"), &lines[3..]).unwrap();
        store.flush().unwrap();
        let found = |q: &str| {
            let q = query::parse(q, 0).unwrap();
            let mut t =
                texts_of(&find(&store.view_all(), "local", &q, |_, _| true, None, WIDE).unwrap());
            t.reverse();
            t
        };
        assert_eq!(
            found("status"),
            [texts[0], texts[1], texts[3]],
            "in any case, ſ for s, and across a colour code"
        );
        assert_eq!(found("key"), [texts[2]]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        // Words found in a block's records as one text give the same hits as reading
        // every line: across line boundaries, in any case, split by colour codes.
        #[test]
        fn words_found_in_the_records_are_the_lines_that_hold_them(
            texts in proptest::collection::vec("[abskABSK \u{17F}\u{212A}]{0,6}(\\x1b\\[3[0-9]m)?[abskABSK ]{0,6}", 1..60),
            word in "[absk]{1,3}",
            written in 0usize..60,
        ) {
            let dir = tempdir();
            let retention = Retention {
                age: std::time::Duration::from_secs(86_400),
                bytes: u64::MAX,
            };
            let mut store = Store::open(&dir, retention).unwrap();
            const T: i64 = 1_796_169_600 * 1_000_000_000;
            let lines: Vec<RawLine> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| raw(T + i as i64, t))
                .collect();
            let cut = written.min(lines.len());
            let web = owner("web", "web");
            store.append(&web, &lines[..cut]).unwrap();
            store.flush().unwrap();
            store.append(&web, &lines[cut..]).unwrap();
            let q = query::parse(&word, 0).unwrap();
            let found = find(&store.view_all(), "local", &q, |_, _| true, None, WIDE).unwrap();
            let mut got = texts_of(&found);
            got.reverse();
            // Line by line, as the viewer sees each (ſ and the Kelvin sign are s and k).
            let one = regex::RegexBuilder::new(&regex::escape(&word))
                .case_insensitive(true)
                .build()
                .unwrap();
            let expected: Vec<String> = texts
                .iter()
                .filter(|t| one.is_match(&app::ansi::parse(t).plain))
                .cloned()
                .collect();
            std::fs::remove_dir_all(dir).unwrap();
            proptest::prop_assert_eq!(got, expected);
        }
    }

    fn texts_of(found: &Found) -> Vec<String> {
        texts(found)
    }
}
