//! Standard formats for other tools: folded stacks, flame-graph SVG, pprof.
//!
//! Owns: turning a report's stacks into those formats. Must not: read or write files
//! (the CLI does), or invent data the report does not hold — the report keeps the
//! hottest [`MAX_STACKS_PER_SITE`](crate::analyze::aggregate::MAX_STACKS_PER_SITE) stacks per
//! site, so each site's remaining wait is shown under an `[other stacks]` root rather
//! than spread over guessed stacks.

pub mod coverage;
pub mod flamegraph;
pub mod folded;
pub mod pprof;

use crate::render::fit::clean_nonempty;
use crate::render::names::{basename, strip_legacy_hash};
use crate::report::model::Frame;

/// Root frame under which each site's wait outside its listed stacks is shown.
pub const OTHER_STACKS: &str = "[other stacks]";

/// A frame's name: the demangled function without a legacy `::h…` hash, else
/// `[module+0xoffset]`, else `[0xaddress]`. Never empty, no control characters.
pub fn frame_name(f: &Frame) -> String {
    let name = match (&f.function, &f.module, &f.module_offset) {
        (Some(function), _, _) => strip_legacy_hash(function).to_owned(),
        (None, Some(module), Some(offset)) => format!("[{}+{offset}]", basename(module)),
        (None, _, _) => format!("[{}]", f.address),
    };
    clean_nonempty(&name)
}
