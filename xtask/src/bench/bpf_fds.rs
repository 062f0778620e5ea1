//! What a tracer process holds of BPF, read from `/proc`: the fdinfo of its map and
//! program fds, and the run time of its programs.
//!
//! Owns: finding a process's BPF fds by kind and [`prog_run_ns`], and turning the
//! kernel's run-time statistics on for a measurement ([`RunTimeStats`]). Must not:
//! load or touch any map or program (read-only, by `/proc`), or model sizes
//! (`kmem`).

use std::fs;

/// The fdinfo texts of process `pid`'s fds whose link is `anon_inode:<kind>`
/// (`bpf-map`, `bpf-prog`).
pub fn fdinfos(pid: u32, kind: &str) -> Vec<String> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let link = format!("anon_inode:{kind}");
    fds.filter_map(Result::ok)
        .filter(|fd| fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == link))
        .filter_map(|fd| {
            fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                fd.file_name().to_string_lossy()
            ))
            .ok()
        })
        .collect()
}

/// A numeric `name:` field of an fdinfo.
pub fn field(fdinfo: &str, name: &str) -> Option<u64> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
        .trim()
        .parse()
        .ok()
}

/// The BPF time all of `pid`'s programs have run so far, ns (each program once,
/// however many fds name it): what its probes cost the processes they ran in. Only
/// counted while the kernel's run-time statistics are on ([`RunTimeStats`]).
pub fn prog_run_ns(pid: u32) -> u64 {
    let mut progs: Vec<(u64, u64)> = fdinfos(pid, "bpf-prog")
        .iter()
        .filter_map(|i| Some((field(i, "prog_id")?, field(i, "run_time_ns")?)))
        .collect();
    progs.sort_unstable();
    progs.dedup_by_key(|p| p.0);
    progs.iter().map(|p| p.1).sum()
}

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// The kernel's BPF run-time statistics (`kernel.bpf_stats_enabled`) on while this
/// lives, restored to what they were when dropped. Every program run then reads the
/// clock twice, whichever tracer loaded it, so the benches keep them off while they
/// time the target (lockprof turns them on only for `--probe-time`).
pub struct RunTimeStats {
    before: Option<String>,
}

impl RunTimeStats {
    pub fn enable() -> RunTimeStats {
        let before = fs::read_to_string(STATS_SYSCTL).ok();
        if before.as_deref().map(str::trim) != Some("1") {
            let _ = fs::write(STATS_SYSCTL, "1");
        }
        RunTimeStats { before }
    }
}

impl Drop for RunTimeStats {
    fn drop(&mut self) {
        if let Some(b) = &self.before {
            let _ = fs::write(STATS_SYSCTL, b.trim());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numeric_fields_of_a_prog_fdinfo() {
        let info =
            "pos:\t0\nprog_type:\t5\nprog_id:\t26138\nrun_time_ns:\t19064066\nrun_cnt:\t260260\n";
        assert_eq!(field(info, "prog_id"), Some(26_138));
        assert_eq!(field(info, "run_time_ns"), Some(19_064_066));
        assert_eq!(field(info, "run_cnt"), Some(260_260));
        assert_eq!(field(info, "missing"), None);
    }

    #[test]
    fn this_process_holds_no_bpf_programs() {
        assert_eq!(prog_run_ns(std::process::id()), 0);
    }
}
