//! Acceptance test: an engine reached with `--engine NAME=ssh://USER@HOST:PORT`, through the
//! system's `ssh`, as a user reaches a remote one.
//!
//! The far side is an `sshd` of the test's own on loopback (its host key, its port, an
//! `authorized_keys` made here) whose key runs only `docker system dial-stdio`, against the
//! recording proxy: what Lookout asks over ssh is checked to be reads. The engine behind it
//! is this machine's, with the Compose fixture.
//!
//! `ssh` reads its settings from the home directory of the user in the password database,
//! whatever `$HOME` says, so Lookout is given a `PATH` whose `ssh` is the system's with
//! `-F` and a config of the test's own: its key, its `known_hosts`. Nothing of the user's
//! is read or written.
//!
//! - The engine's projects are listed under its name, /healthz says it answers, and a line
//!   written now reaches a viewer of `NAME/PROJECT/probe`.
//! - sshd lets only 2 connections log in at once (`MaxStartups 2`; it drops the others), and
//!   Lookout sets up 2 at a time (`--max-ssh-handshakes 2`): nothing is dropped, though a start
//!   opens a connection for each of the fixture's containers at once.
//! - A host key other than the one `known_hosts` holds for the address is refused: the
//!   engine is unreachable, and its status says why.
//!
//! sshd must run as root, so this test does, in a test binary of its own:
//!
//! ```sh
//! cargo test -p lookout --test ssh -- --nocapture
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::private_engine::require_root;
use common::viewer::{free_port, health, refusal, Viewer};
use common::{marker, EngineRecorder, Fd, Probe, Server};

/// Connections the test's sshd lets log in at once; it drops the others.
const MAX_STARTUPS: u32 = 2;

/// Runs `ssh-keygen` to make an ed25519 key pair at `path` (and `path.pub`).
fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "lookout-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen (is openssh-client installed?)");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The public half of a key pair, as `TYPE BASE64`.
fn public(path: &Path) -> String {
    let text = std::fs::read_to_string(path.with_extension("pub")).expect("read a public key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An `sshd` of the test's own on `127.0.0.1:port`, killed (by its process id) when dropped.
struct Sshd {
    child: Child,
    port: u16,
}

impl Sshd {
    /// Starts it with `host_key`; the one key it lets in is `client`'s, as root, and it runs
    /// only `docker -H <engine> system dial-stdio` for it.
    fn start(dir: &Path, host_key: &Path, client: &Path, engine: &str) -> Sshd {
        // Privilege separation needs this directory; the package makes it only when its
        // service starts, which it never does here.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let keys = dir.join("authorized_keys");
        let command = format!("docker -H {engine} system dial-stdio");
        std::fs::write(
            &keys,
            format!("restrict,command=\"{command}\" {}\n", public(client)),
        )
        .expect("write authorized_keys");
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\n\
                 PermitRootLogin forced-commands-only\nMaxStartups {MAX_STARTUPS}\n",
                host_key.display(),
                dir.join("sshd.pid").display(),
                keys.display()
            ),
        )
        .expect("write sshd_config");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).expect("sshd.log"))
            .spawn()
            .expect("start /usr/sbin/sshd (is openssh-server installed? scripts/setup.sh)");
        let sshd = Sshd { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd does not listen on port {port} within 10 s: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory holding an `ssh` that is the system's with the config `config`: the `PATH`
/// to give Lookout, the directory first.
fn ssh_on_path(dir: &Path, config: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("create bin");
    let ssh = bin.join("ssh");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\nexec /usr/bin/ssh -F '{}' \"$@\"\n",
            config.display()
        ),
    )
    .expect("write the ssh wrapper");
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod ssh");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// An ssh client config: `key` the only identity, `known_hosts` the only hosts file.
fn client_config(dir: &Path, name: &str, key: &Path, known_hosts: &Path) -> PathBuf {
    let config = dir.join(name);
    std::fs::write(
        &config,
        format!(
            "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
             GlobalKnownHostsFile /dev/null\n",
            key.display(),
            known_hosts.display()
        ),
    )
    .expect("write an ssh config");
    config
}

/// The `ssh` processes started with `config` (the wrapper's `-F`), by process id.
fn ssh_processes(config: &Path) -> Vec<u32> {
    let config = config.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            words.first().is_some_and(|w| w.ends_with(b"ssh")) && words.contains(&config.as_bytes())
        })
        .collect()
}

#[test]
fn an_engine_is_read_through_ssh_and_a_wrong_host_key_is_refused() {
    require_root();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(marker("ssh"));
    std::fs::create_dir_all(&dir).expect("create the test's directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(scenario(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn scenario(dir: &Path) {
    let (host_key, other_key, client) = (
        dir.join("host_key"),
        dir.join("other_key"),
        dir.join("client_key"),
    );
    for k in [&host_key, &other_key, &client] {
        keygen(k);
    }
    let reads = EngineRecorder::start().await;
    let sshd = Sshd::start(dir, &host_key, &client, &reads.docker_host());
    let address = format!("[127.0.0.1]:{}", sshd.port);
    let known = dir.join("known_hosts");
    std::fs::write(&known, format!("{address} {}\n", public(&host_key))).expect("known_hosts");
    let config = client_config(dir, "ssh_config", &client, &known);
    let path = ssh_on_path(dir, &config);
    let url = format!("far=ssh://root@127.0.0.1:{}", sshd.port);

    let handshakes = MAX_STARTUPS.to_string();
    let args = ["--engine", &url, "--max-ssh-handshakes", &handshakes];
    let server = Server::start_with(None, &args, &[("PATH", &path)]).await;
    let project = server.project.clone();
    assert_eq!(health(&server).await, [("far".to_owned(), true)]);
    let projects = server.projects().await;
    assert!(
        projects
            .iter()
            .any(|p| p.engine == "far" && p.name == project),
        "the fixture's project is not listed under `far`: {projects:?}"
    );

    let mut viewer = Viewer::follow(&server, "far", &project, "probe").await;
    let line = marker("through ssh");
    Probe::find(&project)
        .await
        .printf(Fd::Stdout, "%s\n", &[&line])
        .await;
    viewer
        .until(Duration::from_secs(15), "a line written now", |v, _| {
            v.lines.iter().any(|l| l.text == line)
        })
        .await;
    let calls = reads.calls();
    assert!(
        calls.iter().any(|c| c == "GET /containers/{id}/logs"),
        "the log was not read through ssh: {calls:?}"
    );
    // `HEAD /_ping` is the far side's `docker system dial-stdio` asking the API version.
    assert!(
        calls
            .iter()
            .all(|c| c == "HEAD /_ping" || common::ALLOWED_ENGINE_CALLS.contains(&c.as_str())),
        "the engine was called beyond reads through ssh: {calls:?}"
    );
    let ours = ssh_processes(&config);
    assert!(!ours.is_empty(), "no ssh process reads the engine");

    // Lookout killed: its ssh processes end with their pipes; none is left behind.
    drop(viewer);
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = ssh_processes(&config);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ssh processes outlive the lookout that started them: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The same address with another host key in known_hosts: ssh refuses to go on.
    let forged = dir.join("forged_known_hosts");
    std::fs::write(&forged, format!("{address} {}\n", public(&other_key))).expect("known_hosts");
    let config = client_config(dir, "forged", &client, &forged);
    let path = ssh_on_path(dir, &config);
    let args = ["--engine", "local={engine_calls}", "--engine", &url];
    let refused = Server::start_with(None, &args, &[("PATH", &path)]).await;
    let why = refusal(&refused, "far").await;
    assert_eq!(
        health(&refused).await,
        [("far".to_owned(), false), ("local".to_owned(), true)]
    );
    assert!(
        why.contains("Host key verification failed"),
        "the reason does not say the host key was refused: {why}"
    );
}
