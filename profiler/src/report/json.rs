//! The JSON report file: writing a [`Report`] and reading one back.
//!
//! Owns: the on-disk form (pretty JSON with a trailing newline, documented in
//! `docs/report-schema.md`), the schema-version check and [`ReportFileError`]. Must
//! not: change or derive any data (writing then reading gives back an equal `Report`),
//! or panic on any input — a report is user-supplied when read back.
//!
//! Reading checks `schema_version` on a generic JSON value first, so a report from
//! another lockprof version is refused with the version, not a confusing field error.
//! Writing goes through a temporary file in the same directory and a rename, so a
//! crash or a full disk never leaves half a report under the final name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::error::Category;

use crate::report::model::{Report, SCHEMA_VERSION};

/// Why a report file could not be read or written. Every message is one line that
/// names the file; I/O errors are part of the message rather than a `source()`, so
/// printing the chain does not repeat them.
#[derive(Debug, thiserror::Error)]
pub enum ReportFileError {
    /// The file could not be opened or read.
    #[error("cannot read '{path}': {error}")]
    Read { path: String, error: io::Error },

    /// The report could not be written (or moved into place); any previous file of
    /// that name is left untouched.
    #[error("cannot write '{path}': {error}")]
    Write { path: String, error: io::Error },

    /// The text is not JSON, or ends before the JSON does (`truncated`).
    #[error(
        "'{name}' is not a lockprof report: {} JSON at line {line} column {column} ({message})",
        if *.truncated { "truncated" } else { "invalid" }
    )]
    Syntax {
        name: String,
        line: usize,
        column: usize,
        truncated: bool,
        message: String,
    },

    /// Valid JSON, but not a report: not an object, or no usable `schema_version`.
    #[error("'{name}' is not a lockprof report: {reason}")]
    NotAReport { name: String, reason: String },

    /// A report of a schema version this build does not read.
    #[error(
        "'{name}' has report schema version {found}; this lockprof reads version {SCHEMA_VERSION}"
    )]
    UnsupportedVersion { name: String, found: u64 },

    /// A report of the right version with a missing field or a value of the wrong type.
    #[error("'{name}': invalid report: {message} at line {line} column {column}")]
    Invalid {
        name: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The report as pretty JSON, with a trailing newline.
pub fn to_string(report: &Report) -> String {
    // A `Report` is plain structs, strings, integers and vectors: serializing it to a
    // string cannot fail (serde_json only fails on non-string map keys or I/O).
    let mut text = serde_json::to_string_pretty(report).expect("a Report always serializes");
    text.push('\n');
    text
}

/// Writes the report to `path`, atomically: the JSON goes to a temporary file in the
/// same directory, is flushed to disk, then renamed over `path`.
pub fn write(report: &Report, path: &Path) -> Result<(), ReportFileError> {
    let failed = |error: io::Error| ReportFileError::Write {
        path: path.display().to_string(),
        error,
    };
    let (tmp_path, mut file) = create_temp_beside(path).map_err(failed)?;
    let written = file
        .write_all(to_string(report).as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp_path, path)
        });
    if let Err(error) = written {
        // Best effort: the error worth reporting is the one above.
        let _ = fs::remove_file(&tmp_path);
        return Err(failed(error));
    }
    // Make the rename itself durable; a failure here loses nothing already written.
    if let Ok(dir) = File::open(parent_dir(path)) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Reads and checks a report file.
pub fn read(path: &Path) -> Result<Report, ReportFileError> {
    let bytes = fs::read(path).map_err(|error| ReportFileError::Read {
        path: path.display().to_string(),
        error,
    })?;
    from_slice(&bytes, &path.display().to_string())
}

/// Parses a report from text; `name` (usually the file name) is used in errors.
pub fn from_str(text: &str, name: &str) -> Result<Report, ReportFileError> {
    from_slice(text.as_bytes(), name)
}

fn from_slice(bytes: &[u8], name: &str) -> Result<Report, ReportFileError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| json_error(&e, name))?;
    check_version(&value, name)?;
    // Parse the text again rather than converting `value`, so that field errors carry
    // a line and column.
    serde_json::from_slice(bytes).map_err(|e| json_error(&e, name))
}

fn check_version(value: &serde_json::Value, name: &str) -> Result<(), ReportFileError> {
    let not_a_report = |reason: String| ReportFileError::NotAReport {
        name: name.to_owned(),
        reason,
    };
    let version = value
        .as_object()
        .and_then(|object| object.get("schema_version"))
        .ok_or_else(|| not_a_report("no 'schema_version'".to_owned()))?;
    let Some(found) = version.as_u64() else {
        return Err(not_a_report(format!(
            "'schema_version' is not a version number: '{}'",
            shorten(&version.to_string(), 40)
        )));
    };
    if found == u64::from(SCHEMA_VERSION) {
        Ok(())
    } else {
        Err(ReportFileError::UnsupportedVersion {
            name: name.to_owned(),
            found,
        })
    }
}

fn json_error(e: &serde_json::Error, name: &str) -> ReportFileError {
    // serde_json's Display is "<message> at line L column C"; keep the message alone,
    // with its `backticks` turned into the house style's 'quotes'.
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full
        .strip_suffix(&suffix)
        .unwrap_or(&full)
        .replace('`', "'");
    match e.classify() {
        Category::Data => ReportFileError::Invalid {
            name: name.to_owned(),
            line: e.line(),
            column: e.column(),
            message,
        },
        Category::Syntax | Category::Eof | Category::Io => ReportFileError::Syntax {
            name: name.to_owned(),
            line: e.line(),
            column: e.column(),
            truncated: e.classify() == Category::Eof,
            message,
        },
    }
}

/// At most `max` chars of `s`, cut with `…`.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Creates `.NAME.PID-N.tmp` next to `path`, never opening an existing file (so a
/// symlink planted under a guessable name is not followed).
fn create_temp_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let Some(file_name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path does not name a file",
        ));
    };
    let dir = parent_dir(path);
    let mut last_error = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".{}-{n}.tmp", std::process::id()));
        let tmp_path = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
        {
            Ok(file) => return Ok((tmp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Site, Target, TargetOrigin, WaitKind};
    use crate::test_support::sample_report;

    const SAMPLE: &str = include_str!("../../tests/fixtures/report-sample.json");

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("lockprof-json-{test}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create temp dir");
            Self(dir)
        }

        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .expect("list temp dir")
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn err(text: &str) -> String {
        from_str(text, "x.json")
            .expect_err("should be refused")
            .to_string()
    }

    /// The smallest valid report: every required field, empty lists.
    fn minimal() -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            lockprof_version: "0.1.0".to_owned(),
            targets: vec![Target {
                pid: 7,
                comm: "app".to_owned(),
                cmdline: "app --serve".to_owned(),
                origin: TargetOrigin::Launch,
                exited: true,
                exit_code: Some(0),
                ..Target::default()
            }],
            sites: vec![Site {
                id: "other|||".to_owned(),
                kind: WaitKind::Other,
                lock_impl: "unknown".to_owned(),
                waits: 1,
                total_wait_ns: 1_500,
                ..Site::default()
            }],
            ..Report::default()
        }
    }

    #[test]
    fn round_trip_is_lossless() {
        let report = sample_report();
        let text = to_string(&report);
        assert!(text.ends_with("}\n"));
        let back = from_str(&text, "sample").expect("read back");
        assert_eq!(back, report);
        assert_eq!(to_string(&back), text, "byte-identical on re-serialization");
    }

    #[test]
    fn fixture_reads_back_byte_identical() {
        let report = from_str(SAMPLE, "report-sample.json").expect("fixture parses");
        assert_eq!(to_string(&report), SAMPLE);
    }

    #[test]
    fn file_format_is_stable() {
        insta::assert_snapshot!(to_string(&minimal()), @r#"
        {
          "schema_version": 1,
          "lockprof_version": "0.1.0",
          "targets": [
            {
              "pid": 7,
              "comm": "app",
              "cmdline": "app --serve",
              "origin": "launch",
              "exited": true,
              "exit_code": 0
            }
          ],
          "started_unix_ms": 0,
          "duration_ns": 0,
          "totals": {
            "waits": 0,
            "wait_ns": 0,
            "contention_waits": 0,
            "contention_wait_ns": 0,
            "eagain": 0,
            "timeouts": 0,
            "timeout_wait_ns": 0,
            "interrupted": 0,
            "other_errors": 0,
            "wake_calls": 0,
            "threads_woken": 0,
            "unfinished_waits": 0
          },
          "losses": {
            "stack_collisions": 0,
            "stack_errors": 0,
            "wait_map_full": 0,
            "wake_map_full": 0,
            "inflight_map_full": 0,
            "target_map_full": 0,
            "user_read_errors": 0,
            "unsymbolized_frames": 0,
            "edge_map_full": 0,
            "user_stack_copy_errors": 0,
            "truncated_stacks": 0
          },
          "sites": [
            {
              "id": "other|||",
              "kind": "other",
              "contention": false,
              "lock_impl": "unknown",
              "waits": 1,
              "total_wait_ns": 1500,
              "avg_wait_ns": 0,
              "min_wait_ns": 0,
              "max_wait_ns": 0,
              "p50_wait_ns": 0,
              "p99_wait_ns": 0,
              "eagain": 0,
              "timeouts": 0,
              "timeout_wait_ns": 0,
              "interrupted": 0,
              "other_errors": 0,
              "wasted_wakeups": 0,
              "unpaired_waits": 0,
              "woken_by": [],
              "fairness": {
                "threads": 0,
                "wait_cv": 0.0,
                "max_min_ratio": 0.0
              },
              "histogram": [
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0
              ],
              "threads": [],
              "addresses": [],
              "stacks": [],
              "more_stacks": 0
            }
          ],
          "locks": [],
          "wakers": [],
          "probe_cost": {
            "bpf_run_ns": 0,
            "bpf_runs": 0
          }
        }
        "#);
    }

    #[test]
    fn error_not_json() {
        insta::assert_snapshot!(err("lockprof"), @"'x.json' is not a lockprof report: invalid JSON at line 1 column 1 (expected value)");
    }

    #[test]
    fn error_truncated() {
        let text = to_string(&minimal());
        let cut = &text[..text.find("\"sites\"").expect("has sites")];
        insta::assert_snapshot!(err(cut), @"'x.json' is not a lockprof report: truncated JSON at line 43 column 2 (EOF while parsing a value)");
        insta::assert_snapshot!(err(""), @"'x.json' is not a lockprof report: truncated JSON at line 1 column 0 (EOF while parsing a value)");
    }

    #[test]
    fn error_not_an_object() {
        insta::assert_snapshot!(err("[1, 2]"), @"'x.json' is not a lockprof report: no 'schema_version'");
        insta::assert_snapshot!(err(r#"{"sites": []}"#), @"'x.json' is not a lockprof report: no 'schema_version'");
        insta::assert_snapshot!(err(r#"{"schema_version": "1"}"#), @r#"'x.json' is not a lockprof report: 'schema_version' is not a version number: '"1"'"#);
        insta::assert_snapshot!(err(r#"{"schema_version": -1}"#), @"'x.json' is not a lockprof report: 'schema_version' is not a version number: '-1'");
    }

    #[test]
    fn error_other_version() {
        // A future version is refused by its version, even though its fields differ.
        insta::assert_snapshot!(err(r#"{"schema_version": 7, "whatever": true}"#), @"'x.json' has report schema version 7; this lockprof reads version 1");
        insta::assert_snapshot!(err(r#"{"schema_version": 0}"#), @"'x.json' has report schema version 0; this lockprof reads version 1");
    }

    #[test]
    fn error_missing_field() {
        insta::assert_snapshot!(err("{\n  \"schema_version\": 1\n}\n"), @"'x.json': invalid report: missing field 'lockprof_version' at line 3 column 1");
        let text = to_string(&minimal());
        let wrong_type = text.replacen("\"waits\": 0", "\"waits\": \"many\"", 1);
        assert_ne!(wrong_type, text);
        insta::assert_snapshot!(err(&wrong_type), @r#"'x.json': invalid report: invalid type: string "many", expected u64 at line 17 column 19"#);
        let bad_kind = text.replacen("\"kind\": \"other\"", "\"kind\": \"spin\"", 1);
        assert_ne!(bad_kind, text);
        insta::assert_snapshot!(err(&bad_kind), @"'x.json': invalid report: unknown variant 'spin', expected one of 'mutex', 'rwlock-read', 'rwlock-write', 'rwlock', 'condvar', 'semaphore', 'other', 'go-mutex', 'go-rwmutex-read', 'go-rwmutex-write', 'go-cond', 'go-chan-recv', 'go-chan-send', 'go-waitgroup', 'go-select', 'go-sleep', 'go-io', 'go-runtime', 'go-idle' at line 46 column 20");
    }

    #[test]
    fn garbage_never_panics() {
        let inputs = [
            "\u{feff}{}".to_owned(),
            "\0\0\0".to_owned(),
            "[".repeat(100_000),
            format!("{{\"schema_version\": 1, \"x\": {}", "[".repeat(10_000)),
            "{\"schema_version\": 18446744073709551616}".to_owned(),
            "{\"schema_version\": 1.0}".to_owned(),
            "null".to_owned(),
        ];
        for input in &inputs {
            assert!(from_str(input, "x.json").is_err(), "{input:.40}");
        }
        // Not UTF-8 at all.
        let bytes = [0xff, 0xfe, b'{', b'}'];
        let e = from_slice(&bytes, "x.json").expect_err("binary");
        assert!(matches!(e, ReportFileError::Syntax { .. }), "{e}");
    }

    #[test]
    fn read_a_file() {
        let dir = TempDir::new("read");
        let path = dir.0.join("report.json");
        fs::write(&path, SAMPLE).expect("write sample");
        assert_eq!(read(&path).expect("read sample"), sample_report());

        let missing = dir.0.join("missing.json");
        let e = read(&missing).expect_err("missing file");
        assert!(matches!(&e, ReportFileError::Read { error, .. }
            if error.kind() == io::ErrorKind::NotFound));
        assert_eq!(
            e.to_string(),
            format!(
                "cannot read '{}': No such file or directory (os error 2)",
                missing.display()
            )
        );

        fs::write(&path, "{").expect("write broken");
        let e = read(&path).expect_err("truncated file");
        assert!(
            e.to_string().starts_with(&format!(
                "'{}' is not a lockprof report: truncated JSON",
                path.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn write_replaces_atomically() {
        let dir = TempDir::new("write");
        let path = dir.0.join("report.json");
        fs::write(&path, "old contents").expect("seed");

        write(&minimal(), &path).expect("first write");
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            to_string(&minimal())
        );
        write(&sample_report(), &path).expect("second write");
        assert_eq!(read(&path).expect("read"), sample_report());
        assert_eq!(
            dir.entries(),
            ["report.json"],
            "no temporary file left behind"
        );
    }

    #[test]
    fn failed_write_leaves_nothing_behind() {
        let dir = TempDir::new("write-fail");
        // Renaming a file over a non-empty directory fails after the data is written.
        let target = dir.0.join("report.json");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join("keep"), "").expect("seed");
        let e = write(&minimal(), &target).expect_err("cannot replace a directory");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot write '{}': ", target.display())),
            "{e}"
        );
        assert_eq!(dir.entries(), ["report.json"], "temporary file removed");

        let nowhere = dir.0.join("no/such/dir/report.json");
        let e = write(&minimal(), &nowhere).expect_err("missing dir");
        assert!(matches!(e, ReportFileError::Write { .. }), "{e}");
    }
}
