//! Lock wrappers in the target's own code: functions that stand between the callers
//! that want a lock and the lock implementation (`PGSemaphoreLock ← LWLockAcquire`
//! in `PostgreSQL`, `InnoDB`'s `srw_lock` members), skipped like glibc's frames so the
//! site is the caller that wanted the lock.
//!
//! Owns: [`LockFns`] — the wrapper functions named by the user (`--lock-fn PATTERN`)
//! and those recognized from the data — and the site index past them. Must not:
//! classify kinds (the implementation frames below the wrapper still tell).
//!
//! Recognized from the data: a site frame whose function has a lock-like name and,
//! followed outward through consecutive lock-like frames, reaches the futex from at
//! least [`MIN_CALLERS`] distinct callers. A function called from many places that
//! merely takes a lock inside (`Cache::get`) has no lock-like name and stays a site.

use std::collections::{BTreeMap, BTreeSet};

use crate::report::Frame;

/// Distinct callers through which a lock-like function must wait to be a wrapper.
pub const MIN_CALLERS: usize = 3;

/// Words (camel-case or snake-case parts of a function's last path segment) that make
/// a name lock-like.
const LOCK_WORDS: &[&str] = &[
    "lock",
    "lwlock",
    "acquire",
    "mutex",
    "mtx",
    "sem",
    "semaphore",
    "latch",
    "futex",
    "spin",
    "spinlock",
    "rdlock",
    "wrlock",
];

/// The wrapper functions of one report: named by the user, or recognized.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockFns {
    patterns: Vec<String>,
    detected: BTreeSet<String>,
}

impl LockFns {
    /// User patterns: a function's full name, its last path segment, or a `*` glob;
    /// an unnamed frame's `module+offset`.
    pub fn new(patterns: &[String]) -> Self {
        LockFns {
            patterns: patterns.to_vec(),
            detected: BTreeSet::new(),
        }
    }

    /// The wrappers recognized from the data, for the report to say which.
    pub fn detected(&self) -> impl Iterator<Item = &str> {
        self.detected.iter().map(String::as_str)
    }

    fn is_wrapper(&self, f: &Frame) -> bool {
        let Some(name) = f.function.as_deref() else {
            // An unnamed frame (a static function of a stripped daemon) is named as
            // the report shows it, `module+offset`.
            let label = unnamed_label(f);
            return label.is_some_and(|l| self.patterns.iter().any(|p| matches(p, &l)));
        };
        self.detected.contains(name) || self.patterns.iter().any(|p| matches(p, name))
    }

    /// The site index past any wrapper frames at `site` (never past the last frame).
    pub fn skip(&self, frames: &[Frame], mut site: usize) -> usize {
        while site + 1 < frames.len() && frames.get(site).is_some_and(|f| self.is_wrapper(f)) {
            site += 1;
        }
        site
    }

    /// Recognize wrappers from every wait stack and the site index `attribute` chose
    /// for it.
    pub fn detect<'a>(&mut self, stacks: impl Iterator<Item = (&'a [Frame], usize)>) {
        // Site function → (its lock-like chain's functions, distinct callers).
        let mut seen: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for (frames, site) in stacks {
            let site = self.skip(frames, site);
            let Some(first) = frames.get(site).and_then(|f| f.function.as_deref()) else {
                continue;
            };
            if !is_lock_like(first) {
                continue;
            }
            let chain: Vec<&str> = frames[site..]
                .iter()
                .map_while(|f| f.function.as_deref().filter(|n| is_lock_like(n)))
                .collect();
            let Some(caller) = frames.get(site + chain.len()) else {
                continue;
            };
            let caller = caller
                .function
                .clone()
                .or_else(|| caller.module_offset.clone())
                .unwrap_or_else(|| caller.address.clone());
            let e = seen.entry(first.to_owned()).or_default();
            e.0.extend(chain.iter().map(|s| (*s).to_owned()));
            e.1.insert(caller);
        }
        for (chain, callers) in seen.into_values() {
            if callers.len() >= MIN_CALLERS {
                self.detected.extend(chain);
            }
        }
    }
}

/// `postgres+0x45d95c`: an unnamed frame's module file name and offset, as reports
/// show it.
fn unnamed_label(f: &Frame) -> Option<String> {
    let module = f.module.as_deref()?;
    let offset = f.module_offset.as_deref()?;
    Some(format!(
        "{}+{offset}",
        module.rsplit('/').next().unwrap_or(module)
    ))
}

/// `pattern` matches `name` exactly, as its last `::` segment, or as a `*` glob.
fn matches(pattern: &str, name: &str) -> bool {
    if pattern.contains('*') {
        return glob(pattern.as_bytes(), name.as_bytes());
    }
    name == pattern || name.rsplit("::").next() == Some(pattern)
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// Does a function's name say "lock"? Its last two path segments (a method and its
/// type, generics dropped) are split into camel-case / snake-case words, compared
/// without case.
pub fn is_lock_like(name: &str) -> bool {
    let mut plain = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .rsplit("::")
        .take(2)
        .flat_map(words)
        .any(|w| LOCK_WORDS.contains(&w.to_ascii_lowercase().as_str()))
}

fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        // A new word at a lower→upper step, or at the last capital of an acronym
        // ("LWLock" → "LW", "Lock").
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1);
        let boundary = c.is_uppercase()
            && (prev.is_some_and(char::is_lowercase)
                || (prev.is_some_and(char::is_uppercase)
                    && next.is_some_and(|n| n.is_lowercase())));
        if boundary && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> Frame {
        Frame {
            address: "0x1".into(),
            function: Some(name.into()),
            module: Some("/usr/lib/postgresql/15/bin/postgres".into()),
            ..Frame::default()
        }
    }

    fn pg(caller: &str) -> Vec<Frame> {
        vec![
            f("do_futex_wait"),
            f("sem_wait"),
            f("PGSemaphoreLock"),
            f("LWLockAcquire"),
            f(caller),
            f("PostgresMain"),
        ]
    }

    #[test]
    fn lock_words_are_told_from_camel_and_snake_case() {
        assert!(is_lock_like("PGSemaphoreLock"));
        assert!(is_lock_like("LWLockAcquire"));
        assert!(is_lock_like("srw_lock_impl<false>::wr_lock"));
        assert!(
            is_lock_like("ssux_lock_impl<true>::rd_wait"),
            "its type says"
        );
        assert!(!is_lock_like("ReadBuffer_common"));
        assert!(!is_lock_like("process_block"), "block is not lock");
        assert!(!is_lock_like("app::Cache::get"));
        assert!(
            !is_lock_like("<app::Lock as Foo>::app::Store::put"),
            "generics dropped"
        );
        assert_eq!(words("LWLockAcquire"), ["LW", "Lock", "Acquire"]);
    }

    #[test]
    fn a_lock_like_function_waiting_from_many_callers_is_a_wrapper() {
        let stacks = [
            pg("XLogInsertRecord"),
            pg("ReleaseBuffer"),
            pg("ProcArrayEndTransaction"),
        ];
        let mut fns = LockFns::default();
        fns.detect(stacks.iter().map(|s| (s.as_slice(), 2)));
        assert_eq!(
            fns.detected().collect::<Vec<_>>(),
            ["LWLockAcquire", "PGSemaphoreLock"]
        );
        assert_eq!(fns.skip(&stacks[0], 2), 4, "the caller of LWLockAcquire");
        // Two callers are not enough.
        let mut few = LockFns::default();
        few.detect(stacks[..2].iter().map(|s| (s.as_slice(), 2)));
        assert_eq!(few.detected().count(), 0);
        assert_eq!(few.skip(&stacks[0], 2), 2);
    }

    #[test]
    fn a_plain_function_with_many_callers_stays_the_site() {
        let s = |caller: &str| vec![f("syscall"), f("app::Cache::get"), f(caller)];
        let stacks = [s("a"), s("b"), s("c"), s("d")];
        let mut fns = LockFns::default();
        fns.detect(stacks.iter().map(|s| (s.as_slice(), 1)));
        assert_eq!(fns.detected().count(), 0);
    }

    #[test]
    fn user_patterns_name_wrappers_exactly_by_segment_or_glob() {
        let fns = LockFns::new(&["Cache::get".into()]);
        assert_eq!(
            fns.skip(&[f("syscall"), f("app::Cache::get"), f("main")], 1),
            1,
            "a segment, not a path"
        );
        let fns = LockFns::new(&["get".into(), "mdb_*".into()]);
        let s = [
            f("syscall"),
            f("app::Cache::get"),
            f("mdb_txn_begin"),
            f("main"),
        ];
        assert_eq!(fns.skip(&s, 1), 3);
        assert_eq!(fns.skip(&s[..3], 1), 2, "never past the last frame");
        assert!(glob(b"a*c*", b"abcd") && !glob(b"a*x", b"abc"));
    }

    #[test]
    fn an_unnamed_frame_is_named_by_module_and_offset() {
        let unnamed = Frame {
            address: "0x55d0045d95c".into(),
            module: Some("/usr/lib/postgresql/15/bin/postgres".into()),
            module_offset: Some("0x45d95c".into()),
            ..Frame::default()
        };
        let s = [f("sem_wait"), unnamed, f("LockAcquireExtended"), f("main")];
        let fns = LockFns::new(&["postgres+0x45d95c".into()]);
        assert_eq!(fns.skip(&s, 1), 2);
        assert_eq!(LockFns::new(&["postgres+0x4*".into()]).skip(&s, 1), 2);
        assert_eq!(LockFns::new(&["0x45d95c".into()]).skip(&s, 1), 1);
    }
}
