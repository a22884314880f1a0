//! An engine reached over ssh as `docker -H ssh://` reaches one: the system's `ssh` runs
//! `docker system dial-stdio` on the host, and that process's stdin and stdout are one
//! connection to its engine.
//!
//! One `ssh` process per connection, a child of Lookout that ends with its pipe: when
//! Lookout drops the connection, or dies, `ssh` reads the end of its input and exits. (bollard's
//! own ssh transport starts a daemonized control master per connection, which outlives a
//! Lookout that is killed, and keeps its sockets in the user's home.) The user's ssh config,
//! keys and `known_hosts` are used as they are; `BatchMode` makes a host key not known
//! beforehand, or a key that asks for a passphrase, an error rather than a prompt.
//! What `ssh` says on stderr when it fails ("Host key verification failed.") becomes the
//! connection's error, and so the engine's status.
//!
//! Connections are set up a few at a time (`--max-ssh-handshakes`): at a start Lookout opens
//! one per followed container at once, and sshd drops those beyond its `MaxStartups` (10 by
//! default) while they log in, as "Connection reset by peer". A connection holds its place
//! until the engine first answers through it, which is after sshd has let it in.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bollard::{BollardRequest, Docker};
use hyper::rt::ReadBufCursor;
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::address::SshTarget;

/// What of `ssh`'s stderr is kept for the error it ends with.
const STDERR_KEPT: usize = 2048;

/// How long an unused connection (an `ssh` process) is kept for the next request.
const IDLE: Duration = Duration::from_secs(30);

/// The longest a connection holds its place among those being set up, should the engine
/// not answer: ssh's `ConnectTimeout` and as long again to log in.
const SETUP_HELD: Duration = Duration::from_secs(20);

/// A client of the engine at `target`; it connects on its first request, and sets up
/// connections only with a place among `setting_up`.
pub fn connect(
    target: &SshTarget,
    timeout: u64,
    setting_up: Arc<Semaphore>,
) -> Result<Docker, String> {
    let connector = Connector {
        target: Arc::new(target.clone()),
        setting_up,
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(IDLE);
    let client = Arc::new(builder.build(connector));
    let transport = move |request: BollardRequest| {
        let client = Arc::clone(&client);
        async move {
            client
                .request(request)
                .await
                .map_err(bollard::errors::Error::from)
        }
    };
    // The address only fills the requests' URLs: every request goes through `ssh`.
    Docker::connect_with_custom_transport(
        transport,
        Some("http://engine"),
        timeout,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| e.to_string())
}

/// Makes connections: an `ssh` process each.
#[derive(Clone)]
struct Connector {
    target: Arc<SshTarget>,
    /// Places for connections being set up.
    setting_up: Arc<Semaphore>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Pipe;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Pipe>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let target = Arc::clone(&self.target);
        let setting_up = Arc::clone(&self.setting_up);
        Box::pin(async move {
            let place = setting_up
                .acquire_owned()
                .await
                .map_err(|_| io::Error::other("the ssh connector was dropped"))?;
            Pipe::open(&target, place)
        })
    }
}

/// The words after `ssh`: never a prompt, no terminal, no forwarding; the host after `--`,
/// so that it is never read as an option.
fn ssh_args(target: &SshTarget) -> Vec<String> {
    let mut args: Vec<String> = [
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-T",
        "-x",
        "-a",
    ]
    .map(str::to_owned)
    .into();
    if let Some(user) = &target.user {
        args.extend(["-l".to_owned(), user.clone()]);
    }
    if let Some(port) = target.port {
        args.extend(["-p".to_owned(), port.to_string()]);
    }
    args.extend(["--", &target.host, "docker", "system", "dial-stdio"].map(str::to_owned));
    args
}

/// One connection: an `ssh` process's stdout to read, its stdin to write.
struct Pipe {
    stdout: ChildStdout,
    stdin: Option<ChildStdin>,
    /// Read once stdout has ended: why, if `ssh` said.
    stderr: Option<ChildStderr>,
    said: Vec<u8>,
    /// Dropped when the first bytes (or the end) come from the engine: the connection is
    /// set up, and its place goes to the next.
    answered: Option<oneshot::Sender<()>>,
    /// Killed when the connection is dropped (and reaped by tokio).
    _child: Child,
}

impl Pipe {
    fn open(target: &SshTarget, place: OwnedSemaphorePermit) -> io::Result<Pipe> {
        let mut child = Command::new("ssh")
            .args(ssh_args(target))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("ssh could not be started: {e}")))?;
        let taken = (child.stdout.take(), child.stdin.take(), child.stderr.take());
        let (Some(stdout), Some(stdin), stderr) = taken else {
            return Err(io::Error::other("ssh's pipes were not made"));
        };
        let (answered, heard) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _place = place;
            let _ = tokio::time::timeout(SETUP_HELD, heard).await;
        });
        Ok(Pipe {
            stdout,
            stdin: Some(stdin),
            stderr,
            said: Vec::new(),
            answered: Some(answered),
            _child: child,
        })
    }

    /// After stdout ended: reads stderr to its end; what it said is the error.
    fn poll_said(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(stderr) = &mut self.stderr {
            let mut chunk = [0u8; 512];
            let mut buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(stderr).poll_read(cx, &mut buf))?;
            if buf.filled().is_empty() {
                self.stderr = None;
            } else if self.said.len() < STDERR_KEPT {
                self.said.extend_from_slice(buf.filled());
            }
        }
        let said = last_words(&String::from_utf8_lossy(&self.said));
        Poll::Ready(if said.is_empty() {
            Ok(())
        } else {
            Err(io::Error::other(format!("ssh: {said}")))
        })
    }

    fn stdin(&mut self) -> io::Result<Pin<&mut ChildStdin>> {
        self.stdin
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::ErrorKind::BrokenPipe.into())
    }
}

/// The last two lines `ssh` wrote, on one line: the reason comes last, after any banner
/// ("Host key for … has changed … Host key verification failed.").
fn last_words(said: &str) -> String {
    let lines: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(2)..].join(" ")
}

impl hyper::rt::Read for Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Read into a buffer of our own first: a read of nothing (the end) must be told
        // apart, and only then is stderr read.
        let mut chunk = [0u8; 8192];
        let room = buf.remaining().min(chunk.len());
        if room == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut own = ReadBuf::new(&mut chunk[..room]);
        let read = ready!(Pin::new(&mut this.stdout).poll_read(cx, &mut own));
        this.answered = None;
        read?;
        if own.filled().is_empty() {
            return this.poll_said(cx);
        }
        buf.put_slice(own.filled());
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stdin()?.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stdin()?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.stdin()?.poll_shutdown(cx))?;
        // The end of ssh's input is the end of the connection's writing half.
        this.stdin = None;
        Poll::Ready(Ok(()))
    }
}

impl Connection for Pipe {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_ssh_said_last_is_the_reason() {
        let said = "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                    Host key for [h]:22 has changed and you have requested strict checking.\n\
                    Host key verification failed.\n";
        assert_eq!(
            last_words(said),
            "Host key for [h]:22 has changed and you have requested strict checking. \
             Host key verification failed."
        );
        assert_eq!(last_words("\n  \n"), "");
    }

    #[test]
    fn the_host_comes_after_the_options_and_never_reads_as_one() {
        let target = SshTarget {
            user: Some("deploy".into()),
            host: "logs.example.com".into(),
            port: Some(2222),
        };
        let args = ssh_args(&target);
        let dashes = args.iter().position(|a| a == "--").expect("--");
        assert_eq!(
            &args[dashes..],
            ["--", "logs.example.com", "docker", "system", "dial-stdio"]
        );
        assert!(args.windows(2).any(|w| w == ["-l", "deploy"]));
        assert!(args.windows(2).any(|w| w == ["-p", "2222"]));
        assert!(args.windows(2).any(|w| w == ["-o", "BatchMode=yes"]));
    }
}
