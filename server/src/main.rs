//! `lookout`: serves the web client, its server functions and the live-log WebSocket, and
//! reads everything from the Docker engine.

mod api;
mod assets;
mod auth;
mod config;
mod docker;
mod download;
mod headers;
mod health;
mod host;
mod hub;
mod origin;
mod redact;
mod runs;
mod ws;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use app::api::backend::Backend;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use clap::Parser;
use std::net::SocketAddr;
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tracing_subscriber::EnvFilter;

use crate::auth::sessions::{LoginLimiter, PasswordChecks, Sessions};
use crate::auth::users::{self, Users};
use crate::auth::{login, Auth, Mode, SocketCounts, TrustedProxies, Viewer};
use crate::config::{Command, Config, UsersAction};
use crate::docker::logs::LineRules;
use crate::docker::reads::ReadPermits;
use crate::docker::Engine;
use crate::hub::{Batch, Bounds, Hub, HubConfig};
use crate::redact::Redactor;

/// Most lines sent in one `lines` message (the protocol's bound).
const BATCH_LINES: usize = 1000;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub config: Arc<Config>,
    pub auth: Arc<Auth>,
    pub trusted_proxies: Arc<TrustedProxies>,
    pub sockets: Arc<SocketCounts>,
    /// Becomes true when the server is asked to stop.
    pub shutdown: watch::Receiver<bool>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LOOKOUT_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::parse();
    if let Some(Command::Users { action }) = &config.command {
        return users_command(&config, action);
    }
    let auth = match build_auth(&config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lookout: {e}");
            return ExitCode::from(2);
        }
    };
    if !config.listen.ip().is_loopback() && auth.mode() == Mode::None {
        if !config.allow_unauthenticated_remote {
            eprintln!(
                "lookout: refusing to listen on {}: Lookout asks no one for a password, so anyone \
                 who reaches that address would read every log. Listen on 127.0.0.1 (behind a \
                 proxy that authenticates), or pass --allow-unauthenticated-remote.",
                config.listen
            );
            return ExitCode::from(2);
        }
        tracing::warn!(
            listen = %config.listen,
            "listening beyond loopback without authentication: anyone who reaches it reads every log"
        );
    }

    let redactor = match Redactor::new(&config.redact.0, &config.redact_patterns) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("lookout: {e}");
            return ExitCode::from(2);
        }
    };

    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lookout: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound socket has an address");

    let engine = Engine::start();
    let hub = Hub::start(
        engine,
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
            },
            reads: ReadPermits::new(
                config.max_engine_reads as usize,
                config.engine_read_wait.into(),
            ),
            lines: LineRules {
                max_line: config.max_line_bytes as usize,
                redactor,
            },
            project: config.project.clone(),
        },
    );
    let (shutdown_tx, shutdown) = watch::channel(false);
    let max_body = config.max_body_bytes as usize;
    let hosts = Arc::new(host::AllowedHosts::new(
        config.listen,
        &config.allowed_hosts,
    ));
    let state = AppState {
        hub,
        auth: Arc::new(auth),
        trusted_proxies: Arc::new(TrustedProxies(config.trusted_proxies.clone())),
        sockets: Arc::new(SocketCounts::default()),
        config: Arc::new(config),
        shutdown,
    };

    let app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/ws", get(ws::route))
        .route("/api/download", get(download::route))
        .route("/api/{*fn_name}", get(server_fn).post(server_fn))
        .fallback(assets::serve)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn_with_state(hosts, host::check))
        .layer(axum::middleware::map_response(headers::secure))
        .with_state(state);

    // Tests and scripts read this line to find the port.
    println!("Lookout listening on http://{addr}");
    tracing::info!(%addr, "listening");

    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        stop_signal().await;
        tracing::info!("stopping: closing every socket");
        let _ = shutdown_tx.send(true);
        // Sockets get a close frame at once; whatever is still open after 2 s is cut.
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            std::process::exit(0);
        });
    })
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lookout: server error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn server_fn(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    req: Request<Body>,
) -> impl IntoResponse {
    let backend = Backend(Arc::new(api::EngineBackend {
        hub: state.hub.clone(),
        viewer,
        auth: state.auth.mode(),
        max_tail: state.config.max_tail_lines,
    }));
    leptos_axum::handle_server_fns_with_context(
        move || leptos::prelude::provide_context(backend.clone()),
        req,
    )
    .await
}

/// The authentication `config` asks for, with what it needs loaded.
fn build_auth(config: &Config) -> Result<Auth, String> {
    match config.auth {
        Mode::None => Ok(Auth::None),
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
            })
        }
    }
}

fn users_command(config: &Config, action: &UsersAction) -> ExitCode {
    let Some(path) = &config.users_file else {
        eprintln!("lookout users: say which file with --users-file FILE (or LOOKOUT_USERS_FILE)");
        return ExitCode::from(2);
    };
    let done = match action {
        UsersAction::Add { name, scopes } => {
            users::add(path, name, scopes).map(|()| format!("{name} can now sign in"))
        }
        UsersAction::Remove { name } => users::remove(path, name).map(|removed| {
            if removed {
                format!("{name} removed")
            } else {
                format!("{name} was not in {}", path.display())
            }
        }),
    };
    match done {
        Ok(said) => {
            eprintln!("lookout users: {said}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lookout users: {e}");
            ExitCode::FAILURE
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
