//! lockprof's Go runtime probes, a separate eBPF object from the futex probes: loaded
//! only when a traced process is a Go executable, so other recordings pay nothing
//! for them (see `go.rs`).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod go;

/// A host build has nothing to run (see `main.rs`).
#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("profiler-ebpf builds for bpfel-unknown-none only (see profiler/build.rs)");
}

#[cfg(all(target_arch = "bpf", not(test)))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here; nothing can run.
    loop {}
}

/// GPL: `bpf_probe_read_user` and the stack helpers are GPL-only.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
