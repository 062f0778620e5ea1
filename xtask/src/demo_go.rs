//! The Go demo (`demo-targets/go`, kmutex's duplicate pulls in Go) for `cargo xtask
//! demo`: what it is, and building it with the Go toolchain `cargo xtask setup`
//! installs (Debian's `golang-go`).
//!
//! Owns: the Go demo's catalog entry and its build, and the build of the Go tools of
//! `cargo xtask bench overhead` (`ctrload`, `parkpong`). Must not: run or judge it (that
//! is `demo.rs`, the same way as the Rust demos, and `profiler/tests/go.rs`).

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::demos::DemoInfo;
use crate::run::{Cmd, say, target_dir, workspace_root};

pub const INFO: DemoInfo = DemoInfo {
    name: "go-kmutex",
    upstream: "containerd concurrent image pulls, issue #4937, fixed by PR #6702 (in Go, \
               the daemon's own language)",
    bug: "pullers that lost the race for a layer slept in the content store's try-lock \
          ladder while holding the metadata database lock (a sync.Mutex), so every other \
          pull queued behind the sleepers; the fix makes pulls of the same layer take \
          turns on a per-layer keyed mutex outside the database lock.",
    short_args: &[],
    extra_metrics: &["db_lock_wait_ms", "key_lock_wait_ms"],
    look_for: "before: go-mutex waits for the db lock in (*store).has, writer and commit, \
               woken by the deferred Unlock of the goroutine that slept holding it; after: \
               the db waits are gone and the per-layer key lock in (*keyMutex).lock is \
               where pullers take turns.",
};

/// Build the Go demo into `target/go-demo/godemo` and return its path.
pub fn build() -> Result<PathBuf> {
    say("building the Go demo (go build demo-targets/go)");
    build_package(".", "godemo")
        .context("build the Go demo (golang-go: 'cargo xtask setup' installs it)")
}

/// Build a benchmark tool of the Go module (`ctrload`: containerd's setup and load;
/// `parkpong`: goroutine park ping-pong) into `target/go-demo/NAME` and return its path.
pub fn build_tool(name: &str) -> Result<PathBuf> {
    say(&format!(
        "building {name} (go build demo-targets/go/{name})"
    ));
    build_package(&format!("./{name}"), name)
        .with_context(|| format!("build {name} (golang-go: 'cargo xtask setup' installs it)"))
}

/// `go build` of a package of the `demo-targets/go` module into `target/go-demo/NAME`.
fn build_package(package: &str, name: &str) -> Result<PathBuf> {
    // Absolute: `go` runs in the module's directory, and GOCACHE must be absolute.
    let out =
        std::path::absolute(target_dir().join("go-demo")).context("resolve the target dir")?;
    let bin = out.join(name);
    Cmd::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(package)
        .current_dir(workspace_root().join("demo-targets").join("go"))
        .env("GOCACHE", out.join("cache"))
        .env("GOFLAGS", "-mod=mod")
        .run()?;
    Ok(bin)
}
