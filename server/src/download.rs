//! `GET /api/download?project=P&service=S`: a service's whole log from the engine as a text
//! file, replicas merged in time order, streamed so that memory stays flat however long the
//! log is.

use app::protocol::{ContainerInfo, ServiceKey, Stream};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::Viewer;
use crate::clock::Timestamp;
use crate::docker::frames::RawLine;
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
                Ok(Some((line, container))) => format_line(&mut chunk, &line, container),
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

    let stamp = Timestamp {
        ns: time::OffsetDateTime::now_utc().unix_timestamp() * 1_000_000_000,
    }
    .to_rfc3339()
    .chars()
    .take(19)
    .map(|c| if c == ':' { '-' } else { c })
    .collect::<String>();
    let name = safe_file_name(&format!("{}-{}-{stamp}.log", key.project, key.service));
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

/// `<ts> <replica name> <stream> <text>`, the same as the web app's download.
fn format_line(out: &mut String, line: &RawLine, c: &ContainerInfo) {
    let stream = match line.stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    };
    out.push_str(&line.ts.to_rfc3339());
    out.push(' ');
    out.push_str(&c.replica.name);
    out.push(' ');
    out.push_str(stream);
    out.push(' ');
    out.push_str(&app::ansi::parse(&line.text).plain);
    out.push('\n');
}

/// Compose names are already tame; this keeps a header injection out all the same.
fn safe_file_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(safe_file_name("shop-web-2026.log"), "shop-web-2026.log");
        assert_eq!(safe_file_name("a\"b\r\nc/d.log"), "a_b__c_d.log");
    }
}
