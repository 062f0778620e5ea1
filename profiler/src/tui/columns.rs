//! Which numeric columns of `lockprof top`'s site table fit, once the site column has
//! the room it needs.
//!
//! The site (function and `file:line`) is the answer the table exists for, so it is
//! given its width first. The numbers then take what is left: both sets (last interval
//! and cumulative) on a wide terminal; on a narrower one only the set being sorted on
//! (`i` switches it); then, narrower still, only that set's most telling columns, the
//! sort column always among them. Must not: draw or hold state.

use crate::tui::app::{Scope, SortKey};

/// Width of the KIND column (`rwlock-write`).
pub const KIND_WIDTH: u16 = 12;
/// Width of a numeric column.
pub const NUM_WIDTH: u16 = 8;
/// Space between columns.
pub const SPACING: u16 = 1;
/// The site column never asks for more than this (longer names are cut).
pub const SITE_MAX: u16 = 72;
/// Nor for less than this.
pub const SITE_MIN: u16 = 24;

/// Within one set, which columns to keep first when not all fit (after the sort
/// column): total wait says how much, waits how often, p99 how long.
const PRIORITY: [SortKey; 6] = [
    SortKey::Total,
    SortKey::Waits,
    SortKey::P99,
    SortKey::Max,
    SortKey::Avg,
    SortKey::Threads,
];

/// The numeric columns to show, in display order (interval set first, then
/// cumulative; each in [`SortKey::ALL`] order). `site_wanted` is the widest site
/// label on screen.
pub fn numeric_columns(
    width: u16,
    site_wanted: u16,
    scope: Scope,
    sort: SortKey,
) -> Vec<(Scope, SortKey)> {
    let site = site_wanted.clamp(SITE_MIN, SITE_MAX);
    let room = width.saturating_sub(KIND_WIDTH + SPACING + site);
    let fit = usize::from(room / (NUM_WIDTH + SPACING));
    let all = SortKey::ALL.len();
    if fit >= 2 * all {
        return [Scope::Interval, Scope::Cumulative]
            .into_iter()
            .flat_map(|s| SortKey::ALL.map(|k| (s, k)))
            .collect();
    }
    let mut keep: Vec<SortKey> = std::iter::once(sort)
        .chain(PRIORITY.into_iter().filter(|&k| k != sort))
        .take(fit.max(1))
        .collect();
    keep.sort_by_key(|k| SortKey::ALL.iter().position(|a| a == k));
    keep.into_iter().map(|k| (scope, k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_gets_the_room_first() {
        // 200 columns: a 60-wide site leaves room for all twelve numbers.
        assert_eq!(
            numeric_columns(200, 60, Scope::Interval, SortKey::Total).len(),
            12
        );
        // 150 columns with the same site: only the sorted set, all six.
        let cols = numeric_columns(150, 60, Scope::Cumulative, SortKey::Total);
        assert_eq!(cols.len(), 6);
        assert!(cols.iter().all(|&(s, _)| s == Scope::Cumulative));
        // 100 columns: the sort column and the most telling others, in table order.
        let cols = numeric_columns(100, 60, Scope::Interval, SortKey::Max);
        assert_eq!(
            cols,
            [
                (Scope::Interval, SortKey::Waits),
                (Scope::Interval, SortKey::Total),
                (Scope::Interval, SortKey::Max)
            ]
        );
        // Too narrow for any: the sort column stays.
        assert_eq!(
            numeric_columns(30, 60, Scope::Interval, SortKey::Waits),
            [(Scope::Interval, SortKey::Waits)]
        );
        // A short site leaves more room to numbers; a huge one is capped.
        assert_eq!(
            numeric_columns(120, 10, Scope::Interval, SortKey::Total).len(),
            6
        );
        assert_eq!(
            numeric_columns(200, 500, Scope::Interval, SortKey::Total).len(),
            12
        );
    }
}
