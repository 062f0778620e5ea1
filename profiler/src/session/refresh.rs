//! What a refresh costs lockprof itself: its CPU and wall time for `--verbose`, and
//! handing freed memory back so a long recording's RSS shows what it holds.
//!
//! Owns: measuring and summarizing refreshes. Must not: read the maps or build
//! reports (the `Session` does, and calls these around it).

use std::time::Duration;

/// "; N refreshes took median … ms (max …)" for `--verbose`, or nothing.
pub(crate) fn refresh_summary(times: &mut [(Duration, Duration, Duration)]) -> String {
    if times.is_empty() {
        return String::new();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        (ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]))
    };
    let wall = median(&mut times.iter().map(|t| t.0).collect());
    let read = median(&mut times.iter().map(|t| t.1).collect());
    let cpu = median(&mut times.iter().map(|t| t.2).collect());
    format!(
        "; {} refreshes took median {:.1} ms wall ({:.1}..{:.1}), {:.1} ms CPU ({:.1}..{:.1}), of which reading maps {:.1} ms wall",
        times.len(),
        wall.0,
        wall.1,
        wall.2,
        cpu.0,
        cpu.1,
        cpu.2,
        read.0,
    )
}

/// Hand the allocator's free pages back to the kernel. A refresh allocates and frees
/// megabytes (drained rows, 16 KiB stack copies, the report), and glibc keeps what
/// was freed inside its heap, so the resident size of a long recording would drift
/// up with fragmentation rather than with what lockprof holds.
pub(crate) fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory of the allocator to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// CPU time used by the calling thread so far.
pub(crate) fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
