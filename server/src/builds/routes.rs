//! `/api/builds…`: captures write builds (`start`, `append`), viewers read them (the list,
//! a build's lines, waiting for the next while it runs).
//!
//! Writing needs write permission: an API token made with `--write` (within its scope), or,
//! under `--auth none`, a client on this machine's loopback. Nothing else may write: a
//! browser's session or a proxy's user only reads.

use std::time::Duration;

use app::builds::{AppendBuild, Appended, BuildStarted, StartBuild};
use app::protocol::ServiceKey;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::{read, valid_name, BuildError, BuildId, Builds, Writer};
use crate::auth::scope::Scope;
use crate::auth::{Proof, Viewer};
use crate::history::ReadError;

/// How long a reader waiting for a running build's next lines is held before it is
/// answered with none (and asks again).
const LONG_POLL: Duration = Duration::from_secs(20);

/// A refusal: its status, and what it says.
type Refusal = (StatusCode, String);

/// A refusal, as the response says it.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

fn no_history() -> Response {
    refuse(
        StatusCode::CONFLICT,
        "builds are kept in history, which is off (--history off)",
    )
}

impl IntoResponse for BuildError {
    fn into_response(self) -> Response {
        let status = match &self {
            BuildError::BadName(_) | BuildError::TooManyLines { .. } => StatusCode::BAD_REQUEST,
            BuildError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            BuildError::NotRunning { .. } => StatusCode::NOT_FOUND,
            BuildError::NotYours { .. } => StatusCode::FORBIDDEN,
            BuildError::Gap { .. } => StatusCode::CONFLICT,
            BuildError::Read(ReadError::Busy(_)) => StatusCode::SERVICE_UNAVAILABLE,
            BuildError::Read(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        refuse(status, self.to_string())
    }
}

/// Headers a proxy adds; `lookout capture` sends none.
const PROXY_HEADERS: [&str; 4] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
];

/// Who may write builds, and within what scope, or why the viewer may not.
fn writer(viewer: &Viewer, headers: &HeaderMap) -> Result<(Writer, Scope), Refusal> {
    // Under --auth none, a proxy on this machine makes everyone it lets in a loopback
    // client: a request that came through one does not write.
    let proxied = PROXY_HEADERS.iter().any(|h| headers.contains_key(*h));
    let forbidden = |m: String| (StatusCode::FORBIDDEN, m);
    match &viewer.proof {
        Proof::Token(t) if t.write => Ok((Writer::Token(t.name.clone()), t.scope.clone())),
        Proof::Token(t) => Err(forbidden(format!(
            "token {} may only read: capturing a build needs a token made with --write \
             (lookout users token add {} --write)",
            t.name, t.name
        ))),
        Proof::Open if viewer.client.is_loopback() && !proxied => {
            Ok((Writer::Loopback, Scope::All))
        }
        Proof::Open => Err(forbidden(
            "without authentication (--auth none) builds are captured from this machine only: \
             run lookout capture here (not through a proxy), or give it a token made with \
             --write under --auth users"
                .into(),
        )),
        Proof::Session(_) | Proof::ProxyHeader => Err(forbidden(
            "capturing a build needs an API token made with --write (lookout users token add \
             NAME --write); a signed-in user only reads"
                .into(),
        )),
    }
}

/// `POST /api/builds/start`
pub async fn start(
    State(builds): State<Option<Builds>>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Json(req): Json<StartBuild>,
) -> Response {
    let Some(builds) = builds else {
        return no_history();
    };
    let (writer, scope) = match writer(&viewer, &headers) {
        Ok(w) => w,
        Err(refused) => return refused.into_response(),
    };
    let allowed = match &req.service {
        Some(service) => scope.allows_anywhere(&req.project, service),
        None => scope.allows_whole(&req.project),
    };
    if !allowed {
        let by = match &writer {
            Writer::Token(name) => name.as_str(),
            Writer::Loopback => "this client",
        };
        let what = match &req.service {
            Some(s) => format!("{}/{s}", req.project),
            None => format!("all of {} (name a service with --service)", req.project),
        };
        return refuse(
            StatusCode::FORBIDDEN,
            format!("token {by}'s scope does not reach {what}"),
        );
    }
    match builds
        .begin(writer, scope, &req.project, req.service.as_deref())
        .await
    {
        Ok(number) => (StatusCode::CREATED, Json(BuildStarted { number })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /api/builds/append`
pub async fn append(
    State(builds): State<Option<Builds>>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Json(req): Json<AppendBuild>,
) -> Response {
    let Some(builds) = builds else {
        return no_history();
    };
    let (writer, _) = match writer(&viewer, &headers) {
        Ok(w) => w,
        Err(refused) => return refused.into_response(),
    };
    match builds.append(&writer, req).await {
        Ok(taken) => Json(Appended { taken }).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    project: String,
    service: String,
}

/// The service a viewer asks about, if they may see it.
fn readable(viewer: &Viewer, project: &str, service: &str) -> Result<(), Refusal> {
    let key = ServiceKey::local(project, service);
    if !valid_name(project)
        || !valid_name(service)
        || !viewer.scope.allows_anywhere(project, service)
    {
        return Err((
            StatusCode::NOT_FOUND,
            app::protocol::UnknownService(key).to_string(),
        ));
    }
    Ok(())
}

/// `GET /api/builds?project=P&service=S`: S's builds, newest first.
pub async fn list(
    State(builds): State<Option<Builds>>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(builds) = builds else {
        return no_history();
    };
    if let Err(refused) = readable(&viewer, &q.project, &q.service) {
        return refused.into_response();
    }
    match read::list(&builds, &q.project, &q.service).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => BuildError::Read(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct LinesQuery {
    project: String,
    service: String,
    number: u64,
    after_ns: Option<i64>,
    after_seq: Option<u32>,
    #[serde(default)]
    wait: u8,
}

/// `GET /api/builds/lines?project=P&service=S&number=N[&after_ns=T&after_seq=Q][&wait=1]`:
/// a page of the build's lines after the cursor; with `wait=1`, a running build with no
/// line after it answers when one comes, when it ends, or after 20 s.
pub async fn lines(
    State(builds): State<Option<Builds>>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<LinesQuery>,
) -> Response {
    let Some(builds) = builds else {
        return no_history();
    };
    if let Err(refused) = readable(&viewer, &q.project, &q.service) {
        return refused.into_response();
    }
    let id = BuildId {
        project: q.project.clone(),
        number: q.number,
    };
    let after = q.after_ns.map(|ns| (ns, q.after_seq.unwrap_or(u32::MAX)));
    // Subscribed before the read: a line stored between the read and the wait still wakes it.
    let mut changed = builds.watch(&id);
    let mut page = read::page(&builds, &id, &q.service, after).await;
    if let (Ok(Some(p)), Some(rx), 1) = (&page, changed.as_mut(), q.wait) {
        if p.lines.is_empty() && tokio::time::timeout(LONG_POLL, rx.changed()).await.is_ok() {
            page = read::page(&builds, &id, &q.service, after).await;
        }
    }
    match page {
        Ok(Some(p)) => Json(p).into_response(),
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            format!("{} has no build #{}", q.service, q.number),
        ),
        Err(e) => BuildError::Read(e).into_response(),
    }
}
