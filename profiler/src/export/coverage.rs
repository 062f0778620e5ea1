//! How much of a report's wait a flame graph can draw with a full call path.
//!
//! Owns: splitting the wait time of a report into what is drawn with a whole call path,
//! what is drawn with a truncated one (the DWARF unwinder ran out of copied stack or
//! unwind information), and what is drawn under `[other stacks]` (call paths the
//! report did not keep, or a site without any stack). Must not: draw.
//!
//! Why: a flame graph whose wait is mostly one `[other stacks]` bar says nothing; the
//! report keeps enough merged call paths per site (see `analyze::stacks`) to cover
//! 99 % of each site's wait, and `lockprof flamegraph` says so when a report falls short.

use crate::report::model::Report;
use crate::resolve::unwind::UnwindMethod;

/// The share of wait a flame graph draws fully, below which `flamegraph` says so.
pub const FULL_PATH_GOAL: f64 = 0.95;

/// A report's wait time (ns), by how a flame graph of it draws it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Drawn with its call path up to the thread's or process's entry.
    pub full_ns: u64,
    /// Drawn with a call path whose outer frames are missing.
    pub truncated_ns: u64,
    /// Drawn under `[other stacks]`, with no call path.
    pub other_ns: u64,
}

impl Coverage {
    /// Of the waiting stacks of `report`, weighted by wait time like
    /// [`folded::waits`](crate::export::folded::waits).
    pub fn of(report: &Report) -> Self {
        let mut c = Coverage::default();
        let truncated = UnwindMethod::DwarfTruncated.as_str();
        for site in &report.sites {
            let mut listed = 0u64;
            for stack in &site.stacks {
                let ns = stack.wait.total_wait_ns;
                listed = listed.saturating_add(ns);
                if stack.frames.is_empty() {
                    c.other_ns += ns;
                } else if stack.unwind.as_deref() == Some(truncated) {
                    c.truncated_ns += ns;
                } else {
                    c.full_ns += ns;
                }
            }
            c.other_ns += site.total_wait_ns.saturating_sub(listed);
        }
        c
    }

    /// All the wait drawn.
    pub fn total_ns(&self) -> u64 {
        self.full_ns + self.truncated_ns + self.other_ns
    }

    /// The share drawn with a full call path (1 for a report without wait).
    pub fn full_share(&self) -> f64 {
        match self.total_ns() {
            0 => 1.0,
            total => self.full_ns as f64 / total as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Frame, Site, StackShare, WaitSummary};

    fn stack(ns: u64, unwind: Option<&str>, frames: usize) -> StackShare {
        StackShare {
            wait: WaitSummary {
                waits: 1,
                total_wait_ns: ns,
                max_wait_ns: ns,
            },
            frames: vec![Frame::default(); frames],
            unwind: unwind.map(str::to_owned),
        }
    }

    #[test]
    fn wait_is_split_into_full_truncated_and_unlisted() {
        let site = |total, stacks| Site {
            total_wait_ns: total,
            stacks,
            ..Site::default()
        };
        let report = Report {
            sites: vec![
                site(
                    100,
                    vec![
                        stack(70, Some("dwarf"), 5),
                        stack(10, Some("dwarf-truncated"), 3),
                        stack(5, None, 4),
                    ],
                ),
                site(15, vec![stack(10, None, 0)]),
            ],
            ..Report::default()
        };
        let c = Coverage::of(&report);
        assert_eq!(
            c,
            Coverage {
                full_ns: 75,
                truncated_ns: 10,
                other_ns: 15 + 10 + 5,
            }
        );
        assert_eq!(c.total_ns(), 115);
        assert!((c.full_share() - 75.0 / 115.0).abs() < 1e-9);
        assert!((Coverage::default().full_share() - 1.0).abs() < f64::EPSILON);
    }
}
