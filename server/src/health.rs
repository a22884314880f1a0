//! `/healthz` for probes and `/metrics` in Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::docker::Engine;
use crate::hub::Hub;

/// Always 200 while the server runs; says whether the engine is reachable and which API
/// version they agreed on. It answers anyone, so nothing more: the engine's version and its
/// error (paths, addresses) go to the log and to signed-in viewers over the WebSocket.
/// `engine` is the default engine's, as before there were several; `engines` each one's.
pub async fn healthz(State(hub): State<Hub>) -> impl IntoResponse {
    let engines = hub.engines();
    let engine = engines.default_engine().status().borrow().clone();
    let each: Vec<_> = engines
        .statuses()
        .into_iter()
        .map(|e| json!({ "name": e.name, "reachable": e.reachable, "api_version": e.api_version }))
        .collect();
    Json(json!({
        "status": "ok",
        "engine": { "reachable": engine.reachable, "api_version": engine.api_version },
        "engines": each,
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
        "lookout_follow_stalls_total",
        "counter",
        "Log streams opened again because the engine held newer lines than they sent.",
        m.stalls.load(Ordering::Relaxed).to_string(),
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
    engine_metrics(&mut out, &hub);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// Each engine's reachability and reconnections, labelled with its name.
fn engine_metrics(out: &mut String, hub: &Hub) {
    let per_engine =
        |out: &mut String, name: &str, kind: &str, help: &str, value: &dyn Fn(&Engine) -> u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for engine in hub.engines().iter() {
                let label = engine.name();
                let _ = writeln!(out, "{name}{{engine=\"{label}\"}} {}", value(engine));
            }
        };
    per_engine(
        out,
        "lookout_engine_reconnects_total",
        "counter",
        "Times a Docker engine became reachable again after being lost.",
        &|e| e.reconnects(),
    );
    per_engine(
        out,
        "lookout_engine_up",
        "gauge",
        "1 when a Docker engine answers.",
        &|e| u64::from(e.is_reachable()),
    );
}
