//! Builds: a command's output captured by `lookout capture`, kept in history next to the
//! services it built.
//!
//! A build is stored as a pseudo-container `build-N` under engine `@build` (no engine of the
//! engines' own can be named so): its lines under each service they are attributed to (or
//! under the empty service: the project as a whole), its start and end as the container's
//! lifecycle events. So history's retention, compression and reads serve builds unchanged,
//! and nothing that reads an engine's services (tails, search, the picture) meets them.
//!
//! While a build runs, its state is here: the lines taken so far (a capture that sends a
//! request again adds nothing twice), the redaction of its private keys across lines, and a
//! signal for the readers waiting for its next lines.

mod attribute;
mod id;
mod read;
pub mod routes;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::builds::{AppendBuild, CapturedLine, CommandEnd};
use app::protocol::{LifecycleEvent, Stream};
use tokio::sync::watch;

use crate::auth::scope::Scope;
use crate::clock::{now_ns, Timestamp};
use crate::docker::frames::RawLine;
use crate::history::{History, ReadError};
use crate::redact::{KeyState, Line, Reading, Redactor};
use attribute::Attributor;
pub use id::{valid_name, BuildId, Writer};

/// How often, at most, a running build's gathered lines are written to disk (on the next
/// request after it: lines come in batches, and a quiet capture still speaks every 10 s):
/// no engine holds them to read again after a crash.
const WRITE_EVERY: Duration = Duration::from_secs(1);

/// The engine name builds are stored under.
pub const BUILD_ENGINE: &str = "@build";

/// What bounds builds: each a setting (`config.rs`).
#[derive(Clone, Debug)]
pub struct BuildsConfig {
    /// Lines one build keeps (`--max-build-lines`); later ones are counted, not kept.
    pub max_lines: u64,
    /// Builds running at once (`--max-running-builds`).
    pub max_running: usize,
    /// How long a running build may go without a word from its capture before it is
    /// ended as interrupted (`--build-idle-timeout`).
    pub idle: Duration,
    /// Longest line kept, in bytes (`--max-line-bytes`, as for containers).
    pub max_line: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0:?} is not a project or service name (letters, digits, '.', '-' and '_')")]
    BadName(String),
    #[error("{running} builds are running, the most at once (--max-running-builds); try again when one ends")]
    TooMany { running: usize },
    #[error("build #{number} of {project} is not running: it ended, or was interrupted after --build-idle-timeout without a word")]
    NotRunning { project: String, number: u64 },
    #[error("build #{number} of {project} was begun by another writer")]
    NotYours { project: String, number: u64 },
    #[error("lines from #{from} were sent, but the server holds {taken} of this build: send from #{taken}")]
    Gap { from: u64, taken: u64 },
    #[error("at most {max} lines a request, got {got}")]
    TooManyLines { max: usize, got: usize },
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// The most services one build's lines go to; lines naming more go to its `--service`
/// (each service is a part with its own events, and a hostile output could name many).
const MAX_BUILD_SERVICES: usize = app::asks::MAX_SERVICES;

/// A build's line on its way to history, with the service it belongs to.
struct BuildLine {
    raw: RawLine,
    service: String,
}

impl Line for BuildLine {
    fn is_stderr(&self) -> bool {
        self.raw.stream == Stream::Stderr
    }
    fn position(&self) -> (i64, u32) {
        (self.raw.ts.ns, self.raw.seq)
    }
    fn text_mut(&mut self) -> &mut String {
        &mut self.raw.text
    }
}

/// A running build's state, changed by its capture's requests one at a time.
struct Running {
    id: BuildId,
    writer: Writer,
    /// Where its capturer may write: a line attributed beyond it goes to `default`.
    scope: Scope,
    default: String,
    started_ns: i64,
    taken: u64,
    kept: u64,
    /// The services it touched, in the order it did: a service's place is its part.
    services: Vec<String>,
    attributor: Attributor,
    keys: KeyState,
    reading: Reading<BuildLine>,
    last: (i64, u32),
    /// When its gathered lines were last written to disk.
    written: Instant,
    /// Ended: a request that found it running just before takes nothing more.
    ended: bool,
}

struct Entry {
    state: tokio::sync::Mutex<Running>,
    /// Bumped when lines are readable or the build ended; readers wait on it.
    changed: watch::Sender<u64>,
    last_word: Mutex<Instant>,
}

#[derive(Clone)]
pub struct Builds {
    inner: Arc<Inner>,
}

struct Inner {
    history: History,
    redactor: Arc<Redactor>,
    cfg: BuildsConfig,
    running: Mutex<HashMap<BuildId, Arc<Entry>>>,
    /// The last number given per project, read from history the first time.
    numbers: tokio::sync::Mutex<HashMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Builds {
    /// The builds of `history`, with a watch that ends builds whose capture fell silent.
    pub fn start(history: History, redactor: Arc<Redactor>, cfg: BuildsConfig) -> Builds {
        let builds = Builds {
            inner: Arc::new(Inner {
                history,
                redactor,
                cfg,
                running: Mutex::new(HashMap::new()),
                numbers: tokio::sync::Mutex::new(HashMap::new()),
            }),
        };
        let weak = Arc::downgrade(&builds.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                Builds { inner }.end_silent().await;
            }
        });
        builds
    }

    pub fn history(&self) -> &History {
        &self.inner.history
    }

    /// Begins a build of `project`; its number.
    pub async fn begin(
        &self,
        writer: Writer,
        scope: Scope,
        project: &str,
        service: Option<&str>,
    ) -> Result<u64, BuildError> {
        for name in std::iter::once(project).chain(service) {
            if !valid_name(name) {
                return Err(BuildError::BadName(name.chars().take(80).collect()));
            }
        }
        self.room()?;
        let number = self.next_number(project).await?;
        let id = BuildId {
            project: project.to_owned(),
            number,
        };
        let started_ns = now_ns();
        let default = service.unwrap_or_default().to_owned();
        let mut services = vec![String::new()];
        if !default.is_empty() {
            services.push(default.clone());
        }
        let mut keys = KeyState::default();
        let reading = Reading::begin(&mut keys, true);
        let state = Running {
            id: id.clone(),
            writer,
            scope,
            default,
            started_ns,
            taken: 0,
            kept: 0,
            services: services.clone(),
            attributor: Attributor::default(),
            keys,
            reading,
            last: (started_ns, 0),
            written: Instant::now(),
            ended: false,
        };
        let entry = Arc::new(Entry {
            state: tokio::sync::Mutex::new(state),
            changed: watch::channel(0).0,
            last_word: Mutex::new(Instant::now()),
        });
        {
            let mut running = lock(&self.inner.running);
            if running.len() >= self.inner.cfg.max_running {
                return Err(BuildError::TooMany {
                    running: running.len(),
                });
            }
            running.insert(id.clone(), entry);
        }
        let history = &self.inner.history;
        for (part, s) in services.iter().enumerate() {
            history
                .event(&id.owner(s, part), started_ns, LifecycleEvent::Started)
                .await;
        }
        history.settle().await;
        Ok(number)
    }

    /// Whether another build may begin (`--max-running-builds`); checked again as it does.
    fn room(&self) -> Result<(), BuildError> {
        let running = lock(&self.inner.running).len();
        if running >= self.inner.cfg.max_running {
            return Err(BuildError::TooMany { running });
        }
        Ok(())
    }

    async fn next_number(&self, project: &str) -> Result<u64, BuildError> {
        let mut numbers = self.inner.numbers.lock().await;
        let last = match numbers.get(project) {
            Some(&n) => n,
            None => read::last_number(&self.inner.history, project).await?,
        };
        numbers.insert(project.to_owned(), last + 1);
        Ok(last + 1)
    }

    /// Takes a capture's next lines, and its end when it says so; how many lines of the
    /// build the server has taken.
    pub async fn append(&self, writer: &Writer, req: AppendBuild) -> Result<u64, BuildError> {
        let max = app::builds::MAX_LINES_PER_APPEND;
        if req.lines.len() > max {
            return Err(BuildError::TooManyLines {
                max,
                got: req.lines.len(),
            });
        }
        let id = BuildId {
            project: req.project,
            number: req.number,
        };
        let entry = self.entry(&id)?;
        let mut state = entry.state.lock().await;
        if state.ended {
            return Err(BuildError::NotRunning {
                project: id.project,
                number: id.number,
            });
        }
        if state.writer != *writer {
            return Err(BuildError::NotYours {
                project: id.project,
                number: id.number,
            });
        }
        *lock(&entry.last_word) = Instant::now();
        if req.from > state.taken {
            return Err(BuildError::Gap {
                from: req.from,
                taken: state.taken,
            });
        }
        let new = usize::try_from(state.taken - req.from)
            .map_or(&[][..], |skip| req.lines.get(skip..).unwrap_or_default());
        let out = self.take(&mut state, new);
        self.store(&mut state, out).await;
        let taken = state.taken;
        if let Some(end) = req.end {
            self.end(&mut state, Some(end)).await;
            lock(&self.inner.running).remove(&id);
        } else if state.written.elapsed() >= WRITE_EVERY {
            self.inner.history.flush_engine(BUILD_ENGINE).await;
            state.written = Instant::now();
        } else {
            self.inner.history.settle().await;
        }
        entry.changed.send_modify(|n| *n += 1);
        Ok(taken)
    }

    fn entry(&self, id: &BuildId) -> Result<Arc<Entry>, BuildError> {
        lock(&self.inner.running)
            .get(id)
            .cloned()
            .ok_or_else(|| BuildError::NotRunning {
                project: id.project.clone(),
                number: id.number,
            })
    }

    /// Stamps, attributes, cuts and redacts a capture's lines; those that may be delivered.
    fn take(&self, state: &mut Running, lines: &[CapturedLine]) -> Vec<BuildLine> {
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            state.taken += 1;
            if state.kept >= self.inner.cfg.max_lines {
                continue;
            }
            state.kept += 1;
            let now = now_ns();
            state.last = if now > state.last.0 {
                (now, 0)
            } else {
                (state.last.0, state.last.1 + 1)
            };
            let attributed = state.attributor.service_of(&line.text);
            let service = attributed
                .filter(|s| valid_name(s))
                .filter(|s| state.scope.allows_anywhere(&state.id.project, s))
                .filter(|s| state.services.len() < MAX_BUILD_SERVICES || state.services.contains(s))
                .unwrap_or_else(|| state.default.clone());
            let (text, truncated) = cut(&line.text, self.inner.cfg.max_line);
            let raw = RawLine {
                ts: Timestamp { ns: state.last.0 },
                seq: state.last.1,
                stream: line.stream,
                text,
                truncated: truncated || line.truncated,
                level: None,
            };
            let (keys, reading) = (&mut state.keys, &mut state.reading);
            reading.push(
                keys,
                &self.inner.redactor,
                BuildLine { raw, service },
                &mut out,
            );
        }
        out
    }

    /// Hands lines to history, each under its service; a service's first line records the
    /// build's start under it, so that its list of builds holds this one.
    async fn store(&self, state: &mut Running, lines: Vec<BuildLine>) {
        let mut by_service: Vec<(String, Vec<RawLine>)> = Vec::new();
        for mut line in lines {
            line.raw.level = crate::level::detect(&line.raw.text);
            match by_service.last_mut() {
                Some((s, raws)) if *s == line.service => raws.push(line.raw),
                _ => by_service.push((line.service, vec![line.raw])),
            }
        }
        let history = &self.inner.history;
        for (service, raws) in by_service {
            let part = match state.services.iter().position(|s| *s == service) {
                Some(part) => part,
                None => {
                    state.services.push(service);
                    let part = state.services.len() - 1;
                    let owner = state.id.owner(&state.services[part], part);
                    history
                        .event(&owner, state.started_ns, LifecycleEvent::Started)
                        .await;
                    part
                }
            };
            let owner = state.id.owner(&state.services[part], part);
            history.lines(&owner, raws).await;
        }
    }

    /// Ends a build: lines still held for redaction are stored, the lines not kept are
    /// said, and each of its services records the end (`None`: interrupted).
    async fn end(&self, state: &mut Running, end: Option<CommandEnd>) {
        state.ended = true;
        let mut out = Vec::new();
        let (keys, reading) = (&mut state.keys, &mut state.reading);
        reading.finish(keys, &self.inner.redactor, &mut out);
        self.store(state, out).await;
        let dropped = state.taken - state.kept;
        if dropped > 0 {
            let note = format!(
                "[lookout] {dropped} more lines were not kept: a build keeps at most {} \
                 (--max-build-lines)",
                self.inner.cfg.max_lines
            );
            let raw = RawLine {
                ts: Timestamp {
                    ns: now_ns().max(state.last.0 + 1),
                },
                seq: 0,
                stream: Stream::Stderr,
                text: note,
                truncated: false,
                level: None,
            };
            let owner = state.id.owner("", 0);
            self.inner.history.lines(&owner, vec![raw]).await;
        }
        let exit_code = end.map(|e| match e {
            CommandEnd::Exited { code } => i64::from(code),
            // As shells report it.
            CommandEnd::Killed { signal } => 128 + i64::from(signal),
        });
        let at = now_ns().max(state.last.0);
        for (part, service) in state.services.iter().enumerate() {
            let owner = state.id.owner(service, part);
            let exited = LifecycleEvent::Exited { exit_code };
            self.inner.history.event(&owner, at, exited).await;
        }
        // Written, ends included, before anyone is told it ended: a reader that finds it
        // no longer running must find how it ended.
        self.inner.history.flush_engine(BUILD_ENGINE).await;
    }

    /// Ends, as interrupted, the builds whose capture said nothing for `--build-idle-timeout`.
    async fn end_silent(&self) {
        let idle = self.inner.cfg.idle;
        let silent: Vec<(BuildId, Arc<Entry>)> = lock(&self.inner.running)
            .iter()
            .filter(|(_, e)| lock(&e.last_word).elapsed() > idle)
            .map(|(id, e)| (id.clone(), e.clone()))
            .collect();
        for (id, entry) in silent {
            let mut state = entry.state.lock().await;
            if lock(&entry.last_word).elapsed() <= idle {
                continue;
            }
            tracing::warn!(project = %id.project, number = id.number, "build interrupted: its capture fell silent");
            lock(&self.inner.running).remove(&id);
            self.end(&mut state, None).await;
            entry.changed.send_modify(|n| *n += 1);
        }
    }

    /// Whether a build is running, and what tells of its next lines.
    pub fn watch(&self, id: &BuildId) -> Option<watch::Receiver<u64>> {
        lock(&self.inner.running)
            .get(id)
            .map(|e| e.changed.subscribe())
    }

    /// The numbers of `project`'s builds running now.
    fn running_in(&self, project: &str) -> BTreeSet<u64> {
        lock(&self.inner.running)
            .keys()
            .filter(|id| id.project == project)
            .map(|id| id.number)
            .collect()
    }
}

/// `text` cut to at most `max` bytes, on a character's boundary, and whether it was.
fn cut(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_owned(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}
