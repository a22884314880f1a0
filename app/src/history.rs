//! What history answers: a page of a service's past, and search hits across services.
//! Shared by the server, which reads them from its store, and the web app.

use serde::{Deserialize, Serialize};

use crate::protocol::{Cursor, Lifecycle, LogLine};

/// Most lines or hits one history or search request returns.
pub const MAX_PAGE: u32 = 5_000;
/// Lines or hits returned when a request does not say.
pub const DEFAULT_PAGE: u32 = 500;

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
}
