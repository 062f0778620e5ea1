//! The command line as a user meets it: help, rendering saved reports, the one-line
//! errors for bad input (and `docs/bad-inputs.md`, generated from them), and, with
//! root, what happens to a recording on signals, removed output directories and sudo.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup step should fail the test"
)]

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{demo_bin, lockprof, repo_root, require_root, tempdir};

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(lockprof())
        .args(args)
        .stdin(Stdio::null())
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
        "Exit codes: 0 ok",
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

/// A recorded `PostgreSQL` 15 report (see `tests/fixtures/README.md`).
fn pg_fixture(clients: u32) -> String {
    repo_root()
        .join(format!(
            "profiler/tests/fixtures/pg-pgbench-c{clients}.json"
        ))
        .display()
        .to_string()
}

/// `ProcSleep` (where a backend waits on a heavyweight lock, and takes the lock
/// manager's partition `LWLock` whose waits these are), the static `WaitOnLock` that
/// calls it (unnamed in Debian's stripped `postgres`) and `LockAcquireExtended`: the
/// wrappers between a row-lock wait and the code that wanted the row.
const PG_LOCK_FNS: [&str; 6] = [
    "--lock-fn",
    "ProcSleep",
    "--lock-fn",
    "postgres+0x45d95c",
    "--lock-fn",
    "LockAcquire*",
];

fn json_report(args: &[&str]) -> profiler::report::Report {
    let (code, out, err) = run(args);
    assert_eq!(code, Some(0), "{err}");
    profiler::report::json::from_str(&out, "stdout").expect("a report on stdout")
}

#[test]
fn report_lock_fn_ranks_the_callers_of_a_named_wrapper() {
    let file = pg_fixture(16);
    let recorded = json_report(&["report", &file, "--format", "json"]);
    assert_eq!(recorded.sites[0].function.as_deref(), Some("ProcSleep"));
    let mut args = vec!["report", file.as_str(), "--format", "json"];
    args.extend(PG_LOCK_FNS);
    let r = json_report(&args);
    let top = &r.sites[0];
    assert_eq!(
        top.function.as_deref(),
        Some("XactLockTableWait"),
        "{top:?}"
    );
    assert!(
        top.total_wait_ns * 10 > recorded.totals.wait_ns * 9,
        "the row-lock wait of another transaction is most of the wait"
    );
    assert!(
        r.sites
            .iter()
            .any(|s| s.function.as_deref() == Some("LockTuple")),
        "ProcSleep's other caller is ranked too"
    );
    assert!(
        r.sites
            .iter()
            .filter(|s| s.function.as_deref() == Some("ProcSleep"))
            .all(|s| s.stacks.is_empty() && s.total_wait_ns < recorded.sites[0].total_wait_ns / 100),
        "only the unlisted tail stays with the wrapper"
    );
    assert_eq!(r.totals, recorded.totals, "totals unchanged");
    let sum = |r: &profiler::report::Report| -> (u64, u64) {
        r.sites
            .iter()
            .fold((0, 0), |(w, t), s| (w + s.waits, t + s.total_wait_ns))
    };
    assert_eq!(sum(&r), sum(&recorded), "no wait lost or counted twice");

    // The text view ranks them the same way, with what is not known as '-'.
    let mut args = vec!["report", file.as_str(), "--top", "1"];
    args.extend(PG_LOCK_FNS);
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(0), "{err}");
    let first = out
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_else(|| panic!("no ranked site:\n{out}"));
    assert!(first.contains("XactLockTableWait"), "{first}");
    assert!(first.contains(" - "), "p50/p99/threads unknown: {first}");
    assert!(out.contains("re-attributed by --lock-fn"), "{out}");
}

#[test]
fn diff_and_check_lock_fn_compare_re_attributed_sites() {
    let (base, new) = (pg_fixture(4), pg_fixture(16));
    let mut args = vec!["diff", base.as_str(), new.as_str(), "--format", "json"];
    args.extend(PG_LOCK_FNS);
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let both = v["sites"].as_array().unwrap();
    let xact = both
        .iter()
        .find(|c| c["site"]["function"] == "XactLockTableWait")
        .unwrap_or_else(|| panic!("XactLockTableWait not matched in both: {out}"));
    assert_eq!(xact["status"], "regressed", "{xact}");
    assert!(
        !both.iter().any(|c| c["site"]["function"] == "ProcSleep"
            && c["before"]["total_wait_ns"].as_u64() > Some(1_000_000)),
        "the wrapper no longer carries the wait"
    );
    // Without --lock-fn the same pair compares the wrapper's site.
    let (_, plain, _) = run(&["diff", &base, &new, "--format", "json"]);
    let plain: serde_json::Value = serde_json::from_str(&plain).unwrap();
    let plain = plain["sites"].as_array().unwrap();
    assert!(
        plain
            .iter()
            .any(|c| c["site"]["function"] == "ProcSleep" && c["status"] == "regressed")
    );
    assert!(
        !plain
            .iter()
            .any(|c| c["site"]["function"] == "XactLockTableWait")
    );
    // check --baseline judges the same re-attributed sites.
    let mut args = vec!["check", new.as_str(), "--baseline", base.as_str()];
    args.extend(PG_LOCK_FNS);
    let (code, out, _) = run(&args);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("XactLockTableWait"), "{out}");
}

#[test]
fn lock_fn_leaves_the_flame_graph_alone_and_says_when_it_matches_nothing() {
    let file = pg_fixture(16);
    let folded = |extra: &[&str]| {
        let mut args = vec!["flamegraph", file.as_str(), "--format", "folded"];
        args.extend(extra);
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(0), "{err}");
        (out, err)
    };
    let (plain, _) = folded(&[]);
    let (moved, _) = folded(&PG_LOCK_FNS);
    assert_eq!(
        plain, moved,
        "the call paths and their weights do not change"
    );
    let (same, err) = folded(&["--lock-fn", "no_such_function"]);
    assert_eq!(same, plain);
    assert!(
        err.contains("--lock-fn 'no_such_function' is no site frame of"),
        "{err}"
    );
    let (code, _, err) = run(&["report", &file, "--lock-fn", ""]);
    assert_eq!(code, Some(2));
    assert!(err.contains("an empty pattern names no function"), "{err}");
}

#[test]
fn flame_graphs_of_recorded_reports_draw_full_call_paths_for_95_percent_of_the_wait() {
    use profiler::export::coverage::{Coverage, FULL_PATH_GOAL};
    // Recorded from PostgreSQL, memcached and two demos (tests/fixtures/README.md).
    for name in common::RECORDED_FIXTURES {
        let path = repo_root().join("profiler/tests/fixtures").join(name);
        let report = profiler::report::json::read(&path).unwrap();
        let c = Coverage::of(&report);
        assert_eq!(
            c.total_ns(),
            report.totals.wait_ns,
            "{name}: every wait drawn"
        );
        assert!(
            c.full_share() >= FULL_PATH_GOAL,
            "{name}: only {:.1}% of the wait has a full call path: {c:?}",
            100.0 * c.full_share()
        );
        // The folded output draws the same split: `[other stacks]` carries the rest.
        let (code, folded, err) =
            run(&["flamegraph", path.to_str().unwrap(), "--format", "folded"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(!err.contains("note:"), "{name}: {err}");
        let other: u64 = folded
            .lines()
            .filter(|l| l.starts_with("[other stacks];"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(other, c.other_ns, "{name}");
    }
}

#[test]
fn flamegraph_says_when_most_of_the_wait_has_no_call_path() {
    let mut report = profiler::report::json::read(
        &repo_root().join("profiler/tests/fixtures/pg-pgbench-c16.json"),
    )
    .unwrap();
    // As if the report had kept no stacks for its hottest site.
    report.sites[0].stacks.clear();
    let path = tempdir().join("stackless.json");
    profiler::report::json::write(&report, &path).unwrap();
    let (code, _, err) = run(&["flamegraph", path.to_str().unwrap(), "--format", "folded"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.starts_with("lockprof: note: 3.") && err.contains("is drawn under '[other stacks]'"),
        "{err}"
    );
}

/// One bad input: what the user typed, and what the table says about it.
struct BadInput {
    what: &'static str,
    args: Vec<String>,
}

/// Files the bad inputs refer to, in a scratch directory shown as `<tmp>`.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Self {
        let dir = tempdir();
        let full = std::fs::read_to_string(sample()).expect("sample report");
        std::fs::write(dir.join("truncated.json"), &full[..full.len() / 2]).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a report\n").unwrap();
        std::fs::write(
            dir.join("future.json"),
            full.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1),
        )
        .unwrap();
        std::fs::write(dir.join("typo.toml"), "[total]\nmax_wait_per_sec = \"5\"\n").unwrap();
        std::fs::write(dir.join("unknown.toml"), "[totals]\n").unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Every bad input the table documents. Each must fail before anything is
/// attached, so none needs root, and the answers are the same with and without it.
fn bad_inputs(f: &Files) -> Vec<BadInput> {
    let s = sample();
    let case = |what: &'static str, args: &[&str]| BadInput {
        what,
        args: args.iter().map(|&a| a.to_owned()).collect(),
    };
    vec![
        case("no target", &["record"]),
        case(
            "duration too large",
            &["record", "-p", "1", "-d", "99999999999999999999h"],
        ),
        case(
            "duration without a unit",
            &["record", "-p", "1", "-d", "10"],
        ),
        case("duration of zero", &["record", "-p", "1", "-d", "0"]),
        case("unknown unit", &["record", "-p", "1", "-d", "10y"]),
        case(
            "interval that rounds to nothing",
            &["record", "-p", "1", "--interval", "0.0000000001s"],
        ),
        case(
            "interval too long",
            &["record", "-p", "1", "--interval", "25h"],
        ),
        case(
            "output directory missing",
            &["record", "-p", "1", "-o", "/nonexistent/dir/x.json"],
        ),
        case("output is a directory", &["record", "-p", "1", "-o", "/"]),
        case("empty --lock-fn pattern", &["report", &s, "--lock-fn", ""]),
        case(
            "budget file missing",
            &["record", "-p", "1", "--check", "/nonexistent/budget.toml"],
        ),
        case(
            "budget value without a unit",
            &["record", "-p", "1", "--check", &f.path("typo.toml")],
        ),
        case(
            "budget with an unknown section",
            &["check", &s, "--budget", &f.path("unknown.toml")],
        ),
        case(
            "process that does not exist",
            &["record", "-p", "999999999"],
        ),
        case("pid 0", &["record", "-p", "0"]),
        case("pid that is not a number", &["record", "-p", "nginx"]),
        case(
            "no process of that name",
            &["record", "--name", "lockprof-no-such-process"],
        ),
        case("pids and a command", &["record", "-p", "1", "--", "ls"]),
        case(
            "--user without a command",
            &["record", "-p", "1", "--user", "root"],
        ),
        case(
            "unknown user",
            &["record", "--user", "lockprof-no-such-user", "--", "true"],
        ),
        case(
            "unknown unwinder",
            &["record", "-p", "1", "--unwind", "lbr"],
        ),
        case("--print without -o", &["record", "-p", "1", "--print"]),
        case(
            "breach exit code 0",
            &[
                "record",
                "-p",
                "1",
                "--check",
                "b.toml",
                "--check-exit-code",
                "0",
            ],
        ),
        case("report file missing", &["report", "/nonexistent/run.json"]),
        case(
            "report file truncated",
            &["report", &f.path("truncated.json")],
        ),
        case("report file not JSON", &["report", &f.path("notes.txt")]),
        case(
            "report of a future schema",
            &["report", &f.path("future.json")],
        ),
        case(
            "diff of a bad file",
            &["diff", &f.path("truncated.json"), &s],
        ),
        case("check without a budget or baseline", &["check", &s]),
        case(
            "judging flag without a baseline",
            &["check", &s, "--max-regression", "20%"],
        ),
        case(
            "percentage without '%'",
            &["check", &s, "--baseline", &s, "--max-regression", "20"],
        ),
        case(
            "flamegraph of a bad file",
            &["flamegraph", &f.path("future.json")],
        ),
        case(
            "flamegraph to a missing directory",
            &["flamegraph", &s, "-o", "/nonexistent/dir/w.svg"],
        ),
        case("top without a target", &["top"]),
        case("top without a terminal", &["top", "-p", "1"]),
        case(
            "top interval too short",
            &["top", "-p", "1", "--interval", "1ms"],
        ),
        case(
            "top replay of a missing file",
            &["top", "--replay", "/nonexistent/run.json"],
        ),
        case("unknown subcommand", &["frobnicate"]),
        case("misspelled subcommand", &["recrod", "-p", "1"]),
    ]
}

fn markdown_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Every bad input fails with one line on stderr, nothing on stdout and exit 2; the
/// table in `docs/bad-inputs.md` is exactly what they print (`UPDATE_BAD_INPUTS=1`
/// rewrites it).
#[test]
fn bad_inputs_are_one_line_errors_with_exit_2_and_documented() {
    let files = Files::new();
    let tmp = files.dir.display().to_string();
    let mut table = String::from(
        "# Bad inputs\n\n\
         Generated by `profiler/tests/cli.rs` (`bad_inputs_are_one_line_errors_with_exit_2_and_documented`);\n\
         regenerate with `UPDATE_BAD_INPUTS=1 cargo test --release -p profiler --test cli`.\n\
         Each input is refused before anything is attached or launched: one line on stderr,\n\
         nothing on stdout. `<tmp>` is a scratch directory, `<sample>` a valid report.\n\n\
         | input | command | exit | error |\n|---|---|---|---|\n",
    );
    for case in bad_inputs(&files) {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&args);
        let shown = |s: &str| s.replace(&tmp, "<tmp>").replace(&sample(), "<sample>");
        let command = shown(&format!("lockprof {}", args.join(" ")));
        assert_eq!(code, Some(2), "{command}: {err}");
        assert!(out.is_empty(), "{command}: stdout: {out}");
        assert_eq!(err.lines().count(), 1, "{command}: {err}");
        assert!(err.starts_with("lockprof: error: "), "{command}: {err}");
        let message = shown(err.trim_end().trim_start_matches("lockprof: error: "));
        writeln!(
            table,
            "| {} | `{}` | {} | {} |",
            case.what,
            markdown_cell(&command),
            code.unwrap_or(-1),
            markdown_cell(&message)
        )
        .unwrap();
    }
    let doc = repo_root().join("docs/bad-inputs.md");
    if std::env::var_os("UPDATE_BAD_INPUTS").is_some() {
        std::fs::write(&doc, &table).expect("write docs/bad-inputs.md");
    }
    let current = std::fs::read_to_string(&doc).unwrap_or_default();
    assert!(
        current == table,
        "docs/bad-inputs.md is out of date: rerun with UPDATE_BAD_INPUTS=1\n{table}"
    );
}

#[test]
fn bad_report_files_exit_2_in_every_subcommand() {
    let files = Files::new();
    let bad = files.path("truncated.json");
    for args in [
        vec!["report", &bad],
        vec!["diff", &bad, &bad],
        vec!["check", &bad, "--baseline", &bad, "--max-regression", "5%"],
        vec!["flamegraph", &bad, "--format", "folded"],
        vec!["top", "--replay", &bad],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("truncated"), "{args:?}: {err}");
    }
}

#[test]
fn record_rejects_a_missing_pid_before_anything_else() {
    // The PID check comes before the privilege check, so this holds with or without root.
    let (code, _, err) = run(&["record", "-p", "999999999"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim_end(),
        "lockprof: error: no process with PID '999999999'"
    );
}

#[test]
fn record_by_cgroup_fails_clearly_when_nothing_is_there() {
    let (code, _, err) = run(&["record", "--cgroup", "lockprof/no/such/cgroup"]);
    assert_eq!(code, Some(2));
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
fn top_checks_a_launched_program_before_the_terminal() {
    let (code, _, err) = run(&["top", "--", "/nonexistent/lockprof-test-program"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("cannot run '/nonexistent/lockprof-test-program'"),
        "{err}"
    );
}

// ---- root: recordings are never lost ----

/// A spawned `lockprof record` with its stderr read as it comes.
struct Recorder {
    child: std::process::Child,
    stderr: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Recorder {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(lockprof())
            .arg("record")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lockprof");
        let pipe = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stderr: rx,
            seen: String::new(),
        }
    }

    /// Wait (up to 60 s) for a stderr line containing `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_mins(1);
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
                self.seen.push_str(&line);
                self.seen.push('\n');
                if line.contains(needle) {
                    return;
                }
            }
        }
        panic!("lockprof never printed '{needle}':\n{}", self.seen);
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Wait for exit; the exit code and all of stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("wait for lockprof");
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        (status.code(), self.seen)
    }
}

/// A contended fixture that runs until killed (or for a long while).
fn long_fixture() -> std::process::Child {
    Command::new(demo_bin("lockprof-fixture"))
        .args(["--threads", "4", "--iters", "100000000", "--hold-us", "20"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn fixture")
}

fn complete_report(path: &Path) -> profiler::report::Report {
    let report = profiler::report::json::read(path)
        .unwrap_or_else(|e| panic!("no complete report at {}: {e}", path.display()));
    assert!(report.totals.waits > 0, "the fixture contends: {report:?}");
    assert!(!report.sites.is_empty());
    report
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn sigint_sigterm_and_sighup_each_write_the_full_report() {
    require_root();
    for (sig, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let mut fixture = long_fixture();
        let json = tempdir().join("r.json");
        let pid = fixture.id().to_string();
        let mut rec = Recorder::spawn(&["-p", &pid, "-o", json.to_str().unwrap()]);
        rec.wait_for("Ctrl-C to stop");
        std::thread::sleep(Duration::from_millis(500));
        rec.signal(sig);
        let (code, stderr) = rec.finish();
        fixture.kill().unwrap();
        fixture.wait().unwrap();
        assert_eq!(code, Some(0), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("stopped (signal {sig})")),
            "{name}: {stderr}"
        );
        complete_report(&json);
    }
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn removed_output_directory_saves_to_a_fallback_and_exits_4() {
    require_root();
    let mut fixture = long_fixture();
    let dir = tempdir();
    let json = dir.join("r.json");
    let pid = fixture.id().to_string();
    let mut rec = Recorder::spawn(&["-p", &pid, "-d", "1500ms", "-o", json.to_str().unwrap()]);
    rec.wait_for("Ctrl-C to stop");
    std::fs::remove_dir_all(&dir).unwrap();
    let (code, stderr) = rec.finish();
    fixture.kill().unwrap();
    fixture.wait().unwrap();
    assert_eq!(code, Some(4), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("the report was saved to"))
        .unwrap_or_else(|| panic!("no fallback line: {stderr}"));
    assert!(line.starts_with("lockprof: error: cannot write"), "{line}");
    let fallback = PathBuf::from(
        line.split('\'')
            .rev()
            .nth(1)
            .unwrap_or_else(|| panic!("no path in: {line}")),
    );
    complete_report(&fallback);
    std::fs::remove_file(&fallback).unwrap();
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn a_second_signal_during_symbolization_still_writes_the_report() {
    require_root();
    let mut fixture = long_fixture();
    let json = tempdir().join("r.json");
    let pid = fixture.id().to_string();
    let mut rec = Recorder::spawn(&["-p", &pid, "-o", json.to_str().unwrap()]);
    rec.wait_for("Ctrl-C to stop");
    std::thread::sleep(Duration::from_millis(500));
    rec.signal(libc::SIGINT);
    rec.wait_for("symbolizing");
    rec.signal(libc::SIGINT);
    let (code, stderr) = rec.finish();
    fixture.kill().unwrap();
    fixture.wait().unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    let report = complete_report(&json);
    // Either symbolization was already done, or it stopped and said so; every frame
    // left unnamed keeps its module and offset.
    if stderr.contains("symbolization stopped early") {
        assert!(report.losses.unsymbolized_frames > 0, "{stderr}");
    }
    for site in &report.sites {
        for stack in &site.stacks {
            for f in stack.frames.iter().filter(|f| f.function.is_none()) {
                assert!(f.module.is_none() || f.module_offset.is_some(), "{f:?}");
            }
        }
    }
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn quiet_with_output_prints_nothing_and_launch_mode_keeps_stdout_for_the_command() {
    require_root();
    let dir = tempdir();
    let json = dir.join("r.json");
    let out = Command::new(lockprof())
        .args([
            "record",
            "-q",
            "-o",
            json.to_str().unwrap(),
            "--",
            "/bin/echo",
            "hello",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(profiler::report::json::read(&json).is_ok());
    // Asked for: the report follows the command's output.
    let out = Command::new(lockprof())
        .args([
            "record",
            "-q",
            "--print",
            "-o",
            json.to_str().unwrap(),
            "--",
            "/bin/echo",
            "hi",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("hi\n") && stdout.len() > 3, "{stdout}");
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn launched_command_runs_as_the_sudo_caller_with_their_groups() {
    require_root();
    let expected = |args: &[&str]| {
        let out = Command::new("id").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // A system user with a supplementary group where the distribution has one.
    let user = ["postgres", "mysql", "nobody"]
        .into_iter()
        .find(|u| {
            Command::new("id")
                .arg(u)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a system user");
    let uid = expected(&["-u", user]);
    let gid = expected(&["-g", user]);
    let ids = |envs: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = Command::new(lockprof());
        cmd.args(["record", "-q"]).args(extra).args([
            "--",
            "/bin/sh",
            "-c",
            "id -u; id -g; id -G; echo $USER",
        ]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The report follows on stdout (no -o): the command's four lines come first.
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().take(4).map(str::to_owned).collect::<Vec<_>>()
    };
    let sudo = [
        ("SUDO_UID", uid.as_str()),
        ("SUDO_GID", gid.as_str()),
        ("SUDO_USER", user),
    ];
    let got = ids(&sudo, &[]);
    assert_eq!(got[0], uid);
    assert_eq!(got[1], gid);
    let want_text = expected(&["-G", user]);
    let mut want: Vec<&str> = want_text.split(' ').collect();
    let mut have: Vec<&str> = got[2].split(' ').collect();
    want.sort_unstable();
    have.sort_unstable();
    assert_eq!(have, want, "supplementary groups of {user}");
    assert_eq!(got[3], user, "USER is the caller's");
    // --user root keeps root, sudo or not.
    let got = ids(&sudo, &["--user", "root"]);
    assert_eq!((got[0].as_str(), got[1].as_str()), ("0", "0"));
    // --user NAME without sudo.
    let got = ids(&[], &["--user", user]);
    assert_eq!(got[0], uid);
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn under_sudo_the_report_and_its_fallback_belong_to_the_caller() {
    use std::os::unix::fs::MetadataExt;
    require_root();
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    assert_ne!(uid, 0);
    let (uid_s, gid_s) = (uid.to_string(), gid.to_string());
    let sudo_record = |args: &[&str], tmp: &Path| {
        Command::new(lockprof())
            .arg("record")
            .args(args)
            .env("SUDO_UID", &uid_s)
            .env("SUDO_GID", &gid_s)
            .env("SUDO_USER", "nobody")
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let owner = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid())
    };

    // Where asked, replacing a file root had there.
    let dir = tempdir();
    let json = dir.join("r.json");
    std::fs::write(&json, "old").unwrap();
    let out = sudo_record(
        &["-q", "-o", json.to_str().unwrap(), "--", "/bin/true"],
        &dir,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    complete_or_empty(&json);
    assert_eq!(owner(&json), (uid, gid), "the report is the sudo caller's");

    // The fallback: the command (running as the caller) removes the directory of -o.
    let gone = tempdir();
    std::os::unix::fs::chown(&gone, Some(uid), Some(gid)).unwrap();
    let script = format!("rm -rf '{}'", gone.display());
    let out = sudo_record(
        &[
            "-o",
            gone.join("r.json").to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            &script,
        ],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(!gone.exists(), "the command removed it");
    let line = stderr
        .lines()
        .find(|l| l.contains("the report was saved to"))
        .unwrap_or_else(|| panic!("no fallback line: {stderr}"));
    let fallback = PathBuf::from(line.split('\'').rev().nth(1).unwrap());
    assert!(fallback.starts_with(&dir), "{line}");
    complete_or_empty(&fallback);
    assert_eq!(owner(&fallback), (uid, gid), "the fallback is the caller's");
    // Without sudo, root's file stays root's.
    let plain = dir.join("plain.json");
    let out = Command::new(lockprof())
        .args([
            "record",
            "-q",
            "-o",
            plain.to_str().unwrap(),
            "--",
            "/bin/true",
        ])
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(owner(&plain), (0, 0));
}

/// A report file that parses (a command that never waits gives an empty one).
fn complete_or_empty(path: &Path) {
    profiler::report::json::read(path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
}
