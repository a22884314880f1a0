//! A line's level, found by the server once, from where logging libraries put it: a JSON
//! object's level field (named as pino, bunyan, zap, logrus, Serilog, Elastic Common Schema
//! and others name it; pino's and bunyan's numbers too), a logfmt `level=`, or the start of
//! the line (`[ERROR]`, `ERROR:`, `WARN `, logrus's `ERRO[0000]`, glog's `E1202 …`,
//! Rails' `E, [`, a syslog `<N>` priority), after a leading timestamp if there is one.
//! A word in the middle of a message is never taken for a level: a line with none has none.

use app::protocol::Level;

/// The level `text` states, if it states one.
pub fn detect(text: &str) -> Option<Level> {
    let text = without_leading_colour(text).trim_start();
    if text.starts_with('{') {
        return from_json(text);
    }
    from_start(text)
        .or_else(|| from_start(after_timestamp(text)?))
        .or_else(|| from_logfmt(text))
}

/// A level's name as libraries write it, in any case: full, short and four-letter forms.
fn named(word: &str) -> Option<Level> {
    let level = match word.to_ascii_lowercase().as_str() {
        "trace" | "trac" | "trc" | "verbose" | "verb" | "vrb" | "finest" | "finer" => Level::Trace,
        "debug" | "debu" | "dbg" | "dbug" | "fine" => Level::Debug,
        "info" | "inf" | "information" | "informational" | "notice" | "note" => Level::Info,
        "warn" | "warning" | "wrn" | "wrng" => Level::Warn,
        "error" | "erro" | "err" | "eror" | "severe" => Level::Error,
        "fatal" | "fata" | "ftl" | "critical" | "crit" | "crt" | "panic" | "pani" | "dpanic"
        | "emerg" | "emergency" | "alert" => Level::Fatal,
        _ => return None,
    };
    Some(level)
}

/// pino's and bunyan's numbers: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
fn numbered(n: f64) -> Option<Level> {
    let level = match n as i64 {
        10..=19 => Level::Trace,
        20..=29 => Level::Debug,
        30..=39 => Level::Info,
        40..=49 => Level::Warn,
        50..=59 => Level::Error,
        60..=69 => Level::Fatal,
        _ => return None,
    };
    Some(level)
}

/// The keys a JSON line's level goes under, compared in any case.
const JSON_KEYS: [&str; 9] = [
    "level",
    "lvl",
    "severity",
    "loglevel",
    "log.level",
    "@l",
    "@level",
    "levelname",
    "log_level",
];

fn from_json(text: &str) -> Option<Level> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    for (key, value) in &object {
        let key = key.to_ascii_lowercase();
        let found = if JSON_KEYS.contains(&key.as_str()) {
            from_json_value(value)
        } else if key == "log" {
            // Elastic Common Schema nests it: {"log": {"level": "warn"}}.
            value
                .as_object()
                .and_then(|log| log.iter().find(|(k, _)| k.eq_ignore_ascii_case("level")))
                .and_then(|(_, v)| from_json_value(v))
        } else {
            None
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn from_json_value(value: &serde_json::Value) -> Option<Level> {
    match value {
        serde_json::Value::String(s) => named(s.trim()),
        serde_json::Value::Number(n) => numbered(n.as_f64()?),
        _ => None,
    }
}

/// A level word at the very start: bracketed in any case, or in capitals followed by a
/// separator; glog's and Rails' one-letter forms; a syslog priority.
fn from_start(text: &str) -> Option<Level> {
    if let Some(level) = syslog(text).or_else(|| glog(text)).or_else(|| rails(text)) {
        return Some(level);
    }
    if let Some(inner) = text.strip_prefix('[') {
        let word = inner.split(']').next()?.trim();
        return named(word);
    }
    let end = text
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (word, rest) = text.split_at(end);
    let capitals = word.len() >= 3 && word.bytes().all(|b| b.is_ascii_uppercase());
    // `ERROR:`, `WARN `, `INFO\t`, `ERRO[0000]`, `ERROR` alone; `ERRORS` or `INFORM` are words.
    let separated = rest.is_empty() || rest.starts_with([':', ' ', '\t', '[', '|', '-', '\u{1b}']);
    if capitals && separated {
        return named(word);
    }
    None
}

/// `<N>`: a syslog priority, facility × 8 + severity.
fn syslog(text: &str) -> Option<Level> {
    let inner = text.strip_prefix('<')?;
    let end = inner.find('>')?;
    let priority: u32 = inner[..end].parse().ok()?;
    if end > 3 || priority > 191 {
        return None;
    }
    Some(match priority % 8 {
        0..=2 => Level::Fatal,
        3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        _ => Level::Debug,
    })
}

/// glog: `E1202 10:00:00.123456 …`: a letter, month and day, then the time.
fn glog(text: &str) -> Option<Level> {
    let b = text.as_bytes();
    let shaped = b.len() >= 14
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
        && b[6..8].iter().all(u8::is_ascii_digit)
        && b[8] == b':';
    if !shaped {
        return None;
    }
    letter(b[0])
}

/// Ruby's Logger, as Rails writes it: `E, [2026-12-02T10:00:00.123456 #1] ERROR -- : …`.
fn rails(text: &str) -> Option<Level> {
    let b = text.as_bytes();
    if b.len() >= 4 && &b[1..4] == b", [" {
        return letter(b[0]);
    }
    None
}

fn letter(b: u8) -> Option<Level> {
    Some(match b {
        b'T' => Level::Trace,
        b'D' => Level::Debug,
        b'I' => Level::Info,
        b'W' => Level::Warn,
        b'E' => Level::Error,
        b'F' => Level::Fatal,
        _ => return None,
    })
}

/// What follows a leading timestamp (`2026-12-02T10:00:00.123Z`, `2026/12/02 10:00:00`,
/// `10:00:00.123`, with a comma for the fraction too), and the spaces, tabs or `|` after it.
fn after_timestamp(text: &str) -> Option<&str> {
    let stamp = |c: char| c.is_ascii_digit() || "-/:.,TZ+".contains(c);
    let mut end = text.find(|c: char| !stamp(c))?;
    // A date and a time apart: `2026-12-02 10:00:00`.
    let rest = &text[end..];
    if let Some(time) = rest.strip_prefix(' ') {
        if time.len() >= 8 && time.as_bytes()[2] == b':' {
            let more = time.find(|c: char| !stamp(c)).unwrap_or(time.len());
            end += 1 + more;
        }
    }
    let stamp_text = &text[..end];
    let digits = stamp_text.bytes().filter(u8::is_ascii_digit).count();
    if digits < 6 || !stamp_text.contains(':') {
        return None;
    }
    let rest = text[end..].trim_start_matches([' ', '\t', '|']);
    (rest.len() < text.len()).then_some(rest)
}

/// logfmt: `level=warn`, `lvl=error`, `severity=info` as a key of the line, quoted or not.
fn from_logfmt(text: &str) -> Option<Level> {
    for field in text.split([' ', '\t']) {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if matches!(key.as_str(), "level" | "lvl" | "severity" | "loglevel") {
            return named(value.trim_matches('"'));
        }
    }
    None
}

/// Colour codes before the first visible character (logrus and others colour the level).
fn without_leading_colour(mut text: &str) -> &str {
    while let Some(rest) = text.strip_prefix("\u{1b}[") {
        let Some(end) = rest.find(|c: char| c.is_ascii_alphabetic()) else {
            return text;
        };
        text = &rest[end + 1..];
    }
    text
}

#[cfg(test)]
mod tests {
    //! Real lines, as each library writes them.
    use super::*;
    use Level::*;

    #[rustfmt::skip]
    const SAMPLES: &[(&str, &str, Option<Level>)] = &[
        // JSON
        ("the fixture's json service", r#"{"level":"warn","msg":"request 4 handled","n":4}"#, Some(Warn)),
        ("pino", r#"{"level":30,"time":1733133600000,"pid":7,"hostname":"web","msg":"listening"}"#, Some(Info)),
        ("pino fatal", r#"{"level":60,"time":1733133600000,"msg":"out of memory"}"#, Some(Fatal)),
        ("bunyan", r#"{"name":"api","hostname":"web","pid":1,"level":50,"msg":"db down","time":"2026-12-02T10:00:00.000Z","v":0}"#, Some(Error)),
        ("zap production", r#"{"level":"error","ts":1733133600.123,"caller":"main.go:42","msg":"dial failed"}"#, Some(Error)),
        ("zap dpanic", r#"{"level":"dpanic","ts":1733133600.1,"msg":"impossible"}"#, Some(Fatal)),
        ("logrus json", r#"{"level":"warning","msg":"slow query","time":"2026-12-02T10:00:00Z"}"#, Some(Warn)),
        ("Serilog compact", r#"{"@t":"2026-12-02T10:00:00.0000000Z","@mt":"Started {Service}","@l":"Information","Service":"api"}"#, Some(Info)),
        ("Elastic Common Schema", r#"{"@timestamp":"2026-12-02T10:00:00.000Z","log":{"level":"warn","logger":"app"},"message":"retrying"}"#, Some(Warn)),
        ("ECS, dotted", r#"{"@timestamp":"2026-12-02T10:00:00.000Z","log.level":"error","message":"failed"}"#, Some(Error)),
        ("Google Cloud severity", r#"{"severity":"CRITICAL","message":"disk full"}"#, Some(Fatal)),
        ("python-json-logger", r#"{"asctime": "2026-12-02 10:00:00,123", "levelname": "DEBUG", "message": "cache miss"}"#, Some(Debug)),
        ("Level in capitals", r#"{"Level":"Warn","Message":"x"}"#, Some(Warn)),
        ("JSON without a level", r#"{"msg":"error: nothing here","status":500}"#, None),
        ("not JSON after all", r#"{"level":"error", broken"#, None),
        // logfmt
        ("logrus text", r#"time="2026-12-02T10:00:00Z" level=info msg="started" port=8080"#, Some(Info)),
        ("go-kit", "ts=2026-12-02T10:00:00.000Z caller=main.go:12 level=error err=\"connection refused\"", Some(Error)),
        ("Grafana", "logger=sqlstore t=2026-12-02T10:00:00.00Z lvl=warn msg=\"slow\"", Some(Warn)),
        // at the start
        ("logrus coloured", "\u{1b}[31mERRO\u{1b}[0m[0000] connection refused", Some(Error)),
        ("logrus plain", "WARN[0003] retrying in 5s", Some(Warn)),
        ("bracketed", "[ERROR] payment failed", Some(Error)),
        ("bracketed, padded", "[INFO ] ready", Some(Info)),
        ("bracketed, lower", "[warn] deprecated option", Some(Warn)),
        ("leading word", "ERROR: relation \"users\" does not exist", Some(Error)),
        ("Python logging", "ERROR:root:division by zero", Some(Error)),
        ("Python warning", "WARNING:urllib3.connectionpool:Retrying", Some(Warn)),
        ("leading word, space", "WARN  disk 91% full", Some(Warn)),
        ("glog", "E1202 10:00:00.123456       1 controller.go:114] sync failed", Some(Error)),
        ("glog info", "I1202 10:00:00.000001       1 main.go:20] starting", Some(Info)),
        ("Rails", "E, [2026-12-02T10:00:00.123456 #1] ERROR -- : boom", Some(Error)),
        ("Rails info", "I, [2026-12-02T10:00:00.123456 #1]  INFO -- : Started GET \"/\"", Some(Info)),
        ("syslog error", "<11>Dec  2 10:00:00 host app: failed", Some(Error)),
        ("syslog warning", "<4>kernel: low memory", Some(Warn)),
        // after a timestamp
        ("log4j", "2026-12-02 10:00:00,123 ERROR [main] com.example.App - failed", Some(Error)),
        ("Spring Boot", "2026-12-02T10:00:00.123Z  WARN 1 --- [main] o.s.b.App : slow start", Some(Warn)),
        ("zap console", "2026-12-02T10:00:00.000Z\tDEBUG\tcache/cache.go:33\tmiss", Some(Debug)),
        ("nginx error log", "2026/12/02 10:00:00 [error] 29#29: *1 open() failed", Some(Error)),
        ("PostgreSQL", "2026-12-02 10:00:00.123 UTC [1] LOG:  database system is ready", None),
        ("time only", "10:00:00.123 INFO ready", Some(Info)),
        // never from the middle of a message
        ("a word in the message", "GET /api/errors 200 - no error", None),
        ("the word at the end", "request failed with ERROR", None),
        ("a capitalised word", "Error handling is tested here", None),
        ("a longer capital word", "ERRORS: 0", None),
        ("go log", "2026/12/02 10:00:00 listening on :8080", None),
        ("empty", "", None),
        ("a stack frame", "\tat com.example.App.main(App.java:10)", None),
    ];

    #[test]
    fn each_library_s_level_is_found_and_no_other() {
        for (who, line, want) in SAMPLES {
            assert_eq!(detect(line), *want, "{who}: {line:?}");
        }
    }

    #[test]
    fn levels_order_from_trace_to_fatal() {
        assert!(Trace < Debug && Debug < Info && Info < Warn && Warn < Error && Error < Fatal);
    }
}
