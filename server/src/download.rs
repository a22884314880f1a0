//! `GET /api/download?project=P&service=S`: a service's whole log from the engine as a text
//! file, replicas merged in time order, streamed so that memory stays flat however long the
//! log is.

use app::protocol::ServiceKey;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::Viewer;
use crate::hub::{Hub, HubError};

#[derive(Deserialize)]
pub struct DownloadQuery {
    project: String,
    service: String,
}

pub async fn route(
    State(hub): State<Hub>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<DownloadQuery>,
) -> Response {
    let key = ServiceKey {
        project: q.project,
        service: q.service,
    };
    let info = match hub.service(&key, &viewer.scope).await {
        Ok(info) => info,
        Err(HubError::UnknownService(e)) => {
            return (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Err(HubError::Engine(e)) => {
            return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    };
    // Holds a read permit until the whole log is written: a download is a read of it all.
    let mut log = match hub.past().whole(info.containers).await {
        Ok(log) => log,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };

    // A small channel: the engine is read only as fast as the client downloads.
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(8);
    tokio::spawn(async move {
        let mut chunk = String::new();
        loop {
            match log.next().await {
                Ok(Some((line, container))) => app::export::push_line(
                    &mut chunk,
                    line.ts.ns,
                    &container.replica.name,
                    line.stream.into(),
                    &app::ansi::parse(&line.text).plain,
                ),
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
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
