//! Standard formats for other tools: folded stacks, flame-graph SVG, pprof.
//!
//! Owns: turning a report's stacks into those formats. Must not: read or write files
//! (the CLI does), or invent data the report does not hold — the report keeps the
//! hottest [`MAX_STACKS_PER_SITE`](crate::analyze::aggregate::MAX_STACKS_PER_SITE) stacks per
//! site, so each site's remaining wait is shown under an `[other stacks]` root rather
//! than spread over guessed stacks.

pub mod flamegraph;
pub mod folded;
pub mod pprof;

use crate::render::text::is_legacy_hash;
use crate::report::model::Frame;

/// Root frame under which each site's wait outside its listed stacks is shown.
pub const OTHER_STACKS: &str = "[other stacks]";

/// A frame's name: the demangled function without a legacy `::h…` hash, else
/// `[module+0xoffset]`, else `[0xaddress]`. Never empty, no control characters.
pub fn frame_name(f: &Frame) -> String {
    let name = match (&f.function, &f.module, &f.module_offset) {
        (Some(function), _, _) => function_name(function).to_owned(),
        (None, Some(module), Some(offset)) => {
            format!("[{}+{offset}]", module.rsplit('/').next().unwrap_or(module))
        }
        (None, _, _) => format!("[{}]", f.address),
    };
    clean(&name)
}

/// A function name without rustc's legacy `::h0123…` hash.
pub fn function_name(function: &str) -> &str {
    match function.rsplit_once("::") {
        Some((head, last)) if is_legacy_hash(last) => head,
        _ => function,
    }
}

/// Control characters become `?`; an empty name becomes `?`.
pub fn clean(s: &str) -> String {
    if s.is_empty() {
        return "?".to_owned();
    }
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
