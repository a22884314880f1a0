//! The pace a client may ask of its socket in the URL.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use serde::Deserialize;

/// What a client may ask of its socket in the URL (`/ws?pace_ms=16`): how long its busy
/// subscriptions gather lines before sending them, 0 (the default: as busy gathering alone
/// has it) to `MAX_PACE_MS`. The web app asks for a frame. A line that finds its
/// subscription idle still goes out at once.
#[derive(Debug, Default, Deserialize)]
pub struct Pace {
    #[serde(default)]
    pace_ms: u32,
}

/// A client pacing its socket slower than this would see lines late for nothing.
pub const MAX_PACE_MS: u32 = 100;

impl Pace {
    pub fn checked(asked: Result<Query<Pace>, QueryRejection>) -> Result<Duration, String> {
        let Query(Pace { pace_ms }) = asked.map_err(|e| e.body_text())?;
        if pace_ms > MAX_PACE_MS {
            return Err(format!(
                "pace_ms must be between 0 and {MAX_PACE_MS}, got {pace_ms}"
            ));
        }
        Ok(Duration::from_millis(pace_ms.into()))
    }
}
