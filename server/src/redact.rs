//! Secret redaction: credentials that services write into their logs are replaced with
//! `[REDACTED:kind]` before a line leaves the server, live, in tails and in downloads.
//!
//! Every line is first matched against one `RegexSet` of all rules, so a line without a
//! secret (nearly every line) costs one scan; only a line that matches is rewritten rule by
//! rule. A private key spans many lines: `KeyBlocks` remembers, per stream, that a block has
//! begun and redacts its lines until it ends.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use regex::{Captures, Regex, RegexSet};

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
    /// Keep capture group 1, replace group 2, keep group 3 (if any).
    Value,
    /// `Bearer <token>`: replaced only if the token looks random (has a digit, or is long),
    /// so that "Bearer authentication" stays.
    BearerToken,
    /// `Basic <base64>`: replaced only if it decodes to `user:password`.
    BasicCredentials,
    /// `name=value`: the value is replaced, its quotes kept.
    AssignedValue,
}

struct Rule {
    mark: String,
    regex: Regex,
    action: Action,
}

/// Redacts secrets in log text. Built once from the settings; shared by every stream.
pub struct Redactor {
    set: RegexSet,
    rules: Vec<Rule>,
    key_blocks: bool,
}

const BEGIN_KEY: &str = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----";
const END_KEY: &str = r"-----END [A-Z0-9 ]*PRIVATE KEY-----";

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
    pub fn new(kinds: &[Kind], custom: &[CustomRule]) -> Redactor {
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
        let set = RegexSet::new(rules.iter().map(|r| r.regex.as_str()))
            .expect("patterns that compile alone compile as a set");
        Redactor {
            set,
            rules,
            key_blocks: kinds.contains(&Kind::PrivateKey),
        }
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let marks: Vec<&str> = self.rules.iter().map(|r| r.mark.as_str()).collect();
        f.debug_struct("Redactor").field("marks", &marks).finish()
    }
}

impl Redactor {
    /// Redacts nothing.
    pub fn off() -> Redactor {
        Redactor::new(&[], &[])
    }

    pub fn is_off(&self) -> bool {
        self.rules.is_empty()
    }

    /// The text with every secret replaced; borrowed when there is none.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let matched = self.set.matches(text);
        if !matched.matched_any() {
            return Cow::Borrowed(text);
        }
        let mut out = Cow::Borrowed(text);
        for i in matched.iter() {
            let rule = &self.rules[i];
            let replaced = match rule.action {
                Action::Whole => rule.regex.replace_all(&out, rule.mark.as_str()),
                Action::Value => rule.regex.replace_all(&out, |c: &Captures| {
                    format!("{}{}{}", &c[1], rule.mark, &c[3])
                }),
                Action::BearerToken => rule.regex.replace_all(&out, |c: &Captures| {
                    let token = &c[2];
                    if token.len() >= 24 || token.bytes().any(|b| b.is_ascii_digit()) {
                        format!("{}{}", &c[1], rule.mark)
                    } else {
                        c[0].to_owned()
                    }
                }),
                Action::BasicCredentials => rule.regex.replace_all(&out, |c: &Captures| {
                    if is_user_password(&c[2]) {
                        format!("{}{}", &c[1], rule.mark)
                    } else {
                        c[0].to_owned()
                    }
                }),
                Action::AssignedValue => rule.regex.replace_all(&out, |c: &Captures| {
                    let quote = match (c.get(2), c.get(3)) {
                        (Some(v), _) if v.is_empty() => return c[0].to_owned(),
                        (_, Some(v)) if v.is_empty() => return c[0].to_owned(),
                        (Some(_), _) => "\"",
                        (_, Some(_)) => "'",
                        _ => "",
                    };
                    format!("{}{quote}{}{quote}", &c[1], rule.mark)
                }),
            };
            if let Cow::Owned(s) = replaced {
                out = Cow::Owned(s);
            }
        }
        out
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

/// Per stream of a container: whether a private key block has begun and not yet ended, so
/// that its lines are redacted too.
#[derive(Default)]
pub struct KeyBlocks {
    inside: bool,
}

impl KeyBlocks {
    /// Redacts `text`, one line of a stream, in place.
    pub fn redact(&mut self, redactor: &Redactor, text: &mut String) {
        if redactor.is_off() {
            return;
        }
        if redactor.key_blocks {
            if self.inside {
                if let Some(end) = end_of_block(text) {
                    self.inside = false;
                    let rest = text.split_off(end);
                    *text = format!("[REDACTED:{}]{}", Kind::PrivateKey, redactor.redact(&rest));
                } else {
                    *text = format!("[REDACTED:{}]", Kind::PrivateKey);
                }
                return;
            }
            if begins_block(text) {
                self.inside = true;
            }
        }
        if let Cow::Owned(s) = redactor.redact(text) {
            *text = s;
        }
    }
}

/// A line that opens a key block and does not close it.
fn begins_block(text: &str) -> bool {
    static BEGIN: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(BEGIN_KEY).expect("compiles"));
    BEGIN
        .find_iter(text)
        .last()
        .is_some_and(|m| end_of_block(&text[m.end()..]).is_none())
}

/// The byte just past the first `-----END … PRIVATE KEY-----` in `text`.
fn end_of_block(text: &str) -> Option<usize> {
    static END: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(END_KEY).expect("compiles"));
    END.find(text).map(|m| m.end())
}

#[cfg(test)]
mod tests {
    //! Pure unit tests on realistic samples (made-up keys in real formats) and near-misses.
    use super::*;

    fn all() -> Redactor {
        Redactor::new(&Kind::ALL, &[])
    }

    fn redacted(text: &str) -> String {
        all().redact(text).into_owned()
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
        let redactor = all();
        let mut blocks = KeyBlocks::default();
        let lines = [
            "loading key",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "QyNTUxOQAAACDa2yWLaHFWsrwdmpC2cKBKSvUpwTv0dDAQk5bJ0qTYeAAAAJjmmQi85pkI",
            "-----END OPENSSH PRIVATE KEY----- loaded",
            "after",
        ];
        let out: Vec<String> = lines
            .iter()
            .map(|l| {
                let mut s = (*l).to_owned();
                blocks.redact(&redactor, &mut s);
                s
            })
            .collect();
        assert_eq!(
            out,
            [
                "loading key",
                "[REDACTED:private-key]",
                "[REDACTED:private-key]",
                "[REDACTED:private-key]",
                "[REDACTED:private-key] loaded",
                "after",
            ]
        );
    }

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
        let r = Redactor::new(&kinds.0, &[]);
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
        let r = Redactor::new(&[], &[rule]);
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
        let mut blocks = KeyBlocks::default();
        let mut s = "password=hunter2 -----BEGIN RSA PRIVATE KEY-----".to_owned();
        blocks.redact(&r, &mut s);
        assert_eq!(s, "password=hunter2 -----BEGIN RSA PRIVATE KEY-----");
    }
}

#[cfg(test)]
mod props {
    //! Property tests: any text is taken; secrets in any surroundings are gone; plain words
    //! stay as they are.
    use super::*;
    use proptest::prelude::*;

    fn all() -> Redactor {
        Redactor::new(&Kind::ALL, &[])
    }

    fn secret() -> impl Strategy<Value = String> {
        prop_oneof![
            "(AKIA|ASIA)[A-Z0-9]{16}",
            "eyJ[A-Za-z0-9_-]{8,30}\\.eyJ[A-Za-z0-9_-]{8,30}\\.[A-Za-z0-9_-]{10,40}",
            "password=[A-Za-z0-9!#%^*]{4,20}",
            "api_key: [A-Za-z0-9]{6,30}",
            "Bearer [A-Za-z0-9]{8,30}[0-9]",
            "https://[a-z]{1,8}:[A-Za-z0-9]{4,12}@[a-z]{1,8}\\.example",
        ]
    }

    proptest! {
        #[test]
        fn any_text_is_taken(text in "\\PC{0,200}") {
            let r = all();
            let _ = r.redact(&text);
            let mut blocks = KeyBlocks::default();
            let mut s = text.clone();
            blocks.redact(&r, &mut s);
        }

        #[test]
        fn a_secret_anywhere_is_gone(before in "[a-z ]{0,30}", s in secret(), after in "[a-z ]{0,30}") {
            let text = format!("{before} {s} {after}");
            let out = all().redact(&text).into_owned();
            prop_assert!(out.contains("[REDACTED:"), "{} → {}", text, out);
            let value = s.rsplit(['=', ' ', ':', '@']).find(|v| v.len() >= 4).unwrap_or(&s);
            prop_assert!(!out.contains(&s), "{} → {}", text, out);
            if !s.starts_with("https://") {
                prop_assert!(!out.contains(value), "{} leaks {} → {}", text, value, out);
            }
        }

        #[test]
        fn plain_words_stay(text in "[a-z ]{0,80}") {
            prop_assert_eq!(all().redact(&text), text.as_str());
        }
    }
}
