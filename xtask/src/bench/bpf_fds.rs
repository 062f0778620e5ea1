//! What a tracer process holds of BPF, read from `/proc`: the fdinfo of its map and
//! program fds, and the run time of its programs.
//!
//! Owns: finding a process's BPF fds by kind, the run time and run counts of its
//! programs, turning the kernel's run-time statistics on for a measurement
//! ([`RunTimeStats`]), and what a tracer's programs ran over one such measurement
//! ([`BpfRuns::over`]: all of them, and its futex tracepoint programs). Must not:
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
    text_field(fdinfo, name)?.parse().ok()
}

/// A `name:` field of an fdinfo, as text.
fn text_field<'a>(fdinfo: &'a str, name: &str) -> Option<&'a str> {
    Some(
        fdinfo
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .trim(),
    )
}

/// One program a process holds, as its fdinfo reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prog {
    pub id: u64,
    /// `prog_type` (`BPF_PROG_TYPE_*`).
    pub kind: u64,
    /// `prog_tag`: the hash the kernel names the program's JIT image by
    /// (`bpf_prog_<tag>_<name>` in `/proc/kallsyms`).
    pub tag: String,
    pub run_ns: u64,
    pub runs: u64,
}

/// `pid`'s programs, each once however many fds name it.
pub fn progs(pid: u32) -> Vec<Prog> {
    let mut progs: Vec<Prog> = fdinfos(pid, "bpf-prog")
        .iter()
        .filter_map(|i| {
            Some(Prog {
                id: field(i, "prog_id")?,
                kind: field(i, "prog_type")?,
                tag: text_field(i, "prog_tag")?.to_owned(),
                run_ns: field(i, "run_time_ns")?,
                runs: field(i, "run_cnt")?,
            })
        })
        .collect();
    progs.sort_unstable_by_key(|p| p.id);
    progs.dedup_by_key(|p| p.id);
    progs
}

/// `BPF_PROG_TYPE_TRACEPOINT`: programs on `syscalls:*` and other tracefs events.
const PROG_TYPE_TRACEPOINT: u64 = 5;

/// What a tracer's tracepoint programs ran so far: for both tracers of the bench,
/// their futex entry and exit programs (`syscalls:sys_{enter,exit}_futex*`), plus
/// lockprof's `task_newtask`, which runs once per new task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracepointRuns {
    /// Their run time, ns (with the statistics on).
    pub run_ns: u64,
    /// The most runs of any one of them: the machine's futex calls (the entry
    /// program runs on every one, whichever process makes it).
    pub calls: u64,
}

fn tracepoint_runs_of(progs: &[Prog]) -> TracepointRuns {
    let tp = progs.iter().filter(|p| p.kind == PROG_TYPE_TRACEPOINT);
    TracepointRuns {
        run_ns: tp.clone().map(|p| p.run_ns).sum(),
        calls: tp.map(|p| p.runs).max().unwrap_or(0),
    }
}

/// What a tracer's programs ran: all of them, and its tracepoint (futex) programs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BpfRuns {
    /// The run time of all its programs, ns.
    pub run_ns: u64,
    /// Its tracepoint programs' run time and the machine's futex calls.
    pub futex: TracepointRuns,
}

impl BpfRuns {
    /// So far, for process `pid`'s programs (read once): the run times count only
    /// while the kernel's run-time statistics are on ([`RunTimeStats`]).
    fn of(pid: u32) -> BpfRuns {
        let progs = progs(pid);
        BpfRuns {
            run_ns: progs.iter().map(|p| p.run_ns).sum(),
            futex: tracepoint_runs_of(&progs),
        }
    }

    /// What ran between `earlier` and `self`.
    fn since(self, earlier: BpfRuns) -> BpfRuns {
        BpfRuns {
            run_ns: self.run_ns.saturating_sub(earlier.run_ns),
            futex: TracepointRuns {
                run_ns: self.futex.run_ns.saturating_sub(earlier.futex.run_ns),
                calls: self.futex.calls.saturating_sub(earlier.futex.calls),
            },
        }
    }

    /// Runs `window` with the kernel's run-time statistics on (and off again however
    /// it returns: they cost every program run two clock reads), and returns what it
    /// returned with what process `tracer`'s programs ran meanwhile.
    pub fn over<T>(
        tracer: u32,
        window: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<(T, BpfRuns)> {
        let _stats = RunTimeStats::enable();
        let before = BpfRuns::of(tracer);
        let out = window()?;
        Ok((out, BpfRuns::of(tracer).since(before)))
    }
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
        let info = "pos:\t0\nprog_type:\t5\nprog_tag:\t56e2f3a83d8dea16\nprog_id:\t26138\nrun_time_ns:\t19064066\nrun_cnt:\t260260\n";
        assert_eq!(field(info, "prog_id"), Some(26_138));
        assert_eq!(text_field(info, "prog_tag"), Some("56e2f3a83d8dea16"));
        assert_eq!(field(info, "run_time_ns"), Some(19_064_066));
        assert_eq!(field(info, "run_cnt"), Some(260_260));
        assert_eq!(field(info, "missing"), None);
    }

    #[test]
    fn this_process_holds_no_bpf_programs() {
        assert_eq!(BpfRuns::of(std::process::id()), BpfRuns::default());
    }

    #[test]
    fn runs_since_an_earlier_reading_are_the_difference() {
        let at = |run_ns, tp_ns, calls| BpfRuns {
            run_ns,
            futex: TracepointRuns {
                run_ns: tp_ns,
                calls,
            },
        };
        assert_eq!(at(900, 500, 40).since(at(100, 50, 10)), at(800, 450, 30));
        // A program that went away between the readings takes nothing below zero.
        assert_eq!(at(10, 5, 1).since(at(100, 50, 10)), BpfRuns::default());
    }

    #[test]
    fn futex_calls_are_the_busiest_tracepoint_program() {
        let prog = |id, kind, run_ns, runs| Prog {
            id,
            kind,
            tag: String::new(),
            run_ns,
            runs,
        };
        // lockprof's programs: futex entry and exit, task_newtask (tracepoints), a raw
        // tracepoint and sched_switch (tracing).
        let progs = [
            prog(1, 5, 3_000, 10),
            prog(2, 5, 4_000, 10),
            prog(3, 5, 500, 1),
            prog(4, 17, 200, 2),
            prog(5, 26, 9_000, 40),
        ];
        assert_eq!(
            tracepoint_runs_of(&progs),
            TracepointRuns {
                run_ns: 7_500,
                calls: 10
            }
        );
    }
}
