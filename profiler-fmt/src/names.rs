//! Names for display and for matching: function names shortened for a column, rustc's
//! legacy `::h0123…` hash stripped, path tails and base names.
//!
//! Must not: sanitize or cut (that is [`crate::fit`]'s); the functions here only pick
//! which part of a name to keep.

/// A function name for a table: generic arguments and the `::h0123…` hash removed,
/// `<T as Trait>::f` reduced to `T::f`, and only the last three path segments kept
/// (`demo::forwarder::Before::lookup` → `forwarder::Before::lookup`). C and other
/// names without `::` are returned unchanged.
pub fn short_function(name: &str) -> String {
    function_tail(name, 3)
}

/// [`short_function`] keeping the last `keep` path segments.
pub fn function_tail(name: &str, keep: usize) -> String {
    let segments = split_path(name);
    let last = segments.len().saturating_sub(1);
    let mut kept: Vec<String> = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        if i == last && i > 0 && is_legacy_hash(seg) {
            continue;
        }
        if let Some(inner) = seg.strip_prefix('<') {
            if i > 0 {
                // Turbofish arguments (`f::<T>`).
                continue;
            }
            let inner = inner.strip_suffix('>').unwrap_or(inner);
            kept.push(self_type(inner));
            continue;
        }
        let seg = strip_generics(seg);
        if !seg.is_empty() {
            kept.push(seg);
        }
    }
    let start = kept.len().saturating_sub(keep);
    let short = kept[start..].join("::");
    if short.is_empty() {
        name.to_owned()
    } else {
        short
    }
}

/// `Type` from the inside of `<Type as Trait>` / `<impl Trait for Type>` / `<&mut Type>`,
/// reduced to its last path segment without generics.
fn self_type(inner: &str) -> String {
    let ty = top_level_find(inner, " as ").map_or(inner, |at| &inner[..at]);
    let ty = ty.strip_prefix("impl ").map_or(ty, |rest| {
        top_level_find(rest, " for ").map_or(rest, |at| &rest[at + " for ".len()..])
    });
    let ty = ty
        .trim_start_matches('&')
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ")
        .trim();
    let segs = split_path(ty);
    let last = segs
        .iter()
        .rev()
        .map(|s| strip_generics(s))
        .find(|s| !s.is_empty());
    last.unwrap_or_else(|| ty.to_owned())
}

/// Splits `a::b<c::d>::e` at the top-level `::` only.
fn split_path(name: &str) -> Vec<&str> {
    let bytes = name.as_bytes();
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b']' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                parts.push(&name[start..i]);
                i += 2;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&name[start..]);
    parts
}

/// Byte offset of the first `needle` outside any `<…>`, `(…)` or `[…]`.
fn top_level_find(s: &str, needle: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b']' => depth = depth.saturating_sub(1),
            _ if depth == 0 && bytes[i..].starts_with(needle.as_bytes()) => return Some(i),
            _ => {}
        }
    }
    None
}

/// `Mutex<T>` → `Mutex` (all `<…>` groups removed; `->` is not a bracket).
fn strip_generics(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    let mut depth = 0usize;
    let mut prev = '\0';
    for c in seg.chars() {
        match c {
            '<' => depth += 1,
            '>' if prev != '-' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
        prev = c;
    }
    out
}

/// The `h0123456789abcdef` hash rustc's legacy mangling appends.
pub fn is_legacy_hash(seg: &str) -> bool {
    seg.len() == 17 && seg.starts_with('h') && seg[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A full function name without rustc's legacy `::h0123…` hash, which changes with
/// every rebuild: `a::b::h0123456789abcdef` → `a::b`. Nothing else is shortened.
pub fn strip_legacy_hash(function: &str) -> &str {
    match function.rsplit_once("::") {
        Some((head, last)) if is_legacy_hash(last) => head,
        _ => function,
    }
}

/// The last three components of a path, for display:
/// `/rustc/…/library/std/src/sync/mutex.rs` → `src/sync/mutex.rs`.
pub fn short_path(path: &str) -> String {
    tail_components(path, 3)
}

/// The last `n` components of a path (the path itself if it has no more).
pub fn tail_components(path: &str, n: usize) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() <= n {
        return path.to_owned();
    }
    parts[parts.len() - n..].join("/")
}

/// The last non-empty component of a path: a file's or a module's name.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').find(|p| !p.is_empty()).unwrap_or(path)
}

/// `file:line`, or the file alone when the line is unknown.
pub fn location(file: &str, line: Option<u32>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_shortened() {
        let cases = [
            (
                "demo_targets::forwarder::Before::lookup",
                "forwarder::Before::lookup",
            ),
            (
                "<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::lookup",
                "Before::lookup",
            ),
            (
                "std::sync::poison::mutex::Mutex<T>::lock",
                "mutex::Mutex::lock",
            ),
            (
                "std::sync::mutex::Mutex<T>::lock::h0123456789abcdef",
                "mutex::Mutex::lock",
            ),
            (
                "core::iter::Iterator::collect::<Vec<u8>>",
                "iter::Iterator::collect",
            ),
            (
                "<alloc::boxed::Box<dyn core::ops::Fn(u8) -> u8> as core::ops::Fn<A>>::call",
                "Box::call",
            ),
            ("<&mut W as core::fmt::Write>::write_str", "W::write_str"),
            (
                "demo::main::{{closure}}::{{closure}}",
                "main::{{closure}}::{{closure}}",
            ),
            ("pthread_mutex_lock", "pthread_mutex_lock"),
            ("", ""),
            ("<<<", "<<"),
            (">>::", ">>::"),
            ("::", "::"),
        ];
        for (name, want) in cases {
            assert_eq!(short_function(name), want, "{name}");
        }
    }

    #[test]
    fn paths_keep_three_components() {
        assert_eq!(short_path("src/main.rs"), "src/main.rs");
        assert_eq!(
            short_path("/rustc/abc/library/std/src/sync/mutex.rs"),
            "src/sync/mutex.rs"
        );
        assert_eq!(short_path("a/b/c"), "a/b/c");
        assert_eq!(short_path(""), "");
        assert_eq!(
            tail_components("/usr/lib/libc.so.6", 3),
            "/usr/lib/libc.so.6"
        );
        assert_eq!(basename("/usr/lib/libc.so.6"), "libc.so.6");
        assert_eq!(basename("dir/"), "dir");
    }

    #[test]
    fn only_a_legacy_hash_is_stripped() {
        assert_eq!(strip_legacy_hash("a::b::h0123456789abcdef"), "a::b");
        assert_eq!(strip_legacy_hash("a::b::h0123"), "a::b::h0123");
        assert_eq!(
            strip_legacy_hash("a::b::hxyz3456789abcdef"),
            "a::b::hxyz3456789abcdef"
        );
        assert_eq!(strip_legacy_hash("h0123456789abcdef"), "h0123456789abcdef");
    }
}
