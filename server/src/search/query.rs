//! The search query language: `error timeout` (every word, case-insensitive substring),
//! `"connection reset"` (a phrase), `-healthz` (not this), `/5\d\d/` (a regular expression,
//! bounded like the filter's), and the fields `service:web`, `project:shop`,
//! `stream:stderr`, `level:warn` (or `level:>=warn`, `level:warn,error`), `since:2h`,
//! `until:2026-12-01T10:00:00Z`. Any other `key:value` finds JSON lines whose field `key`
//! is `value` (as a row shows it, `key=value`), and lines holding the word `key:value` as
//! written (`http://x`, `ERROR:root`). A malformed query is an error
//! that names the character where it went wrong and why.

use app::filter::{MAX_PATTERN_CHARS, MAX_REGEX_BYTES};
use app::json;
use app::levels::Levels;
use app::protocol::{Level, Stream};
use regex::{bytes, Regex, RegexBuilder};

use crate::clock::parse_when;

/// Most words, phrases and expressions in one query.
pub const MAX_TERMS: usize = 32;

/// A text condition on a line: a word or phrase (in any case), or an expression.
#[derive(Clone, Debug)]
pub enum Text {
    /// The words as typed, searched for in any case.
    Substring(Words),
    Regex(Regex),
    /// `key:value`: a JSON line's field (`chip`, `key=value` as its row shows it), or the
    /// word as written. Either way the line holds `key`.
    Field {
        word: Words,
        chip: String,
        key: Words,
    },
}

/// Words searched for in any case, and the ways to find them in a block's records as one
/// text (the lines worth reading).
#[derive(Clone, Debug)]
pub struct Words {
    re: Regex,
    /// In any case, over bytes.
    pub raw: bytes::Regex,
    /// Lower-cased, if ASCII: in ASCII text, found by a plain search of lower-cased text.
    pub ascii_lower: Option<Vec<u8>>,
}

impl Text {
    /// Words are matched by an escaped, case-insensitive expression rather than by
    /// lower-casing every line: a search reads millions of lines.
    fn substring(words: &str) -> Text {
        let pattern = regex::escape(words);
        let re = RegexBuilder::new(&pattern)
            .case_insensitive(true)
            .build()
            .expect("an escaped literal is a valid expression");
        let raw = bytes::RegexBuilder::new(&pattern)
            .case_insensitive(true)
            .build()
            .expect("an escaped literal is a valid expression");
        Text::Substring(Words {
            re,
            raw,
            ascii_lower: words
                .is_ascii()
                .then(|| words.to_ascii_lowercase().into_bytes()),
        })
    }

    fn matches(&self, line: &str) -> bool {
        match self {
            Text::Substring(Words { re, .. }) | Text::Regex(re) => re.is_match(line),
            Text::Field { word, chip, .. } => word.re.is_match(line) || json::has_chip(line, chip),
        }
    }

    /// `key:value`, a field of a JSON line or a word.
    fn field(key: &str, value: &str) -> Text {
        let words = |w: &str| match Text::substring(w) {
            Text::Substring(w) => w,
            _ => unreachable!("a substring is made of words"),
        };
        Text::Field {
            word: words(&format!("{key}:{value}")),
            chip: format!("{key}={value}"),
            key: words(key),
        }
    }
}

/// A parsed query. An empty list of projects or services means any.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub include: Vec<Text>,
    pub exclude: Vec<Text>,
    pub projects: Vec<String>,
    pub services: Vec<String>,
    pub stream: Option<Stream>,
    /// A line must state one of these levels, when set (`level:` fields add to it).
    pub levels: Option<Levels>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
}

/// Where a query went wrong (a character index, from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {position}: {reason}")]
pub struct QueryError {
    pub position: usize,
    pub reason: String,
}

/// What one line is, as a query sees it.
pub struct Candidate<'a> {
    pub project: &'a str,
    pub service: &'a str,
    pub stream: Stream,
    /// Its level; only read when the query names levels.
    pub level: Option<Level>,
    pub ts_ns: i64,
    /// The text as a viewer sees it (colour codes removed).
    pub text: &'a str,
}

impl Query {
    /// Whether the query holds no condition on the text (it then matches every line of its
    /// services and span).
    pub fn is_text_free(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Words every matching line holds as they are stored: a line without them need not
    /// be read. None if the query has no such words, or they hold the replacement
    /// character (text that is not UTF-8 is shown with it, but not stored with it).
    pub fn anchor(&self) -> Option<&Words> {
        let usable = |w: &&Words| !w.re.as_str().contains('\u{FFFD}');
        let words = self.include.iter().find_map(|t| match t {
            Text::Substring(w) => Some(w).filter(usable),
            _ => None,
        });
        // A field's key serves when no word does: both its forms hold it.
        words.or_else(|| {
            self.include.iter().find_map(|t| match t {
                Text::Field { key, .. } => Some(key).filter(usable),
                _ => None,
            })
        })
    }

    pub fn matches(&self, c: &Candidate<'_>) -> bool {
        let any_of = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        if !any_of(&self.projects, c.project)
            || !any_of(&self.services, c.service)
            || self.stream.is_some_and(|s| s != c.stream)
            || self.levels.is_some_and(|l| !l.contains(c.level))
            || self.since_ns.is_some_and(|t| c.ts_ns < t)
            || self.until_ns.is_some_and(|t| c.ts_ns >= t)
        {
            return false;
        }
        if self.is_text_free() {
            return true;
        }
        self.include.iter().all(|t| t.matches(c.text))
            && !self.exclude.iter().any(|t| t.matches(c.text))
    }
}

/// Reads a query; `now_ns` is what durations (`since:2h`) count back from.
pub fn parse(query: &str, now_ns: i64) -> Result<Query, QueryError> {
    let chars: Vec<char> = query.chars().collect();
    if chars.len() > MAX_PATTERN_CHARS {
        return Err(error(
            MAX_PATTERN_CHARS + 1,
            format!("a query is at most {MAX_PATTERN_CHARS} characters"),
        ));
    }
    let mut parser = Parser {
        chars,
        at: 0,
        now_ns,
        query: Query::default(),
    };
    parser.all()?;
    Ok(parser.query)
}

fn error(position: usize, reason: impl Into<String>) -> QueryError {
    QueryError {
        position,
        reason: reason.into(),
    }
}

struct Parser {
    chars: Vec<char>,
    /// The index of the next character to read.
    at: usize,
    now_ns: i64,
    query: Query,
}

impl Parser {
    fn all(&mut self) -> Result<(), QueryError> {
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.at += 1;
            }
            let Some(c) = self.peek() else {
                return Ok(());
            };
            let start = self.at;
            let negated = c == '-';
            if negated {
                self.at += 1;
                if self.peek().is_none_or(char::is_whitespace) {
                    return Err(error(start + 1, "nothing to leave out after '-'"));
                }
            }
            let Some(text) = self.term(negated)? else {
                continue;
            };
            if self.query.include.len() + self.query.exclude.len() >= MAX_TERMS {
                return Err(error(
                    start + 1,
                    format!("a query has at most {MAX_TERMS} terms"),
                ));
            }
            if negated {
                self.query.exclude.push(text);
            } else {
                self.query.include.push(text);
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    /// The next term: a text condition, or `None` for a field (recorded on the query).
    fn term(&mut self, negated: bool) -> Result<Option<Text>, QueryError> {
        let start = self.at;
        match self.peek() {
            Some('"') => {
                let phrase = self.delimited('"', "phrase")?;
                Ok(Some(Text::substring(&phrase)))
            }
            Some('/') => {
                let source = self.delimited('/', "regular expression")?;
                let re = RegexBuilder::new(&source)
                    .size_limit(MAX_REGEX_BYTES)
                    .dfa_size_limit(MAX_REGEX_BYTES)
                    .build()
                    .map_err(|e| {
                        let first = e.to_string().lines().last().unwrap_or_default().to_owned();
                        error(start + 1, format!("invalid regular expression: {first}"))
                    })?;
                Ok(Some(Text::Regex(re)))
            }
            _ => {
                let word = self.word();
                match word.split_once(':') {
                    Some((name, value)) if FIELDS.contains(&name) => {
                        if negated {
                            return Err(error(start, format!("{name}: cannot be left out")));
                        }
                        let value_at = start + name.chars().count() + 2;
                        self.field(name, value, value_at)?;
                        Ok(None)
                    }
                    Some((key, value)) if !key.is_empty() && !value.is_empty() => {
                        Ok(Some(Text::field(key, value)))
                    }
                    _ => Ok(Some(Text::substring(&word))),
                }
            }
        }
    }

    /// The text between `delimiter` and the next unescaped one; `\<delimiter>` stands for
    /// the delimiter itself, other escapes are kept.
    fn delimited(&mut self, delimiter: char, what: &str) -> Result<String, QueryError> {
        let open = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(error(open + 1, format!("this {what} is never closed"))),
                Some(c) if c == delimiter => {
                    self.at += 1;
                    break;
                }
                Some('\\') if self.chars.get(self.at + 1) == Some(&delimiter) => {
                    text.push(delimiter);
                    self.at += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.at += 1;
                }
            }
        }
        if text.is_empty() {
            return Err(error(open + 1, format!("an empty {what}")));
        }
        Ok(text)
    }

    fn word(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self.peek().filter(|c| !c.is_whitespace()) {
            word.push(c);
            self.at += 1;
        }
        word
    }

    /// `position` is where the value begins (from 1).
    fn field(&mut self, name: &str, value: &str, position: usize) -> Result<(), QueryError> {
        if value.is_empty() {
            return Err(error(position, format!("{name}: needs a value")));
        }
        let q = &mut self.query;
        match name {
            "project" => q.projects.push(value.to_owned()),
            "service" => q.services.push(value.to_owned()),
            "stream" => {
                q.stream = Some(match value {
                    "stdout" => Stream::Stdout,
                    "stderr" => Stream::Stderr,
                    _ => return Err(error(position, "stream: is stdout or stderr")),
                });
            }
            "level" => {
                let named: Levels = value
                    .parse()
                    .map_err(|e| error(position, format!("level: {e}")))?;
                q.levels = Some(q.levels.map_or(named, |l| l.union(named)));
            }
            "since" | "until" => {
                let ns = parse_when(value, self.now_ns)
                    .map_err(|e| error(position, format!("{name}: {e}")))?;
                if name == "since" {
                    q.since_ns = Some(ns);
                } else {
                    q.until_ns = Some(ns);
                }
            }
            _ => unreachable!("only the names in FIELDS come here"),
        }
        Ok(())
    }
}

/// The fields a query may name; any other `word:thing` is a JSON field or a word.
const FIELDS: [&str; 6] = ["project", "service", "stream", "level", "since", "until"];

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_583_200_000_000_000;

    fn line(text: &str) -> Candidate<'_> {
        Candidate {
            project: "shop",
            service: "web",
            stream: Stream::Stdout,
            level: None,
            ts_ns: NOW,
            text,
        }
    }

    fn finds(query: &str, text: &str) -> bool {
        parse(query, NOW).expect("a query").matches(&line(text))
    }

    #[test]
    fn every_word_must_match_in_any_case() {
        assert!(finds("error timeout", "ERROR: upstream Timeout after 5s"));
        assert!(!finds("error timeout", "error: refused"));
        assert!(finds("", "anything at all"));
        assert!(finds("ÉTÉ", "l'été dernier"), "unicode case folds too");
    }

    #[test]
    fn a_phrase_matches_as_written_and_a_minus_leaves_out() {
        assert!(finds(
            r#""connection reset""#,
            "read: Connection reset by peer"
        ));
        assert!(!finds(r#""connection reset""#, "reset the connection"));
        assert!(finds(r#"GET -healthz"#, "GET /api/orders"));
        assert!(!finds(r#"GET -healthz"#, "GET /healthz 200"));
        assert!(!finds(r#"-"by peer""#, "reset by peer"));
        assert!(finds(r#""say \"hi\"""#, r#"they say "hi""#));
    }

    #[test]
    fn a_regular_expression_goes_between_slashes() {
        assert!(finds(r"/ 5\d\d /", "GET /x 503 12ms"));
        assert!(!finds(r"/ 5\d\d /", "GET /x 200 12ms"));
        assert!(finds(r"/a\/b/", "path a/b"));
    }

    #[test]
    fn fields_choose_services_streams_and_a_span() {
        let q = parse(
            "service:web service:api project:shop stream:stderr since:1h until:1764583200",
            NOW,
        )
        .unwrap();
        assert_eq!(q.services, ["web", "api"]);
        assert_eq!(q.projects, ["shop"]);
        assert_eq!(q.stream, Some(Stream::Stderr));
        assert_eq!(q.since_ns, Some(NOW - 3_600_000_000_000));
        assert_eq!(q.until_ns, Some(NOW));
        assert!(q.is_text_free());
        let mut c = line("x");
        assert!(!q.matches(&c), "stdout, and at the until bound");
        c.stream = Stream::Stderr;
        c.ts_ns = NOW - 1;
        assert!(q.matches(&c));
        c.service = "db";
        assert!(!q.matches(&c));
        // A word with a colon that names no field is a word.
        assert!(finds("http://x", "fetching http://x"));
        assert!(finds("ERROR:root", "ERROR:root:boom"));
        assert!(finds("-ERROR:root", "INFO:root:fine"));
    }

    #[test]
    fn any_other_key_value_finds_a_json_line_s_field() {
        let line = r#"{"level":"warn","msg":"payment failed","user_id":42,"path":"/pay"}"#;
        assert!(finds("user_id:42", line));
        assert!(finds("path:/pay payment", line));
        assert!(!finds("user_id:4", line), "a whole value, not a part");
        assert!(!finds("user_id:43", line));
        assert!(!finds("-user_id:42", line));
        assert!(finds("-user_id:43", line));
        // The message is no field; a line that is not JSON has none.
        assert!(!finds("msg:payment", line));
        assert!(!finds("user_id:42", "user_id=42 in logfmt"));
        assert!(finds("user_id:42", "saw user_id:42 as a word"));
        // Blocks without the key need not be read; a word of the query serves first.
        let anchor = |q: &str| {
            parse(q, NOW)
                .unwrap()
                .anchor()
                .and_then(|w| w.ascii_lower.clone())
        };
        assert_eq!(anchor("user_id:42"), Some(b"user_id".to_vec()));
        assert_eq!(anchor("user_id:42 Payment"), Some(b"payment".to_vec()));
        assert_eq!(anchor("-user_id:42"), None);
    }

    #[test]
    fn a_level_field_keeps_lines_stating_those_levels() {
        let at = |query: &str, level: Option<Level>| {
            let mut c = line("payment failed");
            c.level = level;
            parse(query, NOW).expect("a query").matches(&c)
        };
        assert!(at("level:warn", Some(Level::Warn)));
        assert!(!at("level:warn", Some(Level::Error)), "that level alone");
        assert!(at("level:>=warn", Some(Level::Error)));
        assert!(at("level:>=warn payment", Some(Level::Fatal)));
        assert!(
            !at("level:>=warn refund", Some(Level::Fatal)),
            "and the words"
        );
        assert!(!at("level:>=warn", Some(Level::Info)));
        assert!(!at("level:>=trace", None), "a line stating no level");
        assert!(at("level:debug level:error", Some(Level::Error)), "either");
        assert!(at("level:WARN,error", Some(Level::Error)));
    }

    #[test]
    fn a_malformed_query_names_the_character_and_the_reason() {
        let cases = [
            (r#"a "open"#, 3, "never closed"),
            ("/unclosed", 1, "never closed"),
            ("x /(/", 3, "invalid regular expression"),
            ("a - b", 3, "nothing to leave out"),
            ("service:", 9, "needs a value"),
            ("stream:both", 8, "stdout or stderr"),
            ("since:yesterday", 7, "not a time"),
            ("x level:loud", 9, "`loud` is not a level"),
            ("level:>=", 7, "not a level"),
            ("-service:web", 1, "cannot be left out"),
            (r#""""#, 1, "empty phrase"),
        ];
        for (query, position, reason) in cases {
            let e = parse(query, NOW).unwrap_err();
            assert_eq!(e.position, position, "{query}: {e}");
            assert!(e.reason.contains(reason), "{query}: {e}");
        }
    }

    #[test]
    fn bounds_on_length_terms_and_regex_size_are_errors() {
        let long = "a".repeat(MAX_PATTERN_CHARS + 1);
        assert!(parse(&long, NOW).unwrap_err().reason.contains("at most"));
        let many = vec!["w"; MAX_TERMS + 1].join(" ");
        assert!(parse(&many, NOW).unwrap_err().reason.contains("terms"));
        let huge = r"/\w{1000}\w{1000}\w{1000}/";
        assert!(parse(huge, NOW)
            .unwrap_err()
            .reason
            .contains("invalid regular expression"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_is_a_query_or_an_error_within_it(
            text in prop_oneof!["\\PC{0,200}", "[a-z\"/\\\\:\\- ]{0,60}"]
        ) {
            match parse(&text, 0) {
                Ok(q) => prop_assert!(q.include.len() + q.exclude.len() <= MAX_TERMS),
                Err(e) => prop_assert!(
                    e.position >= 1 && e.position <= text.chars().count() + 1,
                    "{e} in {text:?}"
                ),
            }
        }
    }
}
