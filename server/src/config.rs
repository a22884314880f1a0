//! Command-line settings; each can also be given as an environment variable.

use std::net::SocketAddr;

use clap::Parser;

use crate::redact::{CustomRule, KindList};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "lookout",
    version,
    about = "A real-time log viewer for Docker Compose"
)]
pub struct Config {
    /// Address to serve the web app, API and WebSocket on.
    #[arg(long, env = "LOOKOUT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Show only this Compose project (default: all projects).
    #[arg(long, env = "LOOKOUT_PROJECT")]
    pub project: Option<String>,

    /// Recent lines kept in memory per followed service, for instant tails.
    #[arg(long, env = "LOOKOUT_RING_LINES", default_value_t = 10_000)]
    pub ring_lines: usize,

    /// Lines queued per WebSocket subscriber; a subscriber further behind loses lines and is told.
    #[arg(long, env = "LOOKOUT_QUEUE_LINES", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue_lines: u32,

    /// Longest log line kept, in bytes; longer lines are cut and marked as truncated.
    #[arg(long, env = "LOOKOUT_MAX_LINE_BYTES", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_line_bytes: u32,

    /// Serve on an address other than loopback although Lookout asks no one for a password.
    /// Anyone who reaches the address reads every log the engine holds.
    #[arg(long, env = "LOOKOUT_ALLOW_UNAUTHENTICATED_REMOTE")]
    pub allow_unauthenticated_remote: bool,

    /// Origins of pages (besides Lookout's own) allowed to open its WebSocket, e.g.
    /// https://dash.example.com; repeat the flag or separate with commas.
    #[arg(
        long = "allowed-origin",
        env = "LOOKOUT_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Largest WebSocket message accepted from a client, in bytes.
    #[arg(long, env = "LOOKOUT_MAX_MESSAGE_BYTES", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(64..))]
    pub max_message_bytes: u32,

    /// Secrets replaced with [REDACTED:kind] before a line leaves the server: all, none, or a
    /// comma-separated list of private-key, jwt, bearer, basic, url-password, aws-access-key,
    /// assignment.
    #[arg(long, env = "LOOKOUT_REDACT", default_value = "all")]
    pub redact: KindList,

    /// A secret pattern of your own, NAME=REGEX (repeatable): matches become [REDACTED:NAME].
    #[arg(
        long = "redact-pattern",
        env = "LOOKOUT_REDACT_PATTERNS",
        value_delimiter = '\n'
    )]
    pub redact_patterns: Vec<CustomRule>,
}
