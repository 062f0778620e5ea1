//! The text report's layout engine: [`Out`] builds the text a line at a time (and the
//! detail blocks' `key  value` lines), [`Table`] aligns columns two spaces apart.
//! Must not: know what a report holds; sections decide what goes in the cells.

use crate::render::fit::chars;
use crate::render::text::WIDTH;
use crate::render::units::more;

/// Never squeeze the SITE column below this, even if the numbers are wide.
const MIN_SITE_WIDTH: usize = 32;

/// Indentation of the detail blocks' key/value lines.
pub(super) const DETAIL_INDENT: &str = "    ";

/// Width of the keys in the detail blocks (`function`, `threads`, …).
pub(super) const DETAIL_KEY: usize = 10;

/// The text being built, one line at a time.
#[derive(Default)]
pub(super) struct Out {
    pub(super) text: String,
}

impl Out {
    pub(super) fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref().trim_end());
        self.text.push('\n');
    }

    pub(super) fn blank(&mut self) {
        self.text.push('\n');
    }

    /// `    key       value`.
    pub(super) fn kv(&mut self, key: &str, value: impl AsRef<str>) {
        self.line(format!(
            "{DETAIL_INDENT}{key:<DETAIL_KEY$} {}",
            value.as_ref()
        ));
    }

    /// A key whose value is several aligned lines, plus `… N more` if some were left out.
    pub(super) fn kv_block(
        &mut self,
        key: &str,
        lines: Vec<String>,
        more_n: usize,
        one: &str,
        many: &str,
    ) {
        let pad = " ".repeat(DETAIL_KEY);
        for (i, line) in lines.into_iter().enumerate() {
            self.kv(if i == 0 { key } else { &pad }, line);
        }
        if more_n > 0 {
            self.kv(&pad, more(more_n as u64, one, many));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Right,
}

/// Aligned columns, two spaces apart; the last column is never padded.
pub(super) struct Table {
    headers: Vec<&'static str>,
    align: Vec<Align>,
    pub(super) rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(columns: &[(&'static str, Align)]) -> Self {
        Self {
            headers: columns.iter().map(|c| c.0).collect(),
            align: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    /// The detail blocks' table, without headers: who or what (threads, addresses,
    /// wakers), then its waits, wait time and share of the site's wait, right-aligned.
    pub(super) fn shares() -> Self {
        Self::new(&[
            ("", Align::Left),
            ("", Align::Right),
            ("", Align::Right),
            ("", Align::Right),
        ])
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(super) fn widths(&self, with_headers: bool) -> Vec<usize> {
        (0..self.headers.len())
            .map(|c| {
                let cells = self.rows.iter().filter_map(|r| r.get(c)).map(|s| chars(s));
                let head = if with_headers {
                    chars(self.headers[c])
                } else {
                    0
                };
                cells.fold(head, usize::max)
            })
            .collect()
    }

    /// Columns left for the last column, given the widths of the others (call before
    /// the last cells are added).
    pub(super) fn last_column_budget(&self) -> usize {
        let widths = self.widths(true);
        let used: usize = widths[..widths.len() - 1].iter().map(|w| w + 2).sum();
        WIDTH.saturating_sub(used).max(MIN_SITE_WIDTH)
    }

    pub(super) fn lines(&self, with_headers: bool) -> Vec<String> {
        let widths = self.widths(with_headers);
        let last = widths.len() - 1;
        let fmt_row = |cells: &[&str]| {
            let mut line = String::new();
            for (c, cell) in cells.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[c].saturating_sub(chars(cell)));
                match self.align[c] {
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                    Align::Left => {
                        line.push_str(cell);
                        if c != last {
                            line.push_str(&pad);
                        }
                    }
                }
            }
            line.trim_end().to_owned()
        };
        let mut lines = Vec::with_capacity(self.rows.len() + 1);
        if with_headers {
            lines.push(fmt_row(&self.headers));
        }
        for row in &self.rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            lines.push(fmt_row(&cells));
        }
        lines
    }

    pub(super) fn render(&self, out: &mut Out) {
        for line in self.lines(true) {
            out.line(line);
        }
    }
}
