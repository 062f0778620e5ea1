//! Shared helpers for lockprof's integration tests: where the binaries are, running
//! `lockprof record` and reading its JSON report, finding `// LOCK-SITE:` lines.
//!
//! Root-only tests call [`require_root`] first: they are `#[ignore]`d so a plain
//! `cargo test` never runs them, and `cargo xtask test` runs them as root, where a
//! missing privilege is a failure, not a skip.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use profiler::report::{HeldAcross, Report, Site, WaitKind};

/// `target/<profile>`, derived from this test binary's own path
/// (`target/<profile>/deps/<test>-<hash>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The `lockprof` binary built with these tests.
pub fn lockprof() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lockprof"))
}

/// A binary of the `demo-targets` package, built into the same profile directory
/// (`cargo xtask test` builds it before running these tests).
pub fn demo_bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --profile <same> -p demo-targets` (cargo xtask test does)",
        path.display()
    );
    path
}

/// Build the Go package `demo-targets/go/<package>` (`.` for the demo itself) with the
/// Go toolchain `go` (a path, or `go` for the installed one) into
/// `target/<profile>/go-demo/<name>`, and return its path.
pub fn go_build(go: &Path, package: &str, name: &str) -> PathBuf {
    let out = target_dir().join("go-demo");
    std::fs::create_dir_all(&out).expect("create go-demo dir");
    let bin = out.join(name);
    let status = Command::new(go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(package)
        .current_dir(repo_root().join("demo-targets/go"))
        .env("GOCACHE", out.join("cache"))
        .env("GOFLAGS", "-mod=mod")
        // A newer toolchain must build with itself, never fetch another.
        .env("GOTOOLCHAIN", "local")
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "run `{} build` ({e}; golang-go: `cargo xtask setup` installs it)",
                go.display()
            )
        });
    assert!(
        status.success(),
        "go build of demo-targets/go/{package} with {} failed",
        go.display()
    );
    bin
}

/// Start `cmd` with piped stdin and stdout and wait for its first line, `ready` (the
/// Go demo with `-wait`, `ctrload load`): it waits for a line on (or the end of) its
/// stdin to go on. Returns it and the rest of its stdout.
pub fn spawn_until_ready(cmd: &mut Command) -> (Child, BufReader<ChildStdout>) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut ready = String::new();
    out.read_line(&mut ready).expect("read its first line");
    assert_eq!(ready.trim(), "ready", "{cmd:?} did not print 'ready'");
    (child, out)
}

/// Root-only tests refuse to run silently without root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "BPF integration tests need root: run `cargo xtask test`"
    );
}

/// Repository root (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// 1-based line of the unique `// LOCK-SITE: <tag>` comment in `file` (relative to
/// the repository root).
pub fn tag_line(file: &str, tag: &str) -> u32 {
    let text = std::fs::read_to_string(repo_root().join(file)).expect("read source file");
    let needle = format!("// LOCK-SITE: {tag}");
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_end().ends_with(&needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "tag '{tag}' must appear exactly once in {file}: {hits:?}"
    );
    hits[0] as u32
}

/// A finished `lockprof record` run.
pub struct Recorded {
    pub output: Output,
    pub report: Report,
    pub stdout: String,
    pub stderr: String,
}

/// Run `lockprof record -o <tmp> <args…>` and read the JSON report it wrote.
pub fn record(args: &[&str]) -> Recorded {
    let dir = tempdir();
    let json = dir.join("report.json");
    let output = Command::new(lockprof())
        .arg("record")
        .arg("-o")
        .arg(&json)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run lockprof");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = profiler::report::json::read(&json).unwrap_or_else(|e| {
        panic!("no report ({e}); lockprof stderr:\n{stderr}\nstdout:\n{stdout}")
    });
    Recorded {
        output,
        report,
        stdout,
        stderr,
    }
}

/// A fixture's result line in its `stdout` (the JSON object starting `{"pid"` that the
/// demo targets and fixtures print), parsed.
pub fn fixture_line(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"pid\""))
        .unwrap_or_else(|| panic!("fixture printed no result line:\n{stdout}"));
    serde_json::from_str(line).expect("fixture JSON")
}

/// A fresh empty directory under the system temp dir.
pub fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "lockprof-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Rank (0-based) and site whose frame is `function_suffix` at `file_suffix:line`.
pub fn find_site<'r>(
    report: &'r Report,
    function_suffix: &str,
    file_suffix: &str,
    line: u32,
) -> Option<(usize, &'r Site)> {
    report.sites.iter().enumerate().find(|(_, s)| {
        s.function
            .as_deref()
            .is_some_and(|f| f.ends_with(function_suffix))
            && s.file.as_deref().is_some_and(|f| f.ends_with(file_suffix))
            && s.line == Some(line)
    })
}

/// A compact listing of the top sites, for assertion messages.
pub fn top_sites(report: &Report, n: usize) -> String {
    report
        .sites
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, s)| {
            format!(
                "#{} {} {} {}:{} waits={} total={}ms",
                i + 1,
                s.kind.as_str(),
                s.function.as_deref().unwrap_or("?"),
                s.file.as_deref().unwrap_or("?"),
                s.line.unwrap_or(0),
                s.waits,
                s.total_wait_ns / 1_000_000
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Go runtime's idle threads park on futexes: one folded line, never a site.
pub fn assert_go_idle_folded(report: &Report) {
    assert!(
        report.sites.iter().all(|s| s.kind != WaitKind::GoIdle
            && !s
                .function
                .as_deref()
                .is_some_and(|f| f.starts_with("runtime.futex"))),
        "Go scheduler idle waits must be folded:\n{}",
        top_sites(report, 8)
    );
}

/// A waker that held the lock across a sleep: off CPU for most of its waiters'
/// windows, with a sleep syscall on top of where it was.
pub fn assert_held_across_sleep(held: &HeldAcross) {
    assert!(
        held.off_cpu_ns * 2 > held.window_ns,
        "holder off CPU {} of {} ns",
        held.off_cpu_ns,
        held.window_ns
    );
    let top = held.off_cpu_in.first().map_or("", |o| o.syscall.as_str());
    assert!(
        top == "clock_nanosleep" || top == "nanosleep",
        "holder off CPU in {:?}",
        held.off_cpu_in
    );
}

/// The fixture reports recorded from live runs (`tests/fixtures/README.md`): real
/// daemons and demos, for checks that hand-made reports cannot stand in for.
#[allow(
    dead_code,
    reason = "used by some of the test binaries that include this module"
)]
pub const RECORDED_FIXTURES: &[&str] = &[
    "pg-pgbench-c16.json",
    "pg-pgbench-c4.json",
    "memcached-hotkeys.json",
    "demo-container-store-before.json",
    "demo-layer-store-before.json",
];

/// `futex-ops`' scenarios: (name, wait function, wake function, threads one wake
/// reports woken — `FUTEX_UNLOCK_PI` returns 0, not a count — and the wait's kind).
const FUTEX_OPS: [(&str, &str, &str, u64, WaitKind); 10] = [
    (
        "futex_wait",
        "wait_futex_wait",
        "wake_futex_wake",
        1,
        WaitKind::Other,
    ),
    (
        "futex_wait_bitset",
        "wait_futex_wait_bitset",
        "wake_futex_wake_bitset",
        1,
        WaitKind::Other,
    ),
    (
        "futex_lock_pi",
        "wait_futex_lock_pi",
        "wake_futex_unlock_pi",
        0,
        WaitKind::Mutex,
    ),
    (
        "futex_lock_pi2",
        "wait_futex_lock_pi2",
        "wake_futex_unlock_pi",
        0,
        WaitKind::Mutex,
    ),
    (
        "futex_wait_requeue_pi",
        "wait_futex_wait_requeue_pi",
        "wake_futex_cmp_requeue_pi",
        1,
        WaitKind::Mutex,
    ),
    (
        "futex2_wait",
        "wait_futex2_wait",
        "wake_futex2_wake",
        1,
        WaitKind::Other,
    ),
    (
        "futex2_waitv",
        "wait_futex2_waitv",
        "wake_futex_wake",
        1,
        WaitKind::Other,
    ),
    (
        "futex_cmp_requeue",
        "wait_futex_wait",
        "wake_futex_cmp_requeue",
        1,
        WaitKind::Other,
    ),
    (
        "futex_wake_op",
        "wait_futex_wait",
        "wake_futex_wake_op",
        1,
        WaitKind::Other,
    ),
    (
        "futex2_requeue",
        "wait_futex2_wait",
        "wake_futex2_requeue",
        1,
        WaitKind::Other,
    ),
];

/// A recording of `futex-ops` saw every scenario its `fixture` line says the kernel
/// ran (one a kernel lacks returns `-ENOSYS` and is skipped): each wait function's
/// blocked waits (each ≈ 30 ms) and kind, each wake function's calls and threads
/// woken, and nothing lost. Returns how many scenarios ran.
pub fn assert_every_futex_op_seen(report: &Report, fixture: &serde_json::Value) -> usize {
    const ENOSYS: i64 = -38;
    let ran: Vec<&str> = fixture["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .filter(|sc| {
            let wait = sc["wait_ret"].as_i64().expect("wait_ret");
            assert!(wait == 0 || wait == ENOSYS, "scenario did not block: {sc}");
            wait == 0
        })
        .map(|sc| sc["name"].as_str().expect("name"))
        .collect();
    let scenarios: Vec<_> = FUTEX_OPS.iter().filter(|op| ran.contains(&op.0)).collect();
    for &(_, function, _, _, kind) in &scenarios {
        let n = scenarios.iter().filter(|op| op.1 == *function).count() as u64;
        let site = report
            .sites
            .iter()
            .find(|s| s.function.as_deref() == Some(&format!("futex_ops::{function}")))
            .unwrap_or_else(|| panic!("no site for {function}:\n{}", top_sites(report, 12)));
        assert_eq!(site.waits, n, "{function}");
        assert_eq!(site.kind, *kind, "{function}");
        assert!(
            site.total_wait_ns >= n * 25_000_000,
            "{function}: {} ns",
            site.total_wait_ns
        );
    }
    for &(_, _, function, _, _) in &scenarios {
        let woken: u64 = scenarios
            .iter()
            .filter(|op| op.2 == *function)
            .map(|op| op.3)
            .sum();
        let waker = report
            .wakers
            .iter()
            .find(|w| w.function.as_deref() == Some(&format!("futex_ops::{function}")))
            .unwrap_or_else(|| {
                let names: Vec<_> = report.wakers.iter().map(|w| &w.function).collect();
                panic!("no waker {function}: {names:?}")
            });
        assert!(waker.calls >= 1, "{function}");
        assert_eq!(waker.woken, woken, "{function}");
    }
    assert_eq!(report.losses.kernel_total(), 0, "{:?}", report.losses);
    scenarios.len()
}
