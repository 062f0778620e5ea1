//! "Blocked by": each site's wait split among the holders whose releases ended its
//! parts (the kernel's holder blame, see `profiler_common::blame`).
//!
//! "Woken by" names the wake that ended a wait; behind a chain of waiters that
//! is usually just the previous waiter in line, which held the lock for a moment.
//! Blame charges every interval of the wait to the release that ended it, so the
//! holder that kept the lock for most of the wait gets most of it — like Go's mutex
//! profile, which charges contention to the unlocker, but measured per interval
//! instead of scaled by the number of waiters.
//!
//! Owns: folding `BlameRow`s into sites and the report's `BlockedBy` lists. Must
//! not: attribute waits or wakes to sites (`aggregate` gives it both maps).

use std::collections::{BTreeMap, HashMap};

use crate::analyze::aggregate::StackKey;
use crate::analyze::sites::SiteAcc;
use crate::analyze::wakers::WakerLocations;
use crate::collect::blame::BlameRow;
use crate::report::BlockedBy;

/// Holders listed per site in `blocked_by`.
const MAX_BLOCKED_BY: usize = 5;

/// One holder's share of a site's wait.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlameAcc {
    pub(crate) intervals: u64,
    pub(crate) ns: u64,
}

/// Charge each blame row to its waiter's site (`site_of_stack`) and holder
/// (`holder_id` names the release stack as a waker site).
pub(crate) fn charge(
    sites: &mut BTreeMap<String, SiteAcc>,
    blame: &[BlameRow],
    site_of_stack: &HashMap<StackKey, String>,
    holder_id: impl Fn(StackKey) -> String,
) {
    for row in blame {
        let waiter = (row.tgid, row.waiter_stack_id, row.waiter_leaf_ret);
        let Some(site) = site_of_stack.get(&waiter).and_then(|id| sites.get_mut(id)) else {
            continue;
        };
        if row.earlier() {
            site.blocked_by_unknown_ns += row.ns;
            continue;
        }
        let holder = holder_id((row.holder_tgid, row.holder_stack_id, row.holder_leaf_ret));
        let acc = site.blocked_by.entry(holder).or_default();
        acc.intervals += row.intervals;
        acc.ns += row.ns;
    }
}

/// The report's list: holders by charged wait, descending (ties by id), named.
pub(crate) fn blocked_by(
    holders: BTreeMap<String, BlameAcc>,
    locations: &WakerLocations,
) -> Vec<BlockedBy> {
    let mut out: Vec<BlockedBy> = holders
        .into_iter()
        .filter(|(_, acc)| acc.ns > 0)
        .map(|(holder, acc)| {
            let (function, file, line) = locations.get(&holder).cloned().unwrap_or_default();
            BlockedBy {
                holder,
                function,
                file,
                line,
                intervals: acc.intervals,
                wait_ns: acc.ns,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.wait_ns
            .cmp(&a.wait_ns)
            .then_with(|| a.holder.cmp(&b.holder))
    });
    out.truncate(MAX_BLOCKED_BY);
    out
}
