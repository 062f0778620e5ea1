//! Folded stacks (`frame;frame;…;frame weight`, outermost first), the input of
//! inferno, Brendan Gregg's `flamegraph.pl`, speedscope and others.
//!
//! Owns: which stacks are drawn and with what weight. Waiters: each listed stack of a
//! site weighs its wait time in ns; the rest of the site's wait (stacks beyond those
//! the report keeps, or a site without a stack) is `[other stacks];<site function>`.
//! Wakers (`--wakers`): each waker's hottest stack (the only one the report keeps)
//! weighs all the threads that waker woke. Must not: do I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::export::{OTHER_STACKS, frame_name};
use crate::render::fit::clean_nonempty;
use crate::render::names::strip_legacy_hash;
use crate::report::model::{Frame, Report};

/// Folded stacks with their weights, merged and sorted by stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folded(pub BTreeMap<String, u64>);

impl Folded {
    fn add(&mut self, frames: &[Frame], leaf: Option<&str>, weight: u64) {
        if weight == 0 {
            return;
        }
        let mut names: Vec<String> = frames
            .iter()
            .rev()
            .map(|f| frame_name(f).replace(';', ","))
            .collect();
        if frames.is_empty() {
            names.push(OTHER_STACKS.to_owned());
            names.push(clean_nonempty(leaf.unwrap_or("?")).replace(';', ","));
        }
        *self.0.entry(names.join(";")).or_default() += weight;
    }

    /// One `stack weight` line each, sorted by stack, ending with a newline.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (stack, weight) in &self.0 {
            let _ = writeln!(text, "{stack} {weight}");
        }
        text
    }

    /// Sum of all weights.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// Waiter stacks weighted by wait time (ns).
pub fn waits(report: &Report) -> Folded {
    let mut folded = Folded::default();
    for site in &report.sites {
        let leaf = site.function.as_deref().map(strip_legacy_hash);
        let mut listed = 0u64;
        for stack in &site.stacks {
            folded.add(&stack.frames, leaf, stack.wait.total_wait_ns);
            listed = listed.saturating_add(stack.wait.total_wait_ns);
        }
        folded.add(&[], leaf, site.total_wait_ns.saturating_sub(listed));
    }
    folded
}

/// Waker stacks weighted by threads woken.
pub fn wakers(report: &Report) -> Folded {
    let mut folded = Folded::default();
    for waker in &report.wakers {
        let leaf = waker.function.as_deref().map(strip_legacy_hash);
        folded.add(&waker.stack, leaf, waker.woken);
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Site, StackShare, WaitSummary};

    fn frame(function: &str) -> Frame {
        Frame {
            address: "0x1".to_owned(),
            function: Some(function.to_owned()),
            ..Frame::default()
        }
    }

    #[test]
    fn stacks_are_outermost_first_and_the_rest_is_other_stacks() {
        let report = Report {
            sites: vec![Site {
                function: Some("app::put".to_owned()),
                total_wait_ns: 1_000,
                stacks: vec![StackShare {
                    wait: WaitSummary {
                        waits: 3,
                        total_wait_ns: 700,
                        max_wait_ns: 400,
                    },
                    frames: vec![frame("futex_wait"), frame("app::put"), frame("main")],
                    unwind: None,
                }],
                more_stacks: 2,
                ..Site::default()
            }],
            ..Report::default()
        };
        let folded = waits(&report);
        assert_eq!(
            folded.to_text(),
            "[other stacks];app::put 300\nmain;app::put;futex_wait 700\n"
        );
        assert_eq!(folded.total(), 1_000);
    }

    #[test]
    fn names_never_break_the_format() {
        let mut f = frame("<[u8; 4] as Foo>::bar::h0123456789abcdef");
        assert_eq!(frame_name(&f), "<[u8; 4] as Foo>::bar");
        let mut folded = Folded::default();
        folded.add(&[f.clone()], None, 5);
        assert_eq!(folded.to_text(), "<[u8, 4] as Foo>::bar 5\n");
        f.function = None;
        f.module = Some("/usr/lib/libc.so.6".to_owned());
        f.module_offset = Some("0x9a0".to_owned());
        assert_eq!(frame_name(&f), "[libc.so.6+0x9a0]");
        f.module = None;
        assert_eq!(frame_name(&f), "[0x1]");
        assert_eq!(clean_nonempty("a\nb"), "a?b");
    }

    #[test]
    fn empty_report_folds_to_nothing() {
        assert_eq!(waits(&Report::default()).to_text(), "");
        assert_eq!(wakers(&Report::default()).to_text(), "");
    }
}
