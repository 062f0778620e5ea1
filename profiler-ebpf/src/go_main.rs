//! lockprof's Go runtime probes, a separate eBPF object from the futex probes: loaded
//! only when a traced process is a Go executable, so other recordings pay nothing
//! for them (see `go.rs`).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod go;

profiler_ebpf::probe_object!();
