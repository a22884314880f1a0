//! The server's start: the command line's settings turned into the hub, the authentication
//! and the routes, served until a stop signal.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tracing_subscriber::EnvFilter;

use crate::auth::sessions::{LoginLimiter, PasswordChecks, Sessions};
use crate::auth::tokens::TokenFile;
use crate::auth::users::{self, Users};
use crate::auth::{login, Auth, Mode, SocketCounts, TrustedProxies};
use crate::builds::{self, Builds, BuildsConfig};
use crate::config::{Command, Config, HistoryMode};
use crate::docker::address::{check_certificates, engine_specs, DockerEnv};
use crate::docker::logs::LineRules;
use crate::docker::Engines;
use crate::history::{History, HistoryConfig};
use crate::hub::{Batch, Bounds, Hub, HubConfig};
use crate::permits::{Bound, ReadPermits};
use crate::redact::Redactor;
use crate::state::AppState;
use crate::store::Retention;
use crate::{api, assets, download, headers, health, host, ws};

/// Most lines sent in one `lines` message (the protocol's bound).
const BATCH_LINES: usize = 1000;

/// Why the server did not run: said on stderr, with the exit code.
struct Refused {
    code: u8,
    message: String,
}

impl Refused {
    /// A setting that cannot work (exit code 2).
    fn setting(message: impl Into<String>) -> Refused {
        Refused {
            code: 2,
            message: message.into(),
        }
    }

    fn failure(message: impl Into<String>) -> Refused {
        Refused {
            code: 1,
            message: message.into(),
        }
    }
}

/// Runs what the command line asks: a `users` command, a client command (`logs`), or the
/// server until it is stopped.
pub async fn run(config: Config) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LOOKOUT_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match &config.command {
        Some(Command::Users { action }) => return users::command(&config, action),
        Some(Command::Logs(args)) => return crate::cli::logs(args.clone()).await,
        Some(Command::Ps(args)) => return crate::cli::ps(args.clone()).await,
        Some(Command::Search(args)) => return crate::cli::search(args.clone()).await,
        Some(Command::Capture(args)) => return crate::cli::capture(args.clone()).await,
        None => {}
    }
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Refused { code, message }) => {
            eprintln!("lookout: {message}");
            ExitCode::from(code)
        }
    }
}

async fn serve(config: Config) -> Result<(), Refused> {
    let auth = build_auth(&config).map_err(Refused::setting)?;
    check_exposure(&config, &auth)?;
    let redactor = Redactor::new(&config.redact.0, &config.redact_patterns)
        .map_err(|e| Refused::setting(e.to_string()))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Refused::failure(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .expect("a bound socket has an address");

    let history = open_history(&config)?;
    let redactor = Arc::new(redactor);
    let builds = history
        .clone()
        .map(|h| Builds::start(h, redactor.clone(), builds_config(&config)));
    let engines = engine_specs(&config.engines, &config.engine_tls, &DockerEnv::read())
        .and_then(|specs| check_certificates(&specs).map(|()| specs))
        .map_err(Refused::setting)?;
    let hub = Hub::start(
        Engines::start(engines, config.max_ssh_handshakes as usize),
        hub_config(&config, redactor),
        history.clone(),
    );
    let (shutdown_tx, shutdown) = watch::channel(false);
    let max_body = config.max_body_bytes as usize;
    let hosts = Arc::new(host::AllowedHosts::new(
        config.listen,
        &config.allowed_hosts,
    ));
    let state = AppState {
        hub,
        builds,
        auth: Arc::new(auth),
        trusted_proxies: Arc::new(TrustedProxies(config.trusted_proxies.clone())),
        sockets: Arc::new(SocketCounts::default()),
        config: Arc::new(config),
        shutdown,
    };
    let app = routes(state)
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn_with_state(hosts, host::check))
        .layer(axum::middleware::map_response(headers::secure));

    // Tests and scripts read this line to find the port.
    println!("Lookout listening on http://{addr}");
    tracing::info!(%addr, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopping(shutdown_tx))
    .await
    .map_err(|e| Refused::failure(format!("server error: {e}")))?;
    // What was read is on disk: a restart goes on from the last line.
    if let Some(history) = history {
        history.flush().await;
    }
    Ok(())
}

/// History on disk, unless `--history off`. A store that cannot be opened (a file that
/// cannot be read, a folder that cannot be made) stops the start, naming it: history is
/// never silently lost or silently not kept.
fn open_history(config: &Config) -> Result<Option<History>, Refused> {
    if config.history == HistoryMode::Off {
        return Ok(None);
    }
    let cfg = HistoryConfig {
        dir: config.data_dir.clone(),
        retention: Retention {
            age: config.retention.into(),
            bytes: config.retention_size,
        },
        queue: config.history_queue as usize,
        queue_bytes: config.history_queue_bytes,
        catch_up_bytes: config.history_catch_up_bytes,
        search_max_lines: config.search_max_lines,
        reads: Bound {
            what: "reads of history",
            max: config.max_history_reads as usize,
            max_flag: "--max-history-reads",
            wait: config.history_read_wait.into(),
            wait_flag: "--history-read-wait",
        },
    };
    History::open(cfg).map(Some).map_err(|e| {
        Refused::failure(format!(
            "cannot open the history in {} ({e}); fix or move it, or start with --history off",
            config.data_dir.display()
        ))
    })
}

/// Every route, behind the guard that tells who is asking.
fn routes(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/ws", get(ws::route))
        .route("/api/download", get(download::route))
        .route("/api/builds", get(builds::routes::list))
        .route("/api/builds/lines", get(builds::routes::lines))
        .route("/api/builds/start", post(builds::routes::start))
        .route("/api/builds/append", post(builds::routes::append))
        .route("/api/{*fn_name}", get(api::route).post(api::route))
        .fallback(assets::serve)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::guard,
        ))
        .with_state(state)
}

/// Listening beyond loopback with no one asked for a password is refused unless asked for.
fn check_exposure(config: &Config, auth: &Auth) -> Result<(), Refused> {
    if config.listen.ip().is_loopback() || auth.mode() != Mode::None {
        return Ok(());
    }
    if !config.allow_unauthenticated_remote {
        return Err(Refused::setting(format!(
            "refusing to listen on {}: Lookout asks no one for a password, so anyone \
             who reaches that address would read every log. Listen on 127.0.0.1 (behind a \
             proxy that authenticates), or pass --allow-unauthenticated-remote.",
            config.listen
        )));
    }
    tracing::warn!(
        listen = %config.listen,
        "listening beyond loopback without authentication: anyone who reaches it reads every log"
    );
    Ok(())
}

fn builds_config(config: &Config) -> BuildsConfig {
    BuildsConfig {
        max_lines: config.max_build_lines,
        max_running: config.max_running_builds as usize,
        idle: config.build_idle_timeout.into(),
        max_line: config.max_line_bytes as usize,
    }
}

fn hub_config(config: &Config, redactor: Arc<Redactor>) -> HubConfig {
    HubConfig {
        ring_lines: config.ring_lines,
        ring_bytes: config.ring_bytes as usize,
        queue: Bounds {
            items: config.queue_lines as usize,
            bytes: config.queue_bytes as usize,
        },
        batch: Batch {
            lines: BATCH_LINES,
            bytes: config.max_batch_bytes as usize,
            pace: Duration::ZERO,
        },
        reads: ReadPermits::new(Bound {
            what: "log reads",
            max: config.max_engine_reads as usize,
            max_flag: "--max-engine-reads",
            wait: config.engine_read_wait.into(),
            wait_flag: "--engine-read-wait",
        }),
        lines: LineRules {
            max_line: config.max_line_bytes as usize,
            redactor,
            read_ahead: usize::try_from(config.read_ahead_bytes).unwrap_or(usize::MAX),
        },
        project: config.project.clone(),
    }
}

/// Resolves at a stop signal, once every socket has been told to close.
async fn stopping(shutdown: watch::Sender<bool>) {
    stop_signal().await;
    tracing::info!("stopping: closing every socket");
    let _ = shutdown.send(true);
    // Sockets get a close frame at once; whatever is still open after 2 s is cut. On a
    // thread of its own: a runtime busy storing a long log must not delay the cut.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(2));
        std::process::exit(0);
    });
}

/// The API tokens file, when one is named: one that does not read stops the start.
fn open_tokens(config: &Config) -> Result<Option<Arc<TokenFile>>, String> {
    config
        .tokens_file
        .as_deref()
        .map(|path| {
            TokenFile::open(path)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .transpose()
}

/// The authentication `config` asks for, with what it needs loaded.
fn build_auth(config: &Config) -> Result<Auth, String> {
    match config.auth {
        Mode::None => {
            if config.tokens_file.is_some() {
                tracing::warn!("--tokens-file is not read under --auth none: everyone is let in");
            }
            Ok(Auth::None)
        }
        Mode::ForwardProxy => {
            if config.trusted_proxies.is_empty() {
                return Err(
                    "--auth forward-proxy needs --trusted-proxy: the addresses of the \
                            proxy whose user header to believe"
                        .into(),
                );
            }
            Ok(Auth::ForwardProxy {
                header: config.user_header.clone(),
                tokens: open_tokens(config)?,
            })
        }
        Mode::Users => {
            let path = config.users_file.clone().ok_or(
                "--auth users needs --users-file; add a user with `lookout --users-file FILE users add NAME`",
            )?;
            let users = Users::load(&path).map_err(|e| e.to_string())?;
            if users.is_empty() {
                return Err(format!(
                    "the users file {} has no users; add one with `lookout --users-file {} users add NAME`",
                    path.display(),
                    path.display()
                ));
            }
            Ok(Auth::Users {
                users: Arc::new(users),
                sessions: Arc::new(Sessions::new(config.session_ttl.into())),
                limiter: LoginLimiter::new(
                    config.login_attempts_per_minute,
                    config.login_attempts_per_name_per_minute,
                ),
                checks: PasswordChecks::new(config.max_concurrent_logins, config.login_wait.into()),
                tokens: open_tokens(config)?,
            })
        }
    }
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
