//! Private keys across lines: a key block is followed per stream of a container, from one
//! read of its log to the next, so that every line of it is redacted, and a BEGIN line alone
//! hides nothing after it.

use std::borrow::Cow;
use std::collections::VecDeque;

use super::{Redactor, Shown, BEGIN, END, KEY_MARK};

// A block is a BEGIN line, maybe PEM headers (`Proc-Type`, `DEK-Info`) and a blank line,
// lines of base64 of one width with a shorter last one, and an END line. Its lines are
// redacted from BEGIN to END; but a block also ends at the first line that cannot be part of
// one, or at a bound, so that a BEGIN line alone (an attacker needs only a logged User-Agent)
// hides nothing after it. A read that starts inside a block (a tail, a gap, a reopened
// stream) has missed its BEGIN: see `Reading`.

/// Longest private key block after its BEGIN line, in lines and in bytes: a 16384-bit RSA key
/// (the largest OpenSSL and OpenSSH make) is about 200 lines of 64 or 70 in every format.
pub const KEY_BLOCK_LINES: usize = 256;
pub const KEY_BLOCK_BYTES: usize = 16 * 1024;

/// Longest line of a key's base64: 64 in PEM, 70 in OpenSSH's format, 76 in MIME's.
pub(super) const BODY_LINE_MAX: usize = 76;

/// Body lines shorter than this can only be the last one of a block: a single short word
/// ("ready", "42") is not taken for a body that goes on.
pub(super) const BODY_LINE_FULL: usize = 40;

/// Lines (and bytes) of one read waiting behind lines held back, at most; beyond, the held
/// lines are redacted and everything goes.
pub(super) const QUEUED_LINES: usize = 2 * KEY_BLOCK_LINES;
pub(super) const QUEUED_BYTES: usize = 1024 * 1024;

/// What a line can be in a key block (its BEGIN and END lines are told apart before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Header,
    Blank,
    /// Base64 of this many characters.
    Body(usize),
    Other,
}

pub(super) fn classify(plain: &str) -> Class {
    let t = plain.trim();
    if t.is_empty() {
        return Class::Blank;
    }
    if t.starts_with("Proc-Type:") || t.starts_with("DEK-Info:") {
        return Class::Header;
    }
    let digits = t.trim_end_matches('=');
    let base64 = !digits.is_empty()
        && t.len() - digits.len() <= 2
        && digits
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    // Base64 of random bytes is never all hex digits over 16 characters; digests and ids are.
    let hex = |digit: fn(&u8) -> bool| t.len() >= 16 && t.as_bytes().iter().all(digit);
    let is_hex = hex(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        || hex(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b));
    if base64 && t.len() <= BODY_LINE_MAX && !is_hex {
        Class::Body(t.len())
    } else {
        Class::Other
    }
}

/// How far a key block has gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Block {
    part: Part,
    lines: usize,
    bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part {
    /// Where a read that starts at an unknown place may have cut a block: any part of one.
    Unknown,
    /// Just after BEGIN.
    Begun,
    Headers,
    /// The blank line after the headers.
    Blank,
    /// Base64 lines `width` wide; `last` after a shorter one, which only END may follow.
    Body {
        width: usize,
        last: bool,
    },
}

pub(super) enum Fit {
    Yes(Block),
    /// The line cannot be part of this block.
    No,
    /// The line could be, but the block is as long as a block can be.
    Full,
}

impl Block {
    const fn new(part: Part) -> Block {
        Block {
            part,
            lines: 0,
            bytes: 0,
        }
    }

    fn fit(self, plain: &str) -> Fit {
        let part = match (self.part, classify(plain)) {
            (Part::Unknown | Part::Begun | Part::Headers, Class::Header) => Part::Headers,
            (Part::Unknown | Part::Headers, Class::Blank) => Part::Blank,
            (Part::Body { width, last: false }, Class::Body(n)) if n <= width => Part::Body {
                width,
                last: n < width,
            },
            (Part::Body { .. }, _) => return Fit::No,
            (_, Class::Body(n)) => Part::Body {
                width: n,
                last: n < BODY_LINE_FULL,
            },
            _ => return Fit::No,
        };
        if self.lines >= KEY_BLOCK_LINES || self.bytes + plain.len() > KEY_BLOCK_BYTES {
            return Fit::Full;
        }
        Fit::Yes(Block {
            part,
            lines: self.lines + 1,
            bytes: self.bytes + plain.len(),
        })
    }
}

/// Where one stream of a container stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Outside,
    /// In a block: its lines are redacted as they come.
    Inside(Block),
    /// At the start of a read that may have begun inside a block: lines that could be its
    /// rest are held back until the block's END or a line that cannot be part of it.
    Holding(Block),
}

/// What a container's log has shown of private key blocks, per stream (stdout, stderr).
///
/// Whoever reads the same container again and again (the hub's follower: its first tail,
/// each reopened follow, each read after a stop) keeps one `KeyState` for all those reads,
/// so that a read that goes on where the last one ended knows whether it starts in a block.
/// A read without one (a tail, a download, a gap) starts afresh: outside any block when it
/// starts at the beginning of the log, holding back lines that may be a block's rest when not.
#[derive(Clone, Debug, Default)]
pub struct KeyState {
    modes: [Option<Mode>; 2],
    /// The position (timestamp, sequence) of the last line seen. A stream reopened at the
    /// start of that line's second reads again what came before it; those lines have been
    /// counted once already.
    last: Option<(i64, u32)>,
    /// Whether the current read may still be reading lines seen before.
    replaying: bool,
}

/// A line as redaction needs it.
pub trait Line {
    /// Each output of a container has its own blocks.
    fn is_stderr(&self) -> bool;
    /// Where the line stands in its container's log.
    fn position(&self) -> (i64, u32);
    fn text_mut(&mut self) -> &mut String;
}

/// One read of a container's log, redacting each line in turn. Lines held back wait here with
/// the lines of the other stream that came after them, so that lines stay in order.
pub struct Reading<L> {
    queue: VecDeque<Queued<L>>,
    queued_bytes: usize,
}

pub(super) struct Queued<L> {
    line: L,
    held: bool,
    bytes: usize,
}

impl<L: Line> Reading<L> {
    /// Starts a read over `keys`; `from_start`: the read starts at the beginning of the log.
    pub fn begin(keys: &mut KeyState, from_start: bool) -> Reading<L> {
        if keys.last.is_none() {
            let start = if from_start {
                Mode::Outside
            } else {
                Mode::Holding(Block::new(Part::Unknown))
            };
            keys.modes = [Some(start); 2];
        } else {
            for mode in keys.modes.iter_mut().flatten() {
                // The lines a read that broke off was holding were never delivered: they come
                // again, redacted, and the block goes on.
                if let Mode::Holding(b) = *mode {
                    *mode = Mode::Inside(b);
                }
            }
            keys.replaying = true;
        }
        Reading {
            queue: VecDeque::new(),
            queued_bytes: 0,
        }
    }

    /// Redacts the next line of the read and appends to `out` what may be delivered now.
    pub fn push(&mut self, keys: &mut KeyState, r: &Redactor, mut line: L, out: &mut Vec<L>) {
        if r.is_off() {
            out.push(line);
            return;
        }
        if !r.key_blocks {
            let text = line.text_mut();
            if let Cow::Owned(s) = r.redact(text) {
                *text = s;
            }
            out.push(line);
            return;
        }
        let stream = usize::from(line.is_stderr());
        let mode = keys.modes[stream].unwrap_or(Mode::Outside);
        let pos = line.position();
        if keys.replaying && keys.last.is_some_and(|last| pos <= last) {
            let text = line.text_mut();
            let redacted = match mode {
                Mode::Outside => owned(outside(r, text).0),
                _ => Some(KEY_MARK.to_owned()),
            };
            if let Some(s) = redacted {
                *text = s;
            }
            return self.emit(line, false, out);
        }
        keys.replaying = false;
        keys.last = Some(pos);
        let text = line.text_mut();
        let (redacted, next) = match mode {
            Mode::Outside => outside(r, text),
            Mode::Inside(block) => inside(r, block, text),
            Mode::Holding(block) => {
                let (end, fit) = {
                    let shown = Shown::of(text);
                    let end = END
                        .find(&shown.plain)
                        .map(|m| shown.original(m.range()).end);
                    (end, block.fit(&shown.plain))
                };
                match (end, fit) {
                    (Some(cut), _) => {
                        self.settle(r, stream, true);
                        let (rest, next) = outside(r, &text[cut..]);
                        (Cow::Owned(format!("{KEY_MARK}{rest}")), next)
                    }
                    (None, Fit::Yes(block)) => {
                        keys.modes[stream] = Some(Mode::Holding(block));
                        self.emit(line, true, out);
                        return self.check_bounds(keys, r, out);
                    }
                    // Held to the bound with no END: fail closed.
                    (None, Fit::Full) => {
                        self.settle(r, stream, true);
                        outside(r, text)
                    }
                    (None, Fit::No) => {
                        self.settle(r, stream, false);
                        outside(r, text)
                    }
                }
            }
        };
        if let Some(s) = owned(redacted) {
            *line.text_mut() = s;
        }
        keys.modes[stream] = Some(next);
        self.emit(line, false, out);
        self.check_bounds(keys, r, out);
    }

    /// The read ended: lines still held are redacted. They may well be a key's body whose END
    /// the read did not reach (a tail cut inside a block), so they fail closed, and a read that
    /// goes on from here goes on inside that block.
    pub fn finish(&mut self, keys: &mut KeyState, r: &Redactor, out: &mut Vec<L>) {
        self.close_holds(keys, r);
        self.deliver(out);
    }

    fn check_bounds(&mut self, keys: &mut KeyState, r: &Redactor, out: &mut Vec<L>) {
        if self.queue.len() > QUEUED_LINES || self.queued_bytes > QUEUED_BYTES {
            self.close_holds(keys, r);
        }
        self.deliver(out);
    }

    fn close_holds(&mut self, keys: &mut KeyState, r: &Redactor) {
        for stream in 0..2 {
            if let Some(Mode::Holding(b)) = keys.modes[stream] {
                self.settle(r, stream, true);
                keys.modes[stream] = Some(Mode::Inside(b));
            }
        }
    }

    /// The lines `stream` holds are known: part of a key (`redact`), or not.
    fn settle(&mut self, r: &Redactor, stream: usize, redact: bool) {
        for q in self.queue.iter_mut() {
            if q.held && usize::from(q.line.is_stderr()) == stream {
                q.held = false;
                let text = q.line.text_mut();
                if redact {
                    *text = KEY_MARK.to_owned();
                } else if let Cow::Owned(s) = r.redact(text) {
                    *text = s;
                }
            }
        }
    }

    fn emit(&mut self, mut line: L, held: bool, out: &mut Vec<L>) {
        if self.queue.is_empty() && !held {
            out.push(line);
            return;
        }
        let bytes = line.text_mut().len();
        self.queued_bytes += bytes;
        self.queue.push_back(Queued { line, held, bytes });
    }

    /// Delivers the lines up to the first one still held.
    fn deliver(&mut self, out: &mut Vec<L>) {
        while self.queue.front().is_some_and(|q| !q.held) {
            let q = self.queue.pop_front().expect("a front");
            self.queued_bytes -= q.bytes;
            out.push(q.line);
        }
    }
}

/// A rewritten text, or `None` when it stays as it is (never borrowed from elsewhere).
pub(super) fn owned(text: Cow<'_, str>) -> Option<String> {
    match text {
        Cow::Owned(s) => Some(s),
        Cow::Borrowed(_) => None,
    }
}

/// A line outside any block; and whether a block begins with it.
pub(super) fn outside<'t>(r: &Redactor, text: &'t str) -> (Cow<'t, str>, Mode) {
    if !text.contains("-----") {
        return (r.redact(text), Mode::Outside);
    }
    let shown = Shown::of(text);
    let first_begin = BEGIN
        .find(&shown.plain)
        .map_or(shown.plain.len(), |m| m.start());
    // An END before any BEGIN: the end of a block this read did not see begin.
    let end = END
        .find_iter(&shown.plain)
        .take_while(|m| m.end() <= first_begin)
        .last()
        .map(|m| shown.original(m.range()).end);
    let (redacted, begins) = match end {
        Some(cut) => {
            let rest = &text[cut..];
            let begins = begins_block(&Shown::of(rest).plain);
            (Cow::Owned(format!("{KEY_MARK}{}", r.redact(rest))), begins)
        }
        None => (r.redact(text), begins_block(&shown.plain)),
    };
    let next = if begins {
        Mode::Inside(Block::new(Part::Begun))
    } else {
        Mode::Outside
    };
    (redacted, next)
}

/// A line in a block: redacted if it is part of it, as a line outside if not.
pub(super) fn inside<'t>(r: &Redactor, block: Block, text: &'t str) -> (Cow<'t, str>, Mode) {
    let shown = Shown::of(text);
    if let Some(m) = END.find(&shown.plain) {
        let cut = shown.original(m.range()).end;
        let (rest, next) = outside(r, &text[cut..]);
        return (Cow::Owned(format!("{KEY_MARK}{rest}")), next);
    }
    if begins_block(&shown.plain) {
        return (r.redact(text), Mode::Inside(Block::new(Part::Begun)));
    }
    match block.fit(&shown.plain) {
        Fit::Yes(block) => (Cow::Owned(KEY_MARK.to_owned()), Mode::Inside(block)),
        Fit::No | Fit::Full => outside(r, text),
    }
}

/// A line that opens a key block and does not close it.
pub(super) fn begins_block(plain: &str) -> bool {
    BEGIN
        .find_iter(plain)
        .last()
        .is_some_and(|m| !END.is_match(&plain[m.end()..]))
}
