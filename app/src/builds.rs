//! Builds: a command's output (`docker compose build`, say) captured by `lookout capture`
//! and kept in history next to the services it built. The wire types of `/api/builds/…`,
//! shared by the server, the CLI and the web app.

use serde::{Deserialize, Serialize};

use crate::protocol::{LogLine, Stream};

/// The most lines one request of `lookout capture` carries (it also keeps a request within
/// the server's body limit).
pub const MAX_LINES_PER_APPEND: usize = 500;

/// The most lines one page of a build's lines holds.
pub const MAX_PAGE_LINES: usize = 2000;

/// The most builds a list holds, newest first.
pub const MAX_LISTED_BUILDS: usize = 100;

/// `POST /api/builds/start`: a build of `project` begins; lines no rule attributes to a
/// service go to `service`, or to the project as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartBuild {
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// The answer to `StartBuild`: the build's number, counted per project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStarted {
    pub number: u64,
}

/// One line of the command's output, as `lookout capture` read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedLine {
    pub text: String,
    pub stream: Stream,
    /// The line was longer than a capture sends (`MAX_CAPTURED_LINE`) and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The longest line `lookout capture` sends, in bytes: one line, even of control
/// characters written in six bytes each in JSON, fits a request within the server's
/// default body limit (64 KiB).
pub const MAX_CAPTURED_LINE: usize = 8 * 1024;

/// `POST /api/builds/append`: the build's lines from the `from`-th on (0 first), and, in
/// the last request, how the command ended. A request sent again (its answer was lost)
/// adds nothing twice: lines before the count the server holds are skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendBuild {
    pub project: String,
    pub number: u64,
    pub from: u64,
    pub lines: Vec<CapturedLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<CommandEnd>,
}

/// How the captured command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandEnd {
    /// It exited with this code.
    Exited { code: i32 },
    /// A signal ended it (its number).
    Killed { signal: i32 },
}

/// The answer to `AppendBuild`: how many lines the server has taken of this build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    pub taken: u64,
}

/// How a build stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BuildResult {
    Running,
    /// The command exited with `code`.
    Exited {
        code: i64,
    },
    /// `lookout capture` stopped reporting before the command ended (the capture was
    /// killed, the network cut for longer than the server waits, or the server restarted).
    Interrupted,
}

impl BuildResult {
    /// What a list shows: "running", "exit 0", "interrupted".
    pub fn describe(&self) -> String {
        match self {
            BuildResult::Running => "running".into(),
            BuildResult::Exited { code } => format!("exit {code}"),
            BuildResult::Interrupted => "interrupted".into(),
        }
    }

    pub fn succeeded(&self) -> bool {
        matches!(self, BuildResult::Exited { code: 0 })
    }
}

/// One build, as `GET /api/builds` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub project: String,
    pub number: u64,
    /// The services its lines were attributed to (or `--service`), sorted.
    pub services: Vec<String>,
    pub started_ns: i64,
    /// When it ended (an interrupted one: when the server gave up on it); None while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ns: Option<i64>,
    pub result: BuildResult,
}

impl BuildInfo {
    /// How long it took, or has taken until `now_ns`.
    pub fn duration_ns(&self, now_ns: i64) -> i64 {
        self.ended_ns
            .unwrap_or(now_ns)
            .saturating_sub(self.started_ns)
            .max(0)
    }
}

/// `GET /api/builds/lines`: a page of one build's lines, oldest first, after a cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildPage {
    pub build: BuildInfo,
    pub lines: Vec<LogLine>,
    /// More lines follow this page already (ask again after its last line at once).
    pub more: bool,
}

/// "1.2 s", "3 min 4 s": a build's duration as lists show it.
pub fn describe_duration(ns: i64) -> String {
    let ms = ns / 1_000_000;
    if ms < 10_000 {
        return format!("{}.{} s", ms / 1000, (ms % 1000) / 100);
    }
    let s = ms / 1000;
    if s < 3600 {
        return format!("{} min {} s", s / 60, s % 60);
    }
    format!("{} h {} min", s / 3600, (s % 3600) / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_reads_as_a_list_shows_it() {
        assert_eq!(BuildResult::Exited { code: 0 }.describe(), "exit 0");
        assert!(BuildResult::Exited { code: 0 }.succeeded());
        assert!(!BuildResult::Exited { code: 2 }.succeeded());
        assert_eq!(BuildResult::Interrupted.describe(), "interrupted");
        let json = serde_json::to_string(&BuildResult::Exited { code: 3 }).unwrap();
        assert_eq!(json, r#"{"state":"exited","code":3}"#);
    }

    #[test]
    fn durations_read_at_their_scale() {
        assert_eq!(describe_duration(1_234_000_000), "1.2 s");
        assert_eq!(describe_duration(184_000_000_000), "3 min 4 s");
        assert_eq!(describe_duration(3_720_000_000_000), "1 h 2 min");
    }
}
