//! Multi-line entries: which lines continue the entry begun by a line before them, as a
//! stack trace continues the error that printed it. Java's `\tat …` and `Caused by:`,
//! Python's `Traceback` block down to its exception line, a Go panic's goroutine dump,
//! Node's `    at …`, and any indented line written just after a line of the same
//! container and stream. Only a line's start decides, never a word in its middle.
//!
//! Lines are grouped as they come, one after another: a line continues only the line just
//! before it in the timeline, from the same container and stream, stamped at most
//! [`MAX_GAP_NS`] later. Lines of another container written in between start entries of
//! their own.

use crate::protocol::Stream;

/// Longest pause between two lines of one entry. Programs print a trace in one go, so its
/// lines are stamped within microseconds; a second is generous, and an indented line
/// written later belongs to something else.
pub const MAX_GAP_NS: i64 = 1_000_000_000;

/// Most lines in one entry: a line after that many begins an entry of its own, so that no
/// runaway indented output becomes one row the user cannot read.
pub const MAX_ENTRY_LINES: u32 = 1_000;

/// What an entry is, as far as its lines have told.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Trace {
    #[default]
    Plain,
    /// After `Traceback (most recent call last):`; `frames` once a `  File` line came, so
    /// the exception's unindented line that ends the block is known.
    Python { frames: bool },
    /// A Go panic or fatal error: its blank lines, goroutine headers and call lines belong.
    Go,
}

/// The line last seen, and what its entry is.
#[derive(Clone, Debug)]
struct Last {
    ts_ns: i64,
    stream: Stream,
    /// The container the line came from (of any service, in a view of several).
    container: u64,
    lines: u32,
    trace: Trace,
}

/// Groups lines as they come (see the module's doc). One per sequence of rows: a row that
/// is not a line (a container's start or exit) ends the entry before it.
#[derive(Clone, Debug, Default)]
pub struct Grouper {
    last: Option<Last>,
}

impl Grouper {
    /// Whether `text` continues the entry of the line before it.
    pub fn next(&mut self, text: &str, ts_ns: i64, stream: Stream, container: u64) -> bool {
        let same_source = self.last.as_ref().is_some_and(|l| {
            l.stream == stream
                && l.container == container
                && ts_ns
                    .checked_sub(l.ts_ns)
                    .is_some_and(|gap| (0..=MAX_GAP_NS).contains(&gap))
                && l.lines < MAX_ENTRY_LINES
        });
        let continued = match self.last.as_mut() {
            Some(last) if same_source => continues(&mut last.trace, text),
            _ => false,
        };
        match self.last.as_mut() {
            Some(last) if continued => {
                last.ts_ns = ts_ns;
                last.lines += 1;
            }
            _ => self.begin(text, ts_ns, stream, container),
        }
        continued
    }

    /// `text` begins an entry whatever it looks like: a line that states its own level, or
    /// a JSON object, is an event of its own, never a frame of the one before.
    pub fn begin(&mut self, text: &str, ts_ns: i64, stream: Stream, container: u64) {
        self.last = Some(Last {
            ts_ns,
            stream,
            container,
            lines: 1,
            trace: begins(text),
        });
    }

    /// Something that is not a line came between: the next line begins an entry.
    pub fn end(&mut self) {
        self.last = None;
    }
}

/// The kind of entry a first line begins.
fn begins(text: &str) -> Trace {
    if text.starts_with("panic: ") || text.starts_with("fatal error: ") {
        Trace::Go
    } else if is_traceback(text) {
        Trace::Python { frames: false }
    } else {
        Trace::Plain
    }
}

fn is_traceback(text: &str) -> bool {
    text.starts_with("Traceback (most recent call last):")
}

/// Whether `text` continues an entry of kind `trace`, and what the entry is after it.
fn continues(trace: &mut Trace, text: &str) -> bool {
    let indented = text.starts_with([' ', '\t']) && !text.trim().is_empty();
    if indented {
        if let Trace::Python { frames } = trace {
            *frames = true;
        }
        return true;
    }
    if is_traceback(text) {
        *trace = Trace::Python { frames: false };
        return true;
    }
    const ALWAYS: [&str; 4] = [
        "Caused by: ",
        "Suppressed: ",
        "During handling of the above exception",
        "The above exception was the direct cause",
    ];
    if ALWAYS.iter().any(|p| text.starts_with(p)) || is_java_exception(text) {
        return true;
    }
    match *trace {
        // The exception's own line ends the block: `ZeroDivisionError: division by zero`.
        Trace::Python { frames: true } if is_python_exception(text) => {
            *trace = Trace::Plain;
            true
        }
        Trace::Go => {
            text.is_empty()
                || text.starts_with("goroutine ")
                || text.starts_with("[signal ")
                || text.starts_with("created by ")
                || text.starts_with("exit status ")
                || is_go_call(text)
        }
        _ => false,
    }
}

/// A Java exception's first line, as a logger prints it under its message:
/// `java.lang.IllegalStateException: …`, a package-qualified class named for what it is.
fn is_java_exception(text: &str) -> bool {
    let name = text.split([':', ' ']).next().unwrap_or_default();
    let Some((package, class)) = name.rsplit_once('.') else {
        return false;
    };
    let java_ident = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && s.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    };
    package.split('.').all(java_ident)
        && java_ident(class)
        && class.starts_with(char::is_uppercase)
        && ["Exception", "Error", "Throwable"]
            .iter()
            .any(|k| class.ends_with(k))
        && text[name.len()..].chars().next().is_none_or(|c| c == ':')
}

/// A Python exception line: a dotted name followed by `: ` and its message, or alone when
/// it is named for an exception (`KeyboardInterrupt`, `StopIteration`), not any one word.
fn is_python_exception(text: &str) -> bool {
    let name = text.split(':').next().unwrap_or_default();
    let named = [
        "Error",
        "Exception",
        "Exit",
        "Interrupt",
        "Iteration",
        "Warning",
    ]
    .iter()
    .any(|k| name.ends_with(k));
    !name.is_empty()
        && name.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        && (text[name.len()..].starts_with(": ") || (text.len() == name.len() && named))
}

/// A Go call line in a goroutine dump: `main.main()`, `main.(*T).run(...)`.
fn is_go_call(text: &str) -> bool {
    text.ends_with(')') && text.contains('(') && !text.contains(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each line of `log` and whether it continues an entry: lines marked `+ ` do.
    fn check(log: &str) {
        let mut g = Grouper::default();
        for (i, raw) in log.lines().enumerate() {
            let (want, text) = match raw.strip_prefix("+ ") {
                Some(rest) => (true, rest),
                None => (false, raw.strip_prefix("  ").unwrap_or(raw)),
            };
            let text = text.replace("\\t", "\t");
            assert_eq!(
                g.next(&text, i as i64 * 1_000, Stream::Stderr, 1),
                want,
                "line {}: {text:?}",
                i + 1
            );
        }
    }

    #[test]
    fn a_java_stack_trace_with_its_cause_is_one_entry() {
        check(
            "  2026-12-03 18:00:00.123 ERROR 1 --- [nio-8080-exec-1] c.e.shop.OrderController : request failed
+ java.lang.IllegalStateException: order 4 has no items
+ \\tat com.example.shop.OrderService.place(OrderService.java:88)
+ \\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
+ Caused by: java.sql.SQLException: connection closed
+ \\tat org.postgresql.jdbc.PgConnection.checkClosed(PgConnection.java:917)
+ \\t... 12 more
  2026-12-03 18:00:01.000 INFO 1 --- [main] c.e.shop.App : next request",
        );
    }

    #[test]
    fn a_python_traceback_ends_at_its_exception_line() {
        check(
            "  ERROR:app:unhandled error in job 5
+ Traceback (most recent call last):
+   File \"/app/main.py\", line 12, in handle
+     total = price / count
+ ZeroDivisionError: division by zero
  INFO:app:job 6 started",
        );
        // A chained traceback stays one entry.
        check(
            "  Traceback (most recent call last):
+   File \"/app/a.py\", line 3, in <module>
+ KeyError: 'id'
+ During handling of the above exception, another exception occurred:
+ Traceback (most recent call last):
+   File \"/app/a.py\", line 5, in <module>
+ RuntimeError: lookup failed
  next line",
        );
    }

    #[test]
    fn a_lone_word_after_a_traceback_s_frames_is_no_exception_line() {
        check(
            "  Traceback (most recent call last):
+   File \"/app/a.py\", line 3, in <module>
  Done",
        );
        check(
            "  Traceback (most recent call last):
+   File \"/app/a.py\", line 3, in <module>
+ KeyboardInterrupt",
        );
    }

    #[test]
    fn a_go_panic_and_its_goroutine_dump_are_one_entry() {
        check(
            "  panic: runtime error: index out of range [5] with length 3
+ 
+ goroutine 1 [running]:
+ main.lookup(...)
+ \\t/src/main.go:14
+ main.main()
+ \\t/src/main.go:9 +0x1d
+ exit status 2
  server started",
        );
    }

    #[test]
    fn a_node_error_and_its_frames_are_one_entry() {
        check(
            "  TypeError: Cannot read properties of undefined (reading 'id')
+     at handler (/app/server.js:21:17)
+     at process.processTicksAndRejections (node:internal/process/task_queues:95:13)
  listening on 3000",
        );
    }

    #[test]
    fn ordinary_lines_begin_entries_of_their_own() {
        check(
            "  GET /health 200
  
  main.main()
  ZeroDivisionError: not after a traceback
  java.lang.String is a class
  com.example.Service: started
  {\"level\":\"info\",\"msg\":\"   padded\"}
  level=warn msg=\"  spaced\"",
        );
    }

    #[test]
    fn an_indented_line_continues_only_a_line_of_its_own_replica_and_stream_just_before() {
        let mut g = Grouper::default();
        assert!(!g.next("start", 0, Stream::Stdout, 1));
        // Another replica, another stream, or too long after: an entry of its own.
        assert!(!g.next("  other replica", 1, Stream::Stdout, 2));
        assert!(!g.next("  other stream", 2, Stream::Stderr, 2));
        assert!(!g.next("  much later", 2 + MAX_GAP_NS + 1, Stream::Stderr, 2));
        assert!(g.next("  soon after", 3 + MAX_GAP_NS, Stream::Stderr, 2));
        // A line stamped before the one it follows is not its continuation, nor one stamped
        // so far from it that the gap overflows.
        assert!(!g.next("  stamped earlier", 0, Stream::Stderr, 2));
        assert!(!g.next("  at the end of time", i64::MAX, Stream::Stderr, 2));
        assert!(!g.next("  at its start", i64::MIN, Stream::Stderr, 2));
        // Something that is not a line came between.
        g.end();
        assert!(!g.next("  after a restart", 4 + MAX_GAP_NS, Stream::Stderr, 2));
    }

    #[test]
    fn an_entry_holds_at_most_its_bound_of_lines() {
        let mut g = Grouper::default();
        assert!(!g.next("head", 0, Stream::Stdout, 1));
        for i in 1..MAX_ENTRY_LINES {
            assert!(
                g.next("  more", i64::from(i), Stream::Stdout, 1),
                "line {i}"
            );
        }
        assert!(!g.next("  one too many", 1_000_000, Stream::Stdout, 1));
        assert!(g.next("  a new entry's", 1_000_001, Stream::Stdout, 1));
    }
}
