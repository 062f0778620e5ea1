//! Golden-file tests of the CI commands on committed fixture reports, through the
//! `lockprof` binary as CI runs it: `diff` (text, markdown, JSON), `check` (breach
//! lists and exit codes), `flamegraph --format folded` and `--format pprof` (decoded
//! to text), plus the one-line errors for bad inputs (exit 2 for `check`).
//!
//! Fixtures: `report-base.json` and `report-new.json` (a small kmutex-like pair:
//! the writer convoy goes away, commit regresses, the cache site moved 4 lines, one
//! site vanished and one is new) and `budget-sample.toml`. Expected outputs are in
//! `fixtures/golden/`; regenerate them with `LOCKPROF_UPDATE_FIXTURES=1 cargo test
//! --release -p profiler --test reports` and read the diff before committing.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{lockprof, repo_root, tempdir};

fn fixtures() -> PathBuf {
    repo_root().join("profiler/tests/fixtures")
}

/// Runs lockprof in the fixtures directory, so file names in the output are short.
fn run(args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let out = Command::new(lockprof())
        .args(args)
        .current_dir(fixtures())
        .output()
        .expect("run lockprof");
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Compares `actual` with `fixtures/golden/<name>`, or rewrites it when
/// `LOCKPROF_UPDATE_FIXTURES` is set.
fn golden(name: &str, actual: &str) {
    let path = fixtures().join("golden").join(name);
    if std::env::var_os("LOCKPROF_UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (LOCKPROF_UPDATE_FIXTURES=1 creates it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "output differs from {} (LOCKPROF_UPDATE_FIXTURES=1 to update):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn stdout_of(args: &[&str], want_code: i32) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, Some(want_code), "lockprof {args:?}\nstderr: {err}");
    String::from_utf8(out).expect("UTF-8 output")
}

#[test]
fn diff_text() {
    golden(
        "diff.txt",
        &stdout_of(&["diff", "report-base.json", "report-new.json"], 0),
    );
}

#[test]
fn diff_markdown() {
    golden(
        "diff.md",
        &stdout_of(
            &[
                "diff",
                "report-base.json",
                "report-new.json",
                "--format",
                "markdown",
            ],
            0,
        ),
    );
}

#[test]
fn diff_json() {
    let out = stdout_of(
        &[
            "diff",
            "report-base.json",
            "report-new.json",
            "--format",
            "json",
        ],
        0,
    );
    golden("diff.json", &out);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["diff_version"], 2);
    assert_eq!(v["gate"]["floor_ns"], 254_000_000);
}

#[test]
fn diff_matches_sites_by_identity() {
    let out = stdout_of(
        &[
            "diff",
            "report-base.json",
            "report-new.json",
            "--format",
            "json",
        ],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let status = |function: &str| {
        v["sites"]
            .as_array()
            .and_then(|s| {
                s.iter().find(|c| {
                    c["site"]["function"]
                        .as_str()
                        .is_some_and(|f| f.ends_with(function))
                })
            })
            .map(|c| {
                (
                    c["status"].as_str().unwrap_or("").to_owned(),
                    c["moved_from_line"].as_u64(),
                )
            })
    };
    assert_eq!(status("Store::writer"), Some(("improved".to_owned(), None)));
    // +58%, but +29.9 ms/s is below the floor (20% of 1.27 s/s of contention).
    assert_eq!(
        status("Store::commit"),
        Some(("unchanged".to_owned(), None))
    );
    assert_eq!(
        status("Cache::get"),
        Some(("unchanged".to_owned(), Some(50)))
    );
    assert_eq!(
        v["new_sites"][0]["site"]["function"],
        "demo_targets::kmutex::KeyMutex::lock"
    );
    assert_eq!(
        v["vanished_sites"][0]["site"]["function"],
        "demo_targets::kmutex::Store::snapshot_exists"
    );
    assert_eq!(v["verdict"]["status"], "improved");
}

#[test]
fn diff_of_a_report_with_itself_is_unchanged() {
    let out = stdout_of(&["diff", "report-sample.json", "report-sample.json"], 0);
    assert!(out.contains("verdict: unchanged: "), "{out}");
    assert!(
        out.contains("0 new (0 over the floor), 0 vanished"),
        "{out}"
    );
}

/// The verdict line of `diff` and the exit code of `check --baseline` agree on the
/// recorded fixture pair, both ways round, under the defaults and other rules.
#[test]
fn diff_verdict_and_check_exit_code_agree() {
    let rules: [&[&str]; 6] = [
        &[],
        &["--min-share", "1%", "--max-regression", "50%"],
        &["--include-event-waits", "--min-share", "0%"],
        &["--max-regression", "100%", "--min-share", "1%"],
        &["--min-wait-per-sec", "50ms", "--min-share", "0%"],
        &[
            "--threshold",
            "5%",
            "--min-share",
            "0%",
            "--min-wait-per-sec",
            "1ms",
        ],
    ];
    let mut seen = Vec::new();
    for (base, new) in [
        ("report-base.json", "report-new.json"),
        ("report-new.json", "report-base.json"),
        ("report-sample.json", "report-sample.json"),
    ] {
        for flags in rules {
            let mut diff_args = vec!["diff", base, new];
            diff_args.extend_from_slice(flags);
            let text = stdout_of(&diff_args, 0);
            let verdict = text
                .lines()
                .find_map(|l| l.strip_prefix("verdict: "))
                .expect("a verdict line");
            let mut check_args = vec!["check", new, "--baseline", base];
            check_args.extend_from_slice(flags);
            let (code, out, err) = run(&check_args);
            let out = String::from_utf8_lossy(&out);
            let regressed = verdict.starts_with("regressed:");
            assert_eq!(
                code,
                Some(i32::from(regressed)),
                "{base} → {new} {flags:?}\ndiff: {verdict}\ncheck: {out}{err}"
            );
            seen.push(regressed);
        }
    }
    // Both outcomes are exercised: the commit site regresses once the floor is
    // lowered, the new condvar counts with event waits, the reversed pair regresses.
    assert!(seen.contains(&true) && seen.contains(&false), "{seen:?}");
    let out = stdout_of(
        &[
            "diff",
            "report-base.json",
            "report-new.json",
            "--min-share",
            "1%",
            "--max-regression",
            "50%",
        ],
        0,
    );
    assert!(out.contains("verdict: regressed: "), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("  2  regressed  51.4ms/s → 81.3ms/s")),
        "{out}"
    );
    let (code, out, _) = run(&[
        "check",
        "report-new.json",
        "--baseline",
        "report-base.json",
        "--include-event-waits",
        "--min-share",
        "0%",
    ]);
    assert_eq!(code, Some(1));
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains("condvar kmutex::KeyMutex::lock at demo-targets/src/kmutex.rs:300: new site (not in the baseline) waits 29.7ms/s, at or above the floor"),
        "{out}"
    );
}

#[test]
fn check_base_breaches() {
    let out = stdout_of(
        &[
            "check",
            "report-base.json",
            "--budget",
            "budget-sample.toml",
        ],
        1,
    );
    golden("check-base.txt", &out);
}

#[test]
fn check_new_against_baseline_breaches() {
    let out = stdout_of(
        &[
            "check",
            "report-new.json",
            "--budget",
            "budget-sample.toml",
            "--baseline",
            "report-base.json",
        ],
        1,
    );
    golden("check-new-baseline.txt", &out);
    let json = stdout_of(
        &[
            "check",
            "report-new.json",
            "--budget",
            "budget-sample.toml",
            "--baseline",
            "report-base.json",
            "--format",
            "json",
        ],
        1,
    );
    golden("check-new-baseline.json", &json);
}

#[test]
fn check_passes_within_budget() {
    let dir = tempdir();
    let budget = dir.join("loose.toml");
    std::fs::write(&budget, "[total]\nmax_contention_per_sec = \"2s\"\n").expect("write budget");
    let out = stdout_of(
        &[
            "check",
            "report-base.json",
            "--budget",
            budget.to_str().expect("utf-8"),
        ],
        0,
    );
    assert!(
        out.starts_with("lockprof check: 'report-base.json' is within budget"),
        "{out}"
    );
    // --max-regression on the command line, no budget file.
    let out = stdout_of(
        &[
            "check",
            "report-base.json",
            "--baseline",
            "report-base.json",
            "--max-regression",
            "5%",
        ],
        0,
    );
    assert!(out.contains("within budget"), "{out}");
    let (code, out, _) = run(&[
        "check",
        "report-new.json",
        "--baseline",
        "report-base.json",
        "--max-regression",
        "500%",
        "--include-event-waits",
        "--min-share",
        "0%",
    ]);
    assert_eq!(
        code,
        Some(1),
        "the new KeyMutex site is a regression at any limit, once event waits count above the absolute floor"
    );
    assert!(String::from_utf8_lossy(&out).contains("new site (not in the baseline)"));
}

#[test]
fn folded_waits_and_wakers() {
    golden(
        "waits.folded",
        &stdout_of(&["flamegraph", "report-base.json", "--format", "folded"], 0),
    );
    golden(
        "wakers.folded",
        &stdout_of(
            &[
                "flamegraph",
                "report-new.json",
                "--format",
                "folded",
                "--wakers",
            ],
            0,
        ),
    );
}

#[test]
fn folded_weights_add_up_to_the_sites_wait() {
    let out = stdout_of(
        &["flamegraph", "report-sample.json", "--format", "folded"],
        0,
    );
    let total: u64 = out
        .lines()
        .map(|l| {
            l.rsplit_once(' ')
                .and_then(|(_, w)| w.parse::<u64>().ok())
                .expect("weight")
        })
        .sum();
    let report =
        profiler::report::json::read(&fixtures().join("report-sample.json")).expect("fixture");
    assert_eq!(
        total,
        report.sites.iter().map(|s| s.total_wait_ns).sum::<u64>()
    );
}

fn decoded_pprof(report: &str, extra: &[&str]) -> String {
    let dir = tempdir();
    let out = dir.join("profile.pb.gz");
    let mut args = vec![
        "flamegraph",
        report,
        "--format",
        "pprof",
        "-o",
        out.to_str().expect("utf-8"),
    ];
    args.extend(extra);
    stdout_of(&args, 0);
    let bytes = std::fs::read(&out).expect("profile written");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzipped");
    let profile = profiler::export::pprof::from_bytes(&bytes).expect("decodes as profile.proto");
    profiler::export::pprof::to_text(&profile)
}

#[test]
fn pprof_waits_and_wakers() {
    golden("waits.pprof.txt", &decoded_pprof("report-base.json", &[]));
    golden(
        "wakers.pprof.txt",
        &decoded_pprof("report-new.json", &["--wakers"]),
    );
}

#[test]
fn svg_flame_graph() {
    let dir = tempdir();
    let svg = dir.join("waits.svg");
    stdout_of(
        &[
            "flamegraph",
            "report-base.json",
            "-o",
            svg.to_str().expect("utf-8"),
        ],
        0,
    );
    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(text.contains("<svg"), "{text:.200}");
    assert!(text.contains("demo_targets::kmutex::Store::writer"));
    assert!(text.contains("[other stacks]"));
}

// ---------------------------------------------------------------------------------------
// Bad inputs: one line naming the file and the problem, never a panic.
// ---------------------------------------------------------------------------------------

fn bad_inputs() -> (PathBuf, PathBuf, PathBuf) {
    let dir = tempdir();
    let full = std::fs::read_to_string(fixtures().join("report-base.json")).expect("fixture");
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, &full[..full.len() / 3]).expect("write");
    let future = dir.join("future.json");
    std::fs::write(
        &future,
        full.replacen("\"schema_version\": 1", "\"schema_version\": 2", 1),
    )
    .expect("write");
    let bad_budget = dir.join("bad.toml");
    std::fs::write(
        &bad_budget,
        "[[site]]\nmatch = \"x\"\nmax_p99 = \"5 parsecs\"\n",
    )
    .expect("write");
    (truncated, future, bad_budget)
}

fn one_line_error(args: &[&str], code: i32, needle: &str) {
    let (got, _, err) = run(args);
    assert_eq!(got, Some(code), "lockprof {args:?}: {err}");
    assert!(err.starts_with("lockprof: error: "), "{err}");
    assert!(err.contains(needle), "lockprof {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn check_input_errors_exit_2() {
    let (truncated, future, bad_budget) = bad_inputs();
    let (t, f, b) = (
        truncated.to_str().expect("utf-8"),
        future.to_str().expect("utf-8"),
        bad_budget.to_str().expect("utf-8"),
    );
    one_line_error(
        &["check", t, "--budget", "budget-sample.toml"],
        2,
        "truncated JSON",
    );
    one_line_error(
        &["check", f, "--budget", "budget-sample.toml"],
        2,
        "schema version 2",
    );
    one_line_error(
        &["check", "missing.json", "--budget", "budget-sample.toml"],
        2,
        "cannot read 'missing.json'",
    );
    one_line_error(
        &["check", "report-base.json", "--budget", "missing.toml"],
        2,
        "cannot read budget 'missing.toml'",
    );
    one_line_error(
        &["check", "report-base.json", "--budget", b],
        2,
        "line 3 column 11: invalid duration unit 'parsecs'",
    );
    one_line_error(
        &[
            "check",
            "report-base.json",
            "--budget",
            "budget-sample.toml",
            "--baseline",
            t,
        ],
        2,
        "truncated JSON",
    );
    one_line_error(
        &["check", "report-base.json"],
        2,
        "nothing to check against",
    );
    // The gate's flags judge a change: without a baseline they are a usage error.
    one_line_error(
        &["check", "report-base.json", "--max-regression", "20%"],
        2,
        "give --baseline FILE",
    );
    one_line_error(
        &[
            "check",
            "report-base.json",
            "--budget",
            "budget-sample.toml",
            "--include-event-waits",
        ],
        2,
        "give --baseline FILE",
    );
    // A baseline alone is judged with the defaults (as `diff` is).
    let (code, out, _) = run(&[
        "check",
        "report-base.json",
        "--baseline",
        "report-base.json",
    ]);
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&out));
    // clap's own usage errors are 2 as well.
    let (code, _, _) = run(&[
        "check",
        "report-base.json",
        "--baseline",
        "report-base.json",
        "--max-regression",
        "20",
    ]);
    assert_eq!(code, Some(2), "a percentage needs '%'");
}

/// Bad input everywhere exits 2, as in `check` (see `profiler::exit`).
#[test]
fn diff_and_flamegraph_input_errors_are_one_line() {
    let (truncated, future, _) = bad_inputs();
    let (t, f) = (
        truncated.to_str().expect("utf-8"),
        future.to_str().expect("utf-8"),
    );
    one_line_error(
        &["diff", t, "report-new.json"],
        2,
        &format!("'{t}' is not a lockprof report: truncated JSON"),
    );
    one_line_error(
        &["diff", "report-base.json", f],
        2,
        &format!("'{f}' has report schema version 2"),
    );
    one_line_error(
        &["flamegraph", t, "--format", "folded"],
        2,
        "truncated JSON",
    );
    one_line_error(
        &["flamegraph", "missing.json"],
        2,
        "cannot read 'missing.json'",
    );
    let dir = tempdir();
    let unwritable = dir.join("no/such/dir/out.svg");
    one_line_error(
        &[
            "flamegraph",
            "report-base.json",
            "-o",
            unwritable.to_str().expect("utf-8"),
        ],
        2,
        "cannot write",
    );
}

#[test]
fn every_command_reads_garbage_without_panicking() {
    let dir = tempdir();
    let inputs: [&[u8]; 5] = [
        b"",
        b"\xff\xfe{}",
        b"{\"schema_version\": 1}",
        b"[]",
        b"{\"schema_version\": 1, \"sites\": 5}",
    ];
    for (i, bytes) in inputs.iter().enumerate() {
        let path = dir.join(format!("garbage-{i}.json"));
        std::fs::write(&path, bytes).expect("write");
        let p = path.to_str().expect("utf-8");
        for args in [
            vec!["diff", p, p],
            vec!["check", p, "--budget", "budget-sample.toml"],
            vec!["flamegraph", p, "--format", "folded"],
            vec!["report", p],
        ] {
            let (code, _, err) = run(&args);
            assert!(matches!(code, Some(1 | 2)), "{args:?}: {code:?} {err}");
            assert!(
                err.contains(p) && !err.contains("panicked"),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn record_check_reads_the_budget_before_recording() {
    // Exit 2 before any privilege or PID check: a typo in the budget must not cost a
    // benchmark run (this holds with or without root).
    one_line_error(
        &["record", "--check", "missing.toml", "--", "true"],
        2,
        "cannot read budget 'missing.toml'",
    );
    let (_, _, bad_budget) = bad_inputs();
    one_line_error(
        &[
            "record",
            "--check",
            bad_budget.to_str().expect("utf-8"),
            "-p",
            "999999999",
        ],
        2,
        "invalid duration unit 'parsecs'",
    );
}
