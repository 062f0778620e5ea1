//! Kernel ↔ userspace layouts shared by `profiler-ebpf` and `profiler`.
//!
//! Owns: the `#[repr(C)]` keys and values of the BPF maps, their names, the futex op
//! numbering and the loss counters. Must not: contain logic beyond tiny pure helpers
//! both sides need (bucketing, telling a return address), or anything that needs `std`.
//!
//! Every type is `Copy`, made of fixed-width integers with explicit padding, and
//! pinned in size by a `const` assertion: the kernel writes these bytes and userspace
//! reads them back, so a silent layout drift would corrupt every number.
#![no_std]

pub mod blame;
pub mod calls;
pub mod futex;
pub mod go;
pub mod hist;
pub mod loss;
pub mod maps;
pub mod rows;
pub mod shared;
pub mod tally;

pub use blame::*;
pub use calls::follows_call;
pub use futex::{nr, op};
pub use hist::{HIST_BUCKETS, hist_bucket};
pub use loss::{LOSS_KINDS, Loss};
pub use maps::*;
pub use rows::*;
pub use shared::*;
pub use tally::*;
