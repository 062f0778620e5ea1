//! Flame-graph SVG of folded stacks, drawn by inferno.
//!
//! Owns: the picture's options (title, units, colours chosen by a hash of the name so
//! the same report always gives the same SVG). Must not: decide which stacks or
//! weights are drawn (that is `export::folded`), or do I/O beyond the given writer.

use std::io::Write;

use inferno::flamegraph::{self, Options};

use crate::export::folded::Folded;

/// What the picture shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    /// Waiter stacks, weighted by wait time in ns.
    WaitNs,
    /// Waker stacks, weighted by threads woken.
    Woken,
}

/// Writes the SVG of `folded` to `out`. An empty profile still gives a valid SVG
/// (inferno's, saying there was no input).
pub fn write_svg(
    folded: &Folded,
    weight: Weight,
    title: Option<&str>,
    out: impl Write,
) -> std::io::Result<()> {
    let mut opts = Options::default();
    let (default_title, count_name) = match weight {
        Weight::WaitNs => ("lockprof: wait time by waiting stack", "ns waited"),
        Weight::Woken => ("lockprof: threads woken by waking stack", "threads woken"),
    };
    title.unwrap_or(default_title).clone_into(&mut opts.title);
    count_name.clone_into(&mut opts.count_name);
    opts.hash = true;
    let lines: Vec<String> = folded
        .0
        .iter()
        .map(|(stack, w)| format!("{stack} {w}"))
        .collect();
    match flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), out) {
        // inferno has already written an SVG saying there is no input.
        Err(e) if folded.0.is_empty() && e.kind() == std::io::ErrorKind::InvalidData => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_names_the_frames_and_is_deterministic() {
        let mut folded = Folded::default();
        folded.0.insert("main;app::put;futex_wait".to_owned(), 700);
        let mut a = Vec::new();
        write_svg(&folded, Weight::WaitNs, None, &mut a).expect("svg");
        let svg = String::from_utf8(a.clone()).expect("utf-8");
        assert!(svg.starts_with("<?xml"), "{}", &svg[..40]);
        assert!(svg.contains("app::put"));
        assert!(svg.contains("lockprof: wait time by waiting stack"));
        let mut b = Vec::new();
        write_svg(&folded, Weight::WaitNs, None, &mut b).expect("svg");
        assert_eq!(a, b);
    }

    #[test]
    fn empty_profile_gives_an_svg() {
        let mut out = Vec::new();
        write_svg(&Folded::default(), Weight::Woken, Some("t"), &mut out).expect("svg");
        assert!(String::from_utf8_lossy(&out).contains("<svg"));
    }
}
