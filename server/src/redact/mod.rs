//! Secret redaction: credentials that services write into their logs are replaced with
//! `[REDACTED:kind]` before a line leaves the server, live, in tails and in downloads.
//!
//! Every line is first matched against one `RegexSet` of all rules, so a line without a
//! secret (nearly every line) costs one scan; only a line that matches is rewritten. A line
//! with escape sequences is matched as a viewer sees it, without them. A private key spans
//! many lines: `KeyState` and `Reading` follow its blocks, per stream of a container, from
//! one read of its log to the next.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::LazyLock;

use base64::Engine as _;
use regex::{Captures, Regex, RegexSet, RegexSetBuilder};

mod keys;
pub use keys::{KeyState, Line, Reading, KEY_BLOCK_BYTES, KEY_BLOCK_LINES};

/// The kinds of secret Lookout recognises; each is named on the command line and in the
/// `[REDACTED:kind]` mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    PrivateKey,
    Jwt,
    Bearer,
    Basic,
    UrlPassword,
    AwsAccessKey,
    /// `password=…`, `secret: …`, `"token": "…"`, `api_key=…` and their relatives.
    Assignment,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::PrivateKey,
        Kind::Jwt,
        Kind::Bearer,
        Kind::Basic,
        Kind::UrlPassword,
        Kind::AwsAccessKey,
        Kind::Assignment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::PrivateKey => "private-key",
            Kind::Jwt => "jwt",
            Kind::Bearer => "bearer",
            Kind::Basic => "basic",
            Kind::UrlPassword => "url-password",
            Kind::AwsAccessKey => "aws-access-key",
            Kind::Assignment => "assignment",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which kinds to redact: `all` (the default), `none`, or a comma-separated list of kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindList(pub Vec<Kind>);

impl FromStr for KindList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => return Ok(KindList(Kind::ALL.to_vec())),
            "none" | "" => return Ok(KindList(Vec::new())),
            _ => {}
        }
        let mut kinds = Vec::new();
        for name in s.split(',').map(str::trim) {
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                    format!(
                        "unknown kind of secret {name:?}; expected all, none or a list of {}",
                        known.join(", ")
                    )
                })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(KindList(kinds))
    }
}

/// A secret pattern of the operator's, `NAME=REGEX`: matches become `[REDACTED:NAME]`.
#[derive(Clone, Debug)]
pub struct CustomRule {
    pub name: String,
    pub regex: Regex,
}

/// Largest compiled custom pattern, in bytes: a pattern is the operator's, but one that
/// compiles to megabytes would slow every line.
pub const CUSTOM_REGEX_BYTES: usize = 256 * 1024;

impl FromStr for CustomRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, pattern) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=REGEX, got {s:?}"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "the name of a secret pattern is letters, digits, - and _, got {name:?}"
            ));
        }
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(CUSTOM_REGEX_BYTES)
            .build()
            .map_err(|e| format!("secret pattern {name}: {e}"))?;
        Ok(CustomRule {
            name: name.to_owned(),
            regex,
        })
    }
}

/// What a rule does to the text it matches.
enum Action {
    /// Replace the whole match.
    Whole,
    /// Replace capture group 2, keep the rest.
    Value,
    /// `Bearer <token>`: replaced only if the token looks random (has a digit, or is long),
    /// so that "Bearer authentication" stays.
    BearerToken,
    /// `Basic <base64>`: replaced only if it decodes to `user:password`.
    BasicCredentials,
    /// `name=value`: the value is replaced, its quotes kept.
    AssignedValue,
}

impl Action {
    /// The part of a match that is the secret, if the match holds one.
    fn secret(&self, c: &Captures) -> Option<Range<usize>> {
        let found = match self {
            Action::Whole => c.get(0),
            Action::Value => c.get(2),
            Action::BearerToken => c
                .get(2)
                .filter(|t| t.len() >= 24 || t.as_str().bytes().any(|b| b.is_ascii_digit())),
            Action::BasicCredentials => c.get(2).filter(|t| is_user_password(t.as_str())),
            Action::AssignedValue => c.get(2).or_else(|| c.get(3)).or_else(|| c.get(4)),
        };
        // An empty value (`password=""`) hides nothing, nor does an empty match.
        found.map(|m| m.range()).filter(|r| !r.is_empty())
    }
}

struct Rule {
    mark: String,
    regex: Regex,
    action: Action,
}

/// Most `--redact-pattern`s: each one is matched against every line.
pub const MAX_CUSTOM_PATTERNS: usize = 64;

/// Largest compiled set of all rules, built-in and custom, in bytes. Each custom pattern is
/// bounded alone (`CUSTOM_REGEX_BYTES`); together they could still exceed what the regex
/// engine accepts, which would otherwise abort the start.
pub const RULES_BYTES: usize = 8 * 1024 * 1024;

/// Why the rules cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error(
        "too many secret patterns: {given} given, at most {MAX_CUSTOM_PATTERNS} (--redact-pattern)"
    )]
    TooManyPatterns { given: usize },
    #[error(
        "the secret patterns compile to more than {} MiB together; use fewer or simpler --redact-pattern patterns",
        RULES_BYTES / (1024 * 1024)
    )]
    TooLarge,
    #[error("the secret patterns do not compile together: {0}")]
    Set(String),
}

/// Redacts secrets in log text. Built once from the settings; shared by every stream.
pub struct Redactor {
    set: RegexSet,
    rules: Vec<Rule>,
    key_blocks: bool,
}

const BEGIN_KEY: &str = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----";
const END_KEY: &str = r"-----END [A-Z0-9 ]*PRIVATE KEY-----";
const KEY_MARK: &str = "[REDACTED:private-key]";

static BEGIN: LazyLock<Regex> = LazyLock::new(|| Regex::new(BEGIN_KEY).expect("compiles"));
static END: LazyLock<Regex> = LazyLock::new(|| Regex::new(END_KEY).expect("compiles"));

fn builtin(kind: Kind) -> (&'static str, Action) {
    match kind {
        // A whole block on one line (JSON often carries it with `\n` escapes), or the
        // start of a block whose other lines follow.
        Kind::PrivateKey => (
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*)",
            Action::Whole,
        ),
        Kind::Jwt => (
            r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}",
            Action::Whole,
        ),
        Kind::Bearer => (
            r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/-]{8,}=*)",
            Action::BearerToken,
        ),
        Kind::Basic => (
            r"(?i)(\bbasic\s+)([A-Za-z0-9+/]{4,}={0,2})",
            Action::BasicCredentials,
        ),
        Kind::UrlPassword => (
            r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)",
            Action::Value,
        ),
        Kind::AwsAccessKey => (r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", Action::Whole),
        // The name, an optional closing quote, `=` or `:`, then the value: quoted, or up to
        // a space or a separator.
        Kind::Assignment => (
            r#"(?i)(\b[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)["']?\s*[=:]\s*)(?:"([^"]*)"|'([^']*)'|([^\s,;&"'}\]]+))"#,
            Action::AssignedValue,
        ),
    }
}

impl Redactor {
    pub fn new(kinds: &[Kind], custom: &[CustomRule]) -> Result<Redactor, RedactError> {
        if custom.len() > MAX_CUSTOM_PATTERNS {
            return Err(RedactError::TooManyPatterns {
                given: custom.len(),
            });
        }
        let mut rules: Vec<Rule> = kinds
            .iter()
            .map(|&kind| {
                let (pattern, action) = builtin(kind);
                Rule {
                    mark: format!("[REDACTED:{kind}]"),
                    regex: Regex::new(pattern).expect("built-in secret patterns compile"),
                    action,
                }
            })
            .collect();
        rules.extend(custom.iter().map(|c| Rule {
            mark: format!("[REDACTED:{}]", c.name),
            regex: c.regex.clone(),
            action: Action::Whole,
        }));
        let set = RegexSetBuilder::new(rules.iter().map(|r| r.regex.as_str()))
            .size_limit(RULES_BYTES)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => RedactError::TooLarge,
                other => RedactError::Set(other.to_string()),
            })?;
        Ok(Redactor {
            set,
            rules,
            key_blocks: kinds.contains(&Kind::PrivateKey),
        })
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let marks: Vec<&str> = self.rules.iter().map(|r| r.mark.as_str()).collect();
        f.debug_struct("Redactor").field("marks", &marks).finish()
    }
}

/// A part of a line to replace: with the mark of rule `mark`, or with nothing.
struct Edit {
    range: Range<usize>,
    mark: Option<usize>,
}

impl Redactor {
    /// Redacts nothing.
    pub fn off() -> Redactor {
        Redactor {
            set: RegexSet::empty(),
            rules: Vec::new(),
            key_blocks: false,
        }
    }

    pub fn is_off(&self) -> bool {
        self.rules.is_empty()
    }

    /// The text with every secret replaced; borrowed when there is none.
    ///
    /// Secrets are looked for in the text as a viewer sees it, without its escape sequences
    /// (a coloured `password` is still a password), and replaced in the text as written:
    /// sequences inside a secret go with it, the others stay.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.is_off() {
            return Cow::Borrowed(text);
        }
        if !text.contains('\x1b') {
            return self.replace(text, self.secrets(text));
        }
        let shown = Shown::of(text);
        let mut edits: Vec<Edit> = self
            .secrets(&shown.plain)
            .into_iter()
            .map(|e| Edit {
                range: shown.original(e.range),
                mark: e.mark,
            })
            .collect();
        // What no viewer sees (a window title, a link's target) still leaves the server.
        for hidden in shown.hidden() {
            if self.set.is_match(&text[hidden.clone()]) {
                edits.push(Edit {
                    range: hidden,
                    mark: None,
                });
            }
        }
        self.replace(text, edits)
    }

    /// Where the secrets in `text` are, as one scan when there is none.
    fn secrets(&self, text: &str) -> Vec<Edit> {
        let mut edits = Vec::new();
        for i in self.set.matches(text).iter() {
            let rule = &self.rules[i];
            for c in rule.regex.captures_iter(text) {
                if let Some(range) = rule.action.secret(&c) {
                    edits.push(Edit {
                        range,
                        mark: Some(i),
                    });
                }
            }
        }
        edits
    }

    /// Secrets that overlap (a JWT that is also a bearer token) become one mark: that of the
    /// one that starts first, or of the rule listed first.
    fn replace<'a>(&self, text: &'a str, mut edits: Vec<Edit>) -> Cow<'a, str> {
        if edits.is_empty() {
            return Cow::Borrowed(text);
        }
        edits.sort_by_key(|e| (e.range.start, e.mark.is_none(), e.mark));
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut edits = edits.into_iter().peekable();
        while let Some(mut edit) = edits.next() {
            while let Some(next) = edits.next_if(|n| n.range.start < edit.range.end) {
                edit.range.end = edit.range.end.max(next.range.end);
                edit.mark = edit.mark.or(next.mark);
            }
            out.push_str(&text[at..edit.range.start]);
            if let Some(i) = edit.mark {
                out.push_str(&self.rules[i].mark);
            }
            at = edit.range.end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }
}

/// Whether `b64` is the base64 of `user:password`, as HTTP Basic credentials are.
fn is_user_password(b64: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .is_some_and(|s| {
            s.split_once(':').is_some_and(|(user, _)| !user.is_empty())
                && !s.chars().any(char::is_control)
        })
}

/// A line as a viewer sees it, without escape sequences, and the way back to the line as
/// written. The viewer's own parser decides what is shown, so that both agree to the byte.
struct Shown<'a> {
    text: &'a str,
    plain: Cow<'a, str>,
    /// The ranges of `text` that make up `plain`, in order; empty when the two are the same.
    runs: Vec<Range<usize>>,
    /// Where each run starts in `plain`.
    starts: Vec<usize>,
}

impl<'a> Shown<'a> {
    fn of(text: &'a str) -> Shown<'a> {
        if !text.contains('\x1b') {
            return Shown {
                text,
                plain: Cow::Borrowed(text),
                runs: Vec::new(),
                starts: Vec::new(),
            };
        }
        let runs = app::ansi::visible(text);
        let mut plain = String::with_capacity(text.len());
        let mut starts = Vec::with_capacity(runs.len());
        for r in &runs {
            starts.push(plain.len());
            plain.push_str(&text[r.clone()]);
        }
        Shown {
            text,
            plain: Cow::Owned(plain),
            runs,
            starts,
        }
    }

    /// The byte of `text` shown at byte `p` of `plain`.
    fn at(&self, p: usize) -> usize {
        if self.runs.is_empty() {
            return p;
        }
        let k = self.starts.partition_point(|&s| s <= p) - 1;
        self.runs[k].start + (p - self.starts[k])
    }

    /// The range of `text` that shows `plain[range]` (not empty), with the sequences between.
    fn original(&self, range: Range<usize>) -> Range<usize> {
        self.at(range.start)..self.at(range.end - 1) + 1
    }

    /// The escape sequences: the ranges of `text` between what is shown.
    fn hidden(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let same = matches!(self.plain, Cow::Borrowed(_));
        let ends = std::iter::once(0).chain(self.runs.iter().map(|r| r.end));
        let starts = self
            .runs
            .iter()
            .map(|r| r.start)
            .chain(std::iter::once(self.text.len()));
        ends.zip(starts)
            .filter(move |(a, b)| !same && a < b)
            .map(|(a, b)| a..b)
    }
}

// Private key blocks.
//
#[cfg(test)]
mod tests {
    //! Pure unit tests on realistic samples (keys made for these tests, in real formats) and
    //! near-misses. `Fake` stands in for the engine's lines: a stream, a position and a text.
    use super::*;

    pub(super) fn all() -> &'static Redactor {
        static ALL: LazyLock<Redactor> =
            LazyLock::new(|| Redactor::new(&Kind::ALL, &[]).expect("the built-in rules"));
        &ALL
    }

    fn redacted(text: &str) -> String {
        all().redact(text).into_owned()
    }

    #[derive(Clone, Debug)]
    pub(super) struct Fake {
        pub stderr: bool,
        pub pos: (i64, u32),
        pub text: String,
    }

    impl Line for Fake {
        fn is_stderr(&self) -> bool {
            self.stderr
        }
        fn position(&self) -> (i64, u32) {
            self.pos
        }
        fn text_mut(&mut self) -> &mut String {
            &mut self.text
        }
    }

    /// One read over `keys` of `lines` (stdout), the first at position `first`.
    pub(super) fn read_at(
        r: &Redactor,
        keys: &mut KeyState,
        from_start: bool,
        first: i64,
        lines: &[&str],
    ) -> Vec<String> {
        let fakes = lines.iter().enumerate().map(|(i, l)| Fake {
            stderr: false,
            pos: (first + i as i64, 0),
            text: (*l).to_owned(),
        });
        read_fakes(r, keys, from_start, fakes)
            .into_iter()
            .map(|f| f.text)
            .collect()
    }

    pub(super) fn read_fakes(
        r: &Redactor,
        keys: &mut KeyState,
        from_start: bool,
        lines: impl IntoIterator<Item = Fake>,
    ) -> Vec<Fake> {
        let mut reading = Reading::begin(keys, from_start);
        let mut out = Vec::new();
        for line in lines {
            reading.push(keys, r, line, &mut out);
        }
        reading.finish(keys, r, &mut out);
        out
    }

    /// A read from the beginning of the log.
    pub(super) fn from_start(lines: &[&str]) -> Vec<String> {
        read_at(all(), &mut KeyState::default(), true, 0, lines)
    }

    /// A read that starts somewhere in the log (a tail, a gap).
    pub(super) fn cut(lines: &[&str]) -> Vec<String> {
        read_at(all(), &mut KeyState::default(), false, 0, lines)
    }

    const MARK: &str = "[REDACTED:private-key]";

    pub(super) const RSA_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICWwIBAAKBgQC2ic4qYhXn2oXhlwwW0VkbTmcRUeLucpVX3+BAdgCDADucdFfG
wF+d18QryeqEPbWo8blFMWrx1HRwQ87MIM22W5LO6BXkA9dpM2CeHyBbHQ4f2qp9
4SD6sMMJ0cHmqPZpJyA6e1rt8HUcl7JTJLh2iM9wlRhwBBfOlaw9M0XTUr6IHVsz
8hSaQtXwcLA2NDN+jwIDAQABAoGAE3nnQfx+cv/DyJ1bpkXgn3hZTmEJ/pT9yIVL
4XCRsoDSmUcPWeAt0phWE3a0+jZEghzgTzUzq8kJh7UpDGVVZKx4KgQ6f8H2VI4u
3DS6EdQPWOdFh5WnQLYXftIkIu2r/S5bkDX7rKwQXF9Y3xKYGg7eNPvJz3Cr0Wnt
ZZbY4nkCQQDa4i2HM1nI1PcTZjKe8Iw0QYLpaRh6dpLzKl6wBe8Bh4NSb6JjaAiM
bsp5k+wqC0hPQH1MYe1nrF7ojuQ3nNRFAkEA1Vn3Ue7XXTWKyZhQ4hcWW4kKmMvL
6VuAbqtN3Xl5lv9aUXhX1t8KpnNtr0N39v/53z5VyB9zxy9aynX9Y/eQ0wJAHDsQ
ZHrj7iMvkyj1DW4ZAH8LHpPdWmKLC6Rou/FNhOy5RDhVQVYUWCg7jmmhJeR/OqM4
trZxJcX3X/qjCM/mXQJAaVMN+7tRhxFo0aqiKLDAj2d/2khdumE1uoRXtbqe1lAf
nVy9mdpxt9FgBNpX/6f/x2hoXN8D7x3+QdoWmKljGQJAcKiUJ/3BSqMXYJL7fKlf
yVUS3PGXb1MiHoyL6r+0mQ2tpHFiFyYIFvY1HHCQZFHnhsgs8bE7nnw3kdF9Jgfm
5Q==
-----END RSA PRIVATE KEY-----";

    pub(super) const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXTJYE57ZL+1LKd5f
SQ4IOA7bTNksaMbP97U7fie8ehChRANCAARZwh33sxm26Ox0tQDaukv3v1m46MGC
Oej9RwUHNN5BBJhw7HIPpU9jQMdsDqzcOhu3oTGz6w4A/4y0kQ5FvtWh
-----END PRIVATE KEY-----";

    pub(super) const ENCRYPTED: &str = "-----BEGIN RSA PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-128-CBC,53ED84C97C638D622F0F308AA317025C

0h9r+0GkWoiklflYDF1/6wUwhIMdN8II7TXv3zv6JeirDPWf3SOzs9FipknBJJ0i
ijcUQQwdvmDqSe5pl6SfrZg46uMkPrgsrN37p8448f1Ieml8hLVPYbuAQndL1Bq7
GLf1fetTMki76rKz5WuIu6gyDFrhfwXgfp8XBe2cefkv3JZvFomHqf5CL8ztc+Yv
Cp2eK5zeJ9KnNuV2/Q/gAybq/gPsOKWTOzZG/eZRbWE25Ddwg2dZysfljfk+CF54
P7wDuuWQdydMB9EGKs8ZUJA9lNnPed1t7s5rM5WVx+aRh84YPJmt0Cy4pL5raaMt
+ePo2btwPF5l8LAfVzDeROIg/NNxCcGk+ExRkakIRLXzs0m/ZDhf1w8NRNo0wIuG
AKInkT7xic2EMeWBMPFJX6Ot7L7OZlsv3wWk5QquiHM=
-----END RSA PRIVATE KEY-----";

    pub(super) const OPENSSH: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDWb2RdAcDqfjx2LHHBY/UXShZyefubNsMphdVc+HsS/gAAAIiTT0uGk09L
hgAAAAtzc2gtZWQyNTUxOQAAACDWb2RdAcDqfjx2LHHBY/UXShZyefubNsMphdVc+HsS/g
AAAEAPhNczqGNIhV/Zjo08PH7rI9++CbOMjThXk3PCznv/F9ZvZF0BwOp+PHYsccFj9RdK
FnJ5+5s2wymF1Vz4exL+AAAABHRlc3QB
-----END OPENSSH PRIVATE KEY-----";

    pub(super) const KEYS: [&str; 4] = [RSA_PKCS1, PKCS8, ENCRYPTED, OPENSSH];

    /// `ordinary` lines around `key`'s lines.
    fn around<'a>(key: &'a str, before: &[&'a str], after: &[&'a str]) -> Vec<&'a str> {
        before
            .iter()
            .copied()
            .chain(key.lines())
            .chain(after.iter().copied())
            .collect()
    }

    #[test]
    fn aws_access_keys() {
        assert_eq!(
            redacted("using key AKIAIOSFODNN7EXAMPLE for s3"),
            "using key [REDACTED:aws-access-key] for s3"
        );
        assert_eq!(
            redacted("ASIAY34FZKBOKMUTVV7A"),
            "[REDACTED:aws-access-key]"
        );
    }

    #[test]
    fn jwts() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(
            redacted(&format!("session {jwt} issued")),
            "session [REDACTED:jwt] issued"
        );
    }

    #[test]
    fn bearer_and_basic_credentials() {
        assert_eq!(
            redacted("Authorization: Bearer 8f2a9c1e4b7d6a3f0e5c"),
            "Authorization: Bearer [REDACTED:bearer]"
        );
        // base64("admin:s3cret")
        assert_eq!(
            redacted("Authorization: Basic YWRtaW46czNjcmV0"),
            "Authorization: Basic [REDACTED:basic]"
        );
    }

    #[test]
    fn passwords_in_urls() {
        assert_eq!(
            redacted("connecting to postgres://app:hunter2@db:5432/shop"),
            "connecting to postgres://app:[REDACTED:url-password]@db:5432/shop"
        );
        assert_eq!(
            redacted("redis://:Zx9!pass@cache:6379"),
            "redis://:Zx9!pass@cache:6379",
            "no user: the pattern wants user:password@"
        );
    }

    #[test]
    fn assignments_of_secrets() {
        assert_eq!(
            redacted("login user=bob password=hunter2 ok"),
            "login user=bob password=[REDACTED:assignment] ok"
        );
        assert_eq!(
            redacted(r#"{"user":"bob","api_key":"k-123456","n":1}"#),
            r#"{"user":"bob","api_key":"[REDACTED:assignment]","n":1}"#
        );
        assert_eq!(
            redacted("DB_PASSWORD: 'p a s s'"),
            "DB_PASSWORD: '[REDACTED:assignment]'"
        );
        assert_eq!(
            redacted("client_secret=abc&token=xyz"),
            "client_secret=[REDACTED:assignment]&token=[REDACTED:assignment]"
        );
    }

    #[test]
    fn a_private_key_on_one_line() {
        let line = r#"{"key":"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----","ok":true}"#;
        assert_eq!(
            redacted(line),
            r#"{"key":"[REDACTED:private-key]","ok":true}"#
        );
    }

    #[test]
    fn a_private_key_over_many_lines() {
        let lines = [
            "loading key",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "QyNTUxOQAAACDa2yWLaHFWsrwdmpC2cKBKSvUpwTv0dDAQk5bJ0qTYeAAAAJjmmQi85pkI",
            "-----END OPENSSH PRIVATE KEY----- loaded",
            "after",
        ];
        assert_eq!(
            from_start(&lines),
            [
                "loading key",
                "[REDACTED:private-key]",
                "[REDACTED:private-key]",
                "[REDACTED:private-key]",
                "[REDACTED:private-key] loaded",
                "after",
            ]
        );
        assert_eq!(MARK, format!("[REDACTED:{}]", Kind::PrivateKey));
    }

    #[test]
    fn keys_in_every_format_are_redacted_whole() {
        for key in KEYS {
            let lines = around(key, &["loading key from env"], &["key loaded, 1 identity"]);
            let out = from_start(&lines);
            let mut expected = vec!["loading key from env"];
            expected.extend(key.lines().map(|_| MARK));
            expected.push("key loaded, 1 identity");
            assert_eq!(out, expected, "{key}");
        }
    }

    #[test]
    fn a_begin_line_alone_hides_nothing_after_it() {
        let lines = [
            "GET / 200 ua=\"-----BEGIN PRIVATE KEY-----\"",
            "GET /health 200 1ms",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
            "worker 3 started",
        ];
        assert_eq!(
            from_start(&lines),
            [
                "GET / 200 ua=\"[REDACTED:private-key]",
                "GET /health 200 1ms",
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
                "worker 3 started",
            ],
            "the first line that cannot be a key's ends the block, and shows"
        );
        // A digest is hex, never a key's base64; a short word could be a body's last line.
        let sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            from_start(&["-----BEGIN EC PRIVATE KEY-----", sha256, "done"]),
            [MARK, sha256, "done"]
        );
        assert_eq!(
            from_start(&["-----BEGIN EC PRIVATE KEY-----", "ready", "ready", "done"]),
            [MARK, MARK, "ready", "done"]
        );
    }

    #[test]
    fn a_block_ends_at_its_bound() {
        let body = "QyNTUxOQAAACDa2yWLaHFWsrwdmpC2cKBKSvUpwTv0dDAQk5bJ0qTYeAAAAJjmmQ";
        assert_eq!(body.len(), 64);
        let mut lines = vec!["-----BEGIN PRIVATE KEY-----"];
        lines.extend(std::iter::repeat_n(body, KEY_BLOCK_LINES + 10));
        lines.push("after");
        let out = from_start(&lines);
        assert!(out[..=KEY_BLOCK_LINES].iter().all(|l| l == MARK));
        assert!(out[KEY_BLOCK_LINES + 1..].iter().all(|l| l != MARK));

        // The largest key there is: 16384-bit RSA, encrypted PKCS#8, about 12.6 KB of base64.
        let mut lines = vec!["-----BEGIN ENCRYPTED PRIVATE KEY-----"];
        lines.extend(std::iter::repeat_n(body, 12_600 / 64));
        lines.extend([
            "QyNTUxOQAAACDa2yWLaHFWsrwdmpC2cKBKSv==",
            "-----END ENCRYPTED PRIVATE KEY-----",
        ]);
        assert!(from_start(&lines).iter().all(|l| l == MARK));
    }

    #[test]
    fn a_line_of_the_wrong_shape_ends_a_block() {
        let full = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
        let short = "MIIEvQIBADANBgkq";
        assert_eq!(
            from_start(&["-----BEGIN PRIVATE KEY-----", full, short, full, "x y"]),
            [MARK, MARK, MARK, full, "x y"],
            "only END follows a shorter last line"
        );
        assert_eq!(
            from_start(&["-----BEGIN PRIVATE KEY-----", "", full]),
            [MARK, "", full],
            "a blank line follows headers only"
        );
    }

    #[test]
    fn an_end_line_alone_is_redacted() {
        assert_eq!(
            from_start(&["-----END RSA PRIVATE KEY-----", "next"]),
            [MARK, "next"]
        );
        assert_eq!(
            from_start(&["5Q==-----END RSA PRIVATE KEY----- loaded"]),
            ["[REDACTED:private-key] loaded"]
        );
    }

    #[test]
    fn a_read_that_starts_inside_a_block_shows_none_of_it() {
        for key in KEYS {
            let lines = around(key, &["loading key"], &["key loaded", "GET / 200"]);
            for k in 0..lines.len() {
                let out = cut(&lines[k..]);
                for (got, line) in out.iter().zip(&lines[k..]) {
                    let of_key = key.lines().any(|l| l == *line);
                    if of_key {
                        assert_eq!(got, MARK, "cut at {k} of {key}");
                    } else {
                        assert_eq!(got, line, "cut at {k} of {key}");
                    }
                }
            }
        }
    }

    #[test]
    fn lines_held_at_the_start_of_a_read_go_as_they_are_once_known() {
        let full = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
        for lines in [
            &["ready", "listening on :8080"][..],
            &[full, full, "GET / 200"],
            &["", "GET / 200"],
            &["1", "2", "3 done"],
            &["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
        ] {
            assert_eq!(cut(lines), lines, "{lines:?}");
        }
        // Nothing says what they are before the read ends: they may be a key's, so they go.
        assert_eq!(cut(&["ok"]), [MARK]);
        assert_eq!(cut(&[full, full]), [MARK, MARK]);
        // Base64 followed by a BEGIN line was no key's body.
        assert_eq!(
            cut(&[
                full,
                "-----BEGIN PRIVATE KEY-----",
                full,
                "-----END PRIVATE KEY-----"
            ]),
            [full, MARK, MARK, MARK]
        );
    }

    #[test]
    fn held_lines_keep_their_place_among_the_other_stream() {
        let r = all();
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
        let line = |n: i64, stderr: bool, text: &str| Fake {
            stderr,
            pos: (n, 0),
            text: text.to_owned(),
        };
        let lines = [
            line(1, false, body),
            line(2, true, "err one"),
            line(3, false, "-----END PRIVATE KEY-----"),
            line(4, true, "err two"),
            line(5, false, body),
            line(6, true, "err three"),
            line(7, false, "out after"),
        ];
        let out = read_fakes(r, &mut KeyState::default(), false, lines);
        let got: Vec<(i64, &str)> = out.iter().map(|l| (l.pos.0, l.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (1, MARK),
                (2, "err one"),
                (3, MARK),
                (4, "err two"),
                (5, body),
                (6, "err three"),
                (7, "out after"),
            ]
        );
    }

    #[test]
    fn a_follower_goes_on_inside_a_block_across_reads() {
        let r = all();
        let mut keys = KeyState::default();
        let key: Vec<&str> = RSA_PKCS1.lines().collect();
        // The first read (a tail of the log) ends in the middle of the key.
        let first = read_at(r, &mut keys, false, 0, &[&["booting"], &key[..6]].concat());
        assert_eq!(first[0], "booting");
        assert!(first[1..].iter().all(|l| l == MARK));
        // The next one starts again at the second of the last line read: the lines at
        // positions 3 to 6 come twice and count once.
        let again: Vec<&str> = [&key[2..], &["key loaded"]].concat();
        let next = read_at(r, &mut keys, false, 3, &again);
        assert!(next[..next.len() - 1].iter().all(|l| l == MARK), "{next:?}");
        assert_eq!(next.last().map(String::as_str), Some("key loaded"));
        // A read without the state has lost the BEGIN line and holds the body back.
        assert!(cut(&key[6..]).iter().all(|l| l == MARK));
    }

    #[test]
    fn lines_read_again_do_not_count_twice_toward_the_bound() {
        let r = all();
        let mut keys = KeyState::default();
        let body = "QyNTUxOQAAACDa2yWLaHFWsrwdmpC2cKBKSvUpwTv0dDAQk5bJ0qTYeAAAAJjmmQi8";
        let mut lines = vec!["-----BEGIN RSA PRIVATE KEY-----"];
        lines.extend(std::iter::repeat_n(body, 150));
        assert!(read_at(r, &mut keys, true, 0, &lines)
            .iter()
            .all(|l| l == MARK));
        // Reopened at the start of a second: the last 100 body lines again, then 50 more and
        // the END. Counted twice, the block would pass its bound.
        lines.extend(std::iter::repeat_n(body, 50));
        lines.push("-----END RSA PRIVATE KEY-----");
        let again = read_at(r, &mut keys, false, 51, &lines[51..]);
        assert!(again.iter().all(|l| l == MARK), "{again:?}");
    }

    #[test]
    fn a_read_that_breaks_off_while_holding_fails_closed() {
        let r = all();
        let mut keys = KeyState::default();
        let body = "QyNTUxOQAAACDa2yWLaHFWsrwdmpC2cKBKSvUpwTv0dDAQk5bJ0qTYeAAAAJjmmQi8";
        let mut reading = Reading::begin(&mut keys, false);
        let mut out = Vec::new();
        for n in 0..2 {
            let line = Fake {
                stderr: false,
                pos: (n, 0),
                text: body.to_owned(),
            };
            reading.push(&mut keys, r, line, &mut out);
        }
        assert!(out.is_empty(), "held");
        drop(reading);
        let next = read_at(r, &mut keys, false, 0, &[body, body, body, "a b"]);
        assert_eq!(next, [MARK, MARK, MARK, "a b"]);
    }

    #[test]
    fn colour_codes_do_not_hide_secrets() {
        let cases = [
            (
                "level=info \x1b[36mpassword\x1b[0m=hunter2 user=bob",
                "level=info \x1b[36mpassword\x1b[0m=[REDACTED:assignment] user=bob",
            ),
            (
                "pass\x1b[1mword\x1b[0m=\x1b[31mhun\x1b[4mter2\x1b[0m ok",
                "pass\x1b[1mword\x1b[0m=\x1b[31m[REDACTED:assignment]\x1b[0m ok",
            ),
            (
                "key \x1b[33mAKIA\x1b[0mIOSFODNN7EXAMPLE done",
                "key \x1b[33m[REDACTED:aws-access-key] done",
            ),
            (
                "\x1b[2mAuthorization: Bearer\x1b[0m 8f2a9c1e\x1b[1m4b7d6a3f0e5c",
                "\x1b[2mAuthorization: Bearer\x1b[0m [REDACTED:bearer]",
            ),
            // Shown to no one, sent all the same: a sequence with a secret goes.
            ("\x1b]0;password=hunter2\x07done", "done"),
            ("\x1b[32mok\x1b[0m", "\x1b[32mok\x1b[0m"),
        ];
        for (text, expected) in cases {
            assert_eq!(redacted(text), expected, "{text:?}");
        }
        assert_eq!(
            from_start(&[
                "\x1b[32m-----BEGIN RSA PRIVATE KEY-----\x1b[0m",
                "\x1b[32mMIICWwIBAAKBgQC2ic4qYhXn2oXhlwwW0VkbTmcRUeLucpVX3+BAdgCDADucdFfG\x1b[0m",
                "5Q==\x1b[32m-----END RSA \x1b[1mPRIVATE KEY-----\x1b[0m \x1b[2mdone",
                "after",
            ]),
            [
                "\x1b[32m[REDACTED:private-key]\x1b[0m",
                MARK,
                "[REDACTED:private-key]\x1b[0m \x1b[2mdone",
                "after",
            ]
        );
    }

    #[test]
    fn too_many_or_too_large_patterns_are_an_error() {
        let rule = |i: usize| {
            format!("p{i}=ORD-{i}-[0-9]{{6}}")
                .parse::<CustomRule>()
                .unwrap()
        };
        let many: Vec<CustomRule> = (0..=MAX_CUSTOM_PATTERNS).map(rule).collect();
        let err = Redactor::new(&Kind::ALL, &many).unwrap_err();
        assert!(matches!(err, RedactError::TooManyPatterns { given: 65 }));
        assert!(err.to_string().contains("at most 64"), "{err}");
        assert!(Redactor::new(&Kind::ALL, &many[..MAX_CUSTOM_PATTERNS]).is_ok());

        let big: Vec<CustomRule> = (0..MAX_CUSTOM_PATTERNS)
            .map(|i| format!("big{i}={BIG_PATTERN}").parse().unwrap())
            .collect();
        let err = Redactor::new(&Kind::ALL, &big).unwrap_err();
        assert!(matches!(err, RedactError::TooLarge), "{err}");
        assert!(err.to_string().contains("MiB"), "{err}");
    }

    /// About 200 KiB compiled: under the bound of one pattern (`CUSTOM_REGEX_BYTES`), but 64
    /// of them are over the bound of all.
    const BIG_PATTERN: &str = r"(?:[a-z]{100}){30}";

    #[test]
    fn near_misses_stay_as_they_are() {
        for text in [
            "password reset requested for alice@example.com",
            "the secret garden opens at 9",
            "tokenizer=fast bpe",
            "basic configuration loaded",
            "Basic auth is disabled",
            "Bearer tokens expire after 1h",
            "Bearer authentication required",
            r#"{"password":""}"#,
            "http://example.com:8080/path?q=1",
            "mailto:alice@example.com",
            "AKIA is a prefix, AKIA123 is too short",
            "eyJ alone is not a token",
            "public key: -----BEGIN PUBLIC KEY-----",
            "GET /api/users?page=2 200 12ms",
        ] {
            assert_eq!(redacted(text), text, "{text}");
        }
    }

    #[test]
    fn only_the_chosen_kinds() {
        let kinds: KindList = "jwt,aws-access-key".parse().unwrap();
        let r = Redactor::new(&kinds.0, &[]).unwrap();
        assert_eq!(
            r.redact("password=x AKIAIOSFODNN7EXAMPLE"),
            "password=x [REDACTED:aws-access-key]"
        );
        assert!("none".parse::<KindList>().unwrap().0.is_empty());
        let err = "jwt,pasword".parse::<KindList>().unwrap_err();
        assert!(
            err.contains("\"pasword\"") && err.contains("assignment"),
            "{err}"
        );
    }

    #[test]
    fn custom_patterns() {
        let rule: CustomRule = "order-id=ORD-[0-9]{6}".parse().unwrap();
        let r = Redactor::new(&[], &[rule]).unwrap();
        assert_eq!(
            r.redact("paid ORD-123456 today"),
            "paid [REDACTED:order-id] today"
        );
        assert!("noequals".parse::<CustomRule>().is_err());
        assert!("bad name=x".parse::<CustomRule>().is_err());
        let huge = format!("big=(?:{}){{1000}}", "[a-z]{100}");
        let err = huge.parse::<CustomRule>().unwrap_err();
        assert!(err.contains("big"), "{err}");
    }

    #[test]
    fn off_changes_nothing() {
        let r = Redactor::off();
        let text = "password=hunter2 -----BEGIN RSA PRIVATE KEY-----";
        let out = read_at(&r, &mut KeyState::default(), false, 0, &[text, "MIIB"]);
        assert_eq!(out, [text, "MIIB"]);
    }
}

#[cfg(test)]
mod props {
    //! Property tests: any text is taken; secrets in any surroundings, coloured or not, are
    //! gone; a key cut anywhere shows nothing of itself; plain words stay as they are.
    use super::tests::{all, from_start, read_at};
    use super::*;
    use proptest::prelude::*;

    /// A secret as (what comes before its value, the value, what comes after).
    fn secret() -> impl Strategy<Value = (String, String, String)> {
        let parts = |before: &'static str, value: &'static str, after: &'static str| {
            value.prop_map(move |v| (before.to_owned(), v, after.to_owned()))
        };
        prop_oneof![
            parts("", "(AKIA|ASIA)[A-Z0-9]{16}", ""),
            parts(
                "",
                "eyJ[A-Za-z0-9_-]{8,30}\\.eyJ[A-Za-z0-9_-]{8,30}\\.[A-Za-z0-9_-]{10,40}",
                ""
            ),
            parts("password=", "[A-Za-z0-9!#%^*]{4,20}", ""),
            parts("api_key: ", "[A-Za-z0-9]{6,30}", ""),
            parts("Bearer ", "[A-Za-z0-9]{8,30}[0-9]", ""),
            parts("https://app:", "[A-Za-z0-9]{4,12}", "@db.example"),
        ]
    }

    /// The text without its escape sequences, and without the marks.
    fn seen(text: &str) -> String {
        let plain = app::ansi::parse(text).plain;
        Regex::new(r"\[REDACTED:[a-z-]+\]")
            .unwrap()
            .replace_all(&plain, "")
            .into_owned()
    }

    /// A key block as lines: BEGIN, maybe headers and a blank line, base64 lines of one width
    /// and a shorter last one, END.
    fn key_block() -> impl Strategy<Value = Vec<String>> {
        let label = prop_oneof![
            Just("RSA "),
            Just("EC "),
            Just("OPENSSH "),
            Just(""),
            Just("ENCRYPTED ")
        ];
        let width = prop_oneof![Just(64usize), Just(70), Just(76)];
        (label, width, any::<bool>(), 1usize..30, 0usize..64)
            .prop_flat_map(|(label, width, headers, full, last)| {
                let line =
                    proptest::string::string_regex(&format!("[A-Za-z0-9+/]{{{width}}}")).unwrap();
                let last = proptest::string::string_regex(&format!(
                    "([A-Za-z0-9+/]{{{}}}={{0,2}})?",
                    last.min(width - 3).max(1)
                ))
                .unwrap();
                (
                    Just(label),
                    Just(headers),
                    proptest::collection::vec(line, full),
                    last,
                )
            })
            .prop_map(|(label, headers, body, last)| {
                let mut lines = vec![format!("-----BEGIN {label}PRIVATE KEY-----")];
                if headers {
                    lines.push("Proc-Type: 4,ENCRYPTED".to_owned());
                    lines.push("DEK-Info: AES-128-CBC,53ED84C97C638D622F0F308AA317025C".to_owned());
                    lines.push(String::new());
                }
                lines.extend(body);
                if !last.is_empty() {
                    lines.push(last);
                }
                lines.push(format!("-----END {label}PRIVATE KEY-----"));
                lines
            })
    }

    /// A line of ordinary log text: words with spaces between.
    fn ordinary() -> impl Strategy<Value = String> {
        "[a-z]{1,10}( [a-z0-9:/.=]{1,12}){1,5}"
    }

    proptest! {
        #[test]
        fn any_text_is_taken(text in "\\PC{0,200}") {
            let r = all();
            let _ = r.redact(&text);
            let _ = read_at(r, &mut KeyState::default(), false, 0, &[&text, &text]);
        }

        #[test]
        fn a_secret_anywhere_is_gone(before in "[a-z ]{0,30}", (key, value, tail) in secret(), after in "[a-z ]{0,30}") {
            let s = format!("{key}{value}{tail}");
            let text = format!("{before} {s} {after}");
            let out = all().redact(&text).into_owned();
            prop_assert!(out.contains("[REDACTED:"), "{} → {}", text, out);
            prop_assert!(!seen(&out).contains(&value), "{} leaks {} → {}", text, value, out);
        }

        #[test]
        fn a_coloured_secret_is_gone(
            (key, value, tail) in secret(),
            cuts in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..108), 1..6),
        ) {
            let s = format!("{key}{value}{tail}");
            // Colour codes anywhere in the secret: in its name, before `=`, around and inside
            // its value.
            let mut at: Vec<(usize, String)> = cuts
                .iter()
                .map(|(i, c)| (i.index(s.len() + 1), format!("\x1b[{c}m")))
                .collect();
            at.sort();
            let mut text = String::from("msg=login ");
            let mut from = 0;
            for (i, code) in &at {
                text.push_str(&s[from..*i]);
                text.push_str(code);
                from = *i;
            }
            text.push_str(&s[from..]);
            text.push_str("\x1b[0m done");
            let out = all().redact(&text).into_owned();
            prop_assert!(!seen(&out).contains(&value), "{:?} leaks {} → {:?}", text, value, out);
            prop_assert!(seen(&out).ends_with(" done"), "{:?} → {:?}", text, out);
        }

        #[test]
        fn a_key_cut_anywhere_shows_none_of_it(
            before in proptest::collection::vec(ordinary(), 0..3),
            key in key_block(),
            after in proptest::collection::vec(ordinary(), 1..4),
        ) {
            let lines: Vec<&str> = before.iter().chain(&key).chain(&after).map(String::as_str).collect();
            let start = before.len();
            for k in 0..lines.len() {
                let out = read_at(all(), &mut KeyState::default(), k == 0, 0, &lines[k..]);
                prop_assert_eq!(out.len(), lines.len() - k);
                for (i, got) in out.iter().enumerate() {
                    let n = k + i;
                    if (start..start + key.len()).contains(&n) {
                        prop_assert_eq!(got, "[REDACTED:private-key]", "read from line {}", k);
                    } else {
                        // An ordinary line can hold a secret of its own (`pwd=y`): the key
                        // around it must change nothing about how it is redacted.
                        prop_assert_eq!(got, &all().redact(lines[n]), "read from line {}", k);
                    }
                }
            }
        }

        #[test]
        fn a_begin_line_alone_hides_nothing_after_it(
            lines in proptest::collection::vec(
                prop_oneof!["[A-Za-z0-9+/]{1,76}", "[^\\-\\p{C}]{0,80}"],
                1..20,
            ),
        ) {
            let mut all_lines = vec!["ua=-----BEGIN PRIVATE KEY-----"];
            all_lines.extend(lines.iter().map(String::as_str));
            let out = from_start(&all_lines);
            let body = Regex::new(r"^\s*(?:[A-Za-z0-9+/]+={0,2}|Proc-Type:.*|DEK-Info:.*)?\s*$").unwrap();
            let first_not_body = lines.iter().position(|l| !body.is_match(l)).unwrap_or(lines.len());
            for (i, line) in lines.iter().enumerate().skip(first_not_body) {
                prop_assert_eq!(&out[i + 1], &all().redact(line), "line {} of {:?}", i, lines);
            }
        }

        #[test]
        fn plain_words_stay(text in "[a-z ]{0,80}") {
            prop_assert_eq!(all().redact(&text), text.as_str());
        }
    }
}
