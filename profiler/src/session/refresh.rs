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
    // The first refresh loads each module's symbols: a one-time cost, shown apart.
    let first_cpu = ms(times[0].2);
    let cpu = median(&mut times.iter().map(|t| t.2).collect());
    format!(
        "; {} refreshes took median {:.1} ms wall ({:.1}..{:.1}), {:.1} ms CPU ({:.1}..{:.1}; the first {:.1}), of which reading maps {:.1} ms wall",
        times.len(),
        wall.0,
        wall.1,
        wall.2,
        cpu.0,
        cpu.1,
        cpu.2,
        first_cpu,
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
/// lockprof's own CPU time so far, all threads, user + system (what `top` and the
/// report's cost line show as lockprof's cost besides its probes).
pub(crate) fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage into the pointer we pass, which is valid
    // and large enough; on failure it writes nothing and we read zeroes.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

pub(crate) fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_gives_medians_ranges_and_the_first_refresh_apart() {
        let ms = Duration::from_millis;
        let mut times = [
            (ms(50), ms(10), ms(40)),
            (ms(20), ms(5), ms(8)),
            (ms(30), ms(7), ms(12)),
        ];
        assert_eq!(
            refresh_summary(&mut times),
            "; 3 refreshes took median 30.0 ms wall (20.0..50.0), 12.0 ms CPU (8.0..40.0; \
             the first 40.0), of which reading maps 7.0 ms wall"
        );
        assert_eq!(refresh_summary(&mut []), "");
    }
}
