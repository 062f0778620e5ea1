//! Empty library target: lets `profiler` name this crate as a build-dependency, so
//! cargo rebuilds the probes whenever the crate or `profiler-common` changes.
#![no_std]

/// What every probe object needs besides its programs: a `main` for host builds (which
/// have nothing to run: the programs only exist for `bpfel-unknown-none`, built by
/// `profiler/build.rs`), the panic handler, and the license section (GPL:
/// `bpf_probe_read_user` and the stack helpers are GPL-only). One home for both
/// objects' binaries.
#[macro_export]
macro_rules! probe_object {
    () => {
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

        #[cfg(target_arch = "bpf")]
        #[unsafe(link_section = "license")]
        #[unsafe(no_mangle)]
        static LICENSE: [u8; 4] = *b"GPL\0";
    };
}
