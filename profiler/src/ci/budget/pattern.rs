//! Which sites a budget rule's `match` names: a substring, or a glob (`*` any run of
//! characters, `?` one), tried against the site's function, `file:line` and id.
//!
//! Must not: look at any measurement.

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::render::text::{short_function, short_path};
use crate::report::model::Site;

/// A site pattern: a substring, or a glob (`*` any run of characters, `?` one) when it
/// contains `*` or `?`. See [`Pattern::matches`] for what it is tried against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern(pub String);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().is_empty() {
            return Err(de::Error::custom(
                "'match' is empty: give part of a function name, a file:line or a glob",
            ));
        }
        Ok(Pattern(text))
    }
}

impl Pattern {
    fn is_glob(&self) -> bool {
        self.0.contains(['*', '?'])
    }

    /// Is `site` matched? The pattern is tried against the site's function (in full
    /// and as `lockprof report` shortens it), its `file:line` (in full, the last three
    /// path components, and the file name alone), and its id. A plain pattern matches when it is a
    /// substring of one of them; a glob must match one of them whole.
    pub fn matches(&self, site: &Site) -> bool {
        let mut names: Vec<String> = vec![site.id.clone()];
        if let Some(f) = &site.function {
            names.push(f.clone());
            names.push(short_function(f));
        }
        if let Some(file) = &site.file {
            let line = site.line.map(|l| format!(":{l}")).unwrap_or_default();
            names.push(format!("{file}{line}"));
            names.push(format!("{}{line}", short_path(file)));
            let base = file.rsplit('/').next().unwrap_or(file);
            names.push(format!("{base}{line}"));
        }
        if self.is_glob() {
            names.iter().any(|n| glob(&self.0, n))
        } else {
            names.iter().any(|n| n.contains(&self.0))
        }
    }
}

/// Whole-string glob match: `*` any run of characters (also `::` and `/`), `?` one.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_substrings() {
        assert!(glob("*Store::writer", "kmutex::Store::writer"));
        assert!(glob("src/*.rs:1?", "src/store.rs:12"));
        assert!(!glob("src/*.rs:1?", "src/store.rs:123"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acbd"));
        let site = Site {
            id: "mutex|app|app::Store::writer|src/store.rs:42".to_owned(),
            function: Some("app::Store::writer".to_owned()),
            file: Some("/home/me/app/src/store.rs".to_owned()),
            line: Some(42),
            ..Site::default()
        };
        for yes in [
            "Store::writer",
            "store.rs:42",
            "app/src/store.rs:4",
            "*::writer",
            "store.rs:4?",
        ] {
            assert!(Pattern(yes.to_owned()).matches(&site), "{yes}");
        }
        for no in [
            "Store::reader",
            "*::writer2",
            "store.rs:43",
            "src/store.rs:4?",
        ] {
            assert!(!Pattern(no.to_owned()).matches(&site), "{no}");
        }
    }
}
