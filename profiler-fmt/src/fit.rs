//! Fitting text from the target into a line: control characters replaced (so a
//! hostile thread name or symbol cannot drive the terminal) and cutting to a width
//! counted in `char`s. Must not: choose which part of a name matters (that is
//! [`crate::names`]'s).

use std::borrow::Cow;

/// Text from the target with control characters (escape sequences, newlines)
/// replaced by `?`.
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// [`clean`], and `?` for an empty string: for formats where a name must not be empty
/// (folded stacks, pprof).
pub fn clean_nonempty(s: &str) -> String {
    if s.is_empty() {
        "?".to_owned()
    } else {
        clean(s).into_owned()
    }
}

/// Width of `s` in columns, counted in `char`s.
pub fn chars(s: &str) -> usize {
    s.chars().count()
}

/// At most `max` chars, cut at the end with `…`.
pub fn cut_end(s: &str, max: usize) -> String {
    if chars(s) <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` chars, cut at the start with `…` (keeps the tail).
pub fn cut_start(s: &str, max: usize) -> String {
    let n = chars(s);
    if n <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(1);
    let mut out = String::from("…");
    out.extend(s.chars().skip(n - keep));
    out
}

/// At most `max` chars, cut in the middle with `…` (keeps the crate and the method).
pub fn cut_middle(s: &str, max: usize) -> String {
    let n = chars(s);
    if n <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(1);
    let head = keep / 2;
    let tail = keep - head;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
}

// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_counts_chars_not_bytes() {
        assert_eq!(cut_end("µµµµµ", 3), "µµ…");
        assert_eq!(cut_start("µµµµµ", 3), "…µµ");
        assert_eq!(cut_middle("abcdefgh", 5), "ab…gh");
        assert_eq!(cut_end("abc", 0), "…");
        assert_eq!(clean("a\u{1b}[31mb\n"), "a?[31mb?");
        assert_eq!(clean_nonempty(""), "?");
        assert_eq!(clean_nonempty("a\nb"), "a?b");
    }
}
