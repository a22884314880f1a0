//! `lookout`: serves the web client, its server functions and the live-log WebSocket, and
//! reads everything from the Docker engine.

mod api;
mod assets;
mod config;
mod docker;
mod download;
mod headers;
mod health;
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
use axum::routing::get;
use axum::Router;
use clap::Parser;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::docker::logs::LineRules;
use crate::docker::Engine;
use crate::hub::{Hub, HubConfig};
use crate::redact::Redactor;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub config: Arc<Config>,
    pub backend: Backend,
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
    if !config.listen.ip().is_loopback() {
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
            queue_lines: config.queue_lines as usize,
            lines: LineRules {
                max_line: config.max_line_bytes as usize,
                redactor: Arc::new(Redactor::new(&config.redact.0, &config.redact_patterns)),
            },
            project: config.project.clone(),
        },
    );
    let (shutdown_tx, shutdown) = watch::channel(false);
    let state = AppState {
        backend: Backend(Arc::new(api::EngineBackend { hub: hub.clone() })),
        hub,
        config: Arc::new(config),
        shutdown,
    };

    let app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/ws", get(ws::route))
        .route("/api/download", get(download::route))
        .route("/api/{*fn_name}", get(server_fn).post(server_fn))
        .fallback(assets::serve)
        .layer(axum::middleware::map_response(headers::secure))
        .with_state(state);

    // Tests and scripts read this line to find the port.
    println!("Lookout listening on http://{addr}");
    tracing::info!(%addr, "listening");

    let served = axum::serve(listener, app)
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

async fn server_fn(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    let backend = state.backend.clone();
    leptos_axum::handle_server_fns_with_context(
        move || leptos::prelude::provide_context(backend.clone()),
        req,
    )
    .await
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
