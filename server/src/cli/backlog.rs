//! The lines printed before following: each service's tail or window, read over HTTP and
//! merged in time order, with the last cursor of each container kept to resume from.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use app::protocol::{Cursor, LogLine, ServiceInfo, ServiceKey, ServiceState, MAX_TAIL};

use super::args::TailArg;
use super::client::{CliError, Client, Download};

/// What to read of a service's past: `-n`, `--since` and `--until` as the user gave them.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub tail: TailArg,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    /// Several services are merged: their whole logs are read one after another (each
    /// holds one of the server's reads of the engine while it lasts) and kept on disk.
    pub several: bool,
}

/// The last line taken of each container of a service: where a socket resumes.
#[derive(Default, Clone, Debug)]
pub struct Resume(HashMap<Arc<str>, Cursor>);

impl Resume {
    pub fn note(&mut self, cursor: &Cursor) {
        let newer = self
            .0
            .get(&cursor.container)
            .is_none_or(|held| held < cursor);
        if newer {
            self.0.insert(cursor.container.clone(), cursor.clone());
        }
    }

    pub fn cursors(&self) -> Vec<Cursor> {
        self.0.values().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many containers it holds a cursor of.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Takes in another's cursors: those of other containers, or later ones.
    pub fn extend(&mut self, other: Resume) {
        for cursor in other.0.into_values() {
            self.note(&cursor);
        }
    }
}

/// One service's past, oldest line first.
pub struct Source {
    pub key: ServiceKey,
    pub resume: Resume,
    lines: Lines,
    peeked: Option<LogLine>,
}

enum Lines {
    Listed(std::vec::IntoIter<LogLine>),
    Streamed(Download),
    Spooled(std::io::Lines<std::io::BufReader<std::fs::File>>),
}

impl Source {
    pub async fn open(
        client: &Client,
        service: &ServiceInfo,
        ask: Ask<'_>,
    ) -> Result<Source, CliError> {
        let key = service.key();
        // A removed service's lines are only in history, which answers a window.
        let since = match (&service.state, ask.since) {
            (ServiceState::Removed, None) => Some("0"),
            (_, since) => since,
        };
        let lines = match ask.tail {
            TailArg::Last(0) => Lines::Listed(Vec::new().into_iter()),
            TailArg::Last(n) if n <= u64::from(MAX_TAIL) && ask.until.is_none() => {
                Lines::Listed(client.tail(&key, n as u32, since).await?.into_iter())
            }
            TailArg::Last(n) => {
                let mut download = client.download(&key, since, ask.until).await?;
                Lines::Listed(last(&mut download, n as usize).await?.into_iter())
            }
            TailArg::All if ask.several => {
                Lines::Spooled(spool(client.download(&key, since, ask.until).await?).await?)
            }
            TailArg::All => Lines::Streamed(client.download(&key, since, ask.until).await?),
        };
        Ok(Source {
            key,
            resume: Resume::default(),
            lines,
            peeked: None,
        })
    }

    async fn peek(&mut self) -> Result<Option<&LogLine>, CliError> {
        if self.peeked.is_none() {
            self.peeked = match &mut self.lines {
                Lines::Listed(lines) => lines.next(),
                Lines::Streamed(download) => download.next().await?,
                Lines::Spooled(lines) => match lines.next().transpose().map_err(spool_error)? {
                    Some(l) => Some(serde_json::from_str(&l).map_err(spool_error)?),
                    None => None,
                },
            };
        }
        Ok(self.peeked.as_ref())
    }
}

/// A whole download written to a file of this user's that no one else can open (it has no
/// name once open), to be read back line by line.
async fn spool(
    mut download: Download,
) -> Result<std::io::Lines<std::io::BufReader<std::fs::File>>, CliError> {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    use std::io::{BufRead, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::temp_dir().join(format!(".lookout-logs-{:016x}", OsRng.next_u64()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(spool_error)?;
    let _ = std::fs::remove_file(&path);
    let mut out = std::io::BufWriter::new(&mut file);
    while let Some(line) = download.next().await? {
        serde_json::to_writer(&mut out, &line).map_err(spool_error)?;
        out.write_all(b"\n").map_err(spool_error)?;
    }
    out.flush().map_err(spool_error)?;
    drop(out);
    file.rewind().map_err(spool_error)?;
    Ok(std::io::BufReader::new(file).lines())
}

fn spool_error(e: impl std::fmt::Display) -> CliError {
    CliError::Refused(format!(
        "cannot keep the lines read in {}: {e}",
        std::env::temp_dir().display()
    ))
}

/// The newest `n` lines of a download; memory holds those `n`, not the whole log.
async fn last(download: &mut Download, n: usize) -> Result<Vec<LogLine>, CliError> {
    let mut kept = VecDeque::with_capacity(n.min(1 << 16));
    while let Some(line) = download.next().await? {
        if kept.len() == n {
            kept.pop_front();
        }
        kept.push_back(line);
    }
    Ok(kept.into())
}

/// The oldest line among `sources`, and which service it is of; its cursor is noted.
pub async fn next(sources: &mut [Source]) -> Result<Option<(usize, LogLine)>, CliError> {
    let mut oldest: Option<(usize, Cursor)> = None;
    for (i, s) in sources.iter_mut().enumerate() {
        if let Some(line) = s.peek().await? {
            if oldest.as_ref().is_none_or(|(_, c)| line.cursor < *c) {
                oldest = Some((i, line.cursor.clone()));
            }
        }
    }
    let Some((i, _)) = oldest else {
        return Ok(None);
    };
    let line = sources[i].peeked.take().expect("peeked above");
    sources[i].resume.note(&line.cursor);
    Ok(Some((i, line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(ts_ns: i64, container: &str) -> Cursor {
        Cursor {
            ts_ns,
            seq: 0,
            container: container.into(),
        }
    }

    #[test]
    fn resume_holds_the_newest_cursor_of_each_container() {
        let mut r = Resume::default();
        r.note(&cursor(5, "a"));
        r.note(&cursor(3, "a"));
        r.note(&cursor(4, "b"));
        let mut held = r.cursors();
        held.sort();
        assert_eq!(held, [cursor(4, "b"), cursor(5, "a")]);
    }
}
