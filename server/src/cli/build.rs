//! `lookout logs --build SERVICE`: a service's latest build (captured by `lookout capture`),
//! printed as it was written; with `--follow`, until it ends.

use std::io::{self, BufWriter};

use app::builds::{BuildInfo, BuildPage, BuildResult};
use app::filter::Filter;
use app::protocol::ServiceKey;

use super::client::{CliError, Client};
use super::print::{Look, Printer};
use super::{target, LogsArgs, Stop};

/// The service named: `PROJECT/SERVICE`, `--project P SERVICE`, or a service found in the
/// listing. A build may come before its service has a container, so the first two need
/// no listing.
async fn service_of(args: &LogsArgs, client: &Client) -> Result<ServiceKey, CliError> {
    let [name] = args.services.as_slice() else {
        return Err(CliError::Refused(
            "--build prints one service's build: name one service".into(),
        ));
    };
    // A build is its project's on no engine in particular: an engine named is let go.
    let key = ServiceKey::local;
    let named = name
        .rsplit_once('/')
        .map(|(p, s)| (p.rsplit('/').next().unwrap_or(p), s));
    Ok(match (named, &args.project) {
        (Some((p, s)), _) => key(p, s),
        (None, Some(p)) => key(p, name),
        (None, None) => {
            let projects = client.projects().await?;
            target::resolve(None, std::slice::from_ref(name), &projects)?[0].key()
        }
    })
}

pub async fn print(args: &LogsArgs, keep: Filter) -> Result<(), Stop> {
    let client = Client::new(&args.server)?;
    let key = service_of(args, &client).await?;
    let asked = [
        ("project", key.project.clone()),
        ("service", key.service.clone()),
    ];
    let builds: Vec<BuildInfo> = client.get_json("/api/builds", &asked).await?;
    let Some(latest) = builds.first() else {
        return Err(CliError::Refused(format!("{key} has no build yet")).into());
    };
    let look = Look::stdout(false, args.timestamps, args.json, args.no_color);
    let out = BufWriter::new(io::stdout());
    let mut printer = Printer::new(out, look, keep, std::slice::from_ref(&key));
    let mut after: Option<(i64, u32)> = None;
    loop {
        let mut query = asked.to_vec();
        query.push(("number", latest.number.to_string()));
        if let Some((ns, seq)) = after {
            query.push(("after_ns", ns.to_string()));
            query.push(("after_seq", seq.to_string()));
        }
        if args.follow {
            query.push(("wait", "1".into()));
        }
        let page: BuildPage = client.get_json("/api/builds/lines", &query).await?;
        for line in &page.lines {
            printer.line(&key, line)?;
        }
        printer.flush()?;
        if let Some(last) = page.lines.last() {
            after = Some((last.cursor.ts_ns, last.cursor.seq));
        }
        let running = page.build.result == BuildResult::Running;
        if !(page.more || args.follow && running) {
            let result = page.build.result.describe();
            eprintln!("lookout: build #{} of {key}: {result}", latest.number);
            return Ok(());
        }
    }
}
