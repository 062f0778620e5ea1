//! The command line as a user meets it, without root: help, rendering saved reports,
//! and the one-line errors for bad input.

mod common;

use std::process::Command;

use common::{lockprof, repo_root, tempdir};

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(lockprof())
        .args(args)
        .output()
        .expect("run lockprof");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sample() -> String {
    repo_root()
        .join("profiler/tests/fixtures/report-sample.json")
        .display()
        .to_string()
}

#[test]
fn help_lists_subcommands_and_examples() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    for needle in [
        "record",
        "report",
        "sudo lockprof record -p 4242 --duration 10s",
        "lockprof report run.json",
    ] {
        assert!(out.contains(needle), "--help lacks '{needle}':\n{out}");
    }
}

#[test]
fn report_renders_a_saved_report_as_text_and_json() {
    let (code, out, err) = run(&["report", &sample()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("wait sites by total wait time"), "{out}");
    assert!(out.contains("rwlock-read"), "{out}");

    let (code, out, _) = run(&["report", &sample(), "--format", "json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON on stdout");
    assert_eq!(v["schema_version"], 1);
    assert!(v["sites"].as_array().is_some_and(|s| !s.is_empty()));
}

#[test]
fn report_of_bad_files_is_a_one_line_error() {
    let dir = tempdir();
    let missing = dir.join("missing.json");
    let (code, _, err) = run(&["report", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("lockprof: error: cannot read '"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let truncated = dir.join("truncated.json");
    let full = std::fs::read_to_string(sample()).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let (code, _, err) = run(&["report", truncated.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("truncated"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let future = dir.join("future.json");
    std::fs::write(
        &future,
        full.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1),
    )
    .unwrap();
    let (code, _, err) = run(&["report", future.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("schema version 99"), "{err}");
}

#[test]
fn record_needs_a_target() {
    let (code, _, err) = run(&["record"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("nothing to record: give -p PID, --name COMM, --cgroup PATH or a command"),
        "{err}"
    );
}

#[test]
fn record_by_name_or_cgroup_fails_clearly_when_nothing_is_there() {
    // Both are checked before the privilege check: no root needed to get them wrong.
    let (code, _, err) = run(&["record", "--name", "lockprof-no-such-process"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        "lockprof: error: no process named 'lockprof-no-such-process' (compared with each \
         process's comm and executable name)"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, err) = run(&["record", "--cgroup", "lockprof/no/such/cgroup"]);
    assert_eq!(code, Some(1));
    // Relative to the cgroup v2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a
    // hybrid system.
    assert!(
        err.starts_with("lockprof: error: no cgroup 'lockprof/no/such/cgroup': '/sys/fs/cgroup/")
            && err.contains("/lockprof/no/such/cgroup' has no cgroup.procs"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = run(&["record", "--duration", "soon", "-p", "1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("invalid duration 'soon'"), "{err}");
    let (code, _, _) = run(&["frobnicate"]);
    assert_eq!(code, Some(2));
}

#[test]
fn record_rejects_a_missing_pid_before_anything_else() {
    // The PID check comes before the privilege check, so this holds with or without root.
    let (code, _, err) = run(&["record", "-p", "999999999"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        "lockprof: error: no process with PID '999999999'"
    );
}

#[test]
fn top_errors_are_one_line_before_the_terminal_is_touched() {
    let (code, _, err) = run(&["top"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("nothing to watch"), "{err}");
    // stdout is a pipe here, not a terminal.
    let (code, _, err) = run(&["top", "-p", "1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("needs a terminal"), "{err}");
    let dir = tempdir();
    let missing = dir.join("missing.json");
    let (code, _, err) = run(&["top", "--replay", &missing.display().to_string()]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot read") && err.lines().count() == 1,
        "{err}"
    );
    // Checked before root and the terminal are needed.
    let (code, _, err) = run(&["top", "--", "/nonexistent/lockprof-test-program"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot run '/nonexistent/lockprof-test-program'"),
        "{err}"
    );
    let (code, _, err) = run(&["top", "--replay", &sample(), "-p", "1"]);
    assert_eq!(code, Some(2), "{err}");
}
