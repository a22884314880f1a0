//! The filter engine: which lines a user wants to see, and where their matches are.

use std::ops::Range;

use crate::levels::Levels;
use crate::needle::Needle;
use crate::protocol::{Level, Stream, Streams};
use regex_lite::{Regex, RegexBuilder};

/// Longest filter pattern accepted, in characters.
pub const MAX_PATTERN_CHARS: usize = 1_000;
/// Most JSON fields filtered by at once: each is looked for in every JSON line held.
pub const MAX_FIELDS: usize = 16;
/// Largest compiled regex accepted, in bytes (`regex_lite`'s size limit).
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// What the user typed and toggled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub text: String,
    pub regex: bool,
    pub match_case: bool,
    pub invert: bool,
    pub stream: Streams,
    /// Only this replica (container number), when set.
    pub replica: Option<u32>,
    /// Only lines stating one of these levels, when set.
    pub levels: Option<Levels>,
    /// Only JSON lines showing every one of these fields, each as its row shows it
    /// (`key=value`): the chips a user clicked.
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the pattern is longer than {MAX_PATTERN_CHARS} characters")]
    TooLong,
    #[error("invalid regular expression: {0}")]
    InvalidRegex(String),
    #[error("at most {MAX_FIELDS} fields can be filtered by at once")]
    TooManyFields,
}

/// What a filter looks for in a line's text.
///
/// Regexes are `regex_lite`'s, in the web client and the CLI alike: linear in the line (no
/// pattern can hang the page), and small, where the `regex` crate and its Unicode tables were
/// a third of the client. The costs: a regex ignores case in ASCII only, its `\w`, `\d`, `\s`
/// and `\b` are ASCII's, `\p{..}` is refused, and it runs slower per line (no literal
/// prefilter, no DFA). Plain text, the default, ignores case in any script (`Needle`).
#[derive(Clone, Debug)]
enum Pattern {
    Text(Needle),
    Regex(Regex),
}

impl Pattern {
    fn is_match(&self, text: &str) -> bool {
        match self {
            Pattern::Text(n) => n.is_match(text),
            Pattern::Regex(re) => re.is_match(text),
        }
    }

    /// Where it is found, the first `most` matches that are not empty.
    fn ranges(&self, text: &str, most: usize) -> Vec<Range<usize>> {
        match self {
            Pattern::Text(n) => n.find_iter(text).take(most).collect(),
            Pattern::Regex(re) => re
                .find_iter(text)
                .filter(|m| !m.is_empty())
                .map(|m| m.range())
                .take(most)
                .collect(),
        }
    }
}

/// A compiled filter.
#[derive(Clone, Debug)]
pub struct Filter {
    pattern: Option<Pattern>,
    invert: bool,
    stream: Streams,
    replica: Option<u32>,
    levels: Option<Levels>,
    fields: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            pattern: None,
            invert: false,
            stream: Streams::Both,
            replica: None,
            levels: None,
            fields: Vec::new(),
        }
    }
}

impl Filter {
    pub fn compile(spec: &FilterSpec) -> Result<Filter, FilterError> {
        if spec.text.chars().count() > MAX_PATTERN_CHARS {
            return Err(FilterError::TooLong);
        }
        if spec.fields.len() > MAX_FIELDS {
            return Err(FilterError::TooManyFields);
        }
        let pattern = if spec.text.is_empty() {
            None
        } else if spec.regex {
            let re = RegexBuilder::new(&spec.text)
                .case_insensitive(!spec.match_case)
                .size_limit(MAX_REGEX_BYTES)
                .build()
                .map_err(|e| FilterError::InvalidRegex(e.to_string()))?;
            Some(Pattern::Regex(re))
        } else {
            Some(Pattern::Text(Needle::new(&spec.text, !spec.match_case)))
        };
        Ok(Filter {
            pattern,
            invert: spec.invert,
            stream: spec.stream,
            replica: spec.replica,
            levels: spec.levels,
            fields: spec.fields.clone(),
        })
    }

    /// Whether a line that is not JSON passes: `text` is its visible text (escapes removed).
    pub fn matches(&self, text: &str, stream: Stream, replica: u32, level: Option<Level>) -> bool {
        self.admits(stream, replica, level) && self.fields.is_empty() && self.keeps_texts([text])
    }

    /// Whether a line written as `json` (a JSON object line, or None) shows every field
    /// chosen.
    pub fn shows_fields(&self, json: Option<&str>) -> bool {
        self.fields.is_empty()
            || json.is_some_and(|j| self.fields.iter().all(|f| crate::json::has_chip(j, f)))
    }

    /// Whether lines of this stream, replica and level may pass, whatever they say.
    pub fn admits(&self, stream: Stream, replica: u32, level: Option<Level>) -> bool {
        self.stream.allows(stream)
            && self.replica.is_none_or(|r| r == replica)
            && self.levels.is_none_or(|l| l.contains(level))
    }

    /// Whether the texts of one entry pass as one: the pattern found in any of them (or in
    /// none, inverted). Without a pattern, any texts do.
    pub fn keeps_texts<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> bool {
        match &self.pattern {
            None => true,
            Some(p) => texts.into_iter().any(|t| p.is_match(t)) != self.invert,
        }
    }

    /// Whether the pattern is found in `text`, inversion aside; true without a pattern.
    pub fn finds(&self, text: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.is_match(text))
    }

    /// Whether the filter hides lines its pattern is found in.
    pub fn is_inverted(&self) -> bool {
        self.invert && self.pattern.is_some()
    }

    /// Whether lines of this replica may be shown.
    pub fn shows_replica(&self, replica: u32) -> bool {
        self.replica.is_none_or(|r| r == replica)
    }

    /// Whether the filter keeps every line.
    pub fn is_everything(&self) -> bool {
        self.pattern.is_none()
            && self.stream == Streams::Both
            && self.replica.is_none()
            && self.levels.is_none()
            && self.fields.is_empty()
    }

    /// Byte ranges of `text` to highlight (none when the filter is inverted).
    pub fn highlights(&self, text: &str) -> Vec<Range<usize>> {
        match &self.pattern {
            Some(p) if !self.invert => p.ranges(text, 100),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> FilterSpec {
        FilterSpec {
            text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn plain_text_is_case_insensitive_by_default() {
        let f = Filter::compile(&spec("ERROR")).unwrap();
        assert!(f.matches("an error here", Stream::Stdout, 1, None));
        assert!(!f.matches("all good", Stream::Stdout, 1, None));
    }

    #[test]
    fn plain_text_ignores_case_in_any_script_and_is_highlighted() {
        let f = Filter::compile(&spec("ärger")).unwrap();
        assert!(f.matches("VIEL ÄRGER", Stream::Stdout, 1, None));
        assert_eq!(f.highlights("VIEL ÄRGER, ärger"), vec![5..11, 13..19]);
        let mut s = spec("ärger");
        s.match_case = true;
        let f = Filter::compile(&s).unwrap();
        assert!(!f.matches("VIEL ÄRGER", Stream::Stdout, 1, None));
    }

    #[test]
    fn a_regex_ignores_case_in_ascii_only() {
        let mut s = spec("error|ärger");
        s.regex = true;
        let f = Filter::compile(&s).unwrap();
        assert!(f.matches("ERROR", Stream::Stdout, 1, None));
        assert!(f.matches("ärger", Stream::Stdout, 1, None));
        assert!(!f.matches("ÄRGER", Stream::Stdout, 1, None));
    }

    #[test]
    fn a_regex_that_would_backtrack_for_ages_finishes() {
        // A backtracking engine tries about 2^n ways to split the a's before failing.
        let mut s = spec("(a+)+$");
        s.regex = true;
        let f = Filter::compile(&s).unwrap();
        let line = format!("{}!", "a".repeat(100_000));
        assert!(!f.matches(&line, Stream::Stdout, 1, None));
        s.text = "(x+x+)+y".into();
        let f = Filter::compile(&s).unwrap();
        assert!(f.highlights(&"x".repeat(100_000)).is_empty());
    }

    #[test]
    fn plain_text_is_not_a_regex() {
        let f = Filter::compile(&spec("a.b(")).unwrap();
        assert!(f.matches("x a.b( y", Stream::Stdout, 1, None));
        assert!(!f.matches("axb(", Stream::Stdout, 1, None));
    }

    #[test]
    fn match_case_and_invert() {
        let mut s = spec("Error");
        s.match_case = true;
        let f = Filter::compile(&s).unwrap();
        assert!(f.matches("Error", Stream::Stdout, 1, None));
        assert!(!f.matches("error", Stream::Stdout, 1, None));
        s.invert = true;
        let f = Filter::compile(&s).unwrap();
        assert!(f.matches("error", Stream::Stdout, 1, None));
        assert!(f.highlights("Error").is_empty());
    }

    #[test]
    fn regex_and_its_errors() {
        let mut s = spec(r"line \d+$");
        s.regex = true;
        let f = Filter::compile(&s).unwrap();
        assert!(f.matches("stdout line 42", Stream::Stdout, 1, None));
        assert_eq!(f.highlights("stdout line 42"), vec![7..14]);
        s.text = "(unclosed".into();
        let err = Filter::compile(&s).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid regular expression: found open group without closing ')'"
        );
        s.text = r"\p{Greek}".into();
        assert!(matches!(
            Filter::compile(&s).unwrap_err(),
            FilterError::InvalidRegex(_)
        ));
    }

    #[test]
    fn json_fields_keep_the_lines_showing_them_all_within_their_bound() {
        let mut s = spec("");
        s.fields = vec!["user=ada".into(), "level=warn".into()];
        let f = Filter::compile(&s).unwrap();
        assert!(!f.is_everything());
        let line = r#"{"msg":"hi","level":"warn","user":"ada"}"#;
        assert!(f.shows_fields(Some(line)));
        assert!(!f.shows_fields(Some(r#"{"msg":"hi","level":"warn","user":"bob"}"#)));
        assert!(
            !f.shows_fields(None),
            "a line that is not JSON shows no field"
        );
        s.fields = (0..=MAX_FIELDS).map(|i| format!("k={i}")).collect();
        assert_eq!(Filter::compile(&s).unwrap_err(), FilterError::TooManyFields);
        s.fields.pop();
        assert!(Filter::compile(&s).is_ok());
    }

    #[test]
    fn patterns_over_the_bounds_are_refused() {
        let mut s = spec(&"a".repeat(MAX_PATTERN_CHARS + 1));
        assert_eq!(Filter::compile(&s).unwrap_err(), FilterError::TooLong);
        // Small to write, huge to compile.
        s.text = r"(?:a{1000}){1000}".into();
        s.regex = true;
        assert_eq!(
            Filter::compile(&s).unwrap_err().to_string(),
            "invalid regular expression: compiled regex exceeded size limit"
        );
        s.text = r"(?:a{1000}){10}".into();
        assert!(Filter::compile(&s).is_ok(), "under {MAX_REGEX_BYTES} bytes");
    }

    #[test]
    fn stream_and_replica_choices() {
        let s = FilterSpec {
            stream: Streams::Stderr,
            replica: Some(2),
            ..Default::default()
        };
        let f = Filter::compile(&s).unwrap();
        assert!(f.matches("x", Stream::Stderr, 2, None));
        assert!(!f.matches("x", Stream::Stdout, 2, None));
        assert!(!f.matches("x", Stream::Stderr, 1, None));
    }

    #[test]
    fn a_level_choice_keeps_only_lines_stating_those_levels() {
        let s = FilterSpec {
            text: "request".into(),
            levels: Some(">=warn".parse().unwrap()),
            ..Default::default()
        };
        let f = Filter::compile(&s).unwrap();
        assert!(!f.is_everything());
        assert!(f.matches("request", Stream::Stdout, 1, Some(Level::Error)));
        assert!(f.matches("request", Stream::Stdout, 1, Some(Level::Warn)));
        assert!(!f.matches("request", Stream::Stdout, 1, Some(Level::Info)));
        assert!(
            !f.matches("request", Stream::Stdout, 1, None),
            "no level stated"
        );
        assert!(
            !f.matches("other", Stream::Stdout, 1, Some(Level::Fatal)),
            "the text still counts"
        );
    }
}
