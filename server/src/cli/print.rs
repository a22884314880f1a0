//! How `lookout logs` prints: `service-N  | ` prefixes coloured as `docker compose logs`
//! colours them, timestamps, JSON for scripts, and the log text made safe for a terminal.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};

use app::ansi::{self, Color, Style};
use app::filter::Filter;
use app::protocol::{LogLine, ServiceKey};
use serde::Serialize;

/// What a line looks like on the way out.
#[derive(Clone, Copy, Debug)]
pub struct Look {
    pub prefix: bool,
    pub timestamps: bool,
    pub json: bool,
    /// Output goes to a terminal: escape sequences of the log text other than colours
    /// never reach it, since a line could move the cursor, retitle the window or hide text.
    pub terminal: bool,
    /// Prefixes and the log text's own colours in colour (only on a terminal).
    pub color: bool,
}

impl Look {
    /// For this process's stdout: colour only on a terminal, unless `--no-color` or
    /// `NO_COLOR` says otherwise.
    pub fn stdout(prefix: bool, timestamps: bool, json: bool, no_color: bool) -> Look {
        let terminal = std::io::stdout().is_terminal();
        Look {
            prefix,
            timestamps,
            json,
            terminal,
            color: terminal && !no_color && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// The prefix colours, in the order `docker compose logs` hands them out.
const PALETTE: [u8; 10] = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

pub struct Printer<W: Write> {
    out: W,
    look: Look,
    keep: Filter,
    /// Prefixes name the project too when the services shown are of several.
    with_project: bool,
    width: usize,
    colors: HashMap<String, u8>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    engine: &'a str,
    project: &'a str,
    service: &'a str,
    #[serde(flatten)]
    line: &'a LogLine,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, look: Look, keep: Filter, services: &[ServiceKey]) -> Printer<W> {
        let with_project = services.iter().any(|s| s.project != services[0].project);
        Printer {
            out,
            look,
            keep,
            with_project,
            width: 0,
            colors: HashMap::new(),
        }
    }

    /// Makes room for a replica's prefix, so that every `|` lines up from the start.
    pub fn expect(&mut self, key: &ServiceKey, replica: u32) {
        let name = self.name(key, replica);
        self.width = self.width.max(name.chars().count());
    }

    /// Prints `line` if the filters keep it.
    pub fn line(&mut self, key: &ServiceKey, line: &LogLine) -> io::Result<()> {
        let plain = ansi::parse(&line.text);
        if !self
            .keep
            .matches(&plain.plain, line.stream, line.replica.number, line.level)
        {
            return Ok(());
        }
        if self.look.json {
            let json = JsonLine {
                engine: &key.engine,
                project: &key.project,
                service: &key.service,
                line,
            };
            serde_json::to_writer(&mut self.out, &json)?;
            return self.out.write_all(b"\n");
        }
        if self.look.prefix {
            self.prefix(key, line.replica.number)?;
        }
        if self.look.timestamps {
            write!(self.out, "{} ", printable(&line.ts))?;
        }
        if !self.look.terminal {
            self.out.write_all(line.text.as_bytes())?;
        } else if self.look.color {
            write_styled(&mut self.out, &plain)?;
        } else {
            self.out.write_all(printable(&plain.plain).as_bytes())?;
        }
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// A replica's prefix. Project and service names come from containers' labels, which
    /// whoever starts a container writes: no control character of theirs reaches the output.
    fn name(&self, key: &ServiceKey, replica: u32) -> String {
        let name = if self.with_project {
            format!("{key}-{replica}")
        } else {
            format!("{}-{replica}", key.service)
        };
        printable(&name)
    }

    fn prefix(&mut self, key: &ServiceKey, replica: u32) -> io::Result<()> {
        let name = self.name(key, replica);
        self.width = self.width.max(name.chars().count());
        let width = self.width;
        if !self.look.color {
            return write!(self.out, "{name:<width$} | ");
        }
        let next = PALETTE[self.colors.len() % PALETTE.len()];
        let color = *self.colors.entry(name.clone()).or_insert(next);
        write!(self.out, "\x1b[{color}m{name:<width$} |\x1b[0m ")
    }
}

/// The text without control characters (tabs kept): what a server or a container's labels
/// say never moves a terminal's cursor or retitles its window.
pub fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect()
}

/// The text with its own colours re-written as plain SGR, and nothing else of its escapes.
fn write_styled(out: &mut impl Write, styled: &ansi::Styled) -> io::Result<()> {
    let mut at = 0;
    for (range, style) in &styled.spans {
        out.write_all(printable(&styled.plain[at..range.start]).as_bytes())?;
        write!(out, "\x1b[{}m", sgr(style))?;
        out.write_all(printable(&styled.plain[range.clone()]).as_bytes())?;
        out.write_all(b"\x1b[0m")?;
        at = range.end;
    }
    out.write_all(printable(&styled.plain[at..]).as_bytes())
}

fn sgr(style: &Style) -> String {
    let mut codes: Vec<String> = Vec::new();
    for (on, code) in [
        (style.bold, 1),
        (style.dim, 2),
        (style.italic, 3),
        (style.underline, 4),
    ] {
        if on {
            codes.push(code.to_string());
        }
    }
    for (color, base) in [(style.fg, 30), (style.bg, 40)] {
        match color {
            Some(Color::Named(n)) if n < 8 => codes.push((base + u32::from(n)).to_string()),
            Some(Color::Named(n)) => codes.push((base + 60 + u32::from(n - 8)).to_string()),
            Some(Color::Indexed(n)) => codes.push(format!("{};5;{n}", base + 8)),
            Some(Color::Rgb(r, g, b)) => codes.push(format!("{};2;{r};{g};{b}", base + 8)),
            None => {}
        }
    }
    codes.join(";")
}

#[cfg(test)]
mod tests {
    use app::filter::FilterSpec;
    use app::protocol::{Cursor, Level, Replica, Stream};

    use super::*;

    fn line(replica: u32, text: &str) -> LogLine {
        LogLine {
            cursor: Cursor {
                ts_ns: 1,
                seq: 0,
                container: "abc".into(),
            },
            ts: "2026-12-04T10:00:00.000000001Z".into(),
            stream: Stream::Stdout,
            replica: Replica {
                number: replica,
                name: format!("shop-web-{replica}"),
            },
            text: text.into(),
            truncated: false,
            level: text.contains("WARN").then_some(Level::Warn),
        }
    }

    fn key(project: &str, service: &str) -> ServiceKey {
        ServiceKey::local(project, service)
    }

    fn plain() -> Look {
        Look {
            prefix: true,
            timestamps: false,
            json: false,
            terminal: false,
            color: false,
        }
    }

    fn print(look: Look, keep: Filter, lines: &[(ServiceKey, LogLine)]) -> String {
        let keys: Vec<ServiceKey> = lines.iter().map(|(k, _)| k.clone()).collect();
        let mut p = Printer::new(Vec::new(), look, keep, &keys);
        for (k, l) in lines {
            p.expect(k, l.replica.number);
        }
        for (k, l) in lines {
            p.line(k, l).unwrap();
        }
        String::from_utf8(p.out).unwrap()
    }

    #[test]
    fn prefixes_line_up_as_docker_compose_prints_them() {
        let web = key("shop", "web");
        let db = key("shop", "database");
        let out = print(
            plain(),
            Filter::default(),
            &[(web.clone(), line(1, "a")), (db, line(12, "b"))],
        );
        assert_eq!(out, "web-1       | a\ndatabase-12 | b\n");
        let t = Look {
            timestamps: true,
            prefix: false,
            ..plain()
        };
        let out = print(t, Filter::default(), &[(web, line(1, "a"))]);
        assert_eq!(out, "2026-12-04T10:00:00.000000001Z a\n");
    }

    #[test]
    fn services_of_several_projects_are_named_with_their_project() {
        let out = print(
            plain(),
            Filter::default(),
            &[
                (key("shop", "web"), line(1, "a")),
                (key("blog", "web"), line(1, "b")),
            ],
        );
        assert_eq!(out, "shop/web-1 | a\nblog/web-1 | b\n");
        let out = print(
            plain(),
            Filter::default(),
            &[(key("shop", "w\x1b]0;owned\x07eb"), line(1, "a"))],
        );
        assert_eq!(
            out, "w]0;ownedeb-1 | a\n",
            "a label's escapes are not printed"
        );
    }

    #[test]
    fn a_terminal_gets_the_colours_of_a_line_and_none_of_its_other_escapes() {
        let hostile = "\x1b]0;owned\x07\x1b[31mred\x1b[0m \x1b[2Jplain\rtail";
        let on_terminal = Look {
            terminal: true,
            color: true,
            prefix: false,
            ..plain()
        };
        let out = print(
            on_terminal,
            Filter::default(),
            &[(key("s", "w"), line(1, hostile))],
        );
        assert_eq!(out, "\x1b[31mred\x1b[0m plaintail\n");
        let no_color = Look {
            color: false,
            ..on_terminal
        };
        let out = print(
            no_color,
            Filter::default(),
            &[(key("s", "w"), line(1, hostile))],
        );
        assert_eq!(out, "red plaintail\n");
        // A pipe gets the text as it was written, as `docker compose logs` passes it on.
        let piped = Look {
            prefix: false,
            ..plain()
        };
        let out = print(
            piped,
            Filter::default(),
            &[(key("s", "w"), line(1, hostile))],
        );
        assert_eq!(out, format!("{hostile}\n"));
    }

    #[test]
    fn the_filters_choose_the_lines_and_json_carries_the_service() {
        let spec = FilterSpec {
            text: "disk".into(),
            levels: Some("warn".parse().unwrap()),
            ..FilterSpec::default()
        };
        let keep = Filter::compile(&spec).unwrap();
        let k = key("shop", "web");
        let json = Look {
            json: true,
            ..plain()
        };
        let out = print(
            json,
            keep,
            &[
                (k.clone(), line(1, "WARN disk full")),
                (k.clone(), line(1, "INFO disk fine")),
                (k, line(1, "WARN cpu hot")),
            ],
        );
        let rows: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 1, "{out}");
        assert_eq!(rows[0]["service"], "web");
        assert_eq!(rows[0]["project"], "shop");
        assert_eq!(rows[0]["text"], "WARN disk full");
        assert_eq!(rows[0]["level"], "warn");
        assert_eq!(rows[0]["cursor"], "1-0-abc");
    }
}
