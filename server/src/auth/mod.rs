//! Who is asking, and what they may see. One middleware, `guard`, stands before every route:
//! it names the viewer (or answers 401), refuses cross-site state changes, and hands the
//! viewer's scope to the handlers, which apply it to listing, streaming, tails and downloads.
//!
//! Modes (`--auth`):
//! - `none`: everyone is let in; Lookout then listens only on loopback unless told.
//! - `users`: a users file with argon2id hashes, a login page and a session cookie.
//! - `forward-proxy`: a user header, trusted only from the configured proxy addresses.
//!
//! Under `users` and `forward-proxy` alike, `Authorization: Bearer TOKEN` with a token of
//! `--tokens-file` acts as the token's user, with its scopes: no cookie, no CSRF rule.

pub mod login;
pub mod scope;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::origin;
use scope::Scope;
use sessions::{LoginLimiter, PasswordChecks, Sessions};
use tokens::TokenFile;
use users::Users;

/// The session cookie's name over plain http.
pub const COOKIE: &str = "lookout_session";
/// Its name over https. A browser keeps a `__Host-` cookie only if it is Secure, for `Path=/`
/// and without a Domain, so neither a sibling subdomain nor anyone on a plain-http path can
/// plant a session of their choosing under it.
pub const SECURE_COOKIE: &str = "__Host-lookout_session";

/// The request came over https, as a proxy in front says.
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The session cookie's name for this request. Only that name is read: over https a plain
/// `lookout_session` could have been planted by someone the prefix keeps out.
pub fn session_cookie(headers: &HeaderMap) -> &'static str {
    if over_https(headers) {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    None,
    Users,
    ForwardProxy,
}

/// How requests are authenticated, with what each mode needs.
pub enum Auth {
    None,
    Users {
        users: Arc<Users>,
        sessions: Arc<Sessions>,
        limiter: LoginLimiter,
        checks: PasswordChecks,
        tokens: Option<Arc<TokenFile>>,
    },
    ForwardProxy {
        header: HeaderName,
        tokens: Option<Arc<TokenFile>>,
    },
}

/// What let a viewer in.
#[derive(Clone, Debug)]
pub enum Proof {
    /// Nothing: `--auth none`.
    Open,
    /// A session of `--auth users`, by its cookie's token.
    Session(String),
    /// The user header of a trusted proxy.
    ProxyHeader,
    /// An API token, as the file held it then.
    Token(Box<tokens::Token>),
}

/// Who a request is from, as the handlers see it.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// The user's name; None without authentication.
    pub name: Option<String>,
    pub scope: Scope,
    /// The client's address (behind a trusted proxy, the one the proxy names).
    pub client: IpAddr,
    pub proof: Proof,
}

impl Viewer {
    /// What per-user limits count by: the user, or the address without authentication.
    pub fn limit_key(&self) -> String {
        match &self.name {
            Some(n) => format!("user {n}"),
            None => format!("address {}", self.client),
        }
    }
}

/// Paths reachable without signing in: the login page itself, and liveness probes.
const PUBLIC: [&str; 3] = ["/login", "/logout", "/healthz"];

impl Auth {
    pub fn mode(&self) -> Mode {
        match self {
            Auth::None => Mode::None,
            Auth::Users { .. } => Mode::Users,
            Auth::ForwardProxy { .. } => Mode::ForwardProxy,
        }
    }

    /// The sessions of `--auth users`, to check that a socket's session still holds.
    pub fn sessions(&self) -> Option<&Arc<Sessions>> {
        match self {
            Auth::Users { sessions, .. } => Some(sessions),
            _ => None,
        }
    }

    /// The API tokens, under the modes that take them.
    pub fn tokens(&self) -> Option<&TokenFile> {
        match self {
            Auth::None => None,
            Auth::Users { tokens, .. } | Auth::ForwardProxy { tokens, .. } => tokens.as_deref(),
        }
    }

    /// Whether what let `viewer` in still holds: a session may have expired or been signed
    /// out, a token removed or its scope changed.
    pub fn still_holds(&self, viewer: &Viewer) -> bool {
        match (&viewer.proof, self) {
            (Proof::Session(token), Auth::Users { sessions, .. }) => sessions.get(token).is_some(),
            (Proof::Token(then), _) => self
                .tokens()
                .and_then(|t| t.holding(then.digest()))
                .is_some_and(|now| now.grants_as(then)),
            _ => true,
        }
    }

    fn viewer(&self, headers: &HeaderMap, client: IpAddr, from_trusted: bool) -> Option<Viewer> {
        // Only Lookout's own tokens: a proxy in front may pass a bearer of its own (a JWT).
        let ours = bearer(headers).filter(|t| t.starts_with(tokens::PREFIX));
        if let (Some(presented), Some(tokens)) = (ours, self.tokens()) {
            let token = tokens.find(presented)?;
            return Some(Viewer {
                name: Some(token.name.clone()),
                scope: token.scope.clone(),
                client,
                proof: Proof::Token(Box::new(token)),
            });
        }
        match self {
            Auth::None => Some(Viewer {
                name: None,
                scope: Scope::All,
                client,
                proof: Proof::Open,
            }),
            Auth::Users { sessions, .. } => {
                let token = cookie(headers, session_cookie(headers))?;
                let s = sessions.get(token)?;
                Some(Viewer {
                    name: Some(s.user),
                    scope: s.scope,
                    client,
                    proof: Proof::Session(token.to_owned()),
                })
            }
            Auth::ForwardProxy { header, .. } => {
                if !from_trusted {
                    return None;
                }
                let name = headers.get(header)?.to_str().ok()?.trim();
                users::valid_name(name).then(|| Viewer {
                    name: Some(name.to_owned()),
                    scope: Scope::All,
                    client,
                    proof: Proof::ProxyHeader,
                })
            }
        }
    }
}

/// The value of cookie `name` in the request's Cookie headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Addresses whose proxy headers (`X-Forwarded-For`, the user header) are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer's, or behind trusted proxies the nearest address they
    /// name that is not one of them. Every `X-Forwarded-For` line counts, in order, as one
    /// list (a proxy may add a line of its own rather than append to the last), read from the
    /// right, where the proxies nearest to Lookout wrote; what is left of the first untrusted
    /// address is the client's to write and is not believed. If every address is a trusted
    /// proxy, the leftmost is the client. An entry that is not an address ends the walk, and
    /// the last address read before it counts, since nothing beyond it can be believed.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let lines: Vec<&[u8]> = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let entries = lines
            .iter()
            .rev()
            .flat_map(|line| line.rsplit(|b| *b == b','))
            .map(|e| e.trim_ascii())
            .filter(|e| !e.is_empty());
        for entry in entries {
            let Some(ip) = forwarded_address(entry) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:5678`), as some proxies write it.
fn forwarded_address(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry).ok()?;
    let ip = s
        .parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

/// Parses `--trusted-proxy`: an address or a network (`10.0.0.0/8`). An IPv4-mapped IPv6
/// network is taken as the IPv4 one, as every address compared with it is.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let net = s
        .parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("expected an IP address or network, got {s:?}"))?;
    Ok(match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(
                ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).expect("a prefix of at most 32"),
            ),
            None => net,
        },
        _ => net,
    })
}

/// The token of `--metrics-token`, shown as `***` in debug output.
#[derive(Clone)]
pub struct MetricsToken(String);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

impl MetricsToken {
    /// Parses `--metrics-token`: what can travel in an `Authorization` header.
    pub fn parse(s: &str) -> Result<MetricsToken, String> {
        let s = s.trim_end_matches(['\r', '\n']);
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "a metrics token is one or more visible ASCII characters (no spaces)".into(),
            );
        }
        Ok(MetricsToken(s.to_owned()))
    }

    /// Parses `--metrics-token-file`: the file's content, a final newline left out.
    pub fn read(path: &str) -> Result<MetricsToken, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the metrics token file {path}: {e}"))?;
        MetricsToken::parse(&text).map_err(|e| format!("{path}: {e}"))
    }

    /// Whether `presented` is the token, taking as long whichever byte differs: both are
    /// hashed first, so neither their lengths nor a shared prefix shows in the timing.
    pub fn matches(&self, presented: &str) -> bool {
        use sha2::{Digest, Sha256};
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(presented.as_bytes());
        let diff = a
            .iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// What `/metrics` answers to a bearer token, when one is configured and sent: in, or 401.
fn metrics_by_token(config: &crate::config::Config, headers: &HeaderMap) -> Option<bool> {
    let token = config
        .metrics_token
        .as_ref()
        .or(config.metrics_token_file.as_ref())?;
    Some(token.matches(bearer(headers)?))
}

/// What the guard needs: who may ask, from where, and the settings it checks.
#[derive(Clone)]
pub struct GuardState {
    pub config: Arc<crate::config::Config>,
    pub auth: Arc<Auth>,
    pub trusted_proxies: Arc<TrustedProxies>,
}

/// Every request passes here first.
pub async fn guard(
    State(state): State<GuardState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    if req.uri().path() == "/metrics" {
        match metrics_by_token(&state.config, req.headers()) {
            Some(true) => return next.run(req).await,
            Some(false) => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "wrong metrics token (--metrics-token)",
                )
                    .into_response()
            }
            None => {}
        }
    }
    let trusted = &state.trusted_proxies;
    let client = trusted.client(peer.ip(), req.headers());
    let viewer = state
        .auth
        .viewer(req.headers(), client, trusted.contains(peer.ip()));
    // A page of another site may send a form here; it must not change anything, sign
    // anyone in or out, or read through a POST. A page cannot send a token it does not
    // hold, so a request a token let in is the token holder's own.
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let by_token = viewer
        .as_ref()
        .is_some_and(|v| matches!(v.proof, Proof::Token(_)));
    if !safe && !by_token {
        if let Err(refused) = origin::check_request(req.headers(), &state.config.allowed_origins) {
            return (StatusCode::FORBIDDEN, refused.to_string()).into_response();
        }
    }
    let lookout_token = bearer(req.headers()).is_some_and(|t| t.starts_with(tokens::PREFIX));
    if viewer.is_none() && lookout_token && state.auth.tokens().is_some() {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "this API token is not one of this server's (--tokens-file)",
        )
            .into_response();
    }
    let path = req.uri().path();
    match viewer {
        Some(v) => {
            req.extensions_mut().insert(v);
            next.run(req).await
        }
        None if PUBLIC.contains(&path) => next.run(req).await,
        None => unauthenticated(&state.auth, &req),
    }
}

fn unauthenticated(auth: &Auth, req: &Request) -> Response {
    let wants_page = req.method() == Method::GET
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    match auth {
        Auth::Users { .. } if wants_page => {
            let next = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            login::redirect_to_login(&next)
        }
        Auth::Users { .. } => (
            StatusCode::UNAUTHORIZED,
            "not signed in: sign in at /login first",
        )
            .into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            "no user: Lookout expects the authenticating proxy to name the user",
        )
            .into_response(),
    }
}

/// WebSockets open per viewer at once (`--max-sockets-per-user`).
#[derive(Default)]
pub struct SocketCounts(Mutex<HashMap<String, usize>>);

/// One counted socket; dropping it frees the place.
pub struct SocketSlot {
    counts: Arc<SocketCounts>,
    key: String,
}

impl SocketCounts {
    pub fn take(self: &Arc<Self>, key: String, max: usize) -> Option<SocketSlot> {
        let mut counts = self.0.lock().expect("socket counts lock");
        let n = counts.entry(key.clone()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SocketSlot {
            counts: self.clone(),
            key,
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().expect("socket counts lock");
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lookout_session=tok; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let trusted = TrustedProxies(vec![parse_net("10.0.0.0/8").unwrap()]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 5.6.7.8"),
        );
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            trusted.client(proxy, &h),
            "5.6.7.8".parse::<IpAddr>().unwrap()
        );
        assert_eq!(trusted.client(other, &h), other);
        assert!(parse_net("127.0.0.1").is_ok() && parse_net("localhost").is_err());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", HeaderValue::from_str(l).unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_address_of_every_forwarded_line() {
        let trusted = TrustedProxies(vec![
            parse_net("10.0.0.0/8").unwrap(),
            parse_net("2001:db8:ffff::/48").unwrap(),
        ]);
        let proxy = ip("10.0.0.1");
        let cases: &[(&[&str], &str)] = &[
            // The client wrote the left part; the proxies appended on the right.
            (&["6.6.6.6, 1.2.3.4, 10.0.0.2"], "1.2.3.4"),
            // A second proxy added a line of its own: one list, lines in order.
            (&["6.6.6.6, 1.2.3.4", "10.0.0.2"], "1.2.3.4"),
            (&["6.6.6.6", "1.2.3.4, 10.9.9.9", "10.0.0.2"], "1.2.3.4"),
            // Only proxies: the leftmost is the client.
            (&["10.0.0.3, 10.0.0.2"], "10.0.0.3"),
            // IPv4-mapped addresses are the IPv4 ones, for trust and as the answer.
            (&["1.2.3.4, ::ffff:10.1.2.3"], "1.2.3.4"),
            (&["::ffff:1.2.3.4"], "1.2.3.4"),
            (&["2001:db8::7, 2001:db8:ffff::1"], "2001:db8::7"),
            // Ports, as some proxies write them.
            (&["1.2.3.4:5678"], "1.2.3.4"),
            (&["[2001:db8::7]:443"], "2001:db8::7"),
            (&["[2001:db8::7]"], "2001:db8::7"),
            // Not an address: the walk stops at the last address read.
            (&["1.2.3.4, unknown, 10.0.0.2"], "10.0.0.2"),
            (&["1.2.3.4, garbage"], "10.0.0.1"),
            (&["1.2.3.4, , 10.0.0.2"], "1.2.3.4"),
            (&[], "10.0.0.1"),
        ];
        for (lines, want) in cases {
            assert_eq!(
                trusted.client(proxy, &forwarded(lines)),
                ip(want),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn an_ipv4_mapped_peer_is_its_ipv4_address() {
        let trusted = TrustedProxies(vec![parse_net("10.0.0.0/8").unwrap()]);
        assert!(trusted.contains(ip("::ffff:10.1.2.3")));
        let h = forwarded(&["1.2.3.4"]);
        assert_eq!(trusted.client(ip("::ffff:10.1.2.3"), &h), ip("1.2.3.4"));
        assert_eq!(
            trusted.client(ip("::ffff:192.0.2.1"), &h),
            ip("192.0.2.1"),
            "an untrusted peer, as IPv4"
        );
        let mapped = TrustedProxies(vec![parse_net("::ffff:10.0.0.0/104").unwrap()]);
        assert!(mapped.contains(ip("10.1.2.3")));
        assert!(!mapped.contains(ip("11.0.0.1")));
    }

    #[test]
    fn over_https_the_session_cookie_has_the_host_prefix_and_only_it_is_read() {
        let sessions = Arc::new(Sessions::new(std::time::Duration::from_secs(60)));
        let token = sessions.open("alice", Scope::All);
        let auth = Auth::Users {
            users: Arc::new(Users::default()),
            sessions,
            limiter: LoginLimiter::new(10, 10),
            checks: PasswordChecks::new(1, std::time::Duration::from_secs(1)),
            tokens: None,
        };
        let ip = ip("127.0.0.1");
        let with = |cookie: &str, https: bool| {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
            if https {
                h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
            }
            auth.viewer(&h, ip, false).is_some()
        };
        assert!(with(&format!("lookout_session={token}"), false));
        assert!(with(&format!("__Host-lookout_session={token}"), true));
        assert!(
            !with(&format!("lookout_session={token}"), true),
            "over https the unprefixed name may have been planted"
        );
        assert!(!with(&format!("__Host-lookout_session={token}"), false));
    }

    #[test]
    fn the_metrics_token_is_compared_whole() {
        let t = MetricsToken::parse("s3cret-token\n").unwrap();
        assert!(t.matches("s3cret-token"));
        for wrong in ["", "s3cret-toke", "s3cret-token2", "S3CRET-TOKEN"] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
        assert!(MetricsToken::parse("").is_err());
        assert!(MetricsToken::parse("two words").is_err());
        assert_eq!(format!("{t:?}"), "MetricsToken(***)");
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn the_user_header_counts_only_from_a_trusted_proxy() {
        let auth = Auth::ForwardProxy {
            header: HeaderName::from_static("remote-user"),
            tokens: None,
        };
        let mut h = HeaderMap::new();
        h.insert("remote-user", HeaderValue::from_static("alice"));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            auth.viewer(&h, ip, true).unwrap().name.as_deref(),
            Some("alice")
        );
        assert!(auth.viewer(&h, ip, false).is_none());
        h.insert("remote-user", HeaderValue::from_static("not a name"));
        assert!(auth.viewer(&h, ip, true).is_none());
    }

    #[test]
    fn a_bearer_token_names_the_viewer_and_a_wrong_one_lets_nobody_in() {
        let dir = std::env::temp_dir().join(format!("lookout-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        let token = tokens::add(&path, "ci", &["shop/*".into()], false).unwrap();
        let auth = Auth::ForwardProxy {
            header: HeaderName::from_static("remote-user"),
            tokens: Some(Arc::new(TokenFile::open(&path).unwrap())),
        };
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("remote-user", HeaderValue::from_static("alice"));
        let bearer = |t: &str| HeaderValue::from_str(&format!("Bearer {t}")).unwrap();
        h.insert(header::AUTHORIZATION, bearer(&token));
        let v = auth.viewer(&h, ip, true).unwrap();
        assert_eq!(
            v.name.as_deref(),
            Some("ci"),
            "the token, not the header, names"
        );
        assert!(matches!(v.proof, Proof::Token(_)));
        let key = |p: &str| app::protocol::ServiceKey::local(p, "web");
        assert!(v.scope.allows(&key("shop")) && !v.scope.allows(&key("blog")));
        assert!(auth.still_holds(&v));
        h.insert(header::AUTHORIZATION, bearer("lk_wrong"));
        assert!(
            auth.viewer(&h, ip, true).is_none(),
            "nor does the header then"
        );
        // The same token with another scope, written by hand: it no longer grants the same.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(":shop/*", ":*/*")).unwrap();
        assert!(
            !auth.still_holds(&v),
            "a changed scope closes what the old one opened"
        );
        tokens::remove(&path, "ci").unwrap();
        assert!(!auth.still_holds(&v));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sockets_are_counted_per_viewer() {
        let counts = Arc::new(SocketCounts::default());
        let a1 = counts.take("a".into(), 2).unwrap();
        let _a2 = counts.take("a".into(), 2).unwrap();
        assert!(counts.take("a".into(), 2).is_none());
        assert!(counts.take("b".into(), 2).is_some());
        drop(a1);
        assert!(counts.take("a".into(), 2).is_some());
    }
}
