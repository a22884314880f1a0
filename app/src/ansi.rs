//! ANSI escape sequences in log text, turned into styled segments of plain text.
//!
//! Only SGR (colours, bold, italic, underline) is kept, as styles; every other sequence
//! (cursor movement, OSC 8 hyperlinks, window titles) is removed and its visible text kept,
//! so nothing in a log line can open a link or change the page.

use std::ops::Range;

/// A colour as the terminal named it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    /// One of the 16 standard colours (0..=15).
    Named(u8),
    /// One of the 256-colour palette entries above 15.
    Indexed(u8),
    Rgb(u8, u8, u8),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub fg: Option<Color>,
    pub bg: Option<Color>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
}

impl Style {
    pub fn is_plain(&self) -> bool {
        *self == Style::default()
    }

    /// CSS for this style. Built only from numbers, never from log text.
    pub fn css(&self) -> String {
        let mut css = String::new();
        if let Some(c) = self.fg {
            css.push_str(&format!("color:{};", c.css()));
        }
        if let Some(c) = self.bg {
            css.push_str(&format!("background-color:{};", c.css()));
        }
        if self.bold {
            css.push_str("font-weight:bold;");
        }
        if self.dim {
            css.push_str("opacity:.7;");
        }
        if self.italic {
            css.push_str("font-style:italic;");
        }
        if self.underline {
            css.push_str("text-decoration:underline;");
        }
        css
    }
}

impl Color {
    pub fn css(&self) -> String {
        match *self {
            Color::Named(n) => format!("var(--ansi-{n})"),
            Color::Indexed(n) => {
                let (r, g, b) = palette_256(n);
                format!("rgb({r},{g},{b})")
            }
            Color::Rgb(r, g, b) => format!("rgb({r},{g},{b})"),
        }
    }
}

fn palette_256(n: u8) -> (u8, u8, u8) {
    match n {
        16..=231 => {
            let i = n - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        232..=255 => {
            let v = 8 + (n - 232) * 10;
            (v, v, v)
        }
        // The 16 named colours are themed in CSS; this is only a fallback.
        _ => (128, 128, 128),
    }
}

/// Log text without its escape sequences, and the styles of its parts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Styled {
    pub plain: String,
    /// Byte ranges of `plain` with a style other than the default, in order.
    pub spans: Vec<(Range<usize>, Style)>,
}

/// Parses a line. Text without ESC comes back as it is, at the cost of one scan.
pub fn parse(text: &str) -> Styled {
    if !text.contains('\x1b') {
        return Styled {
            plain: text.to_owned(),
            spans: Vec::new(),
        };
    }
    let mut out = Styled::default();
    let mut style = Style::default();
    let mut span_start = 0;
    scan(text, |piece| match piece {
        Piece::Text(range) => out.plain.push_str(&text[range]),
        Piece::Sgr(params) => {
            let next = apply_sgr(style, params);
            if next != style {
                if !style.is_plain() && out.plain.len() > span_start {
                    out.spans.push((span_start..out.plain.len(), style));
                }
                span_start = out.plain.len();
                style = next;
            }
        }
    });
    if !style.is_plain() && out.plain.len() > span_start {
        out.spans.push((span_start..out.plain.len(), style));
    }
    out
}

/// The byte ranges of `text` that are shown, in order: what `parse` keeps as `plain`. The
/// server matches secrets in what a viewer sees, so it must strip exactly what the viewer
/// strips, and still know where each shown byte sits in the text as written.
pub fn visible(text: &str) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    scan(text, |piece| {
        if let Piece::Text(range) = piece {
            runs.push(range);
        }
    });
    runs
}

enum Piece<'a> {
    /// Bytes of the text that are shown as they are.
    Text(Range<usize>),
    /// The parameters of an SGR sequence (`ESC [ params m`).
    Sgr(&'a str),
}

fn scan<'a>(text: &'a str, mut each: impl FnMut(Piece<'a>)) {
    let bytes = text.as_bytes();
    let mut chars = text.char_indices().peekable();
    let mut run = 0;
    while let Some((i, c)) = chars.next() {
        if c != '\x1b' {
            continue;
        }
        if run < i {
            each(Piece::Text(run..i));
        }
        match bytes.get(i + 1) {
            // CSI: ESC [ params final-byte
            Some(b'[') => {
                chars.next();
                let params = i + 2;
                let fin = chars.by_ref().find(|(_, c)| ('\x40'..='\x7e').contains(c));
                if let Some((at, 'm')) = fin {
                    each(Piece::Sgr(&text[params..at]));
                }
            }
            // OSC: ESC ] ... (BEL | ESC \). Hyperlinks and titles: dropped, text kept.
            Some(b']') => {
                chars.next();
                while let Some((_, c)) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' {
                        if chars.peek().map(|(_, c)| *c) == Some('\\') {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            // Character set designation: ESC ( B and the like.
            Some(b'(' | b')' | b'*' | b'+') => {
                chars.next();
                chars.next();
            }
            // Any other escape: drop ESC and the one character that follows.
            Some(_) => {
                chars.next();
            }
            None => {}
        }
        run = chars.peek().map_or(text.len(), |(at, _)| *at);
    }
    if run < text.len() {
        each(Piece::Text(run..text.len()));
    }
}

fn apply_sgr(mut style: Style, params: &str) -> Style {
    let mut nums = params.split(';').map(|p| {
        if p.is_empty() {
            Some(0)
        } else {
            p.parse::<u16>().ok()
        }
    });
    while let Some(n) = nums.next() {
        let Some(n) = n else { continue };
        match n {
            0 => style = Style::default(),
            1 => style.bold = true,
            2 => style.dim = true,
            3 => style.italic = true,
            4 => style.underline = true,
            22 => {
                style.bold = false;
                style.dim = false;
            }
            23 => style.italic = false,
            24 => style.underline = false,
            30..=37 => style.fg = Some(Color::Named((n - 30) as u8)),
            39 => style.fg = None,
            40..=47 => style.bg = Some(Color::Named((n - 40) as u8)),
            49 => style.bg = None,
            90..=97 => style.fg = Some(Color::Named((n - 90 + 8) as u8)),
            100..=107 => style.bg = Some(Color::Named((n - 100 + 8) as u8)),
            38 | 48 => {
                let color = match nums.next().flatten() {
                    Some(5) => nums.next().flatten().map(|i| {
                        let i = i.min(255) as u8;
                        if i < 16 {
                            Color::Named(i)
                        } else {
                            Color::Indexed(i)
                        }
                    }),
                    Some(2) => {
                        let mut c = || nums.next().flatten().map(|v| v.min(255) as u8);
                        match (c(), c(), c()) {
                            (Some(r), Some(g), Some(b)) => Some(Color::Rgb(r, g, b)),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                if n == 38 {
                    style.fg = color;
                } else {
                    style.bg = color;
                }
            }
            _ => {}
        }
    }
    style
}

/// `plain` cut into runs of one style and one marking: `spans` are styled ranges and
/// `marks` marked ones, each in order and not overlapping. One walk over each, so a line of
/// tens of thousands of spans (a hostile JSON line, say) costs no more than its length.
pub fn runs(
    plain: &str,
    spans: &[(Range<usize>, Style)],
    marks: &[Range<usize>],
) -> Vec<(Range<usize>, Style, bool)> {
    let mut cuts: Vec<usize> = vec![0, plain.len()];
    cuts.extend(spans.iter().flat_map(|(r, _)| [r.start, r.end]));
    cuts.extend(marks.iter().flat_map(|r| [r.start, r.end]));
    cuts.sort_unstable();
    cuts.dedup();
    cuts.retain(|&c| c <= plain.len() && plain.is_char_boundary(c));
    let (mut s, mut m) = (0, 0);
    cuts.windows(2)
        .filter(|w| w[0] < w[1])
        .map(|w| {
            let at = w[0];
            while spans.get(s).is_some_and(|(r, _)| r.end <= at) {
                s += 1;
            }
            while marks.get(m).is_some_and(|r| r.end <= at) {
                m += 1;
            }
            let style = spans
                .get(s)
                .filter(|(r, _)| r.start <= at)
                .map(|(_, st)| *st)
                .unwrap_or_default();
            let marked = marks.get(m).is_some_and(|r| r.start <= at);
            (w[0]..w[1], style, marked)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cut_at_every_change_of_style_or_marking() {
        let bold = Style {
            bold: true,
            ..Style::default()
        };
        let plain = "abcdefgh";
        let got = runs(plain, &[(2..5, bold)], &[(1..3), (6..7)]);
        let want = vec![
            (0..1, Style::default(), false),
            (1..2, Style::default(), true),
            (2..3, bold, true),
            (3..5, bold, false),
            (5..6, Style::default(), false),
            (6..7, Style::default(), true),
            (7..8, Style::default(), false),
        ];
        assert_eq!(got, want);
        // Many spans: one walk, the whole text covered once.
        let many: Vec<_> = (0..20_000).map(|i| (2 * i..2 * i + 1, bold)).collect();
        let long = "x".repeat(40_000);
        let got = runs(&long, &many, &[]);
        assert_eq!(got.len(), 40_000);
        assert_eq!(got.iter().map(|(r, _, _)| r.len()).sum::<usize>(), 40_000);
    }

    #[test]
    fn text_without_escapes_is_unchanged() {
        let s = parse("plain <b>text</b>");
        assert_eq!(s.plain, "plain <b>text</b>");
        assert!(s.spans.is_empty());
    }

    #[test]
    fn sgr_colours_become_spans() {
        let s = parse("\x1b[32mtty\x1b[0m line 1 \x1b[1;31mred\x1b[0m");
        assert_eq!(s.plain, "tty line 1 red");
        assert_eq!(s.spans.len(), 2);
        assert_eq!(s.spans[0].0, 0..3);
        assert_eq!(s.spans[0].1.fg, Some(Color::Named(2)));
        assert_eq!(s.spans[1].0, 11..14);
        assert!(s.spans[1].1.bold);
        assert_eq!(s.spans[1].1.fg, Some(Color::Named(1)));
    }

    #[test]
    fn extended_colours() {
        let s = parse("\x1b[38;5;196mx\x1b[38;2;1;2;3my\x1b[m");
        assert_eq!(s.plain, "xy");
        assert_eq!(s.spans[0].1.fg, Some(Color::Indexed(196)));
        assert_eq!(s.spans[1].1.fg, Some(Color::Rgb(1, 2, 3)));
        assert_eq!(s.spans[1].1.css(), "color:rgb(1,2,3);");
    }

    #[test]
    fn osc8_hyperlinks_keep_only_their_text() {
        let s = parse("see \x1b]8;;javascript:alert(1)\x1b\\click\x1b]8;;\x1b\\ here");
        assert_eq!(s.plain, "see click here");
        let s = parse("title\x1b]0;evil\x07 done");
        assert_eq!(s.plain, "title done");
    }

    #[test]
    fn other_sequences_are_removed() {
        let s = parse("a\x1b[2Kb\x1b[10;20Hc\x1b(Bd");
        assert_eq!(s.plain, "abcd");
    }

    #[test]
    fn visible_ranges_point_into_the_text_as_written() {
        let text = "\x1b[36mpassword\x1b[0m=x \x1b]0;t\x07é";
        let runs = visible(text);
        assert_eq!(runs, [5..13, 17..20, 26..28]);
        let shown: String = runs.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(shown, parse(text).plain);
        assert_eq!(visible("plain").len(), 1);
        assert_eq!(visible("plain")[0], 0..5);
        assert!(visible("").is_empty());
    }

    #[test]
    fn truncated_sequences_do_not_panic() {
        for t in ["\x1b", "\x1b[", "\x1b[38;5", "\x1b]8;;x", "é\x1b[3"] {
            let _ = parse(t);
        }
    }
}

#[cfg(test)]
mod props {
    //! Property tests: any text parses; what is left has no escape, and its styles cover
    //! whole characters of it.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_parses_to_text_without_escapes(text in "(\\PC|\x1b|\x07|\\[|\\]|;|[0-9]|m){0,200}") {
            let s = parse(&text);
            prop_assert!(!s.plain.contains('\x1b'));
            let mut end = 0;
            for (range, _) in &s.spans {
                prop_assert!(range.start >= end && range.start < range.end && range.end <= s.plain.len());
                prop_assert!(s.plain.is_char_boundary(range.start) && s.plain.is_char_boundary(range.end));
                end = range.end;
            }
            // What is kept is the input's own characters, in order.
            let mut rest = text.chars();
            for c in s.plain.chars() {
                prop_assert!(rest.any(|r| r == c), "{:?} is not from {:?}", c, text);
            }
        }

        #[test]
        fn visible_ranges_are_the_plain_text(text in "(\\PC|\x1b|\x07|\\[|\\]|;|[0-9]|m|\\(){0,200}") {
            let runs = visible(&text);
            let mut end = 0;
            for r in &runs {
                prop_assert!(r.start >= end && r.start < r.end && r.end <= text.len());
                end = r.end;
            }
            let shown: String = runs.iter().map(|r| &text[r.clone()]).collect();
            prop_assert_eq!(shown, parse(&text).plain);
        }

        #[test]
        fn coloured_text_keeps_its_words(words in "[^\x1b]{0,60}", colour in 30u8..38) {
            let s = parse(&format!("\x1b[{colour}m{words}\x1b[0m"));
            prop_assert_eq!(&s.plain, &words);
        }
    }
}
