//! A block: consecutive lines of one container, stored as one zstd-compressed blob. Lines
//! of a container are alike (same program, same formats), so they compress well together;
//! a block is the unit that is written, read and searched.
//!
//! Before compression a block is a sequence of records, each:
//! `ts_ns: i64 LE | seq: u32 LE | flags: u8 | len: u32 LE | text`. The flags: 1 stderr,
//! 2 truncated, and in bits 2 to 4 the level (`level_code`): records written before levels
//! were kept hold 0 there, and their level is found from the text when read.

use app::levels::{Levels, ALL};
use app::protocol::{Level, Stream};

use crate::clock::Timestamp;
use crate::docker::frames::RawLine;

/// A block is closed at this many lines...
pub const MAX_LINES: usize = 4096;
/// ...or this many bytes of records, whichever comes first.
pub const MAX_BYTES: usize = 1 << 20;
/// zstd's level: its default, a good ratio at several hundred MB/s on one core.
const LEVEL: i32 = 3;

const HEADER: usize = 8 + 4 + 1 + 4;

/// Why a stored block could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("a stored block does not decompress: {0}")]
    Compression(#[from] std::io::Error),
    #[error("a stored block is cut short at byte {0}")]
    Truncated(usize),
}

// Three bits hold "not kept", "none", and each level.
const _: () = assert!(ALL.len() + 2 <= 8);

/// A level as stored: 0 is kept for records that do not say.
fn level_code(level: Option<Level>) -> u8 {
    level.map_or(1, |l| 2 + l as u8)
}

/// A stored level code: `None` for records written before levels were kept.
fn stored_level(code: u8) -> Option<Option<Level>> {
    match code {
        0 => None,
        1 => Some(None),
        c => Some(ALL.get(usize::from(c - 2)).copied()),
    }
}

/// The levels of a block's lines as one byte: bit `level_code` set for each level found
/// (bit 1: lines stating none). A read of some levels skips blocks without them.
pub fn level_mask(levels: Levels) -> u8 {
    ALL.into_iter()
        .filter(|l| levels.contains(Some(*l)))
        .fold(0, |m, l| m | 1 << level_code(Some(l)))
}

/// The one level every line of a block states, when its levels (`level_mask`'s bits, as
/// `BlockWriter` keeps them) are one alone: such a block is counted without being read.
pub fn only_level(mask: u8) -> Option<Option<Level>> {
    if mask.count_ones() != 1 {
        return None;
    }
    stored_level(mask.trailing_zeros() as u8)
}

/// Lines being gathered into a block.
#[derive(Clone, Default)]
pub struct BlockWriter {
    records: Vec<u8>,
    lines: usize,
    stderr_lines: usize,
    levels: u8,
    first: Option<(i64, u32)>,
    last: Option<(i64, u32)>,
}

/// A block ready to store: its span, its size and its compressed records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub first: (i64, u32),
    pub last: (i64, u32),
    pub lines: u32,
    /// Of its lines, those of stderr: a read of one stream skips blocks without it.
    pub stderr_lines: u32,
    /// The levels its lines state (`level_mask`).
    pub levels: u8,
    /// The records' size before compression: what reading it back allocates.
    pub raw_bytes: u32,
    pub data: Vec<u8>,
}

impl BlockWriter {
    /// Adds a line; true once the block is full and should be sealed.
    pub fn push(&mut self, line: &RawLine) -> bool {
        // The engine stamps stdout and stderr apart, so a line may come a little before
        // the one it follows: the span is the lowest and highest position, not the ends.
        let pos = (line.ts.ns, line.seq);
        self.first = Some(self.first.map_or(pos, |f| f.min(pos)));
        self.last = Some(self.last.map_or(pos, |l| l.max(pos)));
        let mut flags = 0u8;
        if line.stream == Stream::Stderr {
            flags |= 1;
            self.stderr_lines += 1;
        }
        if line.truncated {
            flags |= 2;
        }
        flags |= level_code(line.level) << 2;
        self.levels |= 1 << level_code(line.level);
        self.records.extend_from_slice(&line.ts.ns.to_le_bytes());
        self.records.extend_from_slice(&line.seq.to_le_bytes());
        self.records.push(flags);
        let len = u32::try_from(line.text.len()).unwrap_or(u32::MAX);
        self.records.extend_from_slice(&len.to_le_bytes());
        self.records
            .extend_from_slice(&line.text.as_bytes()[..len as usize]);
        self.lines += 1;
        self.is_full()
    }

    /// What was gathered so far, as a block's records.
    pub fn records(&self) -> Records {
        Records::new(self.records.clone()).expect("records this writer wrote")
    }

    pub fn is_full(&self) -> bool {
        self.lines >= MAX_LINES || self.records.len() >= MAX_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The lowest and highest time gathered so far.
    pub fn span_ns(&self) -> Option<(i64, i64)> {
        Some((self.first?.0, self.last?.0))
    }

    /// The lines gathered so far: history shows them before their block is written.
    pub fn lines(&self) -> Vec<RawLine> {
        decode(&self.records).expect("records this writer wrote")
    }

    /// What was gathered, compressed; `None` if nothing was.
    pub fn seal(&self) -> Option<Sealed> {
        let (first, last) = (self.first?, self.last?);
        let data = zstd::bulk::compress(&self.records, LEVEL).expect("compressing to memory");
        Some(Sealed {
            first,
            last,
            lines: self.lines as u32,
            stderr_lines: self.stderr_lines as u32,
            levels: self.levels,
            raw_bytes: self.records.len() as u32,
            data,
        })
    }
}

/// The lines of a stored block, in the order they were written.
pub fn read(data: &[u8], raw_bytes: u32) -> Result<Vec<RawLine>, BlockError> {
    Ok(Records::decompress(data, raw_bytes)?.lines())
}

fn decode(records: &[u8]) -> Result<Vec<RawLine>, BlockError> {
    Ok(Records::new(records.to_vec())?.lines())
}

/// A block's records, checked once, then read a line at a time without copying: a search
/// reads millions of lines and copies only those that match.
pub struct Records {
    buf: Vec<u8>,
    count: usize,
    kind: TextKind,
}

/// What the texts of a block hold, learned when its records are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextKind {
    /// Every text is ASCII.
    pub ascii: bool,
    /// Some text holds an escape (a colour code, which a viewer does not see).
    pub escapes: bool,
}

impl TextKind {
    fn of(texts: impl Iterator<Item = impl AsRef<[u8]>>) -> TextKind {
        let mut kind = TextKind {
            ascii: true,
            escapes: false,
        };
        for t in texts {
            let t = t.as_ref();
            kind.ascii &= t.is_ascii();
            kind.escapes |= memchr::memchr(0x1b, t).is_some();
        }
        kind
    }
}

/// One line of a block, borrowed from its records.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub ts_ns: i64,
    pub seq: u32,
    pub stream: Stream,
    pub truncated: bool,
    pub text: &'a [u8],
    /// Where the text starts in the records.
    pub at: usize,
    level_code: u8,
}

impl Record<'_> {
    /// The level the line states: as stored, or for a record written before levels were
    /// kept, found from its text.
    pub fn level(&self) -> Option<Level> {
        stored_level(self.level_code)
            .unwrap_or_else(|| crate::level::detect(&String::from_utf8_lossy(self.text)))
    }

    /// The line, owned; text that is not UTF-8 is read as the viewer would be shown it.
    pub fn line(&self) -> RawLine {
        self.line_stating(self.level())
    }

    /// The line, owned, its level already known (`Record::level`).
    pub fn line_stating(&self, level: Option<Level>) -> RawLine {
        RawLine {
            ts: Timestamp { ns: self.ts_ns },
            seq: self.seq,
            stream: self.stream,
            text: String::from_utf8_lossy(self.text).into_owned(),
            truncated: self.truncated,
            level,
        }
    }
}

impl Records {
    pub fn decompress(data: &[u8], raw_bytes: u32) -> Result<Records, BlockError> {
        Records::new(zstd::bulk::decompress(data, raw_bytes as usize)?)
    }

    /// Checks that `buf` is whole records.
    pub fn new(buf: Vec<u8>) -> Result<Records, BlockError> {
        let mut at = 0;
        let mut count = 0;
        while at < buf.len() {
            let header = buf.get(at..at + HEADER).ok_or(BlockError::Truncated(at))?;
            let len = u32::from_le_bytes(header[13..17].try_into().expect("4 bytes")) as usize;
            if buf.len() < at + HEADER + len {
                return Err(BlockError::Truncated(at));
            }
            at += HEADER + len;
            count += 1;
        }
        let mut records = Records {
            buf,
            count,
            kind: TextKind::default(),
        };
        records.kind = TextKind::of(records.iter().map(|r| r.text));
        Ok(records)
    }

    pub fn kind(&self) -> TextKind {
        self.kind
    }

    /// The records as stored: every line's header and text, one after the other.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// How many lines the block holds.
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        let buf = &self.buf;
        let mut at = 0;
        std::iter::from_fn(move || {
            let header = buf.get(at..at + HEADER)?;
            let flags = header[12];
            let len = u32::from_le_bytes(header[13..17].try_into().expect("4 bytes")) as usize;
            let record = Record {
                ts_ns: i64::from_le_bytes(header[0..8].try_into().expect("8 bytes")),
                seq: u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")),
                stream: if flags & 1 != 0 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                truncated: flags & 2 != 0,
                text: &buf[at + HEADER..at + HEADER + len],
                at: at + HEADER,
                level_code: (flags >> 2) & 7,
            };
            at += HEADER + len;
            Some(record)
        })
    }

    pub fn lines(&self) -> Vec<RawLine> {
        self.iter().map(|r| r.line()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ns: i64, seq: u32, stream: Stream, text: &str) -> RawLine {
        RawLine {
            ts: Timestamp { ns },
            seq,
            stream,
            text: text.into(),
            truncated: false,
            level: None,
        }
    }

    #[test]
    fn a_block_reads_back_as_it_was_written() {
        let mut w = BlockWriter::default();
        let mut lines = vec![
            line(10, 0, Stream::Stdout, "GET /api 200"),
            line(10, 1, Stream::Stderr, "warn: slow ☃"),
            line(11, 0, Stream::Stdout, ""),
        ];
        lines[2].truncated = true;
        for l in &lines {
            assert!(!w.push(l));
        }
        let sealed = w.seal().expect("lines were pushed");
        assert_eq!(
            (sealed.first, sealed.last, sealed.lines),
            ((10, 0), (11, 0), 3)
        );
        assert_eq!(read(&sealed.data, sealed.raw_bytes).unwrap(), lines);
        assert!(BlockWriter::default().seal().is_none(), "nothing gathered");
    }

    #[test]
    fn a_block_is_full_at_its_line_bound_and_alike_lines_compress_well() {
        let mut w = BlockWriter::default();
        let mut full_at = None;
        for i in 0..MAX_LINES as i64 {
            let text = format!(
                "2026-12-02 10:00:{:02} INFO handled request id={i} in 3ms",
                i % 60
            );
            if w.push(&line(i, 0, Stream::Stdout, &text)) {
                full_at = Some(i);
            }
        }
        assert_eq!(full_at, Some(MAX_LINES as i64 - 1));
        let sealed = w.seal().unwrap();
        assert!(
            sealed.data.len() * 5 < sealed.raw_bytes as usize,
            "{} of {}",
            sealed.data.len(),
            sealed.raw_bytes
        );
    }

    #[test]
    fn each_line_keeps_its_level_and_old_records_find_theirs_when_read() {
        let mut w = BlockWriter::default();
        let mut lines: Vec<RawLine> = ALL
            .into_iter()
            .map(Some)
            .chain([None])
            .enumerate()
            .map(|(i, level)| {
                let mut l = line(
                    i as i64,
                    0,
                    Stream::Stdout,
                    "ERROR: as stated, not as stored",
                );
                l.level = level;
                l
            })
            .collect();
        for l in &lines {
            w.push(l);
        }
        let sealed = w.seal().unwrap();
        assert_eq!(read(&sealed.data, sealed.raw_bytes).unwrap(), lines);
        // A record from before levels were kept: its level bits are 0.
        let mut old = Records::decompress(&sealed.data, sealed.raw_bytes)
            .unwrap()
            .buf;
        old[12] &= 0b11;
        let found = Records::new(old).unwrap().lines();
        lines.iter_mut().for_each(|l| l.level = Some(Level::Error));
        assert_eq!(found[0], lines[0], "found from the text");
    }

    #[test]
    fn a_block_of_one_level_says_which_from_its_mask() {
        let mask_of = |levels: &[Option<Level>]| {
            let mut w = BlockWriter::default();
            for (i, level) in levels.iter().enumerate() {
                let mut l = line(i as i64, 0, Stream::Stdout, "x");
                l.level = *level;
                w.push(&l);
            }
            w.seal().unwrap().levels
        };
        for level in ALL.into_iter().map(Some).chain([None]) {
            assert_eq!(only_level(mask_of(&[level, level])), Some(level));
        }
        let mixed = mask_of(&[Some(Level::Info), None]);
        assert_eq!(only_level(mixed), None);
        assert_eq!(only_level(0), None, "levels not kept");
        assert_eq!(only_level(1), None, "levels not kept");
    }

    #[test]
    fn a_damaged_block_is_an_error_not_a_panic() {
        let mut w = BlockWriter::default();
        w.push(&line(1, 0, Stream::Stdout, "hello"));
        let sealed = w.seal().unwrap();
        assert!(read(&sealed.data[..sealed.data.len() / 2], sealed.raw_bytes).is_err());
        let cut = zstd::bulk::compress(&[1, 2, 3], 3).unwrap();
        assert!(matches!(read(&cut, 3), Err(BlockError::Truncated(0))));
    }
}
