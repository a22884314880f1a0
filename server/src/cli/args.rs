//! What `lookout logs` takes on its command line: the flags users know from
//! `docker compose logs`, and Lookout's own filters.

use std::str::FromStr;

use app::levels::Levels;
use app::protocol::{Streams, MAX_TAIL};
use clap::{Args, ValueEnum};

/// Where the server is and who asks: shared by every client command.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The running Lookout to ask.
    #[arg(long, env = "LOOKOUT_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An API token of that server, sent as `Authorization: Bearer`; not needed without
    /// authentication.
    #[arg(long, env = "LOOKOUT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct LogsArgs {
    /// Services to show, merged in time order: SERVICE, or PROJECT/SERVICE when the name is
    /// in several projects. None with --project: every service of the project.
    #[arg(required_unless_present = "project", value_name = "[PROJECT/]SERVICE")]
    pub services: Vec<String>,
    /// The project the services are of; alone, the whole project, as
    /// `docker compose logs` with no service.
    #[arg(short, long)]
    pub project: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Go on printing lines as they are written; reconnects and resumes after a cut.
    #[arg(short, long)]
    pub follow: bool,
    /// How many of each service's newest lines to print first (replicas merged), or `all`.
    #[arg(short = 'n', long, default_value = "all", value_name = "N|all")]
    pub tail: TailArg,
    /// Only lines from this time on: RFC 3339, Unix seconds, or a duration back (`15m`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only lines before this time (not with --follow).
    #[arg(long, value_name = "TIME", conflicts_with = "follow")]
    pub until: Option<String>,
    /// Print each line's timestamp (RFC 3339, nanoseconds, UTC).
    #[arg(short, long)]
    pub timestamps: bool,
    /// Print lines without the `service-N | ` prefix.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// No colours, and no escape sequences of the log text, even on a terminal.
    #[arg(long)]
    pub no_color: bool,
    /// Only lines holding this text (any case, unless --match-case).
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Read --grep as a regular expression.
    #[arg(short = 'E', long, requires = "grep")]
    pub regex: bool,
    /// --grep tells upper and lower case apart.
    #[arg(long, requires = "grep")]
    pub match_case: bool,
    /// Only lines NOT matching --grep.
    #[arg(short = 'v', long = "invert-match", requires = "grep")]
    pub invert: bool,
    /// Only lines stating these levels: `warn`, `>=warn` or `warn,error`.
    #[arg(long, value_name = "LEVELS", value_parser = parse_levels)]
    pub level: Option<Levels>,
    /// Only one of the outputs.
    #[arg(long, value_enum)]
    pub stream: Option<StreamArg>,
    /// One JSON object a line: the protocol's line, with its `project` and `service`.
    #[arg(long)]
    pub json: bool,
    /// Print the service's latest build (captured by `lookout capture`) instead of its log;
    /// with --follow, until it ends.
    #[arg(long, conflicts_with_all = ["since", "until"])]
    pub build: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CaptureArgs {
    /// The Compose project being built.
    #[arg(short, long)]
    pub project: String,
    /// The service lines go to when the build tool's output does not say (BuildKit's
    /// `#5 [web 2/4] …` and Compose's `Building web` do); without it, the project's.
    #[arg(short, long)]
    pub service: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Lines that may wait to be sent (twice: read, and being sent); beyond them lines are
    /// counted as not sent, and the command goes on, never waiting for the server.
    #[arg(long = "max-waiting-lines", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_waiting: u32,
    /// The command to run, and its arguments, after `--`.
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Args, Debug, Clone)]
pub struct PsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The projects as the protocol lists them (`/api/projects`), as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    /// What to find, in the query language of history: words, "a phrase", -word, /regex/,
    /// level:>=warn, service:web, key:value.
    pub query: String,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Only lines from this time on: RFC 3339, Unix seconds, or a duration back (`15m`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only lines before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// How many of the newest hits to print.
    #[arg(short = 'n', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// One JSON object a hit: the protocol's line, with its `project` and `service`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StreamArg {
    Stdout,
    Stderr,
}

impl LogsArgs {
    pub fn streams(&self) -> Streams {
        match self.stream {
            None => Streams::Both,
            Some(StreamArg::Stdout) => Streams::Stdout,
            Some(StreamArg::Stderr) => Streams::Stderr,
        }
    }
}

/// `-n`: a number of lines, or every line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailArg {
    All,
    Last(u64),
}

impl TailArg {
    /// The tail to ask the socket for, which holds at most `MAX_TAIL`.
    pub fn on_socket(self) -> u32 {
        match self {
            TailArg::All => MAX_TAIL,
            TailArg::Last(n) => n.min(u64::from(MAX_TAIL)) as u32,
        }
    }
}

impl FromStr for TailArg {
    type Err = String;

    fn from_str(s: &str) -> Result<TailArg, String> {
        match s {
            "all" => Ok(TailArg::All),
            n => n
                .parse()
                .map(TailArg::Last)
                .map_err(|_| format!("expected a number of lines or `all`, got {n:?}")),
        }
    }
}

fn parse_levels(s: &str) -> Result<Levels, String> {
    s.parse()
        .map_err(|e: app::levels::LevelsError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_is_a_number_or_all() {
        assert_eq!("all".parse(), Ok(TailArg::All));
        assert_eq!("25".parse(), Ok(TailArg::Last(25)));
        assert!("-1".parse::<TailArg>().unwrap_err().contains("\"-1\""));
        assert_eq!(TailArg::Last(50_000).on_socket(), MAX_TAIL);
        assert_eq!(TailArg::All.on_socket(), MAX_TAIL);
    }
}
