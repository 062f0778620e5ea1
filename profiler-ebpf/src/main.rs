//! lockprof's kernel side: futex wait and wake probes on the raw syscall tracepoints.
//!
//! Owns: deciding which syscalls of which processes are futex waits/wakes, timing the
//! waits, capturing user stacks and aggregating everything into per-CPU hash maps, and
//! following the children of launched commands. Must not: format, symbolize or
//! allocate per event — userspace reads the maps, the probe only counts.
//!
//! Why raw tracepoints: `raw_syscalls:sys_{enter,exit}` attach by name through
//! `bpf_raw_tracepoint_open`, so they need neither kprobes (absent on our kernels)
//! nor a mounted tracefs. The cost is one tiny program run per syscall system-wide,
//! which returns after comparing the syscall number.
//!
//! # Minimum kernel version
//! 4.17 for raw tracepoints; `futex_waitv` needs 5.16 and `futex_wait`/`futex_wake`/
//! `futex_requeue` 6.7, but older kernels simply never issue them.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod probes;

/// A host build of this crate (e.g. `cargo check --workspace`) has nothing to run: the
/// programs only exist for `bpfel-unknown-none`, built by `profiler/build.rs`.
#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("profiler-ebpf builds for bpfel-unknown-none only (see profiler/build.rs)");
}
