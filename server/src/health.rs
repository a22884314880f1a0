//! `/healthz` for probes and `/metrics` in Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::hub::Hub;

/// Always 200 while the server runs; says whether the engine is reachable and which API
/// version they agreed on. It answers anyone, so nothing more: the engine's version and its
/// error (paths, addresses) go to the log and to signed-in viewers over the WebSocket.
pub async fn healthz(State(hub): State<Hub>) -> impl IntoResponse {
    let engine = hub.engine().status().borrow().clone();
    Json(json!({
        "status": "ok",
        "engine": { "reachable": engine.reachable, "api_version": engine.api_version },
    }))
}

pub async fn metrics(State(hub): State<Hub>) -> impl IntoResponse {
    let m = hub.metrics();
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    put(
        "lookout_engine_streams",
        "gauge",
        "Log streams open to the Docker engine.",
        m.engine_streams.load(Ordering::Relaxed).to_string(),
    );
    put(
        "lookout_subscribers",
        "gauge",
        "WebSocket subscriptions.",
        m.subscribers.load(Ordering::Relaxed).to_string(),
    );
    put(
        "lookout_lines_in_total",
        "counter",
        "Lines read from the engine.",
        m.lines_in.load(Ordering::Relaxed).to_string(),
    );
    put(
        "lookout_lines_out_total",
        "counter",
        "Lines sent to subscribers.",
        m.lines_out.load(Ordering::Relaxed).to_string(),
    );
    put(
        "lookout_lines_dropped_total",
        "counter",
        "Lines skipped because a subscriber fell behind.",
        m.lines_dropped.load(Ordering::Relaxed).to_string(),
    );
    put(
        "lookout_engine_reconnects_total",
        "counter",
        "Times the Docker engine became reachable again after being lost.",
        hub.engine().reconnects().to_string(),
    );
    put(
        "lookout_engine_up",
        "gauge",
        "1 when the Docker engine answers.",
        u8::from(hub.engine().is_reachable()).to_string(),
    );
    if let Some(h) = hub.history() {
        let h = h.health();
        put(
            "lookout_history_lines_written_total",
            "counter",
            "Lines handed to history's store.",
            h.lines_written.load(Ordering::Relaxed).to_string(),
        );
        put(
            "lookout_history_write_errors_total",
            "counter",
            "Writes to the data dir that failed.",
            h.write_errors.load(Ordering::Relaxed).to_string(),
        );
        put(
            "lookout_history_kept",
            "gauge",
            "1 while history is being kept (no write has failed in the last minute).",
            u8::from(h.is_kept()).to_string(),
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
