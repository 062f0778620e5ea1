//! The terminal view of a [`Report`]: what `lockprof report` and the end of
//! `lockprof record` print.
//!
//! Owns: the plain-text layout, one file per section in the order they print —
//! `header`, the ranked `sites` table (its labels from `place`), each site's `detail`
//! (with `woken_by` and its hottest `stack`), then `wakers` and "held across
//! blocking" — laid out by `table`. Must not: do I/O, compute statistics (every number
//! shown is read from the `Report`), or emit colour or any terminal control: text from
//! the target (thread names, symbols) is printed through `render::fit::clean`, so a
//! hostile `comm` cannot drive the terminal. Units and names come from
//! `render::{units, names}`, shared with every other output.
//!
//! Lines stay within [`WIDTH`] columns (counted in `char`s) except where a value is
//! wider than any sensible column; long names are shortened for the tables and cut
//! with `…`, and the JSON report keeps them in full.

mod detail;
mod header;
mod place;
mod sites;
mod stack;
mod table;
mod wakers;
mod woken_by;

#[cfg(test)]
mod tests;

use crate::render::text::table::Out;
use crate::report::model::Report;

// The helpers other views used from here before they moved to `render::{units, names,
// held}`: kept as paths so that `tui/` and `ci/` (being changed in parallel) build
// unchanged; new code imports them from their homes.
pub use crate::render::held::held_lines;
pub use crate::render::names::{short_function, short_path};
pub use crate::render::units::{fmt_count, fmt_duration_ns, fmt_pct};

/// Width the layout aims for, in columns.
pub const WIDTH: usize = 120;

/// What [`render`] shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextOptions {
    /// Sites in the table and detail blocks (the rest are counted).
    pub max_sites: usize,
    /// Print the hottest stack of each site.
    pub stacks: bool,
    /// Frames of that stack before `… N more frames`.
    pub max_frames: usize,
    /// Threads listed per site.
    pub threads: usize,
    /// Show every lock-implementation frame (`Frame::lock_impl`) instead of folding
    /// each run of them into one line.
    pub expand_lock_frames: bool,
}

impl Default for TextOptions {
    fn default() -> Self {
        Self {
            max_sites: 15,
            stacks: true,
            max_frames: 12,
            threads: 4,
            expand_lock_frames: false,
        }
    }
}

/// Renders `report` as plain text, ending with a newline.
pub fn render(report: &Report, opts: &TextOptions) -> String {
    let mut out = Out::default();
    header::header(&mut out, report);
    out.blank();
    if report.sites.is_empty() {
        out.line("no futex waits were recorded for the target(s)");
    } else {
        sites::sites_table(&mut out, report, opts);
        for (rank, site) in report.sites.iter().take(opts.max_sites).enumerate() {
            out.blank();
            detail::site_detail(&mut out, report, rank + 1, site, opts);
        }
    }
    if !report.wakers.is_empty() {
        out.blank();
        wakers::wakers_table(&mut out, &report.wakers);
    }
    out.text
}
