//! The CLI's side of the protocol: HTTP questions to `/api/…` and the live socket `/ws`,
//! each failure turned into one error a person can act on.

use app::history::SearchPage;
use app::protocol::{Cursor, LogLine, ProjectInfo, ServiceKey};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::{StatusCode, Url};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::args::{SearchArgs, ServerArgs};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0:?} is not a server address: {1} (write it as http://HOST:PORT)")]
    BadServer(String, String),
    #[error(
        "a token sent over plain http to {0} can be read on the way: reach the server through \
         an SSH tunnel to a loopback address, or run this on its machine"
    )]
    TokenOverHttp(String),
    #[error("cannot reach Lookout at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error(
        "{server} asks for a token (401): set LOOKOUT_TOKEN or --token to one of its API tokens"
    )]
    NoToken { server: String },
    #[error("{server} refused the token (401): {reason}")]
    BadToken { server: String, reason: String },
    #[error("refused (403): {0}")]
    Forbidden(String),
    #[error("{server} is busy or away ({status}): {reason}")]
    Busy {
        server: String,
        status: u16,
        reason: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error("unknown service {0}")]
    UnknownService(String),
    #[error("unknown project {0}")]
    UnknownProject(String),
    #[error("{name} is a service of several projects ({projects}): name one as PROJECT/{name}")]
    Ambiguous { name: String, projects: String },
    #[error("{name} is on several engines ({engines}): name one as ENGINE/{name}")]
    OnSeveralEngines { name: String, engines: String },
    #[error("{server} answered what is not Lookout's protocol: {reason}")]
    BadAnswer { server: String, reason: String },
}

impl CliError {
    /// Whether trying again later may work: the server was away, busy or overloaded.
    pub fn is_transient(&self) -> bool {
        matches!(self, CliError::Unreachable { .. } | CliError::Busy { .. })
    }
}

pub struct Client {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
    /// The server's clock less this machine's, from the last answer's `Date`: lines are
    /// stamped by the server's engine, so a time to compare them with is taken on its clock.
    offset_ns: std::sync::atomic::AtomicI64,
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connection to the server may take to open, and a question (not a download)
/// to be answered whole: a server that accepts and says nothing ends the command.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
const ANSWER_WAIT: Duration = Duration::from_secs(120);

impl Client {
    pub fn new(args: &ServerArgs) -> Result<Client, CliError> {
        let bad = |reason: String| CliError::BadServer(args.server.clone(), reason);
        let base = Url::parse(&args.server).map_err(|e| bad(e.to_string()))?;
        if base.scheme() != "http" {
            return Err(bad(format!(
                "this client speaks http, not {}: reach the server on its own address",
                base.scheme()
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_WAIT)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let token = args.token.clone().filter(|t| !t.is_empty());
        let host = base.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host.ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if token.is_some() && !loopback {
            return Err(CliError::TokenOverHttp(host.to_owned()));
        }
        Ok(Client {
            base,
            token,
            http,
            offset_ns: std::sync::atomic::AtomicI64::new(0),
        })
    }

    pub fn server(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// GET `path`; `wait` bounds the whole answer (none for a download, which lasts as long
    /// as the log is long).
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        wait: Option<Duration>,
    ) -> Result<reqwest::Response, CliError> {
        let mut request = self.http.get(self.url(path)).query(query);
        if let Some(wait) = wait {
            request = request.timeout(wait);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        self.read_clock(response.headers());
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(self.refusal(status, &body))
    }

    /// POSTs `body` as JSON; its JSON answer within `wait`.
    pub async fn post_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        wait: Duration,
    ) -> Result<T, CliError> {
        let mut request = self.http.post(self.url(path)).json(body).timeout(wait);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            return Err(self.refusal(status, &String::from_utf8_lossy(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| self.bad_answer(e))
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, CliError> {
        let body = self
            .get(path, query, Some(ANSWER_WAIT))
            .await?
            .bytes()
            .await
            .map_err(|e| self.unreachable(&e))?;
        serde_json::from_slice(&body).map_err(|e| self.bad_answer(e))
    }

    pub async fn projects(&self) -> Result<Vec<ProjectInfo>, CliError> {
        self.get_json("/api/projects", &[]).await
    }

    /// The newest `tail` lines of a service (replicas merged), from `since` on.
    pub async fn tail(
        &self,
        key: &ServiceKey,
        tail: u32,
        since: Option<&str>,
    ) -> Result<Vec<LogLine>, CliError> {
        let mut query = service_query(key);
        query.push(("tail", tail.to_string()));
        if let Some(since) = since {
            query.push(("since", since.to_owned()));
        }
        self.get_json("/api/tail", &query).await
    }

    /// A page of history's hits for `ask`, newest first, before `before`.
    pub async fn search(
        &self,
        ask: &SearchArgs,
        limit: u32,
        before: Option<&Cursor>,
    ) -> Result<SearchPage, CliError> {
        let mut query = vec![("q", ask.query.clone()), ("limit", limit.to_string())];
        let optional = [
            ("since", ask.since.clone()),
            ("until", ask.until.clone()),
            ("before", before.map(Cursor::to_string)),
        ];
        query.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        self.get_json("/api/search", &query).await
    }

    /// A service's whole log, or its lines in `[since, until)`, as a stream of lines.
    pub async fn download(
        &self,
        key: &ServiceKey,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Download, CliError> {
        let mut query = service_query(key);
        query.push(("format", "jsonl".to_owned()));
        for (name, value) in [("since", since), ("until", until)] {
            if let Some(v) = value {
                query.push((name, v.to_owned()));
            }
        }
        let response = self.get("/api/download", &query, None).await?;
        Ok(Download {
            response,
            pending: Vec::new(),
            at: 0,
            server: self.server(),
        })
    }

    /// Opens the live socket and reads its greeting.
    pub async fn connect(&self) -> Result<Socket, CliError> {
        let mut url = self.url("/ws");
        // The scheme was checked in `new`: http becomes ws.
        let _ = url.set_scheme("ws");
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| CliError::BadServer(self.server(), e.to_string()))?;
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                CliError::Refused("the token holds characters a header cannot".into())
            })?;
            request.headers_mut().insert("authorization", value);
        }
        let handshake =
            tokio::time::timeout(CONNECT_WAIT, tokio_tungstenite::connect_async(request));
        let Ok(opened) = handshake.await else {
            return Err(CliError::Unreachable {
                server: self.server(),
                reason: format!("no answer within {} s", CONNECT_WAIT.as_secs()),
            });
        };
        match opened {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .into_owned();
                let status = StatusCode::from_u16(response.status().as_u16())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                Err(self.refusal(status, &body))
            }
            Err(e) => Err(CliError::Unreachable {
                server: self.server(),
                reason: root_cause(&e),
            }),
        }
    }

    fn read_clock(&self, headers: &reqwest::header::HeaderMap) {
        let date = headers
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok());
        if let Some(at) = date.and_then(|d| httpdate::parse_http_date(d).ok()) {
            let server = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            let offset = server - crate::clock::now_ns();
            self.offset_ns
                .store(offset, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Now by the server's clock, to a second (what `Date` tells).
    pub fn server_now_ns(&self) -> i64 {
        crate::clock::now_ns() + self.offset_ns.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        CliError::Unreachable {
            server: self.server(),
            reason: root_cause(e),
        }
    }

    fn bad_answer(&self, e: impl std::fmt::Display) -> CliError {
        CliError::BadAnswer {
            server: self.server(),
            reason: e.to_string(),
        }
    }

    fn refusal(&self, status: StatusCode, body: &str) -> CliError {
        // Server functions answer `ServerError|<message>`; other routes plain text.
        let message = body.strip_prefix("ServerError|").unwrap_or(body).trim();
        // Said on the terminal: one line, no control character the server could slip in.
        let message: String = message
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        match status {
            StatusCode::UNAUTHORIZED if self.token.is_some() => CliError::BadToken {
                server: self.server(),
                reason: message,
            },
            StatusCode::UNAUTHORIZED => CliError::NoToken {
                server: self.server(),
            },
            StatusCode::FORBIDDEN => CliError::Forbidden(message),
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => CliError::Busy {
                server: self.server(),
                status: status.as_u16(),
                reason: message,
            },
            _ if message.is_empty() => {
                CliError::Refused(format!("{} answered {status}", self.server()))
            }
            _ => CliError::Refused(message),
        }
    }
}

/// The longest line a download may send: the server cuts lines at `--max-line-bytes`
/// (64 KiB by default), and JSON escapes at most multiply that by six.
const MAX_DOWNLOAD_LINE: usize = 8 << 20;

/// A download's lines, read as they arrive: memory holds one chunk, however long the log.
pub struct Download {
    response: reqwest::Response,
    pending: Vec<u8>,
    /// Where the first line not yet taken begins in `pending`.
    at: usize,
    server: String,
}

impl Download {
    pub async fn next(&mut self) -> Result<Option<LogLine>, CliError> {
        loop {
            if let Some(len) = self.pending[self.at..].iter().position(|&b| b == b'\n') {
                let line = &self.pending[self.at..self.at + len];
                self.at += len + 1;
                return serde_json::from_slice(line)
                    .map(Some)
                    .map_err(|e| self.broken(e.to_string()));
            }
            if self.pending.len() - self.at > MAX_DOWNLOAD_LINE {
                return Err(self.broken(format!("a line longer than {MAX_DOWNLOAD_LINE} bytes")));
            }
            // The lines taken go in one move a chunk, not one a line.
            self.pending.drain(..self.at);
            self.at = 0;
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.pending.extend_from_slice(&chunk),
                Ok(None) if self.pending.is_empty() => return Ok(None),
                Ok(None) => self.pending.push(b'\n'),
                Err(e) => {
                    return Err(CliError::Unreachable {
                        server: self.server.clone(),
                        reason: format!("the download broke off: {}", root_cause(&e)),
                    })
                }
            }
        }
    }

    fn broken(&self, reason: String) -> CliError {
        CliError::BadAnswer {
            server: self.server.clone(),
            reason,
        }
    }
}

pub async fn send(socket: &mut Socket, message: &app::protocol::ClientMessage) -> bool {
    let text = serde_json::to_string(message).expect("a client message serializes");
    socket.send(Message::text(text)).await.is_ok()
}

/// What a socket gave: a protocol message, or a sign of life (a pong).
pub enum Heard {
    Message(app::protocol::ServerMessage),
    Alive,
}

/// The next thing heard, or `None` when the socket closed or broke.
pub async fn receive(socket: &mut Socket) -> Option<Result<Heard, String>> {
    match socket.next().await? {
        Ok(Message::Text(text)) => Some(
            serde_json::from_str(&text)
                .map(Heard::Message)
                .map_err(|e| e.to_string()),
        ),
        Ok(Message::Close(_)) | Err(_) => None,
        Ok(_) => Some(Ok(Heard::Alive)),
    }
}

pub async fn ping(socket: &mut Socket) -> bool {
    socket.send(Message::Ping(Vec::new().into())).await.is_ok()
}

fn service_query(key: &ServiceKey) -> Vec<(&'static str, String)> {
    vec![
        ("engine", key.engine.clone()),
        ("project", key.project.clone()),
        ("service", key.service.clone()),
    ]
}

/// The innermost reason of an error chain: "Connection refused", not "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}
