//! Which names Lookout answers to. A page of another site can point a name of its own at
//! Lookout's address (DNS rebinding); the browser then treats Lookout as that site, sends its
//! requests with that site's `Host` and `Origin`, and reads the answers. Refusing every Host
//! that is not a name of this server closes that door before any route or check runs,
//! including the WebSocket's, which compares the Origin with the Host.
//!
//! The port is not compared: a rebinding page is on a name of its own whatever the port, and
//! a proxy in front may pass on the public port (or none) rather than the one Lookout listens on.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A name Lookout answers to besides loopback (`--allowed-host`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedHost {
    Name(String),
    Ip(IpAddr),
}

/// Parses `--allowed-host`: a DNS name or an IP literal (IPv6 with or without brackets),
/// without a port, since any port is accepted.
pub fn parse_allowed(s: &str) -> Result<AllowedHost, String> {
    let s = s.trim();
    match parse_host(s) {
        Some((host, None)) => Ok(host),
        Some((_, Some(_))) => Err(format!(
            "--allowed-host takes a name without a port (any port is accepted), got {s:?}"
        )),
        None => s
            .parse::<IpAddr>()
            .map(|ip| AllowedHost::Ip(ip.to_canonical()))
            .map_err(|_| format!("expected a host name or an IP address, got {s:?}")),
    }
}

/// The names of this server: loopback, the listen address and `--allowed-host`.
#[derive(Clone, Debug)]
pub struct AllowedHosts {
    listen: Option<IpAddr>,
    extra: Vec<AllowedHost>,
}

impl AllowedHosts {
    pub fn new(listen: SocketAddr, extra: &[AllowedHost]) -> AllowedHosts {
        // 0.0.0.0 and :: are not an address a browser can be sent to.
        let ip = listen.ip().to_canonical();
        AllowedHosts {
            listen: (!ip.is_unspecified()).then_some(ip),
            extra: extra.to_vec(),
        }
    }

    /// Whether a `Host` value (`name[:port]`, `a.b.c.d[:port]`, `[v6][:port]`) names this server.
    pub fn allows(&self, host: &str) -> bool {
        let Some((host, _)) = parse_host(host) else {
            return false;
        };
        match host {
            AllowedHost::Name(n) => {
                n == "localhost"
                    || n.ends_with(".localhost")
                    || self.extra.contains(&AllowedHost::Name(n))
            }
            AllowedHost::Ip(ip) => {
                ip.is_loopback()
                    || self.listen == Some(ip)
                    || self.extra.contains(&AllowedHost::Ip(ip))
            }
        }
    }
}

/// Splits `name[:port]` or `[v6][:port]` and normalises the host: lower case, no trailing
/// dot, IPv4-mapped IPv6 as IPv4. None if it is not a host and port at all.
fn parse_host(s: &str) -> Option<(AllowedHost, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        let ip: std::net::Ipv6Addr = v6.parse().ok()?;
        (AllowedHost::Ip(IpAddr::V6(ip).to_canonical()), port)
    } else {
        let (name, port) = match s.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let host = match name.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => AllowedHost::Ip(IpAddr::V4(ip)),
            Err(_) if is_dns_name(&name) => AllowedHost::Name(name),
            Err(_) => return None,
        };
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Stands before everything else: a request for a name that is not this server's gets 421
/// and reaches no route.
pub async fn check(State(allowed): State<Arc<AllowedHosts>>, req: Request, next: Next) -> Response {
    match refusal(&allowed, &req) {
        None => next.run(req).await,
        Some(why) => {
            tracing::warn!(%why, "request refused");
            (
                StatusCode::MISDIRECTED_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{why}\n"),
            )
                .into_response()
        }
    }
}

/// Why a request is not for this server, if it is not. Both the Host header and the authority
/// of an absolute request target (or HTTP/2's `:authority`) must name it.
fn refusal(allowed: &AllowedHosts, req: &Request) -> Option<String> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Some("misdirected request: more than one Host header".into());
    }
    let authority = req.uri().authority().map(|a| a.as_str());
    if header.is_none() && authority.is_none() {
        return Some("misdirected request: no Host header".into());
    }
    let named = header
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .into_iter()
        .chain(authority.map(str::to_owned));
    for host in named {
        if !allowed.allows(&host) {
            let shown: String = host.chars().take(100).collect();
            return Some(format!(
                "misdirected request: {shown:?} is not a name of this server (see --allowed-host)"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(listen: &str, extra: &[&str]) -> AllowedHosts {
        let extra: Vec<_> = extra.iter().map(|e| parse_allowed(e).unwrap()).collect();
        AllowedHosts::new(listen.parse().unwrap(), &extra)
    }

    #[test]
    fn loopback_names_pass_with_any_port() {
        let h = hosts("127.0.0.1:8080", &[]);
        for ok in [
            "localhost",
            "localhost:8080",
            "LocalHost:1",
            "localhost.",
            "app.localhost:3000",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.8.9.10:80",
            "[::1]",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:8080",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
    }

    #[test]
    fn other_names_and_malformed_hosts_are_refused() {
        let h = hosts("127.0.0.1:8080", &[]);
        for bad in [
            "evil.tld",
            "evil.tld:8080",
            "localhost.evil.tld",
            "evillocalhost",
            "127.0.0.1.evil.tld",
            "10.0.0.5:8080",
            "[::2]:8080",
            "::1",
            "[::1",
            "localhost:",
            "localhost:http",
            "localhost:99999",
            "",
            "local host",
            "127.1",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn the_listen_address_and_allowed_hosts_pass() {
        let h = hosts(
            "192.0.2.7:8080",
            &[
                "logs.example.com",
                "Dash.Example.com.",
                "2001:db8::1",
                "[2001:db8::2]",
            ],
        );
        for ok in [
            "192.0.2.7:8080",
            "192.0.2.7:443",
            "logs.example.com",
            "LOGS.example.com:443",
            "dash.example.com",
            "[2001:db8::1]:8080",
            "[2001:db8::2]",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        assert!(!h.allows("sub.logs.example.com"));
        assert!(!h.allows("192.0.2.8:8080"));
    }

    #[test]
    fn an_unspecified_listen_address_is_no_name() {
        let h = hosts("0.0.0.0:8080", &[]);
        assert!(!h.allows("0.0.0.0:8080"));
        assert!(h.allows("127.0.0.1:8080"));
        let h = hosts("[::]:8080", &[]);
        assert!(!h.allows("[::]:8080"));
        let h = hosts("[2001:db8::5]:8080", &[]);
        assert!(h.allows("[2001:db8::5]:8080"));
    }

    #[test]
    fn an_allowed_host_with_a_port_or_garbage_is_a_clear_error() {
        assert!(parse_allowed("logs.example.com:443")
            .unwrap_err()
            .contains("without a port"));
        assert!(parse_allowed("not a name").is_err());
        assert!(parse_allowed("").is_err());
    }

    fn request(host: Option<&str>, uri: &str) -> Request {
        let mut b = Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header(header::HOST, h);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_request_names_this_server_in_host_and_target() {
        let h = hosts("127.0.0.1:8080", &[]);
        assert_eq!(
            refusal(&h, &request(Some("127.0.0.1:8080"), "/api/projects")),
            None
        );
        assert!(refusal(&h, &request(None, "/"))
            .unwrap()
            .contains("no Host"));
        assert!(refusal(&h, &request(Some("evil.tld:8080"), "/"))
            .unwrap()
            .contains("\"evil.tld:8080\""));
        assert!(
            refusal(&h, &request(Some("127.0.0.1:8080"), "http://evil.tld/")).is_some(),
            "an absolute target names another server"
        );
        assert_eq!(refusal(&h, &request(None, "http://localhost:8080/")), None);
        let mut twice = request(Some("127.0.0.1"), "/");
        twice
            .headers_mut()
            .append(header::HOST, "evil.tld".parse().unwrap());
        assert!(refusal(&h, &twice).is_some());
    }
}
