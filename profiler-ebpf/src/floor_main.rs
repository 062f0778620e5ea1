//! The cost-floor object (see `floor.rs`): minimal "time a futex wait" program pairs,
//! loaded only by the root test that prices them, never by `lockprof`.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![allow(
    clippy::inline_always,
    reason = "eBPF: helpers must be inlined into the program"
)]
#![allow(
    clippy::needless_pass_by_value,
    reason = "aya's program macros hand the context to the entry point by value"
)]
#![allow(
    clippy::cast_ptr_alignment,
    reason = "tracepoint record fields sit at 8-byte aligned offsets of the record"
)]

#[cfg(target_arch = "bpf")]
mod floor;
// The probe's register access, shared (the floor uses a part of it).
#[cfg(target_arch = "bpf")]
#[allow(dead_code, reason = "the floor reads only the frame-pointer registers")]
mod regs;

profiler_ebpf::probe_object!();
