//! Which threads of some processes are alive now, from `/proc/PID/task`: how the
//! session learns that a thread exited (the probe forgets it at `sched_process_exit`
//! but tells userspace nothing), to fold its rows and forget its stacks.
//!
//! Owns: reading the thread lists. Must not: decide what to do with exited threads
//! (`session::fold` and `session::stacks` do).

use std::collections::HashSet;

/// The live threads of the processes asked about, read once.
pub(super) struct Threads {
    live: HashSet<(u32, u32)>,
    processes: HashSet<u32>,
}

impl Threads {
    /// Read the thread lists of `tgids` (a process that exited has none).
    pub(super) fn of(tgids: impl IntoIterator<Item = u32>) -> Self {
        let mut live = HashSet::new();
        let mut processes = HashSet::new();
        for tgid in tgids.into_iter().collect::<HashSet<u32>>() {
            let Ok(dir) = std::fs::read_dir(format!("/proc/{tgid}/task")) else {
                continue;
            };
            processes.insert(tgid);
            live.extend(
                dir.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .map(|tid| (tgid, tid)),
            );
        }
        Self { live, processes }
    }

    /// Is thread `tid` of `tgid` alive (with `tid` 0: is the process)? Only for the
    /// processes read.
    pub(super) fn has(&self, tgid: u32, tid: u32) -> bool {
        if tid == 0 {
            self.processes.contains(&tgid)
        } else {
            self.live.contains(&(tgid, tid))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_thread_are_alive_and_a_dead_pid_is_not() {
        let me = std::process::id();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        // Pids are below 2^22 on Linux: u32::MAX - 5 is nobody.
        let t = Threads::of([me, u32::MAX - 5]);
        assert!(t.has(me, 0) && t.has(me, tid));
        assert!(!t.has(me, u32::MAX - 7));
        assert!(!t.has(u32::MAX - 5, 0));
    }
}
