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

    /// RFC 3339 in UTC with exactly nine fractional digits.
    pub fn to_rfc3339(&self) -> String {
        let t = OffsetDateTime::from_unix_timestamp_nanos(self.ns as i128)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
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

    /// Whole seconds, rounded down: what the engine's `since` parameter takes.
    pub fn whole_seconds(&self) -> i64 {
        self.ns.div_euclid(1_000_000_000)
    }
}

/// Now, by this machine's clock.
pub fn now_ns() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0)
}
