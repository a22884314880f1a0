//! How fast one follow stream of a container's log can be read through the engine's client
//! (bollard) with nothing done with its entries, on tokio's multi-thread runtime (`mt`) or
//! on a runtime of one thread (`ct`, as Lookout's pump threads read: `docker/pump.rs`),
//! beside a `docker logs -f --timestamps --tail 0` of the same container in the same window.
//! It prints both rates and asserts nothing.
//!
//!   cargo run --release -p lookout --example follow_read -- CONTAINER SECS mt|ct
//!
//! The engine is DOCKER_HOST's (or the default socket). To read at the engine's ceiling, set
//! the fixture's `fast` to `max` first: `docker exec CONTAINER sh -c 'echo max > /tmp/rate'`
//! (and back: `echo 1000 > /tmp/rate`).

use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use tokio::runtime::Builder;

/// Both readers run this long before the window opens.
const WARM_UP: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [container, secs, kind] = args.as_slice() else {
        eprintln!("usage: follow_read CONTAINER SECS mt|ct");
        return ExitCode::from(2);
    };
    let Ok(secs) = secs.parse::<u64>() else {
        eprintln!("SECS: a whole number of seconds, not {secs:?}");
        return ExitCode::from(2);
    };
    let runtime = match kind.as_str() {
        "mt" => Builder::new_multi_thread().enable_all().build(),
        "ct" => Builder::new_current_thread().enable_all().build(),
        other => {
            eprintln!("the runtime is mt or ct, not {other:?}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    let docker_count = Arc::new(AtomicU64::new(0));
    let client_count = Arc::new(AtomicU64::new(0));
    if let Err(e) = count_docker_logs(container, docker_count.clone()) {
        eprintln!("docker logs -f: {e}");
        return ExitCode::FAILURE;
    }
    let (c, counted) = (container.clone(), client_count.clone());
    std::thread::spawn(move || {
        if let Err(e) = runtime.block_on(count_entries(&c, &counted)) {
            eprintln!("reading the log: {e}");
            std::process::exit(1);
        }
    });

    std::thread::sleep(WARM_UP);
    let (docker_before, client_before) = (
        docker_count.load(Ordering::Relaxed),
        client_count.load(Ordering::Relaxed),
    );
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let elapsed = start.elapsed().as_secs_f64();
    let docker = (docker_count.load(Ordering::Relaxed) - docker_before) as f64 / elapsed;
    let client = (client_count.load(Ordering::Relaxed) - client_before) as f64 / elapsed;
    println!(
        "{kind}: the client {client:.0} entries/s, docker logs -f {docker:.0} lines/s ({:.1}%)",
        100.0 * client / docker
    );
    // The readers follow until the process ends.
    ExitCode::SUCCESS
}

/// Counts the lines of a `docker logs -f` of `container`, on a thread of its own.
fn count_docker_logs(container: &str, count: Arc<AtomicU64>) -> std::io::Result<()> {
    let mut child = Command::new("docker")
        .args(["logs", "-f", "--timestamps", "--tail", "0", container])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            let lines = memchr::memchr_iter(b'\n', &buf[..n]).count();
            count.fetch_add(lines as u64, Ordering::Relaxed);
        }
        let _ = child.wait();
    });
    Ok(())
}

/// Follows `container`'s log from now, counting its entries.
async fn count_entries(container: &str, count: &AtomicU64) -> Result<(), bollard::errors::Error> {
    let docker = Docker::connect_with_defaults()?;
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .tail("0")
        .build();
    let mut entries = docker.logs(container, Some(options));
    while let Some(entry) = entries.next().await {
        entry?;
        count.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
