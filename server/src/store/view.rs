//! A read of history: the store as it was at one moment, read while the writer goes on.
//! The day files are read through connections of their own, each in one read transaction,
//! and the lines still being gathered are shared with the writer, not copied: a long read
//! (a search, a tail of a rare stream, a resume from days ago) never holds up the writing,
//! so the followers, and the live lines they carry, never wait for it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use app::levels::Levels;
use time::Date;

use super::block::{BlockWriter, Record, Records};
use super::day::{BlockRow, DayFile, Which};
use super::{day_of, Owner, StoreError, StoredEvent};
use crate::docker::frames::RawLine;

/// Lines of one container not yet in a block, as the writer had them when the view was
/// taken.
pub(super) struct Gathered {
    pub owner: Owner,
    pub writer: Arc<BlockWriter>,
}

/// The store at one moment, for reading.
pub struct View {
    pub(super) days: BTreeMap<Date, DayFile>,
    pub(super) pending: Vec<Gathered>,
}

/// The lines of `records` a span holds; only they are copied.
fn in_span(records: &Records, span: &ServiceSpan<'_>) -> Vec<RawLine> {
    records
        .iter()
        .filter(|r| r.ts_ns >= span.since_ns && r.ts_ns < span.until_ns)
        .filter_map(|r| {
            let level = r.level();
            span.levels
                .is_none_or(|l| l.contains(level))
                .then(|| r.line_stating(level))
        })
        .collect()
}

/// A block handed over by [`View::scan`]: whose it is, the newest time it may hold, and
/// its records; only those in `[since, until)` are the scan's.
pub struct Scanned<'a> {
    pub owner: &'a Owner,
    pub top: i64,
    pub records: Records,
    pub since_ns: i64,
    pub until_ns: i64,
}

impl Scanned<'_> {
    pub fn in_span(&self, r: &Record<'_>) -> bool {
        r.ts_ns >= self.since_ns && r.ts_ns < self.until_ns
    }
}

/// A block handed over by [`View::service_blocks`]: whose it is, the newest time it may
/// hold within the span, and what is known of it before it is read.
pub struct ServiceBlock<'a> {
    pub owner: &'a Owner,
    pub top: i64,
    source: Source<'a>,
}

enum Source<'a> {
    Stored(&'a DayFile, &'a BlockRow),
    Gathered(&'a BlockWriter),
}

impl ServiceBlock<'_> {
    /// A stored block's row (its span, lines, streams and levels); none for lines still
    /// being gathered.
    pub fn row(&self) -> Option<&BlockRow> {
        match self.source {
            Source::Stored(_, row) => Some(row),
            Source::Gathered(_) => None,
        }
    }

    /// Its records: a stored block's are read from its file and decompressed.
    pub fn records(&self) -> Result<Records, StoreError> {
        match self.source {
            Source::Stored(file, row) => file.records(row),
            Source::Gathered(writer) => Ok(writer.records()),
        }
    }
}

/// A service's lines or events in `[since, until)`.
#[derive(Clone, Copy, Debug)]
pub struct ServiceSpan<'a> {
    pub engine: &'a str,
    pub project: &'a str,
    pub service: &'a str,
    pub since_ns: i64,
    pub until_ns: i64,
    /// Only lines stating one of these levels, when set (events are not lines: all come).
    pub levels: Option<Levels>,
}

/// Which end of a span a read keeps when the span holds more than asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Oldest,
    Newest,
}

impl View {
    /// The day files that may hold lines of `[since_ns, until_ns)`, oldest first; none for
    /// an empty span (a `since` the retention moved past `until`).
    pub(super) fn days_of(
        &self,
        since_ns: i64,
        until_ns: i64,
    ) -> impl DoubleEndedIterator<Item = &DayFile> {
        let (first, last) = (day_of(since_ns), day_of(until_ns.saturating_sub(1)));
        (since_ns < until_ns && first <= last)
            .then(|| self.days.range(first..=last))
            .into_iter()
            .flatten()
            .map(|(_, f)| f)
    }

    /// A service's stored lines in `[since, until)`, oldest first, with whose they are:
    /// at most `limit`, the oldest ones (`Oldest`) or the newest ones (`Newest`). Days are
    /// read from that end and no further than needed.
    pub fn lines(
        &self,
        span: &ServiceSpan<'_>,
        limit: usize,
        end: End,
    ) -> Result<Vec<(Owner, RawLine)>, StoreError> {
        self.lines_of(span, None, limit, end)
    }

    /// As `lines`, of one container of the service when `container` names one.
    pub fn lines_of(
        &self,
        span: &ServiceSpan<'_>,
        container: Option<&str>,
        limit: usize,
        end: End,
    ) -> Result<Vec<(Owner, RawLine)>, StoreError> {
        let ServiceSpan {
            engine,
            project,
            service,
            since_ns,
            until_ns,
            ..
        } = *span;
        let mut out: Vec<(Owner, RawLine)> = Vec::new();
        let days = self.days_of(since_ns, until_ns);
        let days: Box<dyn Iterator<Item = &DayFile>> = match end {
            End::Oldest => Box::new(days),
            End::Newest => Box::new(days.rev()),
        };
        for file in days {
            let which = Which {
                engine,
                project,
                service,
                container,
            };
            let flow = file.each_service_block(&which, since_ns, until_ns, end, |stored| {
                // Every line of the blocks still to come is older (newer) than this
                // block's newest (oldest): enough lines beyond it settle the page.
                let settled = match end {
                    End::Newest => {
                        let at = stored.block.last.0;
                        out.iter().filter(|(_, l)| l.ts.ns > at).count()
                    }
                    End::Oldest => {
                        let at = stored.block.first.0;
                        out.iter().filter(|(_, l)| l.ts.ns < at).count()
                    }
                };
                if settled >= limit {
                    return Ok(ControlFlow::Break(()));
                }
                if span.levels.is_some_and(|l| stored.block.lacks_levels(l)) {
                    return Ok(ControlFlow::Continue(()));
                }
                let lines = in_span(&file.records(&stored.block)?, span);
                out.extend(lines.into_iter().map(|l| (stored.owner.clone(), l)));
                Ok(ControlFlow::Continue(()))
            })?;
            if flow.is_break() || out.len() >= limit {
                break;
            }
        }
        for p in &self.pending {
            let o = &p.owner;
            let theirs = container.is_none_or(|c| o.container == c);
            if o.engine == engine && o.project == project && o.service == service && theirs {
                let lines = in_span(&p.writer.records(), span);
                out.extend(lines.into_iter().map(|l| (o.clone(), l)));
            }
        }
        out.sort_by(|(a, x), (b, y)| {
            (x.ts.ns, &a.container, x.seq).cmp(&(y.ts.ns, &b.container, y.seq))
        });
        match end {
            End::Oldest => out.truncate(limit),
            End::Newest => drop(out.drain(..out.len().saturating_sub(limit))),
        }
        Ok(out)
    }

    /// The services of `engine` with lines or events kept on the days from `since_ns`'s.
    pub fn services(
        &self,
        engine: &str,
        since_ns: i64,
    ) -> Result<BTreeSet<(String, String)>, StoreError> {
        let mut out = BTreeSet::new();
        for file in self.days.range(day_of(since_ns)..).map(|(_, f)| f) {
            out.extend(file.services(engine)?);
        }
        let gathered = self.pending.iter().map(|p| &p.owner);
        out.extend(
            gathered
                .filter(|o| o.engine == engine)
                .map(|o| (o.project.clone(), o.service.clone())),
        );
        Ok(out)
    }

    /// A service's stored events in `[since, until)`, in time order.
    pub fn events(&self, span: &ServiceSpan<'_>) -> Result<Vec<StoredEvent>, StoreError> {
        let ServiceSpan {
            engine,
            project,
            service,
            since_ns,
            until_ns,
            ..
        } = *span;
        let mut out = Vec::new();
        for file in self.days_of(since_ns, until_ns) {
            out.extend(file.events(engine, project, service, since_ns, until_ns)?);
        }
        Ok(out)
    }

    /// The lines still gathered of the containers of `engine` that `wants`, with lines in
    /// `[since, until)`, the newest line first, each with the newest time it holds there.
    fn gathered_newest_first(
        &self,
        engine: &str,
        since_ns: i64,
        until_ns: i64,
        wants: impl Fn(&Owner) -> bool,
    ) -> impl Iterator<Item = (&Gathered, i64)> {
        let mut gathered: Vec<(&Gathered, i64)> = self
            .pending
            .iter()
            .filter(|p| p.owner.engine == engine && wants(&p.owner))
            .filter_map(|p| {
                let (first, last) = p.writer.span_ns()?;
                let top = last.min(until_ns.saturating_sub(1));
                (last >= since_ns && first < until_ns).then_some((p, top))
            })
            .collect();
        gathered.sort_by_key(|&(_, top)| std::cmp::Reverse(top));
        gathered.into_iter()
    }

    /// A service's blocks with lines in `[since, until)`, stored or still being gathered,
    /// the newest line first, as [`View::scan`] orders them; a stored block's records are
    /// read only if `visit` asks for them (`ServiceBlock::records`). The span's levels are
    /// not looked at: `visit` has the block's row to skip by.
    pub fn service_blocks(
        &self,
        span: &ServiceSpan<'_>,
        mut visit: impl FnMut(ServiceBlock<'_>) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        let ServiceSpan {
            engine,
            project,
            service,
            since_ns,
            until_ns,
            ..
        } = *span;
        let ours = |o: &Owner| o.project == project && o.service == service;
        let mut gathered = self
            .gathered_newest_first(engine, since_ns, until_ns, ours)
            .peekable();
        fn of_gathered((p, top): (&Gathered, i64)) -> ServiceBlock<'_> {
            ServiceBlock {
                owner: &p.owner,
                top,
                source: Source::Gathered(&p.writer),
            }
        }
        let which = Which {
            engine,
            project,
            service,
            container: None,
        };
        for file in self.days_of(since_ns, until_ns).rev() {
            let flow =
                file.each_service_block(&which, since_ns, until_ns, End::Newest, |stored| {
                    let top = stored.block.last.0.min(until_ns.saturating_sub(1));
                    while let Some(g) = gathered.next_if(|&(_, t)| t >= top) {
                        if visit(of_gathered(g))?.is_break() {
                            return Ok(ControlFlow::Break(()));
                        }
                    }
                    visit(ServiceBlock {
                        owner: &stored.owner,
                        top,
                        source: Source::Stored(file, &stored.block),
                    })
                })?;
            if flow.is_break() {
                return Ok(());
            }
        }
        for g in gathered {
            if visit(of_gathered(g))?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Every block of `engine` with lines in `[since, until)` whose owner `wants`, stored
    /// or still being gathered, in one order: the newest line first. Each comes with
    /// `top`, the newest time it may hold within the span: no block after it holds a
    /// newer line, which is what lets a search stop part-way and say where to go on.
    /// Stored blocks surely without a line of `levels` are not handed over.
    pub fn scan(
        &self,
        engine: &str,
        since_ns: i64,
        until_ns: i64,
        wants: impl Fn(&Owner) -> bool,
        levels: Option<Levels>,
        mut visit: impl FnMut(Scanned<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let newest_in_span = |newest: i64| newest.min(until_ns.saturating_sub(1));
        let mut gathered = self
            .gathered_newest_first(engine, since_ns, until_ns, &wants)
            .peekable();
        // Hands over the gathered blocks whose newest line is at or after `down_to`.
        let mut gathered_down_to =
            |down_to: i64, visit: &mut dyn FnMut(Scanned<'_>) -> ControlFlow<()>| {
                while let Some((p, top)) = gathered.next_if(|&(_, top)| top >= down_to) {
                    visit(Scanned {
                        owner: &p.owner,
                        top,
                        records: p.writer.records(),
                        since_ns,
                        until_ns,
                    })?;
                }
                ControlFlow::Continue(())
            };
        for file in self.days_of(since_ns, until_ns).rev() {
            let flow = file.each_block_newest_first(engine, since_ns, until_ns, |stored| {
                if !wants(&stored.owner) {
                    return Ok(ControlFlow::Continue(()));
                }
                let top = newest_in_span(stored.block.last.0);
                if gathered_down_to(top, &mut visit).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
                if levels.is_some_and(|l| stored.block.lacks_levels(l)) {
                    return Ok(ControlFlow::Continue(()));
                }
                let records = file.records(&stored.block)?;
                Ok(visit(Scanned {
                    owner: &stored.owner,
                    top,
                    records,
                    since_ns,
                    until_ns,
                }))
            })?;
            if flow.is_break() {
                return Ok(());
            }
        }
        let _ = gathered_down_to(i64::MIN, &mut visit);
        Ok(())
    }
}
