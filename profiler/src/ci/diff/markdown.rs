//! `lockprof diff --format markdown`: the same content as GitHub-flavoured markdown
//! tables, for a pull-request comment.
//!
//! Must not: judge anything (the statuses come with the [`Diff`]).

use std::fmt::Write as _;

use crate::ci::diff::text::{
    arrow, change_cell, contention_change, count_arrow, ns_arrow, p99_text, per_sec_text,
    rate_arrow, rules_line,
};
use crate::ci::diff::{Diff, RenderOptions, SiteRef, clean};
use crate::render::text::{fmt_count, fmt_duration_ns, short_function, short_path};

/// Markdown cell text: `|` escaped, no line breaks, backticks made quotes.
fn md(s: &str) -> String {
    clean(s).replace('|', "\\|").replace('`', "'")
}

fn md_site(site: &SiteRef, moved_from: Option<u32>) -> String {
    let function = site
        .function
        .as_deref()
        .map_or_else(|| "[unknown function]".to_owned(), short_function);
    let mut cell = format!("`{}` {}", md(&function), site.kind.as_str());
    if let Some(file) = &site.file {
        let place = site.line.map_or_else(
            || short_path(file),
            |line| format!("{}:{line}", short_path(file)),
        );
        let _ = write!(cell, "<br>`{}`", md(&place));
    }
    if let Some(line) = moved_from {
        let _ = write!(cell, " (moved from line {line})");
    }
    cell
}

/// The diff as GitHub-flavoured markdown, for a pull-request comment.
pub fn to_markdown(diff: &Diff, opts: RenderOptions) -> String {
    let (b, n) = (&diff.base, &diff.new);
    let mut out = vec![
        format!("### lockprof diff: {}", diff.verdict.status.as_str()),
        String::new(),
    ];
    let ratio_text = contention_change(diff);
    out.push(format!(
        "Lock contention per second of recording: **{}**{ratio_text}. Total {} over a recording of {}.",
        rate_arrow(b.contention_wait_per_sec_ns, n.contention_wait_per_sec_ns),
        ns_arrow(b.contention_wait_ns, n.contention_wait_ns),
        ns_arrow(b.duration_ns, n.duration_ns),
    ));
    out.push(String::new());
    out.push(format!("Base `{}`, new `{}`.", md(&b.file), md(&n.file)));
    out.push(String::new());
    out.push(format!("Judged: {}.", md(&rules_line(diff))));
    if !diff.sites.is_empty() {
        out.push(String::new());
        out.push("| Site | Status | Wait/s | Change | Total wait | Waits | p99 | Max |".to_owned());
        out.push("|---|---|--:|--:|--:|--:|--:|--:|".to_owned());
        for c in diff.sites.iter().take(opts.max_sites) {
            let (x, y) = (&c.before, &c.after);
            out.push(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                md_site(&c.site, c.moved_from_line),
                c.status.as_str(),
                rate_arrow(x.wait_per_sec_ns, y.wait_per_sec_ns),
                change_cell(c),
                ns_arrow(x.total_wait_ns, y.total_wait_ns),
                count_arrow(x.waits, y.waits),
                arrow(&p99_text(x), &p99_text(y)),
                ns_arrow(x.max_wait_ns, y.max_wait_ns),
            ));
        }
        md_more(&mut out, diff.sites.len(), opts.max_sites);
    }
    for (title, list) in [
        ("New sites", &diff.new_sites),
        ("Vanished sites", &diff.vanished_sites),
    ] {
        if list.is_empty() {
            continue;
        }
        out.push(String::new());
        out.push(format!("**{title}** ({})", list.len()));
        out.push(String::new());
        out.push("| Site | Status | Wait/s | Total wait | Waits | p99 | Max |".to_owned());
        out.push("|---|---|--:|--:|--:|--:|--:|".to_owned());
        for e in list.iter().take(opts.max_sites) {
            let s = &e.stats;
            out.push(format!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                md_site(&e.site, None),
                e.status.as_str(),
                per_sec_text(s.wait_per_sec_ns),
                fmt_duration_ns(s.total_wait_ns),
                fmt_count(s.waits),
                p99_text(s),
                fmt_duration_ns(s.max_wait_ns),
            ));
        }
        md_more(&mut out, list.len(), opts.max_sites);
    }
    out.push(String::new());
    out.push(format!("**Verdict:** {}", md(&diff.verdict.summary)));
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn md_more(out: &mut Vec<String>, total: usize, shown: usize) {
    if total > shown {
        out.push(String::new());
        out.push(format!("… and {} more.", total - shown));
    }
}
