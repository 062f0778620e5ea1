//! Analysis: which lock site and kind each wait belongs to (`attribute`, past the
//! target's own lock wrappers: `wrappers`), what each futex address is by behaviour
//! (`behavior`), and the pure fold of resolved rows into a `Report` (`aggregate`, with
//! its per-site, per-waker and per-address parts in `sites`, `wakers`, `locks`, the
//! holders blamed for each site's wait in `blame`, and
//! stacks merged by call path in `stacks`; `reattribute` applies `--lock-fn` to a
//! saved report), with histograms, the per-interval timeline
//! and the syscall names the report carries.
//!
//! Owns: every judgement about what the waits mean. Must not: read the clock, the
//! filesystem or the kernel — it is a function of its input, so it is tested on
//! synthetic rows without root.

pub mod aggregate;
pub mod attribute;
pub mod behavior;
pub mod blame;
pub mod go;
pub mod histogram;
pub mod locks;
pub mod reattribute;
pub mod sites;
pub mod stacks;
pub mod syscalls;
pub mod timeline;
pub mod wakers;
pub mod wrappers;
