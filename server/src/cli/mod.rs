//! `lookout logs`, `ps` and `search`: the same binary as a client of a running Lookout,
//! speaking the documented protocol (docs/PROTOCOL.md): the past over HTTP, then the live
//! socket. Nothing here touches the engine or the store.
//!
//! - `args`: the command line;
//! - `client`: HTTP and the socket, and the errors a person reads;
//! - `target`: which services the names mean;
//! - `backlog`: the lines printed first, merged in time order;
//! - `follow`: `--follow`, reconnecting and resuming by cursor;
//! - `print`: prefixes, colours, timestamps, JSON, and text safe for a terminal;
//! - `ps`: the services as a table; `search`: history's hits, oldest first;
//! - `capture`: a command's output passed through and sent as a build; `build`: a
//!   service's latest build printed (`logs --build`).

mod args;
mod backlog;
mod build;
mod capture;
mod client;
mod follow;
mod print;
mod ps;
mod search;
mod target;

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;

use app::filter::{Filter, FilterSpec};
use app::protocol::ServiceKey;

pub use args::{CaptureArgs, LogsArgs, PsArgs, SearchArgs, ServerArgs};
use backlog::{Ask, Source};
use client::{CliError, Client};
use follow::{Event, Start};
use print::{Look, Printer};

/// Why printing stopped early.
pub(crate) enum Stop {
    /// Whoever read the output went away (`| head`): not an error.
    Closed,
    Failed(CliError),
}

impl From<CliError> for Stop {
    fn from(e: CliError) -> Stop {
        Stop::Failed(e)
    }
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Stop::Closed
        } else {
            Stop::Failed(CliError::Refused(format!("cannot write the output: {e}")))
        }
    }
}

/// Runs `lookout logs`: 0 when done (or the reader left), 1 with one line on stderr when
/// something failed, 130 on Ctrl+C.
pub async fn logs(args: LogsArgs) -> ExitCode {
    finish(print_logs(&args)).await
}

/// Runs `lookout ps`.
pub async fn ps(args: PsArgs) -> ExitCode {
    finish(async {
        let projects = Client::new(&args.server)?.projects().await?;
        let text = if args.json {
            serde_json::to_string_pretty(&projects).expect("projects serialize") + "\n"
        } else {
            ps::table(&projects)
        };
        io::stdout().write_all(text.as_bytes())?;
        Ok(())
    })
    .await
}

/// Runs `lookout capture`: the command's exit code (1 when the capture was refused).
pub async fn capture(args: CaptureArgs) -> ExitCode {
    capture::run(&args).await
}

/// Runs `lookout search`.
pub async fn search(args: SearchArgs) -> ExitCode {
    finish(search::print(&args)).await
}

/// The exit code of a command: 0 when done (or its reader left), 1 with one line on stderr
/// when something failed, 130 on Ctrl+C.
async fn finish(command: impl std::future::Future<Output = Result<(), Stop>>) -> ExitCode {
    let outcome = tokio::select! {
        outcome = command => outcome,
        _ = tokio::signal::ctrl_c() => return ExitCode::from(130),
    };
    match outcome {
        Ok(()) | Err(Stop::Closed) => ExitCode::SUCCESS,
        Err(Stop::Failed(e)) => {
            eprintln!("lookout: {}", print::printable(&e.to_string()));
            ExitCode::from(1)
        }
    }
}

/// What `--grep`, `--stream` and `--level` keep.
fn filter_of(args: &LogsArgs) -> Result<Filter, CliError> {
    Filter::compile(&FilterSpec {
        text: args.grep.clone().unwrap_or_default(),
        regex: args.regex,
        match_case: args.match_case,
        invert: args.invert,
        stream: args.streams(),
        replica: None,
        levels: args.level,
        fields: Vec::new(),
    })
    .map_err(|e| CliError::Refused(format!("--grep: {e}")))
}

async fn print_logs(args: &LogsArgs) -> Result<(), Stop> {
    if args.build {
        return build::print(args, filter_of(args)?).await;
    }
    let keep = filter_of(args)?;
    let since_ns = match &args.since {
        Some(since) => crate::clock::parse_when(since, crate::clock::now_ns())
            .map_err(|e| CliError::Refused(format!("--since: {e}")))?,
        None => i64::MIN,
    };

    let client = Arc::new(Client::new(&args.server)?);
    let projects = client.projects().await?;
    let services = target::resolve(args.project.as_deref(), &args.services, &projects)?;
    let keys: Vec<ServiceKey> = services.iter().map(|s| s.key()).collect();

    let mut printer = printer(args, keep, &keys);
    for (key, s) in keys.iter().zip(&services) {
        for c in &s.containers {
            printer.expect(key, c.replica.number);
        }
    }

    let ask = Ask {
        tail: args.tail,
        since: args.since.as_deref(),
        until: args.until.as_deref(),
        several: services.len() > 1,
    };
    let mut sources = Vec::new();
    for s in &services {
        sources.push(Source::open(&client, s, ask).await?);
    }
    while let Some((i, line)) = backlog::next(&mut sources).await? {
        printer.line(&sources[i].key, &line)?;
    }
    printer.flush()?;
    if !args.follow {
        return Ok(());
    }

    let followed = sources.into_iter().map(|s| (s.key, s.resume)).collect();
    let starts = Start::grouped(followed, args.tail.on_socket(), since_ns);
    print_events(follow::spawn(client, starts), &mut printer).await
}

type Stdout = Printer<BufWriter<io::Stdout>>;

fn printer(args: &LogsArgs, keep: Filter, keys: &[ServiceKey]) -> Stdout {
    let look = Look::stdout(
        !args.no_log_prefix,
        args.timestamps,
        args.json,
        args.no_color,
    );
    Printer::new(BufWriter::new(io::stdout()), look, keep, keys)
}

/// Prints what the followers tell, until one fails or the output is closed.
async fn print_events(
    mut events: tokio::sync::mpsc::Receiver<Event>,
    printer: &mut Stdout,
) -> Result<(), Stop> {
    while let Some(event) = events.recv().await {
        match event {
            Event::Subscribed(key, containers) => {
                for c in containers {
                    printer.expect(&key, c.replica.number);
                }
            }
            Event::Lines(key, lines) => {
                for line in &lines {
                    printer.line(&key, line)?;
                }
                printer.flush()?;
            }
            Event::Notice(text) => {
                let _ = writeln!(io::stderr(), "lookout: {}", print::printable(&text));
            }
            Event::Fatal(e) => return Err(Stop::Failed(e)),
        }
    }
    Ok(())
}
