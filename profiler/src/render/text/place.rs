//! `function (file:line)` labels for the SITE columns of the sites and wakers tables
//! and the title of each site's detail: one level of detail for all rows, reduced
//! until the column fits.

use crate::render::fit::{chars, clean, cut_end, cut_start};
use crate::render::names::{basename, function_tail, location, tail_components};
use crate::report::model::{Site, WakerSite};

/// Where a site or waker is, as labels are made from it.
#[derive(Clone, Copy)]
pub(super) struct Place<'a> {
    function: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
    module: Option<&'a str>,
}

impl<'a> Place<'a> {
    pub(super) fn of_site(s: &'a Site) -> Self {
        Self {
            function: s.function.as_deref(),
            file: s.file.as_deref(),
            line: s.line,
            module: s.module.as_deref(),
        }
    }

    pub(super) fn of_waker(w: &'a WakerSite) -> Self {
        Self {
            function: w.function.as_deref(),
            file: w.file.as_deref(),
            line: w.line,
            module: w.module.as_deref(),
        }
    }

    /// `function (file:line)` keeping `segments` of the function's path and
    /// `components` of the file's (the module's file name when there is no file).
    fn label(self, segments: usize, components: usize) -> String {
        let func = match self.function {
            Some(f) => function_tail(&clean(f), segments),
            None => "[unknown function]".to_owned(),
        };
        match (self.file, self.module) {
            (Some(file), _) => format!(
                "{func} ({})",
                location(&tail_components(&clean(file), components), self.line)
            ),
            (None, Some(module)) => format!("{func} ({})", basename(&clean(module))),
            (None, None) => func,
        }
    }
}

/// `function (file:line)` labels for a column `width` wide. All rows use the same
/// detail: the function's last three path segments and the file's last three
/// components, with fewer file components, then fewer function segments, while
/// some row does not fit. A row too long even then is cut: the function from the left
/// (its tail is the most specific part), or the whole label at the end.
pub(super) fn place_labels(places: &[Place<'_>], width: usize) -> Vec<String> {
    const LEVELS: [(usize, usize); 4] = [(3, 3), (3, 2), (3, 1), (2, 1)];
    let (min_segments, min_components) = LEVELS[LEVELS.len() - 1];
    // Rows that cannot fit at any level do not hold the others back.
    let fitting: Vec<Place<'_>> = places
        .iter()
        .copied()
        .filter(|p| chars(&p.label(min_segments, min_components)) <= width)
        .collect();
    let (segments, components) = LEVELS
        .into_iter()
        .find(|&(s, c)| fitting.iter().all(|p| chars(&p.label(s, c)) <= width))
        .unwrap_or((min_segments, min_components));
    places
        .iter()
        .map(|p| {
            let label = p.label(segments, components);
            if chars(&label) <= width {
                return label;
            }
            let func = p.function.map_or_else(
                || "[unknown function]".to_owned(),
                |f| function_tail(&clean(f), segments),
            );
            // " (file:line)", kept whole if the function can keep a useful length.
            let place = label.strip_prefix(func.as_str()).unwrap_or_default();
            let room = width.saturating_sub(chars(place));
            if !place.is_empty() && room >= 16 {
                format!("{}{place}", cut_start(&func, room))
            } else {
                cut_end(&label, width)
            }
        })
        .collect()
}
