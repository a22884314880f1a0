//! `lookout search QUERY`: history's newest hits across every service the token may see,
//! printed oldest first so that the newest lands next to the prompt.

use std::io::{self, BufWriter};

use app::filter::Filter;
use app::history::{SearchHit, MAX_PAGE};
use app::protocol::ServiceKey;

use super::args::SearchArgs;
use super::client::Client;
use super::print::{Look, Printer};
use super::Stop;

pub async fn print(args: &SearchArgs) -> Result<(), Stop> {
    let client = Client::new(&args.server)?;
    let limit = args.limit as usize;
    let mut hits: Vec<SearchHit> = Vec::new();
    let mut before = None;
    // A page may hold fewer hits than asked, even none, when the server's read bound was
    // reached first: it says where to go on.
    loop {
        let ask = (limit - hits.len()).min(MAX_PAGE as usize) as u32;
        let page = client.search(args, ask, before.as_ref()).await?;
        hits.extend(page.hits);
        match page.before {
            // A server that names the same place twice would keep this asking for ever.
            Some(next) if hits.len() < limit && before.as_ref() != Some(&next) => {
                before = Some(next)
            }
            _ => break,
        }
    }
    hits.truncate(limit);
    hits.reverse();

    let keys: Vec<ServiceKey> = hits.iter().map(key).collect();
    let look = Look::stdout(true, true, args.json, false);
    let mut printer = Printer::new(BufWriter::new(io::stdout()), look, Filter::default(), &keys);
    for hit in &hits {
        printer.expect(&key(hit), hit.line.replica.number);
    }
    for hit in &hits {
        printer.line(&key(hit), &hit.line)?;
    }
    Ok(printer.flush()?)
}

fn key(hit: &SearchHit) -> ServiceKey {
    ServiceKey::new(&hit.engine, &hit.project, &hit.service)
}
