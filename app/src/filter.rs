//! The filter engine: which lines a user wants to see, and where their matches are.

use std::ops::Range;

use crate::levels::Levels;
use crate::protocol::{Level, Stream, Streams};
use regex::{Regex, RegexBuilder};

/// Longest filter pattern accepted, in characters.
pub const MAX_PATTERN_CHARS: usize = 1_000;
/// Most JSON fields filtered by at once: each is looked for in every JSON line held.
pub const MAX_FIELDS: usize = 16;
/// Largest compiled regex accepted, in bytes (the `regex` crate's size limit).
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

/// A compiled filter.
#[derive(Clone, Debug)]
pub struct Filter {
    pattern: Option<Regex>,
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
        } else {
            let source = if spec.regex {
                spec.text.clone()
            } else {
                regex::escape(&spec.text)
            };
            let re = RegexBuilder::new(&source)
                .case_insensitive(!spec.match_case)
                .size_limit(MAX_REGEX_BYTES)
                .dfa_size_limit(MAX_REGEX_BYTES)
                .build()
                .map_err(|e| FilterError::InvalidRegex(first_line(&e.to_string())))?;
            Some(re)
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
            Some(re) => texts.into_iter().any(|t| re.is_match(t)) != self.invert,
        }
    }

    /// Whether the pattern is found in `text`, inversion aside; true without a pattern.
    pub fn finds(&self, text: &str) -> bool {
        self.pattern.as_ref().is_none_or(|re| re.is_match(text))
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
            Some(re) if !self.invert => re
                .find_iter(text)
                .filter(|m| !m.is_empty())
                .map(|m| m.range())
                .take(100)
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn first_line(s: &str) -> String {
    // The regex crate's errors draw the pattern with a caret on later lines; the last line
    // says what is wrong.
    s.lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .map(|l| {
            l.trim_start()
                .trim_start_matches("error:")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| s.lines().next().unwrap_or_default().to_owned())
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
        assert!(
            matches!(err, FilterError::InvalidRegex(ref m) if m.contains("unclosed")),
            "{err}"
        );
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
        s.text = r"\w{500}\w{500}".into();
        s.regex = true;
        assert!(matches!(
            Filter::compile(&s).unwrap_err(),
            FilterError::InvalidRegex(_)
        ));
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
