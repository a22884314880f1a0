//! Turns the engine's log frames into whole lines.
//!
//! With `timestamps=true` the engine prefixes every log entry with its RFC 3339 timestamp and
//! a space. An entry is normally one line ending in `\n`; a line longer than 16 KiB arrives as
//! several entries, all but the last without `\n`; a TTY entry may hold several lines ending
//! in `\r\n`; a container's very last line may have no `\n` at all. This module hides all of
//! that behind `Framer::push` and `Framer::finish`.
//!
//! The engine may also send an entry twice in a row: Docker's json-file reader, following a
//! log as it rotates, sometimes sends a stream's last entry again right after it (seen here 4
//! times in 45 rotations at 10,000 lines a second). Numbered as a second line of its stamp,
//! the copy would reach viewers and history as a line of its own; it is left out.

use app::protocol::{Level, Stream};

use crate::clock::Timestamp;

/// The engine cuts a long line into pieces of this many bytes, each its own log entry.
const ENGINE_PIECE: usize = 16 * 1024;

/// A complete line of one container, before it is tagged with its service and replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLine {
    pub ts: Timestamp,
    /// Index among this container's lines with the same timestamp.
    pub seq: u32,
    pub stream: Stream,
    pub text: String,
    pub truncated: bool,
    /// The level the text states: found once, after redaction, by `LogStream`.
    pub level: Option<Level>,
}

#[derive(Default)]
struct Partial {
    buf: Vec<u8>,
    truncated: bool,
}

/// Reassembles the lines of one container's log stream.
pub struct Framer {
    max_line: usize,
    stdout: Partial,
    stderr: Partial,
    /// Per stream (stdout, stderr), the timestamp of its last line and how many of its lines
    /// before that one shared it, to number lines that share a timestamp.
    last: [Option<(i64, u32)>; 2],
    /// Timestamp of the last entry seen, for a partial line flushed by `finish`.
    last_ts: Option<Timestamp>,
    /// Per stream, its last entry if it ended a line (empty if not): the same bytes again
    /// next are the engine repeating it. Two lines the engine stamps are never stamped alike
    /// to the nanosecond one after the other (none in 921,044 lines written at full speed), and
    /// the lines of one TTY entry are one entry.
    last_whole: [Vec<u8>; 2],
}

impl Framer {
    /// `max_line` is the longest line kept, in bytes; longer lines are cut and marked.
    pub fn new(max_line: usize) -> Framer {
        Framer {
            max_line,
            stdout: Partial::default(),
            stderr: Partial::default(),
            last: [None, None],
            last_ts: None,
            last_whole: [Vec::new(), Vec::new()],
        }
    }

    /// Feeds one log entry (timestamp, space, content) and appends the lines it completes.
    pub fn push(&mut self, stream: Stream, entry: &[u8], out: &mut Vec<RawLine>) {
        let s = stream_bit(stream) as usize;
        if !entry.is_empty() && self.last_whole[s] == entry {
            return;
        }
        let (ts, content) = match split_timestamp(entry) {
            Some(parts) => parts,
            // An entry without a timestamp cannot come from an engine asked for timestamps;
            // keep its text rather than lose it, stamped with the last time seen.
            None => match &self.last_ts {
                Some(ts) => (ts.clone(), entry),
                None => (Timestamp { ns: 0 }, entry),
            },
        };
        // A TTY stream is split at newlines only, so the engine's 16 KiB pieces of a long line
        // arrive joined, each piece after the first still carrying its timestamp.
        let (mut ts, mut content) = (ts, content);
        while content.len() > ENGINE_PIECE && !content[..ENGINE_PIECE].contains(&b'\n') {
            let Some((next_ts, next)) = split_timestamp(&content[ENGINE_PIECE..]) else {
                break;
            };
            self.append(stream, &content[..ENGINE_PIECE]);
            ts = next_ts;
            content = next;
        }
        self.last_ts = Some(ts.clone());
        let mut rest = content;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.append(stream, &rest[..nl]);
            self.complete(stream, &ts, out);
            rest = &rest[nl + 1..];
        }
        let last_whole = &mut self.last_whole[s];
        last_whole.clear();
        if rest.is_empty() {
            last_whole.extend_from_slice(entry);
        } else {
            self.append(stream, rest);
        }
    }

    /// Ends the stream: any line still waiting for its `\n` is delivered.
    pub fn finish(&mut self, out: &mut Vec<RawLine>) {
        let Some(ts) = self.last_ts.clone() else {
            return;
        };
        for stream in [Stream::Stdout, Stream::Stderr] {
            if !self.partial(stream).buf.is_empty() || self.partial(stream).truncated {
                self.complete(stream, &ts, out);
            }
        }
    }

    fn partial(&mut self, stream: Stream) -> &mut Partial {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    fn append(&mut self, stream: Stream, bytes: &[u8]) {
        let max = self.max_line;
        let p = self.partial(stream);
        let room = max.saturating_sub(p.buf.len());
        if bytes.len() > room {
            p.buf.extend_from_slice(&bytes[..room]);
            p.truncated = true;
        } else {
            p.buf.extend_from_slice(bytes);
        }
    }

    fn complete(&mut self, stream: Stream, ts: &Timestamp, out: &mut Vec<RawLine>) {
        let p = std::mem::take(self.partial(stream));
        let mut bytes = p.buf;
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let text = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        let seq = sequence(&mut self.last, stream, ts.ns);
        out.push(RawLine {
            ts: ts.clone(),
            seq,
            stream,
            text,
            truncated: p.truncated,
            level: None,
        });
    }
}

/// A line's sequence: what tells it apart from the other lines of its container stamped
/// alike. The engine stamps stdout and stderr apart, each in order, and a stdout and a
/// stderr line may share a stamp with other lines between them in the log: so each stream
/// counts its own run of lines stamped alike (`k`), and the stream is the sequence's low
/// bit. A position is then never given twice, whatever lies between the two lines.
fn sequence(last: &mut [Option<(i64, u32)>; 2], stream: Stream, ts_ns: i64) -> u32 {
    let s = stream_bit(stream);
    let k = match last[s as usize] {
        Some((ns, k)) if ns == ts_ns => k + 1,
        _ => 0,
    };
    last[s as usize] = Some((ts_ns, k));
    k.saturating_mul(2).saturating_add(s)
}

/// A stream's bit in a line's sequence: 0 for stdout, 1 for stderr.
pub fn stream_bit(stream: Stream) -> u32 {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// A tail of a log may begin inside a run of one stream's lines stamped alike, numbering
/// them from 0 where a read of the whole log would not. Leaves out, per stream, its first
/// lines until its stamp changes, so that each line kept has the position any read gives
/// it (a re-read repeats none, and the lines left out are found before it). Only a stream
/// whose first line is among the read's first `slack` lines (read for this alone): one
/// first seen after them has no line in the `slack` lines before, and a line of its own
/// that far back does not share its stamp. Without this, a stream that writes in bursts
/// lost the first line of its first burst in the tail. Keeps a stream's lines if they all
/// share one stamp.
pub fn from_whole_stamp(lines: &mut Vec<RawLine>, slack: usize) {
    let starts = [Stream::Stdout, Stream::Stderr]
        .map(|stream| (stream, lines.iter().position(|l| l.stream == stream)));
    for (stream, first_at) in starts {
        if first_at.is_none_or(|at| at >= slack) {
            continue;
        }
        let mut own = lines.iter().filter(|l| l.stream == stream);
        let Some(first) = own.next().map(|l| l.ts.ns) else {
            continue;
        };
        let cut = 1 + own.take_while(|l| l.ts.ns == first).count();
        let total = lines.iter().filter(|l| l.stream == stream).count();
        if cut == total {
            continue;
        }
        let mut left_out = 0;
        lines.retain(|l| {
            let drop = l.stream == stream && left_out < cut;
            left_out += usize::from(l.stream == stream);
            !drop
        });
    }
}

fn split_timestamp(entry: &[u8]) -> Option<(Timestamp, &[u8])> {
    let space = entry.iter().take(64).position(|&b| b == b' ')?;
    let ts = std::str::from_utf8(&entry[..space]).ok()?;
    Some((Timestamp::parse(ts)?, &entry[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(framer: &mut Framer, entries: &[(Stream, &[u8])]) -> Vec<RawLine> {
        let mut out = Vec::new();
        for (s, e) in entries {
            framer.push(*s, e, &mut out);
        }
        out
    }

    /// Seen in a million-line log: a stderr line stamped like a stdout line written 1,300
    /// lines before it in the log. Numbered by adjacency, both were (ts, 0), and history kept
    /// only the first.
    #[test]
    fn a_stdout_and_a_stderr_line_stamped_alike_apart_in_the_log_have_two_positions() {
        let out = lines(
            &mut Framer::new(1024),
            &[
                (Stream::Stdout, b"2026-12-02T10:00:00.000000001Z a\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000002Z b\n"),
                (Stream::Stderr, b"2026-12-02T10:00:00.000000001Z x\n"),
                (Stream::Stderr, b"2026-12-02T10:00:00.000000001Z y\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000002Z c\n"),
            ],
        );
        let positions: std::collections::HashSet<(i64, u32)> =
            out.iter().map(|l| (l.ts.ns, l.seq)).collect();
        assert_eq!(positions.len(), 5, "{out:?}");
        assert_eq!(
            out.iter().map(|l| l.seq).collect::<Vec<_>>(),
            [0, 0, 1, 3, 2]
        );
    }

    /// Seen following a log as json-file rotated it (4 times in 45 rotations): the engine sent
    /// a stream's last entry again right after it. Numbered as the second line of its stamp,
    /// the copy reached viewers and history, and a viewer told of lost lines was told one too
    /// many.
    #[test]
    fn an_entry_the_engine_sends_again_right_after_itself_is_one_line() {
        let out = lines(
            &mut Framer::new(1024),
            &[
                (Stream::Stdout, b"2026-12-02T10:00:00.000000001Z a\n"),
                (Stream::Stderr, b"2026-12-02T10:00:00.000000002Z x\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000003Z b\n"),
                // The engine goes back to `x`: each stream's last entry, again.
                (Stream::Stderr, b"2026-12-02T10:00:00.000000002Z x\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000003Z b\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000003Z b\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000004Z c\n"),
            ],
        );
        let got: Vec<(&str, u32)> = out.iter().map(|l| (l.text.as_str(), l.seq)).collect();
        assert_eq!(got, [("a", 0), ("x", 1), ("b", 0), ("c", 0)]);
    }

    #[test]
    fn a_line_written_twice_is_two_lines_and_a_long_line_of_like_pieces_stays_whole() {
        let mut f = Framer::new(1 << 20);
        let mut out = lines(
            &mut f,
            &[
                (Stream::Stdout, b"2026-12-02T10:00:00.000000001Z same\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000002Z same\n"),
            ],
        );
        // A line of 32,769 `x`: two like pieces without `\n`, stamped alike, then its end.
        let mut piece = b"2026-12-02T10:00:00.000000003Z ".to_vec();
        piece.extend(std::iter::repeat_n(b'x', ENGINE_PIECE));
        f.push(Stream::Stdout, &piece, &mut out);
        f.push(Stream::Stdout, &piece, &mut out);
        f.push(
            Stream::Stdout,
            b"2026-12-02T10:00:00.000000003Z x\n",
            &mut out,
        );
        let got: Vec<(usize, &str)> = out.iter().map(|l| (l.text.len(), &l.text[..4])).collect();
        assert_eq!(
            got,
            [(4, "same"), (4, "same"), (2 * ENGINE_PIECE + 1, "xxxx")]
        );
    }

    #[test]
    fn a_tail_begins_where_each_stream_s_first_stamp_is_whole() {
        let whole = lines(
            &mut Framer::new(1024),
            &[
                (Stream::Stderr, b"2026-12-02T10:00:00.000000001Z x\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000002Z a\n"),
                (Stream::Stderr, b"2026-12-02T10:00:00.000000001Z y\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000003Z b\n"),
                (Stream::Stderr, b"2026-12-02T10:00:00.000000004Z z\n"),
            ],
        );
        // A tail from `a` holds `y` numbered as the first of its stamp, which it is not.
        let mut tail = whole[1..].to_vec();
        tail[1].seq = 1;
        from_whole_stamp(&mut tail, 4);
        let texts: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["b", "z"], "each stream's first run is left out");
        assert_eq!(tail, [whole[3].clone(), whole[4].clone()]);
    }

    #[test]
    fn a_tail_begins_where_its_first_stamp_is_whole() {
        let whole = lines(
            &mut Framer::new(1024),
            &[
                (Stream::Stdout, b"2026-12-02T10:00:00.000000001Z a\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000001Z b\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000002Z c\n"),
            ],
        );
        assert_eq!((whole[0].seq, whole[1].seq), (0, 2));
        // A tail of the last two lines cuts the run of `a` and `b`: `b` is numbered 0.
        let mut tail = whole[1..].to_vec();
        tail[0].seq = 0;
        from_whole_stamp(&mut tail, 2);
        assert_eq!(tail, whole[2..], "only `c`, with its position in any read");
        let mut alike = whole[..2].to_vec();
        from_whole_stamp(&mut alike, 2);
        assert_eq!(alike.len(), 2, "lines that all share one stamp are kept");
    }

    /// Seen in CI: stderr wrote in bursts, none among the slack's lines; its first line in
    /// the tail was left out, and a line of the tail was never stored.
    #[test]
    fn a_stream_first_seen_after_the_slack_keeps_its_first_line() {
        let read = lines(
            &mut Framer::new(1024),
            &[
                (Stream::Stdout, b"2026-12-02T10:00:00.000000001Z a\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000002Z b\n"),
                (Stream::Stdout, b"2026-12-02T10:00:00.000000003Z c\n"),
                (Stream::Stderr, b"2026-12-02T10:00:00.000000004Z x\n"),
                (Stream::Stderr, b"2026-12-02T10:00:00.000000005Z y\n"),
            ],
        );
        let mut tail = read.clone();
        from_whole_stamp(&mut tail, 2);
        let texts: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            ["b", "c", "x", "y"],
            "only stdout began in the slack"
        );
    }

    #[test]
    fn parses_and_formats_engine_timestamps() {
        let ts = Timestamp::parse("2026-11-22T02:32:11.950536787Z").unwrap();
        assert_eq!(ts.ns, 1_795_314_731_950_536_787);
        assert_eq!(ts.to_rfc3339(), "2026-11-22T02:32:11.950536787Z");
        assert_eq!(ts.whole_seconds(), 1_795_314_731);
        let short = Timestamp::parse("2026-11-22T02:32:11.5Z").unwrap();
        assert_eq!(short.to_rfc3339(), "2026-11-22T02:32:11.500000000Z");
    }

    #[test]
    fn one_entry_one_line() {
        let mut f = Framer::new(1024);
        let out = lines(
            &mut f,
            &[(Stream::Stdout, b"2026-11-22T02:32:11.000000001Z hello\n")],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "hello");
        assert_eq!(out[0].stream, Stream::Stdout);
        assert_eq!(out[0].ts.ns % 1_000_000_000, 1);
        assert!(!out[0].truncated);
    }

    #[test]
    fn joins_a_line_the_engine_split() {
        let mut f = Framer::new(1 << 20);
        let a = format!("2026-11-22T02:32:11.000000001Z {}", "a".repeat(16384));
        let b = format!("2026-11-22T02:32:11.000000002Z {}", "b".repeat(16384));
        let c = "2026-11-22T02:32:11.000000003Z end\n";
        let out = lines(
            &mut f,
            &[
                (Stream::Stdout, a.as_bytes()),
                (Stream::Stdout, b.as_bytes()),
                (Stream::Stdout, c.as_bytes()),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text.len(), 2 * 16384 + 3);
        assert!(out[0].text.ends_with("bbbend"));
        // The line is as late as its last piece, so lines stay in order of completion.
        assert_eq!(out[0].ts.ns % 10, 3);
    }

    #[test]
    fn joins_a_tty_line_whose_pieces_arrive_in_one_chunk() {
        let mut f = Framer::new(1 << 20);
        let entry = format!(
            "2026-11-22T02:32:11.000000001Z {}2026-11-22T02:32:11.000000002Z {}2026-11-22T02:32:11.000000003Z end\r\n",
            "a".repeat(16384),
            "b".repeat(16384)
        );
        let out = lines(&mut f, &[(Stream::Stdout, entry.as_bytes())]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].text,
            format!("{}{}end", "a".repeat(16384), "b".repeat(16384))
        );
        assert_eq!(out[0].ts.ns % 10, 3);
    }

    #[test]
    fn stdout_and_stderr_pieces_do_not_mix() {
        let mut f = Framer::new(1024);
        let out = lines(
            &mut f,
            &[
                (Stream::Stdout, b"2026-11-22T02:32:11.1Z out-"),
                (Stream::Stderr, b"2026-11-22T02:32:11.2Z err\n"),
                (Stream::Stdout, b"2026-11-22T02:32:11.3Z more\n"),
            ],
        );
        let texts: Vec<_> = out.iter().map(|l| (l.stream, l.text.as_str())).collect();
        assert_eq!(
            texts,
            [(Stream::Stderr, "err"), (Stream::Stdout, "out-more")]
        );
    }

    #[test]
    fn cuts_lines_over_the_maximum_and_marks_them() {
        let mut f = Framer::new(10);
        let out = lines(
            &mut f,
            &[
                (Stream::Stdout, b"2026-11-22T02:32:11.1Z 0123456789abcdef\n"),
                (Stream::Stdout, b"2026-11-22T02:32:11.2Z short\n"),
            ],
        );
        assert_eq!(out[0].text, "0123456789");
        assert!(out[0].truncated);
        assert_eq!(out[1].text, "short");
        assert!(!out[1].truncated);
    }

    #[test]
    fn tty_entries_may_hold_several_lines_with_carriage_returns() {
        let mut f = Framer::new(1024);
        let out = lines(
            &mut f,
            &[(Stream::Stdout, b"2026-11-22T02:32:11.1Z one\r\ntwo\r\n")],
        );
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["one", "two"]);
        // Same timestamp: the sequence tells them apart.
        assert_eq!((out[0].seq, out[1].seq), (0, 2));
    }

    #[test]
    fn a_last_line_without_newline_is_delivered_at_the_end() {
        let mut f = Framer::new(1024);
        let mut out = lines(
            &mut f,
            &[
                (Stream::Stdout, b"2026-11-22T02:32:11.1Z first\n"),
                (Stream::Stdout, b"2026-11-22T02:32:11.2Z no newline"),
            ],
        );
        assert_eq!(out.len(), 1);
        f.finish(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].text, "no newline");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        let mut f = Framer::new(1024);
        let out = lines(
            &mut f,
            &[(
                Stream::Stdout,
                b"2026-11-22T02:32:11.1Z bad \xff\xfe bytes\n",
            )],
        );
        assert_eq!(out[0].text, "bad \u{FFFD}\u{FFFD} bytes");
    }
}

#[cfg(test)]
mod props {
    //! Property tests: lines of any bytes and lengths, cut into entries as the engine cuts
    //! them, come back whole (or cut at the maximum and marked), in order.
    use super::*;
    use proptest::prelude::*;

    /// A line's bytes, without `\n`: a short random pattern, repeated up to past the
    /// engine's 16 KiB pieces.
    fn line() -> impl Strategy<Value = (bool, Vec<u8>)> {
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..48),
            prop_oneof![4 => Just(1usize), 1 => 300usize..900],
        )
            .prop_map(|(stderr, pattern, times)| {
                let bytes = pattern
                    .iter()
                    .map(|&b| if b == b'\n' { b'x' } else { b })
                    .cycle()
                    .take(pattern.len() * times)
                    .collect();
                (stderr, bytes)
            })
    }

    fn expected(bytes: &[u8], max: usize) -> (String, bool) {
        let mut kept = bytes[..bytes.len().min(max)].to_vec();
        if kept.last() == Some(&b'\r') {
            kept.pop();
        }
        (
            String::from_utf8_lossy(&kept).into_owned(),
            bytes.len() > max,
        )
    }

    proptest! {
        #[test]
        fn lines_survive_the_engine_s_pieces(
            lines in proptest::collection::vec(line(), 1..12),
            max in prop_oneof![Just(64usize), Just(20_000), Just(1 << 20)],
        ) {
            let mut framer = Framer::new(max);
            let mut out = Vec::new();
            let mut ns = 1_795_314_731_000_000_000i64;
            for (stderr, bytes) in &lines {
                let stream = if *stderr { Stream::Stderr } else { Stream::Stdout };
                let pieces: Vec<&[u8]> = if bytes.is_empty() {
                    vec![&[]]
                } else {
                    bytes.chunks(ENGINE_PIECE).collect()
                };
                for (i, piece) in pieces.iter().enumerate() {
                    ns += 1;
                    let mut entry = format!("{} ", Timestamp { ns }.to_rfc3339()).into_bytes();
                    entry.extend_from_slice(piece);
                    if i == pieces.len() - 1 {
                        entry.push(b'\n');
                    }
                    framer.push(stream, &entry, &mut out);
                }
            }
            framer.finish(&mut out);
            prop_assert_eq!(out.len(), lines.len());
            for (got, (stderr, bytes)) in out.iter().zip(&lines) {
                let (text, truncated) = expected(bytes, max);
                prop_assert_eq!(&got.text, &text);
                prop_assert_eq!(got.truncated, truncated);
                prop_assert_eq!(got.stream == Stream::Stderr, *stderr);
            }
            for pair in out.windows(2) {
                prop_assert!((pair[0].ts.ns, pair[0].seq) < (pair[1].ts.ns, pair[1].seq));
            }
        }

        #[test]
        fn any_entry_is_taken_without_panic(entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20)) {
            let mut framer = Framer::new(100);
            let mut out = Vec::new();
            for e in &entries {
                framer.push(Stream::Stdout, e, &mut out);
            }
            framer.finish(&mut out);
            for l in &out {
                prop_assert!(l.text.len() <= 100 * 3, "a cut line stays near the bound");
            }
        }
    }
}
