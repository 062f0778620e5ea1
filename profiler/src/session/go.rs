//! Which targets are Go executables, and their goroutine waits in the session.
//!
//! Owns: noticing Go targets (at the start, and after each exec), loading the Go
//! probes on the first one and attaching them, and adding their rows to each
//! snapshot. Must not: classify waits (`analyze::go`) or touch aya (`collect::go`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::collect::go::{self, GoProbes};
use crate::collect::snapshot::Snapshot;

/// The Go side of a session: idle (no probes loaded) until a target is a Go program.
#[derive(Default)]
pub struct GoTracer {
    probes: Option<GoProbes>,
    /// The executable each target had when it was last inspected (an exec changes it).
    inspected: BTreeMap<u32, PathBuf>,
}

impl GoTracer {
    /// Inspect the targets not inspected yet, or whose executable changed, and attach
    /// to the Go ones. A Go program we cannot probe (too old a Go) gets a warning:
    /// its futex waits are still recorded.
    pub fn inspect<'a>(&mut self, pids: impl Iterator<Item = &'a u32>) -> Result<()> {
        for &pid in pids {
            let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
                continue;
            };
            if self.inspected.get(&pid) == Some(&exe) {
                continue;
            }
            self.inspected.insert(pid, exe.clone());
            // Read through /proc so a target in another mount namespace is found.
            let target = match go::inspect(&PathBuf::from(format!("/proc/{pid}/exe"))) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    eprintln!("lockprof: warning: pid {pid}: goroutine waits not traced: {e}");
                    continue;
                }
            };
            let proc_exe = PathBuf::from(format!("/proc/{pid}/exe"));
            self.load()?
                .attach(pid, &proc_exe, target)
                .with_context(|| {
                    format!("trace the goroutines of pid {pid} ({})", exe.display())
                })?;
        }
        Ok(())
    }

    /// Before a launched command execs `program`: when it is a Go executable, attach
    /// to its file for `pid` now, so that its first goroutine waits are seen (the
    /// kernel arms a pid's uprobes when the exec maps the file).
    pub fn prepare_launch(&mut self, pid: u32, program: &OsStr) -> Result<()> {
        let Some(path) = find_program(program) else {
            return Ok(());
        };
        let target = match go::inspect(&path) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(()),
            Err(e) => {
                eprintln!("lockprof: warning: goroutine waits not traced: {e}");
                return Ok(());
            }
        };
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        self.load()?
            .attach(pid, &canonical, target)
            .with_context(|| format!("trace the goroutines of '{}'", path.display()))?;
        self.inspected.insert(pid, canonical);
        Ok(())
    }

    fn load(&mut self) -> Result<&mut GoProbes> {
        Ok(match &mut self.probes {
            Some(p) => p,
            slot @ None => slot.insert(GoProbes::load().context("load the Go probes")?),
        })
    }

    /// The Go targets and their Go versions.
    pub fn targets(&self) -> BTreeMap<u32, String> {
        self.probes.as_ref().map_or_else(BTreeMap::new, |p| {
            p.targets
                .iter()
                .map(|(&pid, t)| (pid, t.version.clone()))
                .collect()
        })
    }

    /// Add the goroutine waits so far to `snapshot` (nothing without Go targets).
    pub fn merge_into(&self, snapshot: &mut Snapshot) -> Result<()> {
        if let Some(probes) = &self.probes {
            let go = probes
                .snapshot()
                .context("read the Go probes' aggregates")?;
            crate::analyze::go::merge_into(snapshot, &go);
        }
        Ok(())
    }

    /// CPU time of the Go probes and their runs.
    pub fn run_stats(&self) -> (std::time::Duration, u64) {
        self.probes
            .as_ref()
            .map_or((std::time::Duration::ZERO, 0), GoProbes::run_stats)
    }

    /// Stop tracing goroutines; the aggregates stay readable.
    pub fn detach(&mut self) {
        if let Some(p) = &mut self.probes {
            p.detach();
        }
    }
}

/// Where `execvp` would find `program`: itself when it contains a `/`, else the first
/// executable of that name in `$PATH`.
fn find_program(program: &OsStr) -> Option<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_like_execvp() {
        assert_eq!(find_program(OsStr::new("./x")), Some(PathBuf::from("./x")));
        let sh = find_program(OsStr::new("sh")).expect("sh on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(find_program(OsStr::new("lockprof-no-such-program")), None);
    }
}
