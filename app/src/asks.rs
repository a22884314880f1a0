//! What a client may ask of a subscription, each bounded: a tail's length, and the services
//! one subscription names. Checked as the message is read, so a handler never sees a value
//! out of bounds.

use serde::{Deserialize, Serialize};

/// The largest tail a client may ask for, in lines.
pub const MAX_TAIL: u32 = 10_000;

/// The most cursors a resume may hold: one per container and stream the client has lines of.
pub const MAX_RESUME_CURSORS: usize = 1024;

/// A tail size that is known to lie within `0..=MAX_TAIL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Tail(u32);

impl Tail {
    pub const DEFAULT: Tail = Tail(100);

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Tail {
    fn default() -> Self {
        Tail::DEFAULT
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tail must be between 0 and {MAX_TAIL} lines, got {0}")]
pub struct InvalidTail(pub i64);

impl TryFrom<i64> for Tail {
    type Error = InvalidTail;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_TAIL)
            .map(Tail)
            .ok_or(InvalidTail(n))
    }
}

impl From<Tail> for u32 {
    fn from(t: Tail) -> u32 {
        t.0
    }
}

/// A tail longer than this server allows (`--max-tail-lines`, at most [`MAX_TAIL`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tail must be between 0 and {most} lines on this server (--max-tail-lines), got {got}")]
pub struct TailOverLimit {
    pub most: u32,
    pub got: u32,
}

/// Services named in one subscription: 1 to `MAX_SERVICES`, each named once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct ServiceNames(Vec<String>);

/// The most services one subscription names.
pub const MAX_SERVICES: usize = 64;

impl ServiceNames {
    pub fn get(&self) -> &[String] {
        &self.0
    }
}

impl From<ServiceNames> for Vec<String> {
    fn from(names: ServiceNames) -> Vec<String> {
        names.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidServices {
    #[error("services must name at least one service")]
    Empty,
    #[error("services may name at most {MAX_SERVICES} services, got {0}")]
    TooMany(usize),
    #[error("services names {0:?} twice")]
    Twice(String),
}

impl TryFrom<Vec<String>> for ServiceNames {
    type Error = InvalidServices;
    fn try_from(names: Vec<String>) -> Result<Self, Self::Error> {
        if names.is_empty() {
            return Err(InvalidServices::Empty);
        }
        if names.len() > MAX_SERVICES {
            return Err(InvalidServices::TooMany(names.len()));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(InvalidServices::Twice(twice.chars().take(64).collect()));
        }
        Ok(ServiceNames(names))
    }
}
