//! Command-line settings; each can also be given as an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::auth::Mode;
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

    /// An engine to read, NAME=URL (repeatable): unix:///PATH, tcp://HOST:PORT (with
    /// --engine-tls beyond loopback) or ssh://[USER@]HOST (through the system's ssh).
    /// Without it, the local engine (DOCKER_HOST or the default socket), named `local`.
    #[arg(long = "engine", env = "LOOKOUT_ENGINES", value_delimiter = ',')]
    pub engines: Vec<crate::docker::address::EngineArg>,

    /// The certificates of a tcp:// engine, NAME=DIR (repeatable): DIR holds ca.pem (the
    /// CA the engine's certificate is checked against), cert.pem and key.pem (Lookout's).
    #[arg(long = "engine-tls", env = "LOOKOUT_ENGINE_TLS", value_delimiter = ',')]
    pub engine_tls: Vec<crate::docker::address::TlsArg>,

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

    /// Bytes of a container's log read from the engine ahead of what Lookout has taken of it,
    /// per log read: beyond them the engine holds the log until Lookout catches up
    /// (one frame, however large, is always read).
    #[arg(long, env = "LOOKOUT_READ_AHEAD_BYTES", default_value = "1MiB", value_parser = parse_bytes)]
    pub read_ahead_bytes: u64,

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

    /// How viewers are authenticated: none, users (a users file and a login page), or
    /// forward-proxy (a user header from --trusted-proxy addresses).
    #[arg(long, env = "LOOKOUT_AUTH", value_enum, default_value_t = Mode::None)]
    pub auth: Mode,

    /// The users file of --auth users (and of `lookout users`).
    #[arg(long, env = "LOOKOUT_USERS_FILE", global = true)]
    pub users_file: Option<PathBuf>,

    /// The API tokens file (and of `lookout users token`): `Authorization: Bearer TOKEN`
    /// acts as the token's user under --auth users and forward-proxy.
    #[arg(long, env = "LOOKOUT_TOKENS_FILE", global = true)]
    pub tokens_file: Option<PathBuf>,

    /// How long a sign-in lasts (e.g. 12h, 30m).
    #[arg(long, env = "LOOKOUT_SESSION_TTL", default_value = "12h")]
    pub session_ttl: humantime::Duration,

    /// Login attempts allowed per client address per minute.
    #[arg(long, env = "LOOKOUT_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_attempts_per_minute: u32,

    /// Addresses or networks of proxies whose X-Forwarded-For and user header are believed
    /// (comma-separated).
    #[arg(long = "trusted-proxy", env = "LOOKOUT_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::auth::parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The header naming the user in --auth forward-proxy.
    #[arg(long, env = "LOOKOUT_USER_HEADER", default_value = "Remote-User")]
    pub user_header: axum::http::HeaderName,

    /// WebSockets one user (or, without authentication, one address) may hold open at once.
    #[arg(long, env = "LOOKOUT_MAX_SOCKETS_PER_USER", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sockets_per_user: u32,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "LOOKOUT_MAX_BODY_BYTES", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(256..))]
    pub max_body_bytes: u32,

    /// Largest tail a client may ask for, in lines (at most the protocol's 10000).
    #[arg(long, env = "LOOKOUT_MAX_TAIL_LINES", default_value_t = app::protocol::MAX_TAIL, value_parser = clap::value_parser!(u32).range(0..=i64::from(app::protocol::MAX_TAIL)))]
    pub max_tail_lines: u32,

    /// Bytes of recent lines kept in memory per followed service (with --ring-lines,
    /// whichever is reached first).
    #[arg(long, env = "LOOKOUT_RING_BYTES", default_value_t = 16 << 20, value_parser = clap::value_parser!(u64).range(1024..))]
    pub ring_bytes: u64,

    /// Bytes queued per WebSocket subscriber (with --queue-lines, whichever is reached
    /// first); a subscriber further behind loses lines and is told.
    #[arg(long, env = "LOOKOUT_QUEUE_BYTES", default_value_t = 16 << 20, value_parser = clap::value_parser!(u64).range(1024..))]
    pub queue_bytes: u64,

    /// Largest `lines` message sent to a viewer, in bytes (a single longer line goes alone).
    /// Each socket keeps a buffer the size of the largest message it sent: 64 KiB, where 1 MiB
    /// made 100 viewers cost 239 KiB each instead of 81, at the same throughput.
    #[arg(long, env = "LOOKOUT_MAX_BATCH_BYTES", default_value_t = 64 << 10, value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_batch_bytes: u64,

    /// One-off reads of whole logs from the engine (tails, downloads, the lines a
    /// reconnecting viewer missed) running at once; more wait.
    #[arg(long, env = "LOOKOUT_MAX_ENGINE_READS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_engine_reads: u32,

    /// How long a read waits for a place among --max-engine-reads before it is refused with a
    /// clear error (e.g. 10s, 500ms).
    #[arg(long, env = "LOOKOUT_ENGINE_READ_WAIT", default_value = "10s")]
    pub engine_read_wait: humantime::Duration,

    /// ssh connections an ssh:// engine sets up at once (each holds its place until the engine
    /// first answers through it); more wait. sshd drops connections beyond its MaxStartups (10
    /// by default) while they log in, so a burst of them would lose some.
    #[arg(long, env = "LOOKOUT_MAX_SSH_HANDSHAKES", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_ssh_handshakes: u32,

    /// Host names (or IP addresses) Lookout answers to besides loopback and the listen
    /// address, any port; repeat the flag or separate with commas. Other names get 421.
    #[arg(long = "allowed-host", env = "LOOKOUT_ALLOWED_HOSTS", value_delimiter = ',', value_parser = crate::host::parse_allowed)]
    pub allowed_hosts: Vec<crate::host::AllowedHost>,

    /// Login attempts allowed per user name per minute, from addresses that have not signed
    /// in as that user before.
    #[arg(long, env = "LOOKOUT_LOGIN_ATTEMPTS_PER_NAME_PER_MINUTE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_attempts_per_name_per_minute: u32,

    /// Password checks run at once (each holds about 19 MiB while it runs).
    #[arg(long, env = "LOOKOUT_MAX_CONCURRENT_LOGINS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrent_logins: u32,

    /// How long a sign-in waits for a password check to be free before it gets 503.
    #[arg(long, env = "LOOKOUT_LOGIN_WAIT", default_value = "5s")]
    pub login_wait: humantime::Duration,

    /// A token that lets a request to /metrics in with `Authorization: Bearer TOKEN`,
    /// whatever --auth says.
    #[arg(long, env = "LOOKOUT_METRICS_TOKEN", value_parser = crate::auth::MetricsToken::parse, conflicts_with = "metrics_token_file")]
    pub metrics_token: Option<crate::auth::MetricsToken>,

    /// As --metrics-token, read from a file (a final newline left out).
    #[arg(long, env = "LOOKOUT_METRICS_TOKEN_FILE", value_parser = crate::auth::MetricsToken::read)]
    pub metrics_token_file: Option<crate::auth::MetricsToken>,

    /// Keep every line read on disk, so that logs outlive their containers: on, or off
    /// (memory only: what the engine still holds is all there is).
    #[arg(long, env = "LOOKOUT_HISTORY", value_enum, default_value_t = HistoryMode::On)]
    pub history: HistoryMode,

    /// Where history is kept (one SQLite file per UTC day).
    #[arg(long, env = "LOOKOUT_DATA_DIR", default_value = "lookout-data")]
    pub data_dir: PathBuf,

    /// How long history is kept (e.g. 7d, 12h); older lines are not shown and their days'
    /// files are removed.
    #[arg(long, env = "LOOKOUT_RETENTION", default_value = "7d")]
    pub retention: humantime::Duration,

    /// The most disk history may take (e.g. 2GiB, 500MB); the oldest days go first, today's
    /// never.
    #[arg(long, env = "LOOKOUT_RETENTION_SIZE", default_value = "2GiB", value_parser = parse_bytes)]
    pub retention_size: u64,

    /// Batches of lines waiting to be written before the followers wait for the disk.
    #[arg(long, env = "LOOKOUT_HISTORY_QUEUE", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub history_queue: u32,

    /// Bytes of lines waiting to be written (with --history-queue, whichever is reached
    /// first) before the followers wait for the disk.
    #[arg(long, env = "LOOKOUT_HISTORY_QUEUE_BYTES", default_value = "32MiB", value_parser = parse_bytes)]
    pub history_queue_bytes: u64,

    /// Bytes of a container's new lines held for history while it stores the container's
    /// older log (at the first start on a long log): viewers get them at once, history after
    /// the older log. Beyond them the container's new lines wait for the older log.
    #[arg(long, env = "LOOKOUT_HISTORY_CATCH_UP_BYTES", default_value = "4MiB", value_parser = parse_bytes)]
    pub history_catch_up_bytes: u64,

    /// The most stored lines one search or histogram request reads; a search that would
    /// read more answers with what it found and where to go on from, a histogram with the
    /// newest lines counted.
    #[arg(long, env = "LOOKOUT_SEARCH_MAX_LINES", default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub search_max_lines: u64,

    /// Reads of history (pages, searches, histograms, downloads, tails and resumes beyond
    /// the ring) running at once; more wait. Reads never hold up the writing of new lines.
    #[arg(long, env = "LOOKOUT_MAX_HISTORY_READS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_history_reads: u32,

    /// How long a read of history waits for a place among --max-history-reads before it is
    /// refused with a clear error (e.g. 10s, 500ms).
    #[arg(long, env = "LOOKOUT_HISTORY_READ_WAIT", default_value = "10s")]
    pub history_read_wait: humantime::Duration,

    /// Lines one build keeps (`lookout capture`); later ones are counted, not kept.
    #[arg(long, env = "LOOKOUT_MAX_BUILD_LINES", default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_build_lines: u64,

    /// Builds running at once; a capture beyond them is refused (429) and runs uncaptured.
    #[arg(long, env = "LOOKOUT_MAX_RUNNING_BUILDS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_running_builds: u32,

    /// How long a running build may go without a word from its capture (which speaks at
    /// least every 10 s) before it is ended as interrupted.
    #[arg(long, env = "LOOKOUT_BUILD_IDLE_TIMEOUT", default_value = "60s")]
    pub build_idle_timeout: humantime::Duration,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryMode {
    On,
    Off,
}

/// `2GiB`, `500MB`, `1048576`: binary and decimal units (through `parse-size`).
fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s).map_err(|e| format!("{s:?} is not a size ({e}); try 2GiB or 500MB"))
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Manage the users file of --auth users.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Print services' logs from a running Lookout, as `docker compose logs` prints them.
    Logs(crate::cli::LogsArgs),
    /// List the projects and services a running Lookout shows, as `docker compose ps` does.
    Ps(crate::cli::PsArgs),
    /// Print history's hits for a query from a running Lookout, oldest of them first.
    Search(crate::cli::SearchArgs),
    /// Run a command (`docker compose build`, say), pass its output through, and send it
    /// to a running Lookout as a build of the project; exits with the command's status.
    Capture(crate::cli::CaptureArgs),
}

#[derive(Subcommand, Debug, Clone)]
pub enum UsersAction {
    /// Add a user, or set a user's password and scope. Asks for the password (on a pipe,
    /// reads one line).
    Add {
        name: String,
        /// Services the user may see, as project/service patterns (`*` matches anything);
        /// repeat it or separate with commas. Without it: every service.
        #[arg(long = "scope", value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// Remove a user.
    Remove { name: String },
    /// Manage the API tokens of --tokens-file.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum TokenAction {
    /// Make a token that acts as NAME, print it once, and keep only its hash. Replaces
    /// NAME's token, if any.
    Add {
        name: String,
        /// Services the token may see, as project/service patterns; without it: every one.
        #[arg(long = "scope", value_delimiter = ',')]
        scopes: Vec<String>,
        /// The token may also write: capture builds (`lookout capture`) within its scope.
        #[arg(long)]
        write: bool,
    },
    /// Remove NAME's token: requests with it are refused at once, its sockets closed.
    Remove { name: String },
    /// The tokens' names and scopes.
    List,
}
