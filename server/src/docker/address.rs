//! Which engines to read and how to reach each: `--engine NAME=URL` (repeatable) and
//! `--engine-tls NAME=DIR`, checked once at start so that a typo is a clear error, not an
//! engine that never answers.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use app::protocol::LOCAL_ENGINE;

/// A name is what the protocol, the URL, scopes and history call the engine by: short,
/// lower case, with no `/` (it is one part of `engine/project/service`) and no leading `@`
/// (history's own pseudo-engines, such as `@build`).
fn check_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() > 63 || !first_ok || !name.chars().all(ok_char) {
        return Err(format!(
            "engine name {name:?} must be 1 to 63 of a-z, 0-9, '-', '_', '.', starting with a \
             letter or digit"
        ));
    }
    Ok(())
}

/// Where an engine listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `DOCKER_HOST`, or the local socket: the engine named `local` without `--engine`.
    Default,
    Unix(PathBuf),
    /// `tcp://HOST:PORT`, with TLS when `--engine-tls` names its certificates.
    Tcp {
        host: String,
        port: u16,
    },
    /// `ssh://[USER@]HOST[:PORT]`, through the system's `ssh`.
    Ssh(SshTarget),
}

/// Where `ssh` goes: `[USER@]HOST[:PORT]`, each part as ssh takes it apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    /// A name (which ssh's config may map to another), an IPv4 address, or an IPv6 one.
    pub host: String,
    pub port: Option<u16>,
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ssh://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (true, None) => write!(f, "[{}]", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (false, None) => f.write_str(&self.host),
        }
    }
}

/// One `--engine NAME=URL`, as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineArg {
    pub name: String,
    pub address: Address,
}

impl FromStr for EngineArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, url) = s
            .split_once('=')
            .ok_or_else(|| format!("--engine takes NAME=URL, got {s:?}"))?;
        check_name(name)?;
        let address = if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "engine {name}: a unix socket's path must be absolute, got {url:?}"
                ));
            }
            Address::Unix(path.into())
        } else if let Some(rest) = url.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("engine {name}: {url:?} needs a port (tcp://HOST:PORT)"))?;
            let port = port
                .parse()
                .map_err(|_| format!("engine {name}: {port:?} is not a port"))?;
            if host.is_empty() {
                return Err(format!("engine {name}: {url:?} needs a host"));
            }
            Address::Tcp {
                host: host.to_owned(),
                port,
            }
        } else if let Some(rest) = url.strip_prefix("ssh://") {
            Address::Ssh(ssh_target(rest).map_err(|e| format!("engine {name}: {url:?} {e}"))?)
        } else {
            return Err(format!(
                "engine {name}: {url:?} is not unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]"
            ));
        };
        Ok(EngineArg {
            name: name.to_owned(),
            address,
        })
    }
}

/// `[USER@]HOST[:PORT]` taken apart; a part that begins with `-` is refused, as ssh would
/// read it as an option.
fn ssh_target(rest: &str) -> Result<SshTarget, String> {
    let rest = rest.trim_end_matches('/');
    let (user, at) = match rest.rsplit_once('@') {
        Some((user, at)) => (Some(user), at),
        None => (None, rest),
    };
    let (host, port) = if let Some(v6) = at.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("has an unclosed [")?;
        (host, after.strip_prefix(':'))
    } else {
        match at.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (at, None),
        }
    };
    if host.is_empty() {
        return Err("needs a host: ssh://[USER@]HOST[:PORT]".into());
    }
    if host.contains('/')
        || host.starts_with('-')
        || user.is_some_and(|u| u.is_empty() || u.starts_with('-'))
    {
        return Err("is not ssh://[USER@]HOST[:PORT]".into());
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("has {p:?}, not a port"))
        })
        .transpose()?;
    Ok(SshTarget {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port,
    })
}

/// One `--engine-tls NAME=DIR`, as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsArg {
    pub name: String,
    pub dir: PathBuf,
}

impl FromStr for TlsArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, dir) = s
            .split_once('=')
            .ok_or_else(|| format!("--engine-tls takes NAME=DIR, got {s:?}"))?;
        check_name(name)?;
        Ok(TlsArg {
            name: name.to_owned(),
            dir: dir.into(),
        })
    }
}

/// The certificates of a TLS engine: the CA that signed the engine's, and Lookout's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// An engine to read, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineSpec {
    pub name: String,
    pub address: Address,
    pub tls: Option<Tls>,
}

impl EngineSpec {
    /// How the engine is shown in messages: its URL (no secrets: a TLS engine's key stays
    /// a path).
    pub fn url(&self) -> String {
        match &self.address {
            Address::Default => std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock".into()),
            Address::Unix(p) => format!("unix://{}", p.display()),
            Address::Tcp { host, port } => format!("tcp://{host}:{port}"),
            Address::Ssh(target) => target.to_string(),
        }
    }
}

/// How docker's own client finds its engine: `DOCKER_HOST`, and with `DOCKER_TLS_VERIFY`
/// the certificates in `DOCKER_CERT_PATH` (default `~/.docker`).
#[derive(Clone, Debug, Default)]
pub struct DockerEnv {
    pub host: Option<String>,
    pub cert_path: Option<PathBuf>,
}

impl DockerEnv {
    pub fn read() -> DockerEnv {
        let set = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
        let verify = set("DOCKER_TLS_VERIFY").is_some_and(|v| v != "0");
        let home = set("HOME").map(|h| PathBuf::from(h).join(".docker"));
        DockerEnv {
            host: set("DOCKER_HOST"),
            cert_path: verify
                .then(|| set("DOCKER_CERT_PATH").map(PathBuf::from).or(home))
                .flatten(),
        }
    }
}

/// The engines to read: without `--engine`, `local`, where `docker_env` says; else those
/// named, each once, with TLS where `--engine-tls` says. Plain TCP is refused beyond
/// loopback: it would hand every log, and the engine itself, to whoever is on the path.
pub fn engine_specs(
    engines: &[EngineArg],
    tls: &[TlsArg],
    docker_env: &DockerEnv,
) -> Result<Vec<EngineSpec>, String> {
    if engines.is_empty() {
        if let Some(t) = tls.first() {
            return Err(format!("--engine-tls {}: no --engine of that name", t.name));
        }
        let Some(host) = &docker_env.host else {
            return Ok(vec![EngineSpec {
                name: LOCAL_ENGINE.to_owned(),
                address: Address::Default,
                tls: None,
            }]);
        };
        // DOCKER_HOST by the same rules as an --engine of that address.
        let local: EngineArg = format!("{LOCAL_ENGINE}={host}")
            .parse()
            .map_err(|e| format!("DOCKER_HOST: {e}"))?;
        let certs = docker_env.cert_path.as_ref().map(|dir| TlsArg {
            name: LOCAL_ENGINE.to_owned(),
            dir: dir.clone(),
        });
        let certs = certs.filter(|_| matches!(local.address, Address::Tcp { .. }));
        return engine_specs(&[local], certs.as_slice(), docker_env);
    }
    let mut specs: Vec<EngineSpec> = Vec::new();
    for e in engines {
        if specs.iter().any(|s| s.name == e.name) {
            return Err(format!("--engine {}: named twice", e.name));
        }
        specs.push(EngineSpec {
            name: e.name.clone(),
            address: e.address.clone(),
            tls: None,
        });
    }
    for t in tls {
        let Some(spec) = specs.iter_mut().find(|s| s.name == t.name) else {
            return Err(format!("--engine-tls {}: no --engine of that name", t.name));
        };
        if !matches!(spec.address, Address::Tcp { .. }) {
            return Err(format!(
                "--engine-tls {}: TLS is for tcp:// engines",
                t.name
            ));
        }
        spec.tls = Some(tls_files(&t.name, &t.dir)?);
    }
    for spec in &specs {
        if let (Address::Tcp { host, .. }, None) = (&spec.address, &spec.tls) {
            let loopback = host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(format!(
                    "engine {}: plain tcp:// is allowed only on loopback; give its certificates \
                     with --engine-tls {}=DIR (ca.pem, cert.pem, key.pem)",
                    spec.name, spec.name
                ));
            }
        }
    }
    Ok(specs)
}

/// Each TLS engine's certificates read, so that one that does not parse stops the start
/// with its file named, not later as an engine that never answers.
pub fn check_certificates(specs: &[EngineSpec]) -> Result<(), String> {
    for spec in specs {
        if let Some(tls) = &spec.tls {
            super::tls::client_config(tls).map_err(|e| format!("engine {}: {e}", spec.name))?;
        }
    }
    Ok(())
}

fn tls_files(name: &str, dir: &std::path::Path) -> Result<Tls, String> {
    let file = |f: &str| {
        let path = dir.join(f);
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "--engine-tls {name}: {} is missing (the directory holds ca.pem, cert.pem and \
                 key.pem)",
                path.display()
            ))
        }
    };
    Ok(Tls {
        ca: file("ca.pem")?,
        cert: file("cert.pem")?,
        key: file("key.pem")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(s: &str) -> Result<EngineArg, String> {
        s.parse()
    }

    #[test]
    fn engines_are_named_and_addressed_or_refused_with_the_reason() {
        let e = arg("prod=tcp://10.0.0.5:2376").unwrap();
        assert_eq!(e.name, "prod");
        assert_eq!(
            e.address,
            Address::Tcp {
                host: "10.0.0.5".into(),
                port: 2376
            }
        );
        assert_eq!(
            arg("b=unix:///run/b.sock").unwrap().address,
            Address::Unix("/run/b.sock".into())
        );
        for (url, user, host, port) in [
            ("ssh://me@host", Some("me"), "host", None),
            ("ssh://host:2222/", None, "host", Some(2222)),
            ("ssh://me@[::1]:22", Some("me"), "::1", Some(22)),
        ] {
            let Address::Ssh(target) = arg(&format!("c={url}")).unwrap().address else {
                panic!("{url} is not an ssh address");
            };
            let want = SshTarget {
                user: user.map(str::to_owned),
                host: host.into(),
                port,
            };
            assert_eq!(target, want, "{url}");
            assert_eq!(target.to_string(), url.trim_end_matches('/'));
        }
        for (bad, says) in [
            ("prod", "NAME=URL"),
            ("Prod=tcp://h:1", "engine name"),
            ("a/b=tcp://h:1", "engine name"),
            ("@build=tcp://h:1", "engine name"),
            ("p=http://h:1", "is not unix"),
            ("p=tcp://h", "needs a port"),
            ("p=tcp://h:x", "not a port"),
            ("p=unix://rel.sock", "absolute"),
            ("p=ssh://", "needs a host"),
            ("p=ssh://me@", "needs a host"),
            ("p=ssh://me@host:x", "not a port"),
            ("p=ssh://host/x", "is not ssh://"),
            ("p=ssh://-oProxyCommand=x", "is not ssh://"),
            ("p=ssh://-l@host", "is not ssh://"),
            ("p=ssh://[::1", "unclosed"),
        ] {
            let err = arg(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn plain_tcp_beyond_loopback_and_tls_without_its_files_are_refused() {
        let none = DockerEnv::default();
        let remote = [arg("prod=tcp://10.0.0.5:2376").unwrap()];
        let err = engine_specs(&remote, &[], &none).unwrap_err();
        assert!(err.contains("--engine-tls prod=DIR"), "{err}");
        let near = [arg("near=tcp://127.0.0.1:2375").unwrap()];
        assert!(engine_specs(&near, &[], &none).is_ok());

        let dir = std::env::temp_dir().join(format!("lookout-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "x").unwrap();
        std::fs::write(dir.join("cert.pem"), "x").unwrap();
        let tls = [TlsArg {
            name: "prod".into(),
            dir: dir.clone(),
        }];
        let err = engine_specs(&remote, &tls, &none).unwrap_err();
        assert!(err.contains("key.pem is missing"), "{err}");
        std::fs::write(dir.join("key.pem"), "x").unwrap();
        let specs = engine_specs(&remote, &tls, &none).unwrap();
        assert_eq!(specs[0].tls.as_ref().unwrap().key, dir.join("key.pem"));
        std::fs::remove_dir_all(&dir).unwrap();

        let twice = [
            arg("a=tcp://127.0.0.1:1").unwrap(),
            arg("a=tcp://127.0.0.1:2").unwrap(),
        ];
        assert!(engine_specs(&twice, &[], &none)
            .unwrap_err()
            .contains("named twice"));
        let stray = [TlsArg {
            name: "nope".into(),
            dir: "/".into(),
        }];
        assert!(engine_specs(&near, &stray, &none)
            .unwrap_err()
            .contains("no --engine"));
    }

    #[test]
    fn without_engines_the_local_one_is_read() {
        let specs = engine_specs(&[], &[], &DockerEnv::default()).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].name, "local");
        assert_eq!(specs[0].address, Address::Default);
    }

    #[test]
    fn docker_host_is_read_by_the_same_rules() {
        let env = |host: &str| DockerEnv {
            host: Some(host.into()),
            cert_path: None,
        };
        let err = engine_specs(&[], &[], &env("tcp://10.0.0.5:2375")).unwrap_err();
        assert!(
            err.contains("plain tcp:// is allowed only on loopback"),
            "{err}"
        );
        let err = engine_specs(&[], &[], &env("npipe:////./pipe/docker")).unwrap_err();
        assert!(err.starts_with("DOCKER_HOST: "), "{err}");
        let specs = engine_specs(&[], &[], &env("unix:///run/d.sock")).unwrap();
        assert_eq!(specs[0].name, "local");
        assert_eq!(specs[0].address, Address::Unix("/run/d.sock".into()));
    }
}
