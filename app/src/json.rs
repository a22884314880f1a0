//! JSON lines made readable: an object's message first, then its other fields as
//! `key=value`; and the whole object pretty-printed, coloured by kind, for the details
//! view. Values are shown as written (a huge number stays as typed, never rounded through a
//! float), and all of it is text that the view puts in text nodes.

use std::fmt;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::ansi::{Color, Style, Styled};

/// The keys a message goes under, compared in any case: most libraries' `msg` or
/// `message`, Serilog's `@m` and `@mt`, GELF's `short_message`, structlog's `event`.
const MESSAGE_KEYS: [&str; 6] = ["msg", "message", "@m", "@mt", "short_message", "event"];

/// Objects with more fields are shown as written: a row of thousands of coloured fields
/// would cost the page more than it helps anyone read.
pub const MAX_FIELDS: usize = 256;

const KEY: Style = colour(4);
const STRING: Style = colour(2);
const NUMBER: Style = colour(5);
const KEYWORD: Style = colour(6);

const fn colour(n: u8) -> Style {
    Style {
        fg: Some(Color::Named(n)),
        bg: None,
        bold: false,
        dim: false,
        italic: false,
        underline: false,
    }
}

/// An object's fields in the order written, each value as its source text.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'de>, M::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(Object)
    }
}

/// The elements of an array, each as its source text.
struct Elements<'a>(Vec<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Elements<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Array;
        impl<'de> Visitor<'de> for Array {
            type Value = Elements<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON array")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Elements<'de>, S::Error> {
                let mut all = Vec::new();
                while let Some(e) = seq.next_element::<&'de RawValue>()? {
                    all.push(e);
                }
                Ok(Elements(all))
            }
        }
        d.deserialize_seq(Array)
    }
}

/// The fields of `text` if it is one JSON object and nothing else. serde_json refuses
/// nesting deeper than 128, so what is read here is shallow enough to print by recursion.
fn object(text: &str) -> Option<Fields<'_>> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Text with its styled runs, built from left to right.
#[derive(Default)]
struct Builder(Styled);

impl Builder {
    fn push(&mut self, text: &str, style: Style) {
        let start = self.0.plain.len();
        self.0.plain.push_str(text);
        if style != Style::default() && !text.is_empty() {
            self.0.spans.push((start..self.0.plain.len(), style));
        }
    }
}

/// A value as one row shows it: a string without its quotes when that reads the same, any
/// other value as written.
fn shown(raw: &RawValue, bare_words: bool) -> String {
    let source = raw.get();
    if source.starts_with('"') {
        if let Ok(s) = serde_json::from_str::<String>(source) {
            let plain = !s.is_empty() && !s.chars().any(char::is_control);
            if plain && (bare_words || !s.contains(' ')) {
                return s;
            }
        }
    }
    source.to_owned()
}

/// A key as a row shows it: escaped, if it holds a line break or another control.
fn key_shown(key: &str) -> String {
    if key.is_empty() || key.chars().any(|c| c.is_control() || c == ' ' || c == '=') {
        serde_json::to_string(key).expect("a string serialises")
    } else {
        key.to_owned()
    }
}

/// One row for a JSON object line: its message, then `key=value` for every other field.
/// `None` when the line is not a JSON object.
pub fn readable(text: &str) -> Option<Styled> {
    readable_with_fields(text).map(|(row, _)| row)
}

/// Where each `key=value` of [`readable`]'s row is in its text, message aside: the chips a
/// user clicks to filter by. Read again when a row is drawn, not kept with every line.
pub fn field_chips(text: &str) -> Vec<Range<usize>> {
    readable_with_fields(text).map_or_else(Vec::new, |(_, chips)| chips)
}

/// Whether a JSON object line shows the chip `chip` (`key=value`, as its row shows it).
pub fn has_chip(text: &str, chip: &str) -> bool {
    readable_with_fields(text)
        .is_some_and(|(row, chips)| chips.into_iter().any(|r| &row.plain[r] == chip))
}

fn readable_with_fields(text: &str) -> Option<(Styled, Vec<Range<usize>>)> {
    let Fields(fields) = object(text)?;
    if fields.len() > MAX_FIELDS {
        return None;
    }
    let message = fields
        .iter()
        .position(|(k, v)| MESSAGE_KEYS.iter().any(|m| m.eq_ignore_ascii_case(k)) && is_text(v));
    let mut out = Builder::default();
    let mut chips = Vec::with_capacity(fields.len());
    if let Some(i) = message {
        out.push(&shown(fields[i].1, true), Style::default());
    }
    for (i, (key, value)) in fields.iter().enumerate() {
        if Some(i) == message {
            continue;
        }
        if !out.0.plain.is_empty() {
            out.push("  ", Style::default());
        }
        let start = out.0.plain.len();
        out.push(&key_shown(key), KEY);
        out.push("=", Style::default());
        out.push(&shown(value, false), Style::default());
        chips.push(start..out.0.plain.len());
    }
    Some((out.0, chips))
}

fn is_text(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}

/// The whole object, indented two spaces a level, coloured by kind: keys, strings,
/// numbers, and `true`, `false` and `null`. `None` when the line is not a JSON object.
pub fn pretty(text: &str) -> Option<Styled> {
    object(text)?;
    let mut out = Builder::default();
    let raw: &RawValue = serde_json::from_str(text.trim()).ok()?;
    value(raw, 0, &mut out);
    Some(out.0)
}

fn value(raw: &RawValue, depth: usize, out: &mut Builder) {
    let source = raw.get().trim();
    let indent = |out: &mut Builder, depth: usize| out.push(&"  ".repeat(depth), Style::default());
    match source.as_bytes().first() {
        Some(b'{') => {
            let Ok(Fields(fields)) = serde_json::from_str::<Fields>(source) else {
                return out.push(source, Style::default());
            };
            if fields.is_empty() {
                return out.push("{}", Style::default());
            }
            out.push("{\n", Style::default());
            for (i, (key, v)) in fields.iter().enumerate() {
                indent(out, depth + 1);
                out.push(
                    &serde_json::to_string(key).expect("a string serialises"),
                    KEY,
                );
                out.push(": ", Style::default());
                value(v, depth + 1, out);
                out.push(
                    if i + 1 < fields.len() { ",\n" } else { "\n" },
                    Style::default(),
                );
            }
            indent(out, depth);
            out.push("}", Style::default());
        }
        Some(b'[') => {
            let Ok(Elements(all)) = serde_json::from_str::<Elements>(source) else {
                return out.push(source, Style::default());
            };
            if all.is_empty() {
                return out.push("[]", Style::default());
            }
            out.push("[\n", Style::default());
            for (i, v) in all.iter().enumerate() {
                indent(out, depth + 1);
                value(v, depth + 1, out);
                out.push(
                    if i + 1 < all.len() { ",\n" } else { "\n" },
                    Style::default(),
                );
            }
            indent(out, depth);
            out.push("]", Style::default());
        }
        Some(b'"') => out.push(source, STRING),
        Some(b't' | b'f' | b'n') => out.push(source, KEYWORD),
        _ => out.push(source, NUMBER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str) -> Option<String> {
        readable(text).map(|s| s.plain)
    }

    #[test]
    fn the_message_comes_first_then_every_other_field_in_order() {
        let cases = [
            (
                r#"{"level":"warn","msg":"request 5 handled","n":5}"#,
                "request 5 handled  level=warn  n=5",
            ),
            // pino: a number for the level, nested objects as written.
            (
                r#"{"level":30,"time":1764784800123,"req":{"method":"GET","url":"/x"},"msg":"done"}"#,
                r#"done  level=30  time=1764784800123  req={"method":"GET","url":"/x"}"#,
            ),
            // Serilog's @m, structlog's event, in any case.
            (
                r#"{"@t":"2026-12-03","@m":"hello"}"#,
                "hello  @t=2026-12-03",
            ),
            (
                r#"{"Event":"user logged in","user_id":7}"#,
                "user logged in  user_id=7",
            ),
            // No message: the fields alone. A message that is not text is a field.
            (r#"{"a":true,"b":null}"#, "a=true  b=null"),
            (r#"{"msg":{"x":1}}"#, r#"msg={"x":1}"#),
            // A value with spaces keeps its quotes, so that the fields stay apart.
            (
                r#"{"msg":"a b","user":"Ada Lovelace"}"#,
                r#"a b  user="Ada Lovelace""#,
            ),
            ("{}", ""),
            ("  {\"msg\":\"padded\"}  ", "padded"),
        ];
        for (line, want) in cases {
            assert_eq!(row(line).as_deref(), Some(want), "{line}");
        }
    }

    #[test]
    fn each_field_but_the_message_is_a_chip_to_filter_by() {
        let line = r#"{"level":"warn","msg":"a b","user":"Ada Lovelace","<k>":1}"#;
        let row = readable(line).unwrap().plain;
        let chips: Vec<&str> = field_chips(line).into_iter().map(|r| &row[r]).collect();
        assert_eq!(chips, ["level=warn", r#"user="Ada Lovelace""#, "<k>=1"]);
        assert!(has_chip(line, "level=warn"));
        assert!(has_chip(line, r#"user="Ada Lovelace""#));
        // Whole chips only: not a part of one, not the message, not another line's text.
        assert!(!has_chip(line, "level=war"));
        assert!(!has_chip(line, "msg=a b"));
        assert!(!has_chip("level=warn", "level=warn"));
        assert!(field_chips("plain text").is_empty());
    }

    #[test]
    fn what_is_not_one_json_object_is_left_as_it_is() {
        for line in [
            "plain text",
            "[1,2,3]",
            r#""a string""#,
            r#"{"unclosed":"#,
            r#"{"a":1} trailing words"#,
            "{not json}",
            "",
        ] {
            assert_eq!(row(line), None, "{line:?}");
            assert_eq!(pretty(line).map(|s| s.plain), None, "{line:?}");
        }
    }

    #[test]
    fn hostile_json_stays_text_and_stays_as_written() {
        // Numbers beyond a float keep every digit.
        let huge = r#"{"id":123456789012345678901234567890,"x":1e999}"#;
        assert_eq!(
            row(huge).unwrap(),
            "id=123456789012345678901234567890  x=1e999"
        );
        // Markup is text (the view puts it in text nodes), in keys and values alike.
        let markup = r#"{"<script>":"<img src=x onerror=alert(1)>","msg":"<b>hi</b>"}"#;
        assert_eq!(
            row(markup).unwrap(),
            r#"<b>hi</b>  <script>="<img src=x onerror=alert(1)>""#
        );
        // A line break or another control in a value or key is shown escaped: one row.
        let broken = r#"{"msg":"two\nlines","k\ty":"tab\u0007bell"}"#;
        let shown = row(broken).unwrap();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(shown, r#""two\nlines"  "k\ty"="tab\u0007bell""#);
        // An unpaired surrogate escape names no character: the value is shown as written.
        assert_eq!(
            row(r#"{"msg":"\ud800","k":"\udfff x"}"#).unwrap(),
            r#""\ud800"  k="\udfff x""#
        );
        // Nesting deeper than serde_json reads: left as written, never a stack overflow.
        let deep = format!("{}{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        assert_eq!(row(&deep), None);
        let ok_deep = format!("{}1{}", r#"{"a":"#.repeat(100), "}".repeat(100));
        assert!(pretty(&ok_deep).is_some());
        // Thousands of fields: one row as written, not thousands of coloured runs.
        let wide = format!("{{{}\"z\":1}}", r#""a":1,"#.repeat(MAX_FIELDS));
        assert_eq!(row(&wide), None);
        assert!(row(&wide.replacen(r#""a":1,"#, "", 1)).is_some());
    }

    #[test]
    fn the_pretty_form_indents_and_colours_by_kind() {
        let p = pretty(r#"{"msg":"hi","n":[1,2.5],"ok":true,"o":{},"e":[]}"#).unwrap();
        assert_eq!(
            p.plain,
            "{\n  \"msg\": \"hi\",\n  \"n\": [\n    1,\n    2.5\n  ],\n  \"ok\": true,\n  \"o\": {},\n  \"e\": []\n}"
        );
        let styled = |text: &str| {
            let at = p.plain.find(text).unwrap();
            p.spans.iter().find(|(r, _)| r.start == at).map(|(_, s)| *s)
        };
        assert_eq!(styled("\"msg\""), Some(KEY));
        assert_eq!(styled("\"hi\""), Some(STRING));
        assert_eq!(styled("2.5"), Some(NUMBER));
        assert_eq!(styled("true"), Some(KEYWORD));
    }
}
