//! The wakers table (wake sites ranked by threads woken) and, under it, "held across
//! blocking": the wakers whose threads were blocked for most of the time their
//! waiters waited.

use crate::render::held::{blocked_ns, held_lines};
use crate::render::text::place::{Place, place_labels};
use crate::render::text::table::{Align, Out, Table};
use crate::render::units::{fmt_count, fmt_duration_ns};
use crate::report::model::WakerSite;

/// Wakers listed in the wakers section.
const MAX_WAKERS: usize = 5;

pub(super) fn wakers_table(out: &mut Out, wakers: &[WakerSite]) {
    let shown = wakers.len().min(MAX_WAKERS);
    out.line(format!(
        "wakers by threads woken ({shown} of {}; WAIT ENDED = the wait time of the waits they ended):",
        wakers.len()
    ));
    let mut table = Table::new(&[
        ("#", Align::Right),
        ("KIND", Align::Left),
        ("CALLS", Align::Right),
        ("WOKEN", Align::Right),
        ("WOKE-NONE", Align::Right),
        ("BROADCASTS", Align::Right),
        ("WAIT ENDED", Align::Right),
        ("SITE", Align::Left),
    ]);
    for (rank, w) in wakers.iter().take(shown).enumerate() {
        table.row(vec![
            (rank + 1).to_string(),
            w.kind.as_str().to_owned(),
            fmt_count(w.calls),
            fmt_count(w.woken),
            fmt_count(w.woke_none),
            fmt_count(w.woke_many),
            fmt_duration_ns(w.caused_wait_ns),
        ]);
    }
    let places: Vec<Place<'_>> = wakers[..shown].iter().map(Place::of_waker).collect();
    let labels = place_labels(&places, table.last_column_budget());
    let named: Vec<(&WakerSite, String)> = wakers[..shown].iter().zip(labels.clone()).collect();
    for (row, label) in table.rows.iter_mut().zip(labels) {
        row.push(label);
    }
    table.render(out);
    held_across_findings(out, &named);
}

/// Wakers whose threads were blocked (off CPU, not just preempted) for most of the
/// time their waiters waited:
/// locks held across blocking (a sleep, I/O, another lock), the usual root cause of
/// a convoy.
fn held_across_findings(out: &mut Out, wakers: &[(&WakerSite, String)]) {
    let blocking: Vec<String> = wakers
        .iter()
        .filter(|(w, _)| w.held.window_ns > 0 && blocked_ns(&w.held) * 2 > w.held.window_ns)
        .flat_map(|(w, label)| {
            let mut lines = vec![format!("  {}", label.trim())];
            lines.extend(held_lines(&w.held).into_iter().map(|l| format!("    {l}")));
            lines
        })
        .collect();
    if blocking.is_empty() {
        return;
    }
    out.blank();
    out.line("held across blocking (waker blocked for most of its waiters' wait):");
    for line in blocking {
        out.line(line);
    }
}
