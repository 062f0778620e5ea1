//! A budget evaluation as text (a summary line, one line per breach and note) and as
//! JSON.
//!
//! Must not: evaluate anything.

use std::fmt;

use crate::ci::budget::{Breach, Evaluation};

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}  [{}]", self.subject, self.message, self.rule)
    }
}

/// The evaluation as text: a summary line, then one line per breach and per note.
pub fn render(eval: &Evaluation) -> String {
    let mut out = Vec::new();
    let against = [("budget", &eval.budget), ("baseline", &eval.baseline)]
        .into_iter()
        .filter_map(|(what, name)| name.as_ref().map(|n| format!("{what} '{n}'")))
        .collect::<Vec<_>>()
        .join(", ");
    if eval.passed() {
        out.push(format!(
            "lockprof check: '{}' is within budget ({against}): {} {} checked on {} {}",
            eval.report,
            eval.rules,
            if eval.rules == 1 { "rule" } else { "rules" },
            eval.sites,
            if eval.sites == 1 { "site" } else { "sites" },
        ));
    } else {
        out.push(format!(
            "lockprof check: '{}' is over budget ({against}): {} {}",
            eval.report,
            eval.breaches.len(),
            if eval.breaches.len() == 1 {
                "breach"
            } else {
                "breaches"
            },
        ));
        out.extend(eval.breaches.iter().map(|b| format!("  {b}")));
    }
    out.extend(eval.notes.iter().map(|n| format!("note: {n}")));
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The evaluation as pretty JSON with a trailing newline.
pub fn to_json(eval: &Evaluation) -> String {
    // Plain structs of strings and integers: serializing cannot fail.
    let mut text = serde_json::to_string_pretty(eval).expect("an Evaluation always serializes");
    text.push('\n');
    text
}
