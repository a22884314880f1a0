//! A `dockerd` of a test's own: its own socket, data root, exec root and pid file in a
//! temporary directory (and so its own managed containerd; no bridge, no iptables), stopped
//! with everything it started, by process id, when the test ends. Tests that use it must
//! run as root, each in a test binary of its own.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{docker, marker};

/// Runs a command to its end with a time limit (`timeout` of coreutils), for cleanup, where
/// nothing async is at hand; whether it succeeded.
pub fn run_quietly(program: &str, args: &[&str], limit_secs: u32) -> bool {
    Command::new("timeout")
        .arg(limit_secs.to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn send_signal(pid: u32, signal: &str) -> bool {
    run_quietly("kill", &[&format!("-{signal}"), &pid.to_string()], 5)
}

/// A `dockerd` of the test's own. Dropping it removes the container, stops the engine, kills
/// whatever it left running, unmounts what it left mounted and removes its directory.
pub struct PrivateEngine {
    pub dir: PathBuf,
    /// `unix://<dir>/docker.sock`, for `docker -H` and `DOCKER_HOST`.
    pub host: String,
    dockerd: Option<Child>,
    /// The container the test made, removed first when the test ends.
    pub container: Option<String>,
    /// More flags for `dockerd` (a TCP listener, say).
    pub extra: Vec<String>,
    /// A program and its words that `dockerd` is started through (into a network
    /// namespace, say); it must exec `dockerd`, whose process id the engine's is then.
    pub launcher: Vec<String>,
}

impl PrivateEngine {
    pub fn new() -> PrivateEngine {
        let dir = std::env::temp_dir().join(marker("lookout-engine"));
        fs::create_dir_all(&dir).expect("create the private engine's directory");
        let host = format!("unix://{}", dir.join("docker.sock").display());
        PrivateEngine {
            dir,
            host,
            dockerd: None,
            container: None,
            extra: Vec::new(),
            launcher: Vec::new(),
        }
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }

    /// The last lines of the engine's log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.dockerd.as_ref().expect("dockerd was started").id()
    }

    /// Starts `dockerd` on the same socket and roots every time, its output appended to
    /// `dockerd.log`; with `live_restore`, containers outlive it when it stops.
    pub fn spawn(&mut self, live_restore: bool) {
        assert!(self.dockerd.is_none(), "dockerd is already running");
        let d = |name: &str| self.dir.join(name).display().to_string();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .expect("open dockerd.log");
        let mut command = match self.launcher.split_first() {
            Some((program, words)) => {
                let mut c = Command::new(program);
                c.args(words).arg("dockerd");
                c
            }
            None => Command::new("dockerd"),
        };
        let child = command
            .args(["--host", &self.host])
            .args(["--data-root", &d("data")])
            .args(["--exec-root", &d("exec")])
            .args(["--pidfile", &d("docker.pid")])
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .args(live_restore.then_some("--live-restore"))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup dockerd.log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dockerd (is it installed?): {e}"));
        self.dockerd = Some(child);
    }

    /// Waits until the engine answers `docker info`; fails if dockerd exits or takes over `d`.
    pub async fn wait_answers(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            if let Some(status) = self
                .dockerd
                .as_mut()
                .expect("dockerd was started")
                .try_wait()
                .expect("wait for dockerd")
            {
                panic!(
                    "the private dockerd exited ({status}) before it answered; its log ends:\n{}",
                    self.log_tail(30)
                );
            }
            if docker(&["-H", &self.host, "info", "--format", "{{.ServerVersion}}"])
                .await
                .is_ok()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the private dockerd does not answer within {d:?}; its log ends:\n{}",
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `signal` (TERM, KILL) to dockerd and waits up to `d` for it, and the containerd
    /// it manages, to be gone.
    ///
    /// Killed with dockerd, containerd is reparented to PID 1 and is a zombie until PID 1
    /// reaps it, which on some machines takes a second or two. A dockerd started meanwhile
    /// takes the zombie for a containerd still running, waits for its socket, and gives up
    /// ("timeout waiting for containerd to start"): so wait for it to be reaped, as a
    /// supervisor that restarts the engine would.
    pub async fn stop_with(&mut self, signal: &str, d: Duration) {
        let pid = self.pid();
        let containerd = fs::read_to_string(self.dir.join("exec/containerd/containerd.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        assert!(send_signal(pid, signal), "kill -{signal} {pid} failed");
        let deadline = Instant::now() + d;
        let child = self.dockerd.as_mut().expect("dockerd was started");
        while child.try_wait().expect("wait for dockerd").is_none() {
            assert!(
                Instant::now() < deadline,
                "dockerd (pid {pid}) still runs {d:?} after SIG{signal}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.dockerd = None;
        if let Some(containerd) = containerd {
            while Path::new(&format!("/proc/{containerd}")).exists() {
                assert!(
                    Instant::now() < deadline,
                    "dockerd's containerd (pid {containerd}) is still there {d:?} after SIG{signal}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// `docker -H <private engine> <args>`, which must succeed; its stdout.
    pub async fn cli(&self, args: &[&str]) -> String {
        let mut argv = vec!["-H", self.host.as_str()];
        argv.extend_from_slice(args);
        docker(&argv).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// When the container's current (or last) run started, as the engine says.
    pub async fn started_at(&self, id: &str) -> String {
        self.cli(&["inspect", "--format", "{{.State.StartedAt}}", id])
            .await
            .trim()
            .to_owned()
    }

    /// Builds `lookout-fixture:latest` in the private engine, as scripts/fixture.sh does: from
    /// scratch, with the local busybox; nothing is pulled.
    pub async fn build_fixture_image(&self) {
        let context = self.dir.join("image");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end/fixture/image");
        copy_dir(&source, &context);
        fs::copy("/bin/busybox", context.join("busybox")).expect("copy /bin/busybox");
        let context = context.display().to_string();
        self.cli(&["build", "-q", "-t", "lookout-fixture:latest", &context])
            .await;
    }

    /// The container's log as the engine holds it, per output: (timestamp, text) in order.
    pub async fn log_of(&self, id: &str) -> super::StreamLog {
        super::engine_log_at(Some(&self.host), id).await
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The directory goes: keep the engine's log beside it.
            let kept = self.dir.with_extension("dockerd.log");
            let _ = fs::copy(self.log_file(), &kept);
            eprintln!(
                "[private engine] the private dockerd's log (kept as {}) ends:\n{}",
                kept.display(),
                self.log_tail(25)
            );
        }
        let running = self
            .dockerd
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        if running {
            if let Some(id) = &self.container {
                run_quietly("docker", &["-H", &self.host, "rm", "-f", id], 30);
            }
        }
        if let Some(mut child) = self.dockerd.take() {
            let pid = child.id();
            send_signal(pid, "TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!("[private engine] dockerd (pid {pid}) ignored SIGTERM for 20 s: SIGKILL");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // What the engine started and left behind (its containerd, a shim after a SIGKILL,
        // and the container that shim runs): processes that name this directory, and their
        // children, the children first.
        let leftovers = processes_naming(&self.dir);
        if !leftovers.is_empty() {
            let children = children_of(&leftovers);
            eprintln!(
                "[private engine] killing what the private engine left: {leftovers:?}, \
                 children {children:?}"
            );
            for pid in children.iter().chain(&leftovers) {
                send_signal(*pid, "KILL");
            }
            // The container's cgroups (cgroupfs, under the default parent `docker`), which
            // its runtime would have removed: empty once its processes are gone.
            if let Some(id) = &self.container {
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut left = container_cgroups(id);
                while !left.is_empty() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                    left.retain(|d| fs::remove_dir(d).is_err());
                }
                if !left.is_empty() {
                    eprintln!("[private engine] cannot remove the cgroups {left:?}");
                }
            }
        }
        // dockerd leaves its data root (and, after a kill, a container's rootfs) mounted:
        // unmount whatever lies inside the directory, the deepest first.
        let mut mounts = mounts_under(&self.dir);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &mounts {
            if !run_quietly("umount", &[m], 10) {
                run_quietly("umount", &["-l", m], 10);
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("[private engine] cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// Copies a directory tree (the image's build context).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create a directory");
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// Processes whose command line names `dir`.
fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(&needle)
            })
        })
        .collect()
}

/// The children of `parents`.
fn children_of(parents: &[u32]) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                .is_some_and(|ppid| parents.contains(&ppid))
        })
        .collect()
}

/// The cgroup directories of a container, in every hierarchy.
fn container_cgroups(id: &str) -> Vec<PathBuf> {
    let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    hierarchies
        .filter_map(|h| Some(h.ok()?.path().join("docker").join(id)))
        .filter(|d| d.is_dir())
        .collect()
}

/// Mount points inside `dir`, `dir` included.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| *m == dir || m.starts_with(&format!("{dir}/")))
        .map(str::to_owned)
        .collect()
}

pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        uid, "0",
        "this test starts a private dockerd of its own and must run as root"
    );
}
