//! Where the command line's results go: report files checked before recording and
//! written without loss after it, stdout, and saved reports read back as input.
//!
//! Owns: the pre-flight check of `-o` (before any probe is attached), the fallback
//! file when the report cannot be written at the end anyway, giving both to the sudo
//! caller, writing to stdout, and
//! reading report files as bad input (exit 2) when they are unreadable. Must not:
//! format reports (`render`, `report::json`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::args::{Format, RenderArgs};
use crate::exit::input_error;
use crate::render::text::{self, TextOptions};
use crate::report::{self, Report};
use crate::session::user;

/// A report file that was checked to be writable before the recording started.
#[derive(Debug)]
pub struct ReportOutput {
    path: PathBuf,
}

/// Where the report ended up.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    /// Where it was asked.
    AsAsked,
    /// In this fallback file, because writing where asked failed with the message.
    Fallback { path: PathBuf, error: String },
}

impl ReportOutput {
    /// Checks that a report can be written to `path`: it is not a directory, and a
    /// file can be created next to it (the report is written to a temporary there and
    /// renamed over `path`). Fails with bad input (exit 2) otherwise.
    pub fn check(path: &Path) -> Result<Self> {
        let shown = path.display();
        if path.is_dir() {
            return Err(input_error(anyhow::anyhow!(
                "cannot write the report to '{shown}': it is a directory"
            )));
        }
        let Some(name) = path.file_name() else {
            return Err(input_error(anyhow::anyhow!(
                "cannot write the report to '{shown}': not a file name"
            )));
        };
        let dir = parent_dir(path);
        let mut probe_name = std::ffi::OsString::from(".");
        probe_name.push(name);
        probe_name.push(format!(".{}.check", std::process::id()));
        let probe = dir.join(probe_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                // Best effort: a leftover empty dot-file is harmless.
                let _ = std::fs::remove_file(&probe);
                Ok(Self {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => Err(input_error(anyhow::anyhow!(
                "cannot write the report to '{shown}': cannot create a file in '{}': {}",
                dir.display(),
                io_message(&e)
            ))),
        }
    }

    /// The path asked for.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the report atomically where asked; if that fails (the directory was
    /// removed, the disk is full), to a fallback file in the temporary directory, then
    /// in the current one. Fails only when none of them can be written.
    /// Under `sudo`, the file written belongs to the user who ran sudo.
    pub fn save(&self, report: &Report) -> Result<Saved> {
        let Err(first) = report::json::write(report, &self.path) else {
            give_to_caller(&self.path);
            return Ok(Saved::AsAsked);
        };
        let error = format!("{first}");
        let name = fallback_name();
        let mut tried = Vec::new();
        for dir in [std::env::temp_dir(), PathBuf::from(".")] {
            let path = dir.join(&name);
            match report::json::write(report, &path) {
                Ok(()) => {
                    give_to_caller(&path);
                    return Ok(Saved::Fallback { path, error });
                }
                Err(e) => tried.push(format!("{e}")),
            }
        }
        bail!(
            "{error}; no fallback file could be written either ({})",
            tried.join("; ")
        )
    }
}

/// Gives a written report to the sudo caller; a refusal is a warning, since the
/// report itself is safe.
pub fn give_to_caller(path: &Path) {
    if let Err(e) = user::give_to_caller(path) {
        eprintln!(
            "lockprof: warning: '{}' stays owned by root: cannot give it to the sudo caller: {}",
            path.display(),
            io_message(&e)
        );
    }
}

/// `lockprof-report-<unix seconds>-<pid>.json`: unique per run, sortable by time.
fn fallback_name() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("lockprof-report-{secs}-{}.json", std::process::id())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// An I/O error's message without the "(os error N)" suffix.
fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Reads a saved report; an unreadable or invalid file is bad input (exit 2).
pub fn read_report(path: &Path) -> Result<Report> {
    report::json::read(path).map_err(input_error)
}

/// Writes `bytes` to stdout and flushes.
pub fn write_stdout(bytes: &[u8], what: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .with_context(|| format!("write {what} to stdout"))
}

/// Renders the report as `render` asks (text by default) and writes it to stdout.
pub fn print_report(report: &Report, render: &RenderArgs) -> Result<()> {
    let out = match render.format.unwrap_or(Format::Text) {
        Format::Text => text::render(
            report,
            &TextOptions {
                max_sites: render.top,
                stacks: !render.no_stacks,
                expand_lock_frames: render.expand_lock_frames,
                ..TextOptions::default()
            },
        ),
        Format::Json => report::json::to_string(report),
    };
    write_stdout(out.as_bytes(), "the report")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{BAD_INPUT, code_for};

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lockprof-output-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn check_refuses_missing_directories_and_directories_as_files() {
        let err = ReportOutput::check(Path::new("/nonexistent/dir/x.json")).unwrap_err();
        assert_eq!(code_for(&err), BAD_INPUT);
        assert_eq!(
            format!("{err:#}"),
            "cannot write the report to '/nonexistent/dir/x.json': cannot create a file in \
             '/nonexistent/dir': No such file or directory"
        );
        let dir = scratch("isdir");
        let err = ReportOutput::check(&dir).unwrap_err();
        assert!(format!("{err:#}").ends_with("it is a directory"), "{err:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn check_leaves_nothing_behind() {
        let dir = scratch("clean");
        let out = ReportOutput::check(&dir.join("run.json")).unwrap();
        assert_eq!(out.path(), dir.join("run.json"));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_falls_back_when_the_directory_went_away() {
        let dir = scratch("gone");
        let out = ReportOutput::check(&dir.join("run.json")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let report = Report::default();
        let Saved::Fallback { path, error } = out.save(&report).unwrap() else {
            panic!("the directory is gone: the report cannot be where asked");
        };
        assert!(error.contains("run.json"), "{error}");
        let back = report::json::read(&path).unwrap();
        assert_eq!(back, report);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn save_writes_where_asked() {
        let dir = scratch("asked");
        let out = ReportOutput::check(&dir.join("run.json")).unwrap();
        assert_eq!(out.save(&Report::default()).unwrap(), Saved::AsAsked);
        assert!(report::json::read(&dir.join("run.json")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
