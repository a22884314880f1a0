//! `GET /api/download?project=P&service=S`: a service's whole log from the engine as a text
//! file, replicas merged in time order, streamed so that memory stays flat however long the
//! log is.

use std::collections::VecDeque;

use app::protocol::{ContainerInfo, ServiceKey};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::Viewer;
use crate::docker::frames::RawLine;
use crate::docker::logs::{LogQuery, LogStream};
use crate::AppState;

#[derive(Deserialize)]
pub struct DownloadQuery {
    project: String,
    service: String,
}

/// One container's log with the lines read but not yet written.
struct Source {
    container: ContainerInfo,
    stream: LogStream<'static>,
    pending: VecDeque<RawLine>,
    done: bool,
}

impl Source {
    /// The next line, reading from the engine when nothing is pending.
    async fn peek(&mut self) -> Result<Option<&RawLine>, crate::docker::EngineError> {
        while self.pending.is_empty() && !self.done {
            match self.stream.next_lines().await {
                Some(lines) => self.pending.extend(lines?),
                None => self.done = true,
            }
        }
        Ok(self.pending.front())
    }
}

pub async fn route(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<DownloadQuery>,
) -> Response {
    let key = ServiceKey {
        project: q.project,
        service: q.service,
    };
    let hub = &state.hub;
    if !hub.in_scope(&key) || !viewer.scope.allows(&key) {
        return (StatusCode::NOT_FOUND, format!("unknown service {key}")).into_response();
    }
    let projects = match hub.list().await {
        Ok(p) => p,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let Some(info) = projects
        .into_iter()
        .filter(|p| p.name == key.project)
        .flat_map(|p| p.services)
        .find(|s| s.service == key.service)
    else {
        return (StatusCode::NOT_FOUND, format!("unknown service {key}")).into_response();
    };
    // Held until the whole log is written: a download is a read of the whole log.
    let permit = match hub.config().reads.acquire().await {
        Ok(p) => p,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let docker = match hub.engine().docker() {
        Ok(d) => d,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let rules = &hub.config().lines;
    let mut sources: Vec<Source> = info
        .containers
        .into_iter()
        .map(|c| Source {
            stream: LogStream::open(
                &docker,
                &c.id,
                LogQuery {
                    since_secs: 0,
                    until_secs: None,
                    tail: None,
                    follow: false,
                    stdout: true,
                    stderr: true,
                },
                rules,
            ),
            container: c,
            pending: VecDeque::new(),
            done: false,
        })
        .collect();

    // A small channel: the engine is read only as fast as the client downloads.
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(8);
    tokio::spawn(async move {
        let _permit = permit;
        let mut chunk = String::new();
        loop {
            // The source whose next line is the oldest.
            let mut best: Option<(usize, (i64, String, u32))> = None;
            for (i, s) in sources.iter_mut().enumerate() {
                let id = s.container.id.clone();
                match s.peek().await {
                    Ok(Some(l)) => {
                        let k = (l.ts.ns, id, l.seq);
                        if best.as_ref().is_none_or(|(_, b)| k < *b) {
                            best = Some((i, k));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return;
                    }
                }
            }
            let Some((i, _)) = best else { break };
            let s = &mut sources[i];
            let line = s.pending.pop_front().expect("peeked");
            app::export::push_line(
                &mut chunk,
                line.ts.ns,
                &s.container.replica.name,
                line.stream.into(),
                &app::ansi::parse(&line.text).plain,
            );
            if chunk.len() >= 64 * 1024 && tx.send(Ok(std::mem::take(&mut chunk))).await.is_err() {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk)).await;
        }
    });

    let name = app::export::file_name(
        &key.project,
        &key.service,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    let body = Body::from_stream(tokio_stream_from(rx));
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
