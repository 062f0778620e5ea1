//! Which targets are Go executables, and their goroutine waits in the session.
//!
//! Owns: noticing Go targets (at the start, and after each exec), loading the Go
//! probes on the first one and attaching them, and adding their rows to each
//! snapshot. Must not: classify waits (`analyze::go`) or touch aya (`collect::go`).

use std::collections::BTreeMap;
use std::path::PathBuf;

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
            let probes = match &mut self.probes {
                Some(p) => p,
                slot @ None => slot.insert(GoProbes::load().context("load the Go probes")?),
            };
            probes.attach(pid, target).with_context(|| {
                format!("trace the goroutines of pid {pid} ({})", exe.display())
            })?;
        }
        Ok(())
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

    /// Stop tracing goroutines; the aggregates stay readable.
    pub fn detach(&mut self) {
        if let Some(p) = &mut self.probes {
            p.detach();
        }
    }
}
