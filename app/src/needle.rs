//! Plain text found in a line: the filter's default. Done here rather than by a regex
//! engine so that the web client needs no Unicode tables beyond the standard library's
//! case mappings (the `regex` crate and its tables were a third of the client), while
//! "ärger" still finds "ÄRGER". Linear in the line and the text: Knuth–Morris–Pratt over case-folded
//! characters, a byte at a time when both are ASCII (most log lines are).

use std::ops::Range;

/// Text to find, case-folded once when ignoring case.
#[derive(Clone, Debug)]
pub struct Needle {
    text: String,
    /// Folded characters, when case is ignored.
    folded: Option<Vec<char>>,
    /// `folded` as bytes, when all of them are ASCII.
    ascii: Option<Vec<u8>>,
    /// Knuth–Morris–Pratt's table over `folded`: for each prefix, the longest proper prefix
    /// that is also its suffix.
    fail: Vec<usize>,
}

impl Needle {
    /// `text` must not be empty.
    pub fn new(text: &str, ignore_case: bool) -> Needle {
        let folded: Option<Vec<char>> = ignore_case.then(|| text.chars().map(fold).collect());
        let fail = folded.as_deref().map(failure).unwrap_or_default();
        let ascii = folded
            .as_ref()
            .filter(|f| f.iter().all(char::is_ascii))
            .map(|f| f.iter().map(|&c| c as u8).collect());
        Needle {
            text: text.to_owned(),
            folded,
            ascii,
            fail,
        }
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        self.find_at(haystack, 0).is_some()
    }

    /// Where it is found, left to right, never overlapping.
    pub fn find_iter<'a>(&'a self, haystack: &'a str) -> impl Iterator<Item = Range<usize>> + 'a {
        let mut at = 0;
        std::iter::from_fn(move || {
            let found = self.find_at(haystack, at)?;
            at = found.end;
            Some(found)
        })
    }

    /// Where a match may start. A folded `k` or `s` is also the fold of a character beyond
    /// ASCII (the Kelvin sign, the long s); no other ASCII character is, and no character
    /// beyond ASCII is the fold of an ASCII one.
    fn start(&self) -> Start {
        match self.folded.as_ref().and_then(|f| f.first()) {
            Some(&c) if !c.is_ascii() => Start::BeyondAscii,
            Some('k' | 's') | None => Start::Anywhere,
            Some(&c) => Start::Bytes(c as u8, c.to_ascii_uppercase() as u8),
        }
    }

    fn find_at(&self, haystack: &str, at: usize) -> Option<Range<usize>> {
        let rest = haystack.get(at..)?;
        let Some(folded) = &self.folded else {
            let start = at + rest.find(&self.text)?;
            return Some(start..start + self.text.len());
        };
        if rest.is_ascii() {
            // An ASCII character folds to one: a folded needle with any other is not there.
            let needle = self.ascii.as_deref()?;
            let end = kmp_ascii(needle, &self.fail, rest.as_bytes())?;
            return Some(at + end - needle.len()..at + end);
        }
        let end = kmp_chars(folded, &self.fail, rest, self.start())?;
        // Folding keeps the number of characters, not of bytes.
        let (start, _) = rest[..end].char_indices().rev().nth(folded.len() - 1)?;
        Some(at + start..at + end)
    }
}

/// Where a match of a folded needle may start in a line that is not all ASCII.
#[derive(Clone, Copy)]
enum Start {
    /// At either of these bytes.
    Bytes(u8, u8),
    /// At a character beyond ASCII.
    BeyondAscii,
    Anywhere,
}

/// A character as compared when case is ignored: what Unicode's simple case folding makes
/// of it, near enough (σ, ς and Σ alike; ß and ẞ alike, not "ss"; K and the Kelvin sign alike),
/// from the standard library's one-to-one case mappings.
pub fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    // Dotless ı is a letter of its own (Turkish), not an i; its uppercase is I.
    if c == 'ı' {
        return c;
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase())
        .or_else(|| single(c.to_lowercase()))
        .unwrap_or(c)
}

fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

fn failure(needle: &[char]) -> Vec<usize> {
    let mut fail = vec![0; needle.len()];
    let mut k = 0;
    for i in 1..needle.len() {
        while k > 0 && needle[i] != needle[k] {
            k = fail[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        fail[i] = k;
    }
    fail
}

/// Where the first match of `needle` (folded) ends in `haystack`. Each character is looked
/// at once, with at most as many steps back along `fail` as steps forward taken before:
/// linear. Between matches, where the needle may start is looked for alone.
fn kmp_chars(needle: &[char], fail: &[usize], haystack: &str, start: Start) -> Option<usize> {
    let mut matched = 0;
    let mut i = 0;
    while i < haystack.len() {
        if matched == 0 {
            let rest = &haystack.as_bytes()[i..];
            i += match start {
                Start::Bytes(lower, upper) => memchr::memchr2(lower, upper, rest)?,
                Start::BeyondAscii => rest.iter().position(|b| !b.is_ascii())?,
                Start::Anywhere => 0,
            };
        }
        let c = haystack[i..].chars().next()?;
        i += c.len_utf8();
        let c = fold(c);
        while matched > 0 && needle[matched] != c {
            matched = fail[matched - 1];
        }
        if needle[matched] == c {
            matched += 1;
            if matched == needle.len() {
                return Some(i);
            }
        }
    }
    None
}

/// `kmp_chars` over an ASCII haystack and needle, a byte at a time, where a line spends most of
/// its time: between matches of the needle's first byte, which are looked for alone.
fn kmp_ascii(needle: &[u8], fail: &[usize], haystack: &[u8]) -> Option<usize> {
    let (lower, upper) = (needle[0], needle[0].to_ascii_uppercase());
    let mut matched = 0;
    let mut i = 0;
    while i < haystack.len() {
        if matched == 0 {
            i += memchr::memchr2(lower, upper, &haystack[i..])?;
        }
        let b = haystack[i].to_ascii_lowercase();
        while matched > 0 && needle[matched] != b {
            matched = fail[matched - 1];
        }
        if needle[matched] == b {
            matched += 1;
            if matched == needle.len() {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(needle: &str, ignore_case: bool, haystack: &str) -> Vec<Range<usize>> {
        Needle::new(needle, ignore_case)
            .find_iter(haystack)
            .collect()
    }

    #[test]
    fn case_is_ignored_beyond_ascii() {
        assert_eq!(all("ärger", true, "viel ÄRGER hier"), vec![5..11]);
        assert_eq!(all("ÄRGER", true, "kein ärger"), vec![5..11]);
        assert_eq!(all("straße", true, "STRASSE, STRAẞE"), vec![9..17]);
        assert_eq!(all("σοφος", true, "ΣΟΦΟΣ"), vec![0..10], "final sigma");
        assert_eq!(
            all("k", true, "\u{212A}elvin"),
            vec![0..3],
            "the Kelvin sign"
        );
        assert!(all("i", true, "ı").is_empty(), "dotless ı is not i");
        assert!(all("ärger", false, "ÄRGER").is_empty());
        assert_eq!(all("ÄRGER", false, "ärger ÄRGER"), vec![7..13]);
    }

    #[test]
    fn only_the_kelvin_sign_and_the_long_s_fold_into_ascii() {
        let into_ascii: Vec<char> = (0x80..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| fold(c).is_ascii())
            .collect();
        assert_eq!(into_ascii, vec!['\u{17F}', '\u{212A}']);
        assert_eq!(all("ks", true, "\u{212A}\u{17F}"), vec![0..5]);
        assert_eq!(all("x s", true, "a x \u{17F}"), vec![2..6]);
    }

    #[test]
    fn matches_are_left_to_right_and_never_overlap() {
        assert_eq!(all("aa", true, "aAaaa"), vec![0..2, 2..4]);
        assert_eq!(all("abab", true, "xABABABAB"), vec![1..5, 5..9]);
        assert_eq!(
            all("aab", true, "aaab"),
            vec![1..4],
            "a partial match restarts"
        );
        assert_eq!(all("ä", true, "aÄäa"), vec![1..3, 3..5]);
        assert!(all("abc", true, "ab").is_empty());
    }

    #[test]
    fn a_long_repetitive_needle_takes_linear_time() {
        // A naive search would compare about 10^9 characters here.
        let needle = format!("{}b", "a".repeat(999));
        let haystack = "a".repeat(1_000_000);
        assert!(!Needle::new(&needle, true).is_match(&haystack));
        let haystack = format!("ä{haystack}");
        assert!(!Needle::new(&needle, true).is_match(&haystack));
    }
}
