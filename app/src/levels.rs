//! A choice of levels, written the same way everywhere a user can make one: the Level
//! control (kept in the URL), search's `level:`, and the `level` parameter of
//! `/api/history` and `/api/download`. `warn` is that level alone, `>=warn` that level and
//! every more severe one, `warn,error` those levels. A line that states no level is in no
//! choice.

use std::fmt;
use std::str::FromStr;

use crate::protocol::Level;

/// Every level, from the least severe to the most.
pub const ALL: [Level; 6] = [
    Level::Trace,
    Level::Debug,
    Level::Info,
    Level::Warn,
    Level::Error,
    Level::Fatal,
];

/// A non-empty set of levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Levels(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelsError {
    #[error("no level is named; write one of {NAMES}, `>=warn`, or a list as `warn,error`")]
    Empty,
    #[error("`{0}` is not a level; the levels are {NAMES}")]
    Unknown(String),
}

const NAMES: &str = "trace, debug, info, warn, error, fatal";

impl Level {
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl FromStr for Level {
    type Err = LevelsError;

    /// A level's name as the protocol writes it, in any case.
    fn from_str(s: &str) -> Result<Level, LevelsError> {
        ALL.into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| LevelsError::Unknown(s.trim().chars().take(40).collect()))
    }
}

impl Levels {
    /// This level and every more severe one.
    pub fn at_least(level: Level) -> Levels {
        Levels(
            ALL.into_iter()
                .filter(|l| *l >= level)
                .fold(0, |b, l| b | l.bit()),
        )
    }

    pub fn only(level: Level) -> Levels {
        Levels(level.bit())
    }

    /// The levels of either choice.
    pub fn union(self, other: Levels) -> Levels {
        Levels(self.0 | other.0)
    }

    /// Whether a line stating `level` is chosen: one stating none never is.
    pub fn contains(self, level: Option<Level>) -> bool {
        level.is_some_and(|l| self.0 & l.bit() != 0)
    }

    /// The least severe level chosen, when the choice is it and everything above it.
    pub fn minimum(self) -> Option<Level> {
        let least = ALL.into_iter().find(|l| self.contains(Some(*l)))?;
        (Levels::at_least(least) == self).then_some(least)
    }
}

impl FromStr for Levels {
    type Err = LevelsError;

    fn from_str(s: &str) -> Result<Levels, LevelsError> {
        let s = s.trim();
        if let Some(level) = s.strip_prefix(">=") {
            return Ok(Levels::at_least(level.parse()?));
        }
        let mut bits = 0;
        for name in s.split(',').filter(|n| !n.trim().is_empty()) {
            bits |= name.parse::<Level>()?.bit();
        }
        if bits == 0 {
            return Err(LevelsError::Empty);
        }
        Ok(Levels(bits))
    }
}

/// The shortest form that reads back as the same choice.
impl fmt::Display for Levels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minimum() {
            Some(least) if least != Level::Fatal => write!(f, ">={}", least.as_str()),
            _ => {
                let names: Vec<&str> = ALL
                    .into_iter()
                    .filter(|l| self.contains(Some(*l)))
                    .map(Level::as_str)
                    .collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_read_and_write_back() {
        let cases = [
            ("warn", "warn"),
            ("WARN", "warn"),
            (">=warn", ">=warn"),
            (" >= Error", ">=error"),
            ("error,warn", "warn,error"),
            ("warn,error,fatal", ">=warn"),
            (">=fatal", "fatal"),
            ("trace,debug,info,warn,error,fatal", ">=trace"),
            ("info,", "info"),
        ];
        for (typed, written) in cases {
            let levels: Levels = typed.parse().unwrap_or_else(|e| panic!("{typed}: {e}"));
            assert_eq!(levels.to_string(), written, "{typed}");
            assert_eq!(written.parse::<Levels>(), Ok(levels), "{written}");
        }
    }

    #[test]
    fn a_choice_holds_what_it_names_and_never_a_line_without_a_level() {
        let warn_up: Levels = ">=warn".parse().unwrap();
        assert!(warn_up.contains(Some(Level::Warn)));
        assert!(warn_up.contains(Some(Level::Fatal)));
        assert!(!warn_up.contains(Some(Level::Info)));
        assert!(!warn_up.contains(None));
        let warn: Levels = "warn".parse().unwrap();
        assert!(!warn.contains(Some(Level::Error)));
        assert_eq!(warn_up.minimum(), Some(Level::Warn));
        assert_eq!("warn,fatal".parse::<Levels>().unwrap().minimum(), None);
        assert_eq!(warn.union(Levels::at_least(Level::Error)), warn_up);
    }

    #[test]
    fn a_wrong_choice_names_what_is_wrong() {
        assert_eq!("".parse::<Levels>(), Err(LevelsError::Empty));
        assert_eq!(",".parse::<Levels>(), Err(LevelsError::Empty));
        let err = "warn,loud".parse::<Levels>().unwrap_err();
        assert_eq!(err, LevelsError::Unknown("loud".into()));
        assert!(err.to_string().contains("trace, debug"), "{err}");
        assert!(">=".parse::<Levels>().is_err());
        assert!("<=warn".parse::<Levels>().is_err());
    }
}
