//! Where a line stands in its service's timeline, for ever: the cursor that clients echo to
//! resume, page through history and go on with a search.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Identifies one log line for ever: the container that wrote it, the engine's timestamp
/// (nanoseconds since the Unix epoch) and its index among that container's lines with the
/// same timestamp. Because it is derived from what the engine stores, a cursor stays valid
/// across restarts of Lookout.
///
/// On the wire it is an opaque string `"<ts_ns>-<seq>-<container id>"`; clients only echo it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cursor {
    pub ts_ns: i64,
    pub seq: u32,
    pub container: std::sync::Arc<str>,
}

impl Cursor {
    /// Position within one container's log, where lines are strictly ordered.
    pub fn position(&self) -> (i64, u32) {
        (self.ts_ns, self.seq)
    }

    /// The lowest cursor of a nanosecond, before every line stamped then: a page of
    /// history that ends at a time rather than at a line says where to go on with it.
    /// Its string form has no container: `"<ts_ns>-0-"`.
    pub fn start_of(ts_ns: i64) -> Cursor {
        Cursor {
            ts_ns,
            seq: 0,
            container: "".into(),
        }
    }

    fn is_start(&self) -> bool {
        self.seq == 0 && self.container.is_empty()
    }

    /// The newest time a line before this cursor may have.
    pub fn newest_before(&self) -> i64 {
        if self.is_start() {
            self.ts_ns.saturating_sub(1)
        } else {
            self.ts_ns
        }
    }
}

/// Lines of a service are ordered by time; ties broken by container, then sequence.
impl Ord for Cursor {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ts_ns
            .cmp(&other.ts_ns)
            .then_with(|| self.container.cmp(&other.container))
            .then_with(|| self.seq.cmp(&other.seq))
    }
}

impl PartialOrd for Cursor {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.ts_ns, self.seq, self.container)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor {0:?}: expected \"<ts_ns>-<seq>-<container id>\"")]
pub struct InvalidCursor(String);

impl FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidCursor(s.chars().take(200).collect());
        let mut parts = s.splitn(3, '-');
        let ts_ns = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let seq = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let container = parts.next().ok_or_else(bad)?;
        let cursor = Cursor {
            ts_ns,
            seq,
            container: container.into(),
        };
        if is_container_id(container) || cursor.is_start() {
            Ok(cursor)
        } else {
            Err(bad())
        }
    }
}

pub(crate) fn is_container_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl TryFrom<String> for Cursor {
    type Error = InvalidCursor;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Cursor> for String {
    fn from(c: Cursor) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_through_its_string_form() {
        let c = Cursor {
            ts_ns: 1_763_778_731_950_536_787,
            seq: 2,
            container: "9040f845f5b2".into(),
        };
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(s, "\"1763778731950536787-2-9040f845f5b2\"");
        assert_eq!(serde_json::from_str::<Cursor>(&s).unwrap(), c);
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for bad in ["", "1-2", "x-1-abc", "1-x-abc", "1-2-not hex", "1-2-"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_start_of_a_nanosecond_comes_before_its_lines_and_round_trips() {
        let start = Cursor::start_of(7);
        assert_eq!(start.to_string(), "7-0-");
        assert_eq!("7-0-".parse::<Cursor>().unwrap(), start);
        let line = |ts| Cursor {
            ts_ns: ts,
            seq: 0,
            container: "0".into(),
        };
        assert!(line(6) < start && start < line(7));
        assert_eq!(start.newest_before(), 6);
        assert_eq!(line(7).newest_before(), 7);
    }

    #[test]
    fn cursors_order_by_time_then_container_then_sequence() {
        let c = |ts, seq, id: &str| Cursor {
            ts_ns: ts,
            seq,
            container: id.into(),
        };
        assert!(c(1, 9, "b") < c(2, 0, "a"));
        assert!(c(1, 0, "a") < c(1, 0, "b"));
        assert!(c(1, 0, "a") < c(1, 1, "a"));
    }
}
