//! lockprof attached by pid to a real Go daemon from Debian: containerd 1.6 (Debian's
//! `containerd` package, built with Go 1.19, stripped), started by the test on a
//! private root, state dir and unix socket under a temp dir (no network, no systemd),
//! under concurrent `ctr images import` of one image built from files (an OCI layout
//! tar, no registry) and `ctr images rm` of it — both by `demo-targets/go/ctrload`,
//! which the overhead benchmark uses too.
//!
//! Why containerd: it is the daemon of the Go demo's bug (containerd#4937: the content
//! store's try-lock sleeps run inside a bbolt write transaction, so concurrent writers
//! of the same blob queue on bbolt's single writer lock), it runs as one process with
//! no network and no container runtime needed for image work, and Debian ships it
//! without symbols, so function names can only come from `.gopclntab`.
//!
//! Asserts: the binary has no symbol table; the top Go sites are named (function and
//! `file:line`, not module+offset); at least one `go-mutex`/`go-rwmutex*` site is in
//! containerd's own code or a library it vendors (bbolt, grpc), is contention, and
//! names the goroutine whose release ended its waits, whose stack runs through
//! containerd's code; the runtime's idle threads are folded, not ranked.
//!
//! Root-only (`cargo xtask test`; `cargo xtask setup` installs `containerd`, and the
//! test installs it when it is missing). About 15 s.

mod common;

use std::io::{BufReader, Read as _};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{lockprof, require_root, tempdir, top_sites};
use object::Object as _;
use profiler::report::{Report, Site, WaitKind};

const CONTAINERD: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";
/// Concurrent `ctr` loops: most import, every fourth removes the image again (so the
/// imports keep writing content, unpacking and updating the metadata).
const WORKERS: &str = "8";
const RECORD: &str = "6s";

/// Install Debian's containerd when it is missing (a fresh CI machine).
fn ensure_containerd() {
    if Path::new(CONTAINERD).exists() && Path::new(CTR).exists() {
        return;
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "containerd"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("run apt-get");
    assert!(status.success(), "apt-get install containerd failed");
}

/// containerd on the private config `ctrload setup` wrote, stopped by its PID when
/// dropped.
struct Containerd {
    child: Child,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let log = std::fs::File::create(dir.join("containerd.log")).expect("log file");
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let d = Containerd { child };
        let socket = dir.join("containerd.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !Command::new(CTR)
            .arg("-a")
            .arg(&socket)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                Instant::now() < deadline,
                "containerd did not answer on {} within 30s; log:\n{}",
                socket.display(),
                std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("containerd did not stop in 10s: killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ctrload load`: concurrent `ctr` imports and removals until its stdin is closed.
struct Load {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Load {
    /// Starts the load and returns once the first import went through.
    fn start(ctrload: &Path, dir: &Path) -> Load {
        let (child, out) = common::spawn_until_ready(
            Command::new(ctrload)
                .arg("-dir")
                .arg(dir)
                .args(["-workers", WORKERS, "load"]),
        );
        Load { child, out }
    }

    /// Stops the load and returns how many `ctr` commands succeeded.
    fn finish(mut self) -> u64 {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).expect("read ctrload");
        assert!(self.child.wait().expect("ctrload exit").success());
        let line = rest
            .lines()
            .find(|l| l.starts_with("{\"ctrload\""))
            .unwrap_or_else(|| panic!("no result line from ctrload: {rest}"));
        let v: serde_json::Value = serde_json::from_str(line).expect("ctrload JSON");
        v["ok"].as_u64().expect("ok count")
    }
}

fn record_pid(pid: u32, json: &Path) -> Report {
    let out = Command::new(lockprof())
        .args(["record", "-q", "--no-debuginfod", "-d", RECORD, "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(json)
        .env_remove("DEBUGINFOD_URLS")
        .stdin(Stdio::null())
        .output()
        .expect("run lockprof");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lockprof failed: {stderr}");
    profiler::report::json::read(json).unwrap_or_else(|e| panic!("no report ({e}): {stderr}"))
}

fn is_go_kind(kind: WaitKind) -> bool {
    kind.as_str().starts_with("go-")
}

/// Named as the symbol table would name it: a Go function and its `file:line`.
fn named(site: &Site) -> bool {
    site.function
        .as_deref()
        .is_some_and(|f| f.contains('.') && !f.contains("+0x"))
        && site
            .file
            .as_deref()
            .is_some_and(|f| Path::new(f).extension().is_some_and(|e| e == "go"))
        && site.line.is_some()
}

/// containerd's own packages and the libraries it vendors (bbolt, grpc, …).
fn in_daemon_code(function: &str) -> bool {
    !function.starts_with("runtime.") && !function.starts_with("sync.") && function.contains('/')
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn containerd_lock_sites_are_named_from_gopclntab_with_their_holders() {
    require_root();
    ensure_containerd();
    // The premise: Debian's binary is stripped, so names can only come from .gopclntab.
    let data = std::fs::read(CONTAINERD).expect("read containerd");
    let elf = object::File::parse(&*data).expect("parse containerd");
    assert!(
        elf.section_by_name(".symtab").is_none(),
        "{CONTAINERD} has a symbol table: this test needs Debian's stripped build"
    );
    assert!(elf.section_by_name(".gopclntab").is_some());
    drop(data);

    let ctrload = common::go_build(Path::new("go"), "./ctrload", "ctrload");
    let dir = tempdir();
    let setup = Command::new(&ctrload)
        .arg("-dir")
        .arg(&dir)
        .arg("setup")
        .status()
        .expect("run ctrload setup");
    assert!(setup.success(), "ctrload setup failed");
    let daemon = Containerd::start(&dir);
    let load = Load::start(&ctrload, &dir);
    std::thread::sleep(Duration::from_secs(1));
    let report = record_pid(daemon.pid(), &dir.join("report.json"));
    let done = load.finish();
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);

    assert!(done > 0, "the ctr load completed no command");
    let listing = top_sites(&report, 8);
    let go_sites: Vec<&Site> = report.sites.iter().filter(|s| is_go_kind(s.kind)).collect();
    assert!(
        go_sites.len() >= 3,
        "fewer than 3 Go sites ({done} commands completed):\n{listing}"
    );
    for s in go_sites.iter().take(5) {
        assert!(
            named(s),
            "a top Go site is not named from .gopclntab: {:?} {:?}:{:?} (module {:?})\n{listing}",
            s.function,
            s.file,
            s.line,
            s.module
        );
        assert!(
            s.module.as_deref() == Some(CONTAINERD),
            "module {:?}",
            s.module
        );
    }

    // A lock of containerd's (or a vendored library's) with the holder that released it.
    let lock = go_sites
        .iter()
        .find(|s| {
            matches!(
                s.kind,
                WaitKind::GoMutex | WaitKind::GoRwmutexRead | WaitKind::GoRwmutexWrite
            ) && s.function.as_deref().is_some_and(in_daemon_code)
                && s.woken_by.iter().any(|w| w.function.is_some())
        })
        .unwrap_or_else(|| {
            panic!("no go-mutex/go-rwmutex site in containerd's code with a holder:\n{listing}")
        });
    assert!(lock.contention && lock.waits > 0, "{:?}", lock.id);
    let holder = lock
        .woken_by
        .iter()
        .find(|w| w.function.is_some())
        .expect("found above");
    let waker = report
        .wakers
        .iter()
        .find(|w| w.id == holder.waker)
        .unwrap_or_else(|| panic!("waker {} not in the report's wakers", holder.waker));
    assert!(
        waker.stack.iter().any(|f| f
            .function
            .as_deref()
            .is_some_and(|f| f.starts_with("github.com/containerd/containerd/"))),
        "the holder's stack does not reach containerd's code: {:?}",
        waker
            .stack
            .iter()
            .map(|f| f.function.as_deref().unwrap_or("?"))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "{} commands; lock site {} ({} waits, {} ms) released by {}",
        done,
        lock.function.as_deref().unwrap_or("?"),
        lock.waits,
        lock.total_wait_ns / 1_000_000,
        holder.function.as_deref().unwrap_or("?")
    );

    common::assert_go_idle_folded(&report);
}
