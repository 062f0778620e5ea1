//! Which site of one report is which site of another, across runs, rebuilds and
//! machines.
//!
//! Owns: the matching rules, documented for users in `docs/ci.md` ("Site identity"):
//!
//! 1. **Exact**: the same [`Site::id`] (`kind|module|function|file:line`, built from
//!    the module's file name, never an address).
//! 2. **Near**: for sites still unmatched, the same kind, module file name, function
//!    (with any legacy `::h0123…` hash removed) and file (compared by its last three
//!    path components, so a checkout in another directory still matches), and lines at
//!    most [`LINE_WINDOW`] apart. Candidates are taken nearest first; a site whose
//!    nearest candidate is not unique (two equally near) is left unmatched, reported
//!    as new/vanished rather than guessed.
//!
//! Must not: look at any measurement (waits, times): identity is what does not move.

use std::collections::{HashMap, HashSet};

use crate::render::names::{basename, strip_legacy_hash, tail_components};
use crate::report::model::{Site, WaitKind};

/// How far (in lines) a site may have moved and still be matched.
pub const LINE_WINDOW: u32 = 10;

/// How a pair of sites was matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    /// Same `id`.
    Exact,
    /// Same kind, module, function and file; the line moved (or, at the same line,
    /// the path prefix or symbol hash differs).
    Near { from_line: u32, to_line: u32 },
}

/// A site of the base report and the site of the new report it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    pub base: usize,
    pub new: usize,
    pub how: MatchKind,
}

/// The sites of two reports, matched: indices into `base.sites` and `new.sites`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matching {
    /// In the order of the new report's sites.
    pub pairs: Vec<Pair>,
    /// Base sites with no counterpart (vanished), in base order.
    pub only_base: Vec<usize>,
    /// New sites with no counterpart (new), in new order.
    pub only_new: Vec<usize>,
}

/// What identifies a site loosely: everything but the line, normalized.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LooseKey {
    kind: WaitKind,
    module: String,
    function: String,
    file: String,
}

fn loose_key(site: &Site) -> Option<(LooseKey, u32)> {
    let function = site.function.as_deref()?;
    let file = site.file.as_deref()?;
    let line = site.line?;
    let module = site.module.as_deref().map_or("?", basename);
    Some((
        LooseKey {
            kind: site.kind,
            module: module.to_owned(),
            function: strip_legacy_hash(function).to_owned(),
            // The last three components, relative: `/src/a.rs` and `src/a.rs` match.
            file: tail_components(file, 3).trim_start_matches('/').to_owned(),
        },
        line,
    ))
}

/// Matches the sites of `base` with those of `new` (see the module doc for the rules).
pub fn match_sites(base: &[Site], new: &[Site]) -> Matching {
    let mut base_used = vec![false; base.len()];
    let mut new_used = vec![false; new.len()];
    let mut found: Vec<Pair> = Vec::new();

    // 1. Exact ids. Ids are unique within a report written by lockprof; a hand-edited
    // report with duplicates pairs them in order.
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, site) in base.iter().enumerate().rev() {
        by_id.entry(site.id.as_str()).or_default().push(i);
    }
    for (n, site) in new.iter().enumerate() {
        if let Some(b) = by_id.get_mut(site.id.as_str()).and_then(Vec::pop) {
            base_used[b] = true;
            new_used[n] = true;
            found.push(Pair {
                base: b,
                new: n,
                how: MatchKind::Exact,
            });
        }
    }

    // 2. Near lines, nearest first, refusing ties.
    let base_keys: Vec<Option<(LooseKey, u32)>> = base.iter().map(loose_key).collect();
    let mut by_key: HashMap<&LooseKey, Vec<(usize, u32)>> = HashMap::new();
    for (b, key) in base_keys.iter().enumerate() {
        if let (false, Some((key, line))) = (base_used[b], key) {
            by_key.entry(key).or_default().push((b, *line));
        }
    }
    let mut candidates: Vec<(u32, usize, usize)> = Vec::new();
    for (n, site) in new.iter().enumerate() {
        if new_used[n] {
            continue;
        }
        let Some((key, line)) = loose_key(site) else {
            continue;
        };
        for &(b, base_line) in by_key.get(&key).into_iter().flatten() {
            let distance = base_line.abs_diff(line);
            if distance <= LINE_WINDOW {
                candidates.push((distance, b, n));
            }
        }
    }
    candidates.sort_unstable();
    let mut blocked_base: HashSet<usize> = HashSet::new();
    let mut blocked_new: HashSet<usize> = HashSet::new();
    for group in candidates.chunk_by(|a, b| a.0 == b.0) {
        // Within one distance, a site with two still-free candidates is ambiguous.
        let free = |&&(_, b, n): &&(u32, usize, usize)| {
            !base_used[b] && !new_used[n] && !blocked_base.contains(&b) && !blocked_new.contains(&n)
        };
        let open: Vec<&(u32, usize, usize)> = group.iter().filter(free).collect();
        let mut ambiguous_base = HashSet::new();
        let mut ambiguous_new = HashSet::new();
        for (i, &&(_, b, n)) in open.iter().enumerate() {
            for &&(_, b2, n2) in &open[i + 1..] {
                if b == b2 {
                    ambiguous_base.insert(b);
                    ambiguous_new.extend([n, n2]);
                }
                if n == n2 {
                    ambiguous_new.insert(n);
                    ambiguous_base.extend([b, b2]);
                }
            }
        }
        for &&(_, b, n) in &open {
            if ambiguous_base.contains(&b) || ambiguous_new.contains(&n) {
                continue;
            }
            base_used[b] = true;
            new_used[n] = true;
            found.push(Pair {
                base: b,
                new: n,
                how: MatchKind::Near {
                    from_line: base[b].line.unwrap_or(0),
                    to_line: new[n].line.unwrap_or(0),
                },
            });
        }
        blocked_base.extend(ambiguous_base);
        blocked_new.extend(ambiguous_new);
    }

    found.sort_unstable_by_key(|p| p.new);
    Matching {
        pairs: found,
        only_base: (0..base.len()).filter(|&b| !base_used[b]).collect(),
        only_new: (0..new.len()).filter(|&n| !new_used[n]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(kind: WaitKind, function: &str, file: &str, line: u32) -> Site {
        Site {
            id: format!("{}|app|{function}|{file}:{line}", kind.as_str()),
            kind,
            function: Some(function.to_owned()),
            file: Some(file.to_owned()),
            line: Some(line),
            module: Some("/opt/app/bin/app".to_owned()),
            ..Site::default()
        }
    }

    fn mutex(function: &str, line: u32) -> Site {
        site(WaitKind::Mutex, function, "src/store.rs", line)
    }

    #[test]
    fn exact_ids_match_whatever_the_order() {
        let base = [mutex("app::a", 10), mutex("app::b", 20)];
        let new = [mutex("app::b", 20), mutex("app::a", 10)];
        let m = match_sites(&base, &new);
        assert_eq!(
            m.pairs,
            [
                Pair {
                    base: 1,
                    new: 0,
                    how: MatchKind::Exact
                },
                Pair {
                    base: 0,
                    new: 1,
                    how: MatchKind::Exact
                }
            ]
        );
        assert!(m.only_base.is_empty() && m.only_new.is_empty());
    }

    #[test]
    fn a_site_that_moved_a_few_lines_matches_and_says_so() {
        let m = match_sites(&[mutex("app::a", 100)], &[mutex("app::a", 104)]);
        assert_eq!(
            m.pairs[0].how,
            MatchKind::Near {
                from_line: 100,
                to_line: 104
            }
        );
    }

    #[test]
    fn beyond_the_window_it_is_new_and_vanished() {
        let m = match_sites(&[mutex("app::a", 100)], &[mutex("app::a", 111)]);
        assert!(m.pairs.is_empty());
        assert_eq!((m.only_base, m.only_new), (vec![0], vec![0]));
    }

    #[test]
    fn kind_function_and_file_must_agree() {
        let base = [mutex("app::a", 100)];
        for new in [
            site(WaitKind::RwlockRead, "app::a", "src/store.rs", 101),
            mutex("app::b", 101),
            site(WaitKind::Mutex, "app::a", "src/other.rs", 101),
        ] {
            let m = match_sites(&base, std::slice::from_ref(&new));
            assert!(m.pairs.is_empty(), "{}", new.id);
        }
    }

    #[test]
    fn nearest_wins_and_ties_are_left_unmatched() {
        // Two sites in one function both moved down by 3: each pairs with its own.
        let base = [mutex("app::a", 100), mutex("app::a", 120)];
        let new = [mutex("app::a", 103), mutex("app::a", 123)];
        let m = match_sites(&base, &new);
        assert_eq!(m.pairs.len(), 2);
        assert_eq!((m.pairs[0].base, m.pairs[1].base), (0, 1));

        // 102 is as near to 100 as to 104: no guess.
        let base = [mutex("app::a", 100), mutex("app::a", 104)];
        let m = match_sites(&base, &[mutex("app::a", 102)]);
        assert!(m.pairs.is_empty(), "{:?}", m.pairs);
        assert_eq!(m.only_base, [0, 1]);
    }

    #[test]
    fn path_prefix_and_symbol_hash_do_not_matter() {
        let base = [site(
            WaitKind::Mutex,
            "app::Store::put::h0123456789abcdef",
            "/home/alice/app/src/store.rs",
            40,
        )];
        let new = [site(
            WaitKind::Mutex,
            "app::Store::put::hfedcba9876543210",
            "/build/app/src/store.rs",
            40,
        )];
        let m = match_sites(&base, &new);
        assert_eq!(
            m.pairs[0].how,
            MatchKind::Near {
                from_line: 40,
                to_line: 40
            }
        );
    }

    #[test]
    fn unsymbolized_sites_match_only_exactly() {
        let mut a = Site {
            id: "mutex|app|0x1234|?".to_owned(),
            ..Site::default()
        };
        let m = match_sites(std::slice::from_ref(&a), std::slice::from_ref(&a));
        assert_eq!(m.pairs.len(), 1);
        a.id = "mutex|app|0x1238|?".to_owned();
        let b = Site {
            id: "mutex|app|0x1234|?".to_owned(),
            ..Site::default()
        };
        let m = match_sites(&[b], &[a]);
        assert!(m.pairs.is_empty());
    }
}
