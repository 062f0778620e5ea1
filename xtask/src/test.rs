//! `cargo xtask test`: THE test command. The README and `.ci/run` call it, so what
//! passes here passes in CI (style guide §6.6, "xtask mirrors CI").
//!
//! Owns: the ordered list of checks, stopping at the first failure, and the summary.
//! Steps: setup → rustfmt → clippy (host crates) → clippy (eBPF crate, on its own
//! target) → `cargo test` (unprivileged) → 30 s of fuzzing the report reader
//! (`xtask/src/fuzz.rs`) → the root-only BPF tests. Everything builds
//! with `--release` so that clippy, tests and the demo binaries share one artifact set
//! on a 2-core machine (a debug build would double the compile time).
//!
//! The BPF tests (`profiler/tests/{bpf,demos,ci,top}.rs`, `#[ignore]`d so that `cargo test`
//! passes as a normal user, style guide §4) need root. They are never skipped silently:
//! as non-root with `CI` set the step fails; otherwise the test binaries are built as
//! the user and run through `sudo -E` (so `target/` does not fill with root-owned files),
//! and without sudo the step fails with what to do. Only `--quick` (local iteration;
//! CI never passes it) skips them.
//!
//! Must not: change the machine beyond `cargo xtask setup`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::run::{Cmd, is_root, on_path, say, target_dir, workspace_root};
use crate::setup::setup;

/// How a step ended, when it did not fail.
enum Outcome {
    Passed,
    Skipped(String),
}

struct Step {
    name: &'static str,
    run: fn(&Options) -> Result<Outcome>,
}

pub struct Options {
    /// Skip the root-only BPF tests (local iteration only).
    pub quick: bool,
}

const STEPS: [Step; 7] = [
    Step {
        name: "setup (toolchain)",
        run: |_| setup().map(|()| Outcome::Passed),
    },
    Step {
        name: "rustfmt --check",
        run: |_| fmt().map(|()| Outcome::Passed),
    },
    Step {
        name: "clippy (host crates)",
        run: |_| clippy_host().map(|()| Outcome::Passed),
    },
    Step {
        name: "clippy (eBPF crate)",
        run: |_| clippy_ebpf().map(|()| Outcome::Passed),
    },
    Step {
        name: "cargo test (unprivileged)",
        run: |_| unit_tests().map(|()| Outcome::Passed),
    },
    Step {
        name: "fuzz (report files and budget files, 30 s in all)",
        run: |_| crate::fuzz::fuzz_all().map(|()| Outcome::Passed),
    },
    Step {
        name: "BPF tests (root)",
        run: bpf_tests,
    },
];

pub fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options { quick: false };
    for a in args {
        match a.as_str() {
            "--quick" => opts.quick = true,
            other => bail!("unknown option '{other}' for 'cargo xtask test' (only --quick)"),
        }
    }
    // Checked up front, not when the step comes: CI must never skip the BPF tests.
    if opts.quick && ci() {
        bail!("--quick leaves out the BPF tests, and CI is set: CI must run them");
    }
    Ok(opts)
}

/// Runs the steps in order, stops at the first failure, prints the summary; the error
/// (if any) is the failed step's.
pub fn test(opts: &Options) -> Result<()> {
    let mut results: Vec<(&str, Duration, Result<Outcome>)> = Vec::new();
    for step in &STEPS {
        say(&format!("test: ── {} ──", step.name));
        let t0 = Instant::now();
        let outcome = (step.run)(opts);
        let failed = outcome.is_err();
        results.push((step.name, t0.elapsed(), outcome));
        if failed {
            break;
        }
    }

    println!("\nxtask test summary:");
    let (mut passed, mut failed) = (0, 0);
    let mut error = None;
    for (name, took, outcome) in &results {
        let secs = format!("{:.0}s", took.as_secs_f64());
        match outcome {
            Ok(Outcome::Passed) => {
                passed += 1;
                println!("  PASS  {name:<28} {secs:>6}");
            }
            Ok(Outcome::Skipped(why)) => println!("  SKIP  {name:<28} {secs:>6}  {why}"),
            Err(e) => {
                failed += 1;
                println!("  FAIL  {name:<28} {secs:>6}  {}", first_line(e));
                error = Some(format!("{e:#}"));
            }
        }
    }
    for step in STEPS.iter().skip(results.len()) {
        println!(
            "  ----  {:<28}         not run (an earlier step failed)",
            step.name
        );
    }
    println!("xtask test: {passed} passed, {failed} failed");
    match error {
        Some(e) => bail!("{e}"),
        None => Ok(()),
    }
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn fmt() -> Result<()> {
    Cmd::cargo()
        .args(["fmt", "--all", "--", "--check"])
        .run()
        .context("formatting differs: run 'cargo fmt --all'")
}

fn clippy_host() -> Result<()> {
    // profiler-ebpf is excluded: it only builds for bpfel-unknown-none (next step).
    Cmd::cargo()
        .args([
            "clippy",
            "--workspace",
            "--exclude",
            "profiler-ebpf",
            "--all-targets",
            "--release",
            "--",
            "-D",
            "warnings",
        ])
        .run()
}

/// The eBPF crate is linted alone on its own target: linting it with the host crates
/// unifies features across the workspace and breaks the build (aya-template's
/// `test.sh`, aya's `xtask/src/clippy.rs`). Its own target dir keeps the build-std
/// artifacts from invalidating the host ones. Panics are already `abort` on
/// `bpfel-unknown-none` and no test target is built, so no `-C panic=abort` is needed.
fn clippy_ebpf() -> Result<()> {
    let dir = target_dir().join("ebpf-clippy");
    Cmd::cargo()
        .args([
            "+nightly",
            "clippy",
            "-p",
            "profiler-ebpf",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--target-dir",
        ])
        .arg(dir)
        .args(["--", "-D", "warnings"])
        .run()
}

fn unit_tests() -> Result<()> {
    Cmd::cargo()
        .args(["test", "--workspace", "--release"])
        .run()
}

/// The root-only test files that exist (others are being written; each is skipped
/// until its file lands).
///
/// `soak.rs` runs lockprof for a minute on a churning workload and asserts that its
/// memory stays flat (a bound, not a timing).
fn bpf_test_targets() -> Vec<&'static str> {
    let dir = workspace_root().join("profiler").join("tests");
    [
        "bpf",
        "demos",
        "ci",
        "targets",
        "unwind",
        "top",
        "daemons",
        "go",
        "go_daemon",
        "probe",
        "cli",
        "soak",
        "attach_methods",
    ]
    .into_iter()
    .filter(|t| dir.join(format!("{t}.rs")).is_file())
    .collect()
}

fn bpf_tests(opts: &Options) -> Result<Outcome> {
    if opts.quick {
        return Ok(Outcome::Skipped(
            "--quick (CI never skips these)".to_owned(),
        ));
    }
    let targets = bpf_test_targets();
    if targets.is_empty() {
        return Ok(Outcome::Skipped(
            "profiler/tests/bpf.rs and demos.rs do not exist yet".to_owned(),
        ));
    }
    if !is_root() && ci() {
        bail!("BPF tests need root, and CI is set so they are not skipped: run the CI job as root");
    }
    if !is_root() && !on_path("sudo") {
        bail!(
            "BPF tests need root and sudo is not installed: run 'cargo xtask test' as root \
             (or 'cargo xtask test --quick' to leave them out locally)"
        );
    }
    // The tests spawn the demo binaries, which `cargo test -p profiler` does not build.
    Cmd::cargo()
        .args(["build", "--release", "-p", "demo-targets"])
        .run()?;
    // `--workspace` rather than `-p profiler`: the same package set as `cargo test
    // --workspace` resolves the same dependency features, so the test binaries built
    // by the previous step are reused instead of compiling profiler a second time.
    let mut test_args = vec!["test", "--release", "--workspace"];
    for t in &targets {
        test_args.extend(["--test", t]);
    }
    if is_root() {
        // Every root test file runs even after one fails, so a red run names all of
        // its failures at once.
        Cmd::cargo()
            .args(&test_args)
            .args(["--no-fail-fast", "--", "--ignored", "--test-threads=1"])
            .run()?;
    } else {
        say("test: not root: building the BPF tests as you, running them with sudo -E");
        for exe in build_test_binaries(&test_args)? {
            // cargo runs test binaries from the package directory with
            // CARGO_MANIFEST_DIR set; do the same under sudo.
            let pkg = workspace_root().join("profiler");
            Cmd::new("sudo")
                .arg("-E")
                .arg(&exe)
                .args(["--ignored", "--test-threads=1"])
                .env("CARGO_MANIFEST_DIR", &pkg)
                .current_dir(&pkg)
                .run()?;
        }
    }
    Ok(Outcome::Passed)
}

/// Running in CI (`CI` set and non-empty, as GitHub Actions, GitLab and most others do)?
fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// `cargo test --no-run` and the paths of the test executables it built.
fn build_test_binaries(test_args: &[&str]) -> Result<Vec<PathBuf>> {
    let out = Cmd::cargo()
        .args(test_args)
        .args(["--no-run", "--message-format=json-render-diagnostics"])
        .capture()?;
    let exes: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m.get("reason").and_then(Value::as_str) == Some("compiler-artifact"))
        // Only integration-test targets: the lockprof binary they need is an artifact too.
        .filter(|m| {
            m.pointer("/target/kind")
                .and_then(Value::as_array)
                .is_some_and(|kinds| kinds.iter().any(|k| k == "test"))
        })
        .filter_map(|m| {
            m.get("executable")
                .and_then(Value::as_str)
                .map(PathBuf::from)
        })
        .collect();
    if exes.is_empty() {
        bail!("'cargo test --no-run' reported no test executables");
    }
    Ok(exes)
}
