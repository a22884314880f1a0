//! Instants as the engine stamps them: nanoseconds since the epoch, written as RFC 3339.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An instant by the engine's clock (a line's stamp, a start, an exit).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub ns: i64,
}

impl Timestamp {
    pub fn parse(s: &str) -> Option<Timestamp> {
        let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        i64::try_from(t.unix_timestamp_nanos())
            .ok()
            .map(|ns| Timestamp { ns })
    }

    /// RFC 3339 in UTC with exactly nine fractional digits (the download's format too).
    pub fn to_rfc3339(&self) -> String {
        app::export::rfc3339(self.ns)
    }

    /// Whole seconds, rounded down: what the engine's `since` parameter takes.
    pub fn whole_seconds(&self) -> i64 {
        self.ns.div_euclid(1_000_000_000)
    }
}

/// Now, by this machine's clock.
pub fn now_ns() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0)
}

/// Why a time given by a user was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a time: give RFC 3339 (2026-12-01T10:00:00Z), Unix seconds (1764583200), \
     or a duration back from now (15m, 2h, 7d)"
)]
pub struct InvalidTime(pub String);

/// A time as `docker logs --since` takes it: RFC 3339, Unix seconds, or a duration back from
/// `now_ns` (`15m`, `2h`, `7d`, `1h30m`), in nanoseconds since the epoch.
pub fn parse_when(text: &str, now_ns: i64) -> Result<i64, InvalidTime> {
    let t = text.trim();
    let invalid = || InvalidTime(t.chars().take(64).collect());
    if let Ok(secs) = t.parse::<i64>() {
        return secs.checked_mul(1_000_000_000).ok_or_else(invalid);
    }
    if let Some(ts) = Timestamp::parse(t) {
        return Ok(ts.ns);
    }
    // A bare number with a fraction is seconds too, as Docker takes it, to the nanosecond.
    if let Some((whole, frac)) = t.split_once('.') {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(whole) && digits(frac) && frac.len() <= 9 {
            let secs: i64 = whole.parse().map_err(|_| invalid())?;
            let nanos: i64 = format!("{frac:0<9}").parse().map_err(|_| invalid())?;
            return secs
                .checked_mul(1_000_000_000)
                .and_then(|n| n.checked_add(nanos))
                .ok_or_else(invalid);
        }
    }
    let back = humantime::parse_duration(t).map_err(|_| invalid())?;
    let back = i64::try_from(back.as_nanos()).map_err(|_| invalid())?;
    Ok(now_ns.saturating_sub(back))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_583_200_000_000_000;

    #[test]
    fn a_time_is_rfc3339_unix_seconds_or_a_duration_back_from_now() {
        assert_eq!(parse_when("1764583200", NOW), Ok(NOW));
        assert_eq!(parse_when("2025-12-01T10:00:00Z", NOW), Ok(NOW));
        assert_eq!(parse_when("1.5", NOW), Ok(1_500_000_000));
        assert_eq!(
            parse_when("1764583200.000000001", NOW),
            Ok(NOW + 1),
            "to the nanosecond"
        );
        assert_eq!(parse_when("15m", NOW), Ok(NOW - 15 * 60 * 1_000_000_000));
        assert_eq!(parse_when("7d", NOW), Ok(NOW - 7 * 86_400 * 1_000_000_000));
        assert_eq!(
            parse_when(" 1h30m ", NOW),
            Ok(NOW - 90 * 60 * 1_000_000_000)
        );
    }

    #[test]
    fn anything_else_is_an_error_that_says_what_would_do() {
        for bad in ["yesterday", "", "15x", "99999999999999999999", "-"] {
            let e = parse_when(bad, NOW).unwrap_err();
            assert!(e.to_string().contains("RFC 3339"), "{bad}: {e}");
        }
    }

    #[test]
    fn instants_read_back_as_they_were_written() {
        let t = Timestamp {
            ns: NOW + 29_685_366,
        };
        assert_eq!(t.to_rfc3339(), "2025-12-01T10:00:00.029685366Z");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()), Some(t));
    }
}
