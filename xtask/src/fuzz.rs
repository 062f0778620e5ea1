//! `cargo xtask test`'s fuzz step, and cargo-fuzz for `cargo xtask setup`.
//!
//! Owns: running the `report_reader` target of `fuzz/` (a workspace of its own) under
//! libFuzzer for [`SECONDS`] seconds, on a scratch corpus in `target/fuzz-corpus`
//! seeded from `fuzz/seeds/report_reader`, and installing cargo-fuzz when it is
//! missing. The fuzz build sets `AYA_BUILD_SKIP=1`: the target reads reports and needs
//! no eBPF object, and the probes must not be built with libFuzzer's sanitizer flags.
//! The first build compiles the profiler and its dependencies with the address sanitizer
//! (about 4 minutes on 2 cores, into `fuzz/target`); later runs take ~35 s.
//! Must not: write into the tracked tree. New corpus entries go to `target/`; a crash
//! leaves its input in `fuzz/artifacts/` (ignored by git) and fails the step.

use anyhow::{Context as _, Result};

use crate::run::{Cmd, on_path, say, target_dir, workspace_root};

/// How long `cargo xtask test` fuzzes.
pub const SECONDS: u32 = 30;

/// The cargo-fuzz release this was verified with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// `cargo install cargo-fuzz` unless it is already there.
pub fn ensure_cargo_fuzz() -> Result<()> {
    if on_path("cargo-fuzz") {
        say("setup: cargo-fuzz: present");
        return Ok(());
    }
    say("setup: cargo-fuzz: missing, installing (takes a minute or two)");
    Cmd::cargo()
        .args([
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ])
        .run()
}

/// Fuzzes the report reader for [`SECONDS`] seconds.
pub fn fuzz_report_reader() -> Result<()> {
    let corpus = target_dir().join("fuzz-corpus").join("report_reader");
    std::fs::create_dir_all(&corpus).with_context(|| format!("create '{}'", corpus.display()))?;
    let seeds = workspace_root()
        .join("fuzz")
        .join("seeds")
        .join("report_reader");
    Cmd::cargo()
        .args(["+nightly", "fuzz", "run", "report_reader"])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={SECONDS}"))
        .env("AYA_BUILD_SKIP", "1")
        .current_dir(workspace_root())
        .run()
        .context(
            "the report reader fuzz target failed (crash input in fuzz/artifacts/report_reader/)",
        )
}
