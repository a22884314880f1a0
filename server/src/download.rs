//! `GET /api/download?project=P&service=S[&since=T][&until=T][&level=LEVELS]`: a service's
//! log as a text file, replicas merged in time order, streamed so that memory stays flat
//! however long the log is. The whole log comes from the engine; a window (`since`,
//! `until`) comes from history when it is kept (so a removed service's window too), else
//! from the engine. `level` keeps the lines stating those levels (`>=warn`, say).
//! `format=jsonl` writes each line as the protocol's line object instead, one a line, for
//! clients that go on from its cursors (`lookout logs`).

use app::levels::Levels;
use app::protocol::{LogLine, ServiceKey};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::Viewer;
use crate::clock::{now_ns, parse_when};
use crate::docker::logs::log_line;
use crate::history::History;
use crate::hub::{Hub, HubError};
use crate::recall;

#[derive(Deserialize)]
pub struct DownloadQuery {
    engine: Option<String>,
    project: String,
    service: String,
    since: Option<String>,
    until: Option<String>,
    level: Option<String>,
    format: Option<String>,
}

/// How a line is written: for people, or as the protocol's JSON for clients.
#[derive(Clone, Copy)]
enum Format {
    Text,
    Jsonl,
}

impl Format {
    fn parse(format: Option<&str>) -> Result<Format, String> {
        match format {
            None | Some("text") => Ok(Format::Text),
            Some("jsonl") => Ok(Format::Jsonl),
            Some(other) => Err(format!(
                "format must be text or jsonl, got {:?}",
                other.chars().take(40).collect::<String>()
            )),
        }
    }

    fn push(self, out: &mut String, line: &LogLine) {
        match self {
            Format::Text => app::export::push_line(
                out,
                line.cursor.ts_ns,
                &line.replica.name,
                line.stream.into(),
                &app::ansi::parse(&line.text).plain,
            ),
            Format::Jsonl => {
                out.push_str(&serde_json::to_string(line).expect("a line serializes"));
                out.push('\n');
            }
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Jsonl => "application/jsonl; charset=utf-8",
        }
    }
}

/// The span asked for, in nanoseconds: `[since, until)`.
#[derive(Clone, Copy)]
struct Window {
    since: i64,
    until: i64,
}

impl Window {
    fn parse(since: Option<&str>, until: Option<&str>) -> Result<Option<Window>, String> {
        if since.is_none() && until.is_none() {
            return Ok(None);
        }
        let now = now_ns();
        let at = |name: &str, v: Option<&str>, default: i64| {
            v.map_or(Ok(default), |v| {
                parse_when(v, now).map_err(|e| format!("{name}: {e}"))
            })
        };
        Ok(Some(Window {
            since: at("since", since, i64::MIN)?,
            until: at("until", until, i64::MAX)?,
        }))
    }

    fn holds(&self, ts_ns: i64) -> bool {
        (self.since..self.until).contains(&ts_ns)
    }
}

type Chunks = mpsc::Sender<Result<String, std::io::Error>>;

pub async fn route(
    State(hub): State<Hub>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<DownloadQuery>,
) -> Response {
    let key = hub.key(q.engine, q.project, q.service);
    let window = match Window::parse(q.since.as_deref(), q.until.as_deref()) {
        Ok(w) => w,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let levels = match recall::levels(q.level.as_deref()) {
        Ok(l) => l,
        Err(e) => return (StatusCode::BAD_REQUEST, e.message).into_response(),
    };
    let format = match Format::parse(q.format.as_deref()) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    // A small channel: the log is read only as fast as the client downloads.
    let (tx, rx) = mpsc::channel(8);
    match (window, hub.history()) {
        (Some(window), Some(history)) => {
            if !hub.may_see(&key, &viewer.scope) {
                let unknown = app::protocol::UnknownService(key);
                return (StatusCode::NOT_FOUND, unknown.to_string()).into_response();
            }
            tokio::spawn(from_history(
                history.clone(),
                key.clone(),
                window,
                levels,
                format,
                tx,
            ));
        }
        (window, _) => {
            if let Err(refused) =
                from_engine(&hub, &key, &viewer, (window, levels), format, tx).await
            {
                return refused;
            }
        }
    }

    let name = app::export::file_name(
        &key.engine,
        &key.project,
        &key.service,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    let body = Body::from_stream(tokio_stream_from(rx));
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Starts the read of the engine's whole log (lines outside `window` or `levels` left
/// out); a refusal is the answer to send instead.
async fn from_engine(
    hub: &Hub,
    key: &ServiceKey,
    viewer: &Viewer,
    (window, levels): (Option<Window>, Option<Levels>),
    format: Format,
    tx: Chunks,
) -> Result<(), Response> {
    let info = match hub.service(key, &viewer.scope).await {
        Ok(info) => info,
        Err(HubError::UnknownService(e)) => {
            return Err((StatusCode::NOT_FOUND, e.to_string()).into_response())
        }
        Err(HubError::Engine(e)) => {
            return Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response())
        }
    };
    // Holds a read permit until the whole log is written: a download is a read of it all.
    let past = match hub.past(key) {
        Ok(past) => past,
        Err(e) => return Err((StatusCode::NOT_FOUND, e.to_string()).into_response()),
    };
    let mut log = match past.whole(info.containers).await {
        Ok(log) => log,
        Err(e) => return Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()),
    };
    tokio::spawn(async move {
        let mut chunk = String::new();
        loop {
            match log.next().await {
                Ok(Some((line, _)))
                    if window.is_some_and(|w| !w.holds(line.ts.ns))
                        || levels.is_some_and(|l| !l.contains(line.level)) =>
                {
                    continue
                }
                Ok(Some((line, container))) => format.push(&mut chunk, &log_line(line, container)),
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
            if chunk.len() >= CHUNK && tx.send(Ok(std::mem::take(&mut chunk))).await.is_err() {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk)).await;
        }
    });
    Ok(())
}

/// Writes the stored lines of `window` (of `levels`, when set), a page at a time.
async fn from_history(
    history: History,
    key: ServiceKey,
    window: Window,
    levels: Option<Levels>,
    format: Format,
    tx: Chunks,
) {
    let mut after = None;
    loop {
        let read = recall::page_after(&history, &key, window.since, window.until, after, levels);
        let page = match read.await {
            Ok(page) => page,
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                return;
            }
        };
        let mut chunk = String::new();
        for line in &page.lines {
            format.push(&mut chunk, line);
        }
        if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
            return;
        }
        match page.after {
            Some(next) => after = Some(next),
            None => return,
        }
    }
}

/// Bytes gathered before they are sent on.
const CHUNK: usize = 64 * 1024;

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
