//! Futex addresses: who waited on each and who woke it.
//!
//! Owns: `LockAcc` and the `LockAddress` it becomes. Must not: decide what an
//! address is (that is `behavior`).

use std::collections::BTreeMap;

use crate::analyze::aggregate::MAX_ADDRESSES_PER_SITE;
use crate::analyze::behavior::AddressBehavior;
use crate::analyze::sites::by_wait;
use crate::collect::snapshot::FOLDED_ADDRESS;
use crate::report::{LockAddress, SiteShare, WaitSummary, WakerShare};

#[derive(Default)]
pub(crate) struct LockAcc {
    pub(crate) wait: WaitSummary,
    pub(crate) eagain: u64,
    pub(crate) wasted_wakeups: u64,
    pub(crate) sites: BTreeMap<String, WaitSummary>,
    pub(crate) wakers: BTreeMap<String, WakerShare>,
    pub(crate) behavior: AddressBehavior,
}

/// How the addresses of exited processes summed under [`FOLDED_ADDRESS`] are listed.
pub(crate) const FOLDED_ADDRESS_NAME: &str = "[other addresses of exited processes]";

impl LockAcc {
    pub(crate) fn finish(self, pid: u32, addr: u64) -> LockAddress {
        let mut sites: Vec<SiteShare> = self
            .sites
            .into_iter()
            .map(|(site, wait)| SiteShare { site, wait })
            .collect();
        sites.sort_by(|a, b| by_wait(&a.wait, &b.wait).then_with(|| a.site.cmp(&b.site)));
        sites.truncate(MAX_ADDRESSES_PER_SITE);
        let mut wakers: Vec<WakerShare> = self.wakers.into_values().collect();
        wakers.sort_by(|a, b| b.woken.cmp(&a.woken).then_with(|| a.waker.cmp(&b.waker)));
        wakers.truncate(MAX_ADDRESSES_PER_SITE);
        LockAddress {
            pid,
            address: if addr == FOLDED_ADDRESS {
                FOLDED_ADDRESS_NAME.to_owned()
            } else {
                format!("{addr:#x}")
            },
            wait: self.wait,
            behavior: self.behavior.behavior,
            broadcast: self.behavior.broadcast,
            eagain: self.eagain,
            wasted_wakeups: self.wasted_wakeups,
            sites,
            wakers,
        }
    }
}
