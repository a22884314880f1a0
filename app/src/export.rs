//! The text format of a downloaded log, written by the server's full-log download and by the
//! web app's "lines in view" alike, so that the two files read the same and one tool can
//! parse both.

use time::OffsetDateTime;

use crate::protocol::Stream;

/// What a downloaded line came from: an output of the container, or a change in its life
/// (the view's lifecycle markers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Stdout,
    Stderr,
    Event,
}

impl Origin {
    fn word(self) -> &'static str {
        match self {
            Origin::Stdout => "stdout",
            Origin::Stderr => "stderr",
            Origin::Event => "event",
        }
    }
}

impl From<Stream> for Origin {
    fn from(s: Stream) -> Origin {
        match s {
            Stream::Stdout => Origin::Stdout,
            Stream::Stderr => Origin::Stderr,
        }
    }
}

/// RFC 3339 in UTC with all nine digits of nanoseconds, as the engine writes its
/// timestamps: fixed width, so the lines of a file sort as text in time order.
pub fn rfc3339(ts_ns: i64) -> String {
    let t = date_time(ts_ns);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Appends `<RFC 3339 time> <replica name> <stdout|stderr|event> <text>\n`. `plain` must be
/// the text with its ANSI escapes removed: a file is read by tools, not by a terminal.
pub fn push_line(out: &mut String, ts_ns: i64, replica: &str, origin: Origin, plain: &str) {
    out.push_str(&rfc3339(ts_ns));
    out.push(' ');
    out.push_str(replica);
    out.push(' ');
    out.push_str(origin.word());
    out.push(' ');
    out.push_str(plain);
    out.push('\n');
}

/// `{project}-{service}-{YYYY-MM-DDTHH-MM-SS}.log` for a download made at `unix_secs` (UTC),
/// after `{engine}-` for an engine other than `local`.
/// Colons are not allowed in file names everywhere, and the name goes into a
/// `Content-Disposition` header: anything but letters, digits, `-`, `_` and `.` becomes `_`.
pub fn file_name(engine: &str, project: &str, service: &str, unix_secs: i64) -> String {
    let t = date_time(unix_secs.saturating_mul(1_000_000_000));
    let engine = match engine {
        crate::protocol::LOCAL_ENGINE => String::new(),
        other => format!("{other}-"),
    };
    let name = format!(
        "{engine}{project}-{service}-{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.log",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Times outside what a calendar can show are not ones the engine writes; the epoch stands
/// in rather than failing a whole download.
fn date_time(ts_ns: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ns))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-22T02:32:11.950536787Z
    const TS: i64 = 1_795_314_731_950_536_787;

    #[test]
    fn times_have_nine_digits_of_nanoseconds_in_utc() {
        assert_eq!(rfc3339(TS), "2026-11-22T02:32:11.950536787Z");
        assert_eq!(rfc3339(1_500_000_000), "1970-01-01T00:00:01.500000000Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn a_line_is_time_replica_origin_and_text() {
        let mut out = String::new();
        push_line(&mut out, TS, "shop-web-1", Stream::Stderr.into(), "boom");
        push_line(&mut out, TS, "shop-web-1", Origin::Event, "web #1 exited");
        push_line(&mut out, 0, "shop_web_2", Stream::Stdout.into(), "");
        assert_eq!(
            out,
            "2026-11-22T02:32:11.950536787Z shop-web-1 stderr boom\n\
             2026-11-22T02:32:11.950536787Z shop-web-1 event web #1 exited\n\
             1970-01-01T00:00:00.000000000Z shop_web_2 stdout \n"
        );
    }

    #[test]
    fn file_names_carry_the_time_without_colons() {
        assert_eq!(
            file_name("local", "shop", "web", TS / 1_000_000_000),
            "shop-web-2026-11-22T02-32-11.log"
        );
    }

    #[test]
    fn file_names_name_an_engine_other_than_local() {
        assert_eq!(
            file_name("prod", "shop", "web", 1_795_314_731),
            "prod-shop-web-2026-11-22T02-32-11.log"
        );
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(
            file_name("local", "a\"b\r\nc", "d/é", 0),
            "a_b__c-d__-1970-01-01T00-00-00.log"
        );
    }
}
