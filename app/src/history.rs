//! What history answers: a page of a service's past, and search hits across services.
//! Shared by the server, which reads them from its store, and the web app.

use serde::{Deserialize, Serialize};

use crate::levels::ALL;
use crate::protocol::{Cursor, Level, Lifecycle, LogLine, Stream};

/// Most lines or hits one history or search request returns.
pub const MAX_PAGE: u32 = 5_000;
/// Lines or hits returned when a request does not say.
pub const DEFAULT_PAGE: u32 = 500;

/// Buckets of a histogram when a request does not say.
pub const DEFAULT_BUCKETS: u32 = 60;
/// Most buckets one histogram has: more than a chart's width in pixels buys nothing.
pub const MAX_BUCKETS: u32 = 500;
/// The narrowest bucket: finer than the engine's stamps are worth.
pub const MIN_BUCKET_NS: i64 = 1_000_000;
/// The places of `Bucket::levels`: one per level, from the least severe, then lines
/// stating none.
pub const LEVEL_SLOTS: usize = ALL.len() + 1;

/// `GET /api/history`: lines of one service in time order, the changes in its containers'
/// lives within their span, and where to page on from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub lines: Vec<LogLine>,
    pub events: Vec<Lifecycle>,
    /// Ask again with `before=` this for older lines; null when there are none.
    pub before: Option<Cursor>,
    /// Ask again with `after=` this for newer lines; null when there are none.
    pub after: Option<Cursor>,
}

/// One line a search found, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    #[serde(default = "crate::protocol::local_engine")]
    pub engine: String,
    pub project: String,
    pub service: String,
    pub line: LogLine,
}

/// `GET /api/search`: hits newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Ask again with `before=` this for older hits; null when the search is complete.
    pub before: Option<Cursor>,
    /// Stored lines read to answer.
    pub scanned: u64,
}

/// `GET /api/histogram`: how many of a service's stored lines fall in each stretch of
/// `[since_ns, until_ns)`, by level and by stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Where the first bucket starts.
    pub since_ns: i64,
    /// No line at or after it is counted; the last bucket may reach beyond it.
    pub until_ns: i64,
    /// Each bucket's width: the k-th starts at `since_ns + k * bucket_ns`.
    pub bucket_ns: i64,
    /// Every bucket, in time order, empty ones too.
    pub buckets: Vec<Bucket>,
    /// The bound on lines read (`--search-max-lines`) was reached: the counts are those of
    /// the newest lines, from `complete_from_ns` on, and lower than the truth before it.
    pub partial: bool,
    /// Every line from here to `until_ns` is counted: `since_ns` unless `partial`.
    pub complete_from_ns: i64,
}

/// The lines of one stretch of a histogram.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub start_ns: i64,
    /// Its lines by the level they state, each at `level_slot`: trace, debug, info, warn,
    /// error, fatal, then none.
    pub levels: [u64; LEVEL_SLOTS],
    pub stdout: u64,
    pub stderr: u64,
}

/// Where lines stating `level` are counted in `Bucket::levels`.
pub fn level_slot(level: Option<Level>) -> usize {
    level.map_or(ALL.len(), |l| l as usize)
}

impl Bucket {
    pub fn lines(&self) -> u64 {
        self.stdout + self.stderr
    }

    /// Its lines stating `level` (`None`: stating none).
    pub fn of_level(&self, level: Option<Level>) -> u64 {
        self.levels[level_slot(level)]
    }
}

impl Histogram {
    /// Empty buckets over `[since_ns, until_ns)`: `buckets` of them, each the span divided
    /// by their number, rounded up; when that is under `MIN_BUCKET_NS`, buckets that wide,
    /// as many as the span needs. An empty span has none.
    pub fn empty(since_ns: i64, until_ns: i64, buckets: u32) -> Histogram {
        // Times may lie on either side of 1970 and far apart: their distance fits in i128.
        let span = (i128::from(until_ns) - i128::from(since_ns)).max(0);
        let asked = i128::from(buckets.max(1));
        let width = ((span + asked - 1) / asked).clamp(MIN_BUCKET_NS.into(), i64::MAX.into());
        let count = (span + width - 1) / width;
        let buckets = (0..count)
            .map(|k| Bucket {
                start_ns: (i128::from(since_ns) + k * width) as i64,
                ..Bucket::default()
            })
            .collect();
        Histogram {
            since_ns,
            until_ns,
            bucket_ns: width as i64,
            buckets,
            partial: false,
            complete_from_ns: since_ns,
        }
    }

    /// The bucket a line at `ts_ns` is counted in; none outside the span.
    pub fn bucket_of(&self, ts_ns: i64) -> Option<usize> {
        if ts_ns < self.since_ns || ts_ns >= self.until_ns || self.bucket_ns <= 0 {
            return None;
        }
        // Counting millions of lines: in i64 unless the distance does not fit.
        let at = match ts_ns.checked_sub(self.since_ns) {
            Some(d) => i128::from(d / self.bucket_ns),
            None => (i128::from(ts_ns) - i128::from(self.since_ns)) / i128::from(self.bucket_ns),
        };
        usize::try_from(at).ok().filter(|&k| k < self.buckets.len())
    }

    /// Counts `n` lines at `ts_ns` stating `level`, of `stream`; none outside the span.
    pub fn add(&mut self, ts_ns: i64, level: Option<Level>, stream: Stream, n: u64) {
        let Some(k) = self.bucket_of(ts_ns) else {
            return;
        };
        let b = &mut self.buckets[k];
        b.levels[level_slot(level)] += n;
        match stream {
            Stream::Stdout => b.stdout += n,
            Stream::Stderr => b.stderr += n,
        }
    }
}

/// The words and phrases of a search query that a result marks in its text: not fields
/// (`service:web`), exclusions (`-word`) or regular expressions.
pub fn marked_terms(query: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut rest = query.trim_start();
    while !rest.is_empty() {
        let (term, after) = if let Some(phrase) = rest.strip_prefix('"') {
            let end = phrase.find('"').unwrap_or(phrase.len());
            (Some(&phrase[..end]), phrase.get(end + 1..).unwrap_or(""))
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..end];
            let plain = !(word.starts_with('-') || word.starts_with('/') || word.contains(':'));
            (plain.then_some(word), &rest[end..])
        };
        if let Some(t) = term.filter(|t| !t.is_empty()) {
            terms.push(t.to_lowercase());
        }
        rest = after.trim_start();
    }
    terms
}

/// `text` cut into runs, each marked if it is one of `terms` (any case).
pub fn split_marked(text: &str, terms: &[String]) -> Vec<(String, bool)> {
    let lower = text.to_lowercase();
    // Lower-casing can change lengths (rarely): then nothing is marked rather than a
    // wrong place.
    if lower.len() != text.len() {
        return vec![(text.to_owned(), false)];
    }
    let mut marks = vec![false; text.len()];
    for t in terms.iter().filter(|t| !t.is_empty()) {
        for (at, _) in lower.match_indices(t.as_str()) {
            marks[at..at + t.len()].iter_mut().for_each(|m| *m = true);
        }
    }
    let mut out: Vec<(String, bool)> = Vec::new();
    for (i, c) in text.char_indices() {
        let m = marks[i];
        match out.last_mut() {
            Some((run, was)) if *was == m => run.push(c),
            _ => out.push((c.to_string(), m)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_marks_the_words_and_phrases_of_the_query() {
        assert_eq!(
            marked_terms(r#"Error "conn reset" -healthz service:web /5\d\d/"#),
            ["error", "conn reset"]
        );
        let runs = split_marked(
            "An ERROR: conn reset by peer",
            &marked_terms(r#"error "conn reset""#),
        );
        assert_eq!(
            runs,
            [
                ("An ".to_owned(), false),
                ("ERROR".to_owned(), true),
                (": ".to_owned(), false),
                ("conn reset".to_owned(), true),
                (" by peer".to_owned(), false),
            ]
        );
        assert_eq!(
            split_marked("größe", &["grö".into()])[0],
            ("grö".to_owned(), true)
        );
        assert_eq!(split_marked("", &["x".into()]), []);
    }

    const S: i64 = 1_796_169_600_000_000_000;

    #[test]
    fn buckets_are_the_span_divided_rounded_up_and_start_at_since() {
        let h = Histogram::empty(S, S + 3_600_000_000_000, 60);
        assert_eq!(h.bucket_ns, 60_000_000_000);
        assert_eq!(h.buckets.len(), 60);
        assert_eq!(h.buckets[1].start_ns, S + 60_000_000_000);
        assert_eq!(h.buckets[59].start_ns, S + 59 * 60_000_000_000);
        // 10 s in 3: 3.33… s each, rounded up; the last reaches a little beyond until.
        let h = Histogram::empty(S, S + 10_000_000_000, 3);
        assert_eq!(h.bucket_ns, 3_333_333_334);
        assert_eq!(h.buckets.len(), 3);
        assert!(h.buckets[2].start_ns + h.bucket_ns >= h.until_ns);
        assert_eq!((h.complete_from_ns, h.partial), (S, false));
    }

    #[test]
    fn a_bucket_is_at_least_a_millisecond_and_then_there_are_fewer() {
        let h = Histogram::empty(S, S + 10_000_000, 500);
        assert_eq!(h.bucket_ns, MIN_BUCKET_NS);
        assert_eq!(h.buckets.len(), 10);
        let h = Histogram::empty(S, S + 10_500_000, 500);
        assert_eq!(h.buckets.len(), 11, "a part of a bucket is a bucket");
        assert!(
            Histogram::empty(S, S, 60).buckets.is_empty(),
            "an empty span"
        );
        assert!(Histogram::empty(S, S - 1, 60).buckets.is_empty());
    }

    #[test]
    fn spans_across_1970_and_the_whole_range_of_times_fit() {
        let h = Histogram::empty(i64::MIN, i64::MAX, 1);
        assert_eq!(h.bucket_ns, i64::MAX);
        assert_eq!(
            h.buckets.len(),
            3,
            "no bucket is that wide: one is not enough"
        );
        assert_eq!(h.bucket_of(i64::MIN), Some(0));
        assert_eq!(h.bucket_of(i64::MAX - 1), Some(2));
        let h = Histogram::empty(-5_000_000, 5_000_000, 10);
        assert_eq!(h.bucket_of(-1), Some(4));
        assert_eq!(h.bucket_of(0), Some(5));
    }

    #[test]
    fn each_line_falls_in_the_bucket_of_its_time_and_none_outside_the_span() {
        let mut h = Histogram::empty(S, S + 10_000_000_000, 10);
        assert_eq!(h.bucket_of(S - 1), None);
        assert_eq!(h.bucket_of(S), Some(0));
        assert_eq!(h.bucket_of(S + 999_999_999), Some(0));
        assert_eq!(h.bucket_of(S + 1_000_000_000), Some(1));
        assert_eq!(h.bucket_of(S + 9_999_999_999), Some(9));
        assert_eq!(h.bucket_of(S + 10_000_000_000), None, "until is exclusive");
        h.add(S + 1, Some(Level::Error), Stream::Stderr, 3);
        h.add(S + 2, None, Stream::Stdout, 1);
        h.add(S + 5_000_000_000, Some(Level::Info), Stream::Stdout, 2);
        h.add(S + 10_000_000_000, Some(Level::Info), Stream::Stdout, 7);
        let b = &h.buckets[0];
        assert_eq!((b.of_level(Some(Level::Error)), b.of_level(None)), (3, 1));
        assert_eq!((b.stdout, b.stderr, b.lines()), (1, 3, 4));
        assert_eq!(h.buckets[5].levels, [0, 0, 2, 0, 0, 0, 0]);
        let total: u64 = h.buckets.iter().map(Bucket::lines).sum();
        assert_eq!(total, 6, "the line at until is not counted");
    }

    #[test]
    fn levels_have_their_places_from_the_least_severe_then_none() {
        let slots: Vec<usize> = ALL.iter().map(|l| level_slot(Some(*l))).collect();
        assert_eq!(slots, [0, 1, 2, 3, 4, 5]);
        assert_eq!(level_slot(None), LEVEL_SLOTS - 1);
        let json = serde_json::to_value(Histogram::empty(0, 2_000_000, 2)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "since_ns": 0, "until_ns": 2_000_000, "bucket_ns": 1_000_000,
                "buckets": [
                    {"start_ns": 0, "levels": [0, 0, 0, 0, 0, 0, 0], "stdout": 0, "stderr": 0},
                    {"start_ns": 1_000_000, "levels": [0, 0, 0, 0, 0, 0, 0], "stdout": 0, "stderr": 0}
                ],
                "partial": false, "complete_from_ns": 0
            })
        );
    }
}
