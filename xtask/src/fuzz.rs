//! `cargo xtask test`'s fuzz step, and cargo-fuzz for `cargo xtask setup`.
//!
//! Owns: running each target of `fuzz/` (a workspace of its own: [`TARGETS`]) under
//! libFuzzer, [`SECONDS`] seconds split between them, each on a scratch corpus in
//! `target/fuzz-corpus/<target>` seeded from `fuzz/seeds/<target>`, and installing
//! cargo-fuzz when it is missing. The fuzz build sets `AYA_BUILD_SKIP=1`: the target reads reports and needs
//! no eBPF object, and the probes must not be built with libFuzzer's sanitizer flags.
//! The first build compiles the profiler and its dependencies with the address sanitizer
//! (about 4 minutes on 2 cores, into `fuzz/target`); later runs take ~35 s.
//! Must not: write into the tracked tree. New corpus entries go to `target/`; a crash
//! leaves its input in `fuzz/artifacts/` (ignored by git) and fails the step.

use anyhow::{Context as _, Result};

use crate::run::{Cmd, on_path, say, target_dir, workspace_root};

/// How long `cargo xtask test` fuzzes, all targets together.
pub const SECONDS: u32 = 30;

/// The fuzz targets: report files into every consumer (text, replay view, diff,
/// check, flame graph, pprof), and budget files with the duration grammar.
pub const TARGETS: [&str; 2] = ["report_reader", "budget_parser"];

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

/// Fuzzes every target in [`TARGETS`], [`SECONDS`] in all.
pub fn fuzz_all() -> Result<()> {
    let each = SECONDS / TARGETS.len() as u32;
    for target in TARGETS {
        fuzz(target, each)?;
    }
    Ok(())
}

/// Fuzzes one target for `seconds`.
fn fuzz(target: &str, seconds: u32) -> Result<()> {
    let corpus = target_dir().join("fuzz-corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("create '{}'", corpus.display()))?;
    let seeds = workspace_root().join("fuzz").join("seeds").join(target);
    Cmd::cargo()
        .args(["+nightly", "fuzz", "run", target])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .env("AYA_BUILD_SKIP", "1")
        .current_dir(workspace_root())
        .run()
        .with_context(|| {
            format!("the {target} fuzz target failed (crash input in fuzz/artifacts/{target}/)")
        })
}
