//! lockprof on real daemons from Debian, started by the tests on 127.0.0.1 (ports
//! 23000–23999), loaded, recorded and stopped by PID: `PostgreSQL` under pgbench and
//! memcached under a hot-key load; and symbols for a stripped binary from a real
//! local `debuginfod` server.
//!
//! Root-only (`cargo xtask test` runs them; `cargo xtask setup` installs
//! `postgresql`, `memcached`, `debuginfod` and `binutils`). Together they take well
//! under two minutes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{demo_bin, lockprof, require_root, tempdir, top_sites};
use profiler::report::{Report, Site, WaitKind};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PG_PORT: u16 = 23_011;
const MEMCACHED_PORT: u16 = 23_021;
const DEBUGINFOD_PORT: u16 = 23_031;

/// A daemon started by a test, stopped (by its PID) when the test ends, even on panic.
struct Daemon {
    child: Child,
    what: &'static str,
    /// Signal that shuts it down cleanly (`PostgreSQL`: SIGINT, fast shutdown).
    stop_signal: i32,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on the PID of our own child.
        unsafe { libc::kill(pid, self.stop_signal) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop in 10s: killing it", self.what);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn as_postgres(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--",
        program,
    ]);
    c
}

/// Retry `ready` every 100 ms for up to 30 s.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} not ready after 30s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `lockprof record -p PID… --duration D -o FILE` in the background.
fn start_recording(pids: &[u32], duration: &str, json: &Path) -> Child {
    let pids: Vec<String> = pids.iter().map(|p| format!("-p{p}")).collect();
    Command::new(lockprof())
        .args(["record", "-q", "--duration", duration])
        .args(&pids)
        .arg("-o")
        .arg(json)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lockprof")
}

fn finish_recording(rec: Child, json: &Path) -> Report {
    let out = rec.wait_with_output().expect("wait for lockprof");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lockprof failed: {stderr}");
    profiler::report::json::read(json).unwrap_or_else(|e| panic!("no report ({e}): {stderr}"))
}

/// The processes whose parent is `pid`, from `/proc/*/stat`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                // pid (comm) state ppid …: comm may hold spaces, so split after ')'.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

fn has_frame(site: &Site, function: &str) -> bool {
    site.stacks
        .iter()
        .flat_map(|s| &s.frames)
        .any(|f| f.function.as_deref() == Some(function))
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn postgres_ranks_the_callers_of_its_lwlock_wrapper_without_wasted_wakeups() {
    require_root();
    let dir = tempdir();
    let data = dir.join("data");
    run(Command::new("chown").arg("postgres:postgres").arg(&dir));
    run(as_postgres(&format!("{PG_BIN}/initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]));
    let log = std::fs::File::create(dir.join("postgres.log")).expect("log file");
    let child = as_postgres(&format!("{PG_BIN}/postgres"))
        .arg("-D")
        .arg(&data)
        .args([
            "-p",
            &PG_PORT.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
        ])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        .args([
            "-c",
            "max_connections=64",
            "-c",
            "shared_buffers=64MB",
            "-c",
            "fsync=off",
        ])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start postgres");
    let pg = Daemon {
        child,
        what: "postgres",
        stop_signal: libc::SIGINT,
    };
    let port = PG_PORT.to_string();
    let conn = ["-h", "127.0.0.1", "-p", port.as_str(), "-U", "postgres"];
    wait_until("postgres", || {
        Command::new(format!("{PG_BIN}/pg_isready"))
            .args(conn)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    run(Command::new("createdb").args(conn).arg("bench"));
    run(Command::new("pgbench")
        .args(conn)
        .args(["-i", "-q", "-s", "1", "bench"]));

    // Backends are forked per connection and `-p` follows only the processes it is
    // given (and a launched command's descendants): attach to the postmaster's
    // children once pgbench has connected — not to every process named postgres,
    // which could be another user's server.
    let mut bench = Command::new("pgbench")
        .args(conn)
        .args(["-n", "-c", "16", "-j", "2", "-T", "8", "bench"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start pgbench");
    // All 16 of pgbench's backends (their title names the database), not just 16
    // children: the background processes count among the children, and a backend
    // left out posts semaphores nobody sees.
    let mut pids = Vec::new();
    wait_until("16 backends", || {
        pids = children_of(pg.child.id());
        let backends = pids
            .iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(" bench "))
            })
            .count();
        backends >= 16
    });
    pids.push(pg.child.id());
    let json = dir.join("pg.json");
    let rec = start_recording(&pids, "5s", &json);
    let report = finish_recording(rec, &json);
    assert!(bench.wait().expect("pgbench").success(), "pgbench failed");
    drop(pg);

    let sites = top_sites(&report, 8);
    // LWLock waits: sem_wait ← PGSemaphoreLock ← LWLockAcquire ← the caller that
    // wanted the lock. The wrapper is recognized, so the callers are the sites.
    let below: Vec<&Site> = report
        .sites
        .iter()
        .filter(|s| s.kind == WaitKind::Semaphore && has_frame(s, "LWLockAcquire"))
        .collect();
    assert!(!below.is_empty(), "no LWLock waits seen:\n{sites}");
    let names: Vec<&str> = below.iter().filter_map(|s| s.function.as_deref()).collect();
    assert!(
        names.len() > 1 && !names.contains(&"PGSemaphoreLock") && !names.contains(&"LWLockAcquire"),
        "sites below the wrapper: {names:?}\n{sites}"
    );
    // Each backend sleeps on its own semaphore, posted by another process: the
    // re-wait after a post is its normal course, not a wasted wakeup.
    let waits: u64 = below.iter().map(|s| s.waits).sum();
    let wasted: u64 = below.iter().map(|s| s.wasted_wakeups).sum();
    assert!(
        wasted * 100 <= waits,
        "{wasted} wasted wakeups of {waits} semaphore waits\n{sites}"
    );
    // Another backend posts the semaphore (in the postmaster's shared memory): the
    // waits pair across processes by the futex's identity, so the top sites name
    // their wakers — the LWLock release paths — all of them in other processes.
    let wakers = |s: &Site| -> Vec<(u64, u64, String)> {
        s.woken_by
            .iter()
            .map(|w| {
                let f = w.function.clone().unwrap_or_default();
                (w.waits, w.from_other_processes, f)
            })
            .collect()
    };
    let paired: u64 = below
        .iter()
        .flat_map(|s| &s.woken_by)
        .map(|w| w.waits)
        .sum();
    assert!(
        paired * 10 >= waits * 8,
        "only {paired} of {waits} semaphore waits paired with a waker\n{sites}"
    );
    let posts_semaphore = |id: &str| {
        report.wakers.iter().any(|w| {
            w.id == id
                && w.stack
                    .iter()
                    .any(|f| f.function.as_deref() == Some("PGSemaphoreUnlock"))
        })
    };
    for site in below.iter().take(3) {
        let from: u64 = site.woken_by.iter().map(|w| w.waits).sum();
        let other: u64 = site.woken_by.iter().map(|w| w.from_other_processes).sum();
        let posted: u64 = site
            .woken_by
            .iter()
            .filter(|w| posts_semaphore(&w.waker))
            .map(|w| w.waits)
            .sum();
        // Named by symbol (not `postgres+0x…`, a static function of the stripped binary).
        let named = site
            .woken_by
            .iter()
            .any(|w| w.function.as_deref().is_some_and(|f| !f.contains('+')));
        assert!(
            from > 0 && other == from && posted * 2 >= from && named,
            "site {:?}: wakers (waits, from other processes, function) {:?}",
            site.function,
            wakers(site)
        );
    }
    assert_eq!(report.losses.last_wake_lost, 0);
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn memcached_hot_keys_are_pthread_mutex_contention_with_wakers() {
    require_root();
    let load = demo_bin("memcached-load");
    let child = Command::new("memcached")
        .args([
            "-u",
            "memcache",
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-t",
            "4",
            "-m",
            "64",
        ])
        .args(["-c", "1024", "-p", &MEMCACHED_PORT.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start memcached");
    let mc = Daemon {
        child,
        what: "memcached",
        stop_signal: libc::SIGTERM,
    };
    wait_until("memcached", || {
        std::net::TcpStream::connect(("127.0.0.1", MEMCACHED_PORT)).is_ok()
    });
    let dir = tempdir();
    let json = dir.join("mc.json");
    let rec = start_recording(&[mc.child.id()], "5s", &json);
    std::thread::sleep(Duration::from_secs(1));
    run(Command::new(load).args([
        "--port",
        &MEMCACHED_PORT.to_string(),
        "--conns",
        "8",
        "--seconds",
        "3",
    ]));
    let report = finish_recording(rec, &json);
    drop(mc);

    let sites = top_sites(&report, 8);
    let mutex: Vec<&Site> = report
        .sites
        .iter()
        .filter(|s| s.kind == WaitKind::Mutex && s.waits > 0)
        .collect();
    assert!(!mutex.is_empty(), "no pthread mutex waits:\n{sites}");
    assert!(
        mutex.iter().all(|s| s.contention),
        "mutex sites are contention\n{sites}"
    );
    let waits: u64 = mutex.iter().map(|s| s.waits).sum();
    let woken: u64 = mutex
        .iter()
        .flat_map(|s| &s.woken_by)
        .map(|w| w.waits)
        .sum();
    assert!(
        woken * 2 >= waits,
        "only {woken} of {waits} mutex waits name their waker\n{sites}"
    );
    assert!(
        report.wakers.iter().any(|w| w.kind == WaitKind::Mutex),
        "no mutex wakers (pthread_mutex_unlock)"
    );
}

/// A stripped copy of a fixture binary as the target, its unstripped original
/// served by a real `debuginfod`: frames get their function and line back.
#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn debuginfod_names_the_frames_of_a_stripped_binary() {
    use profiler::resolve::debuginfod::Debuginfod;
    use profiler::resolve::symbolize::{BlazeSymbolizer, Symbolize};

    require_root();
    let dir = tempdir();
    let served = dir.join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let original = demo_bin("pthread-fixture");
    let unstripped = served.join("pthread-fixture");
    std::fs::copy(&original, &unstripped).expect("copy fixture");
    let stripped = dir.join("pthread-fixture");
    run(Command::new("objcopy")
        .arg("--strip-all")
        .arg(&unstripped)
        .arg(&stripped));

    // Offsets in .text that the unstripped file names with a line.
    let offsets = text_offsets(&unstripped);
    let mut plain = BlazeSymbolizer::default();
    let truth = plain.symbolize(&unstripped, &offsets);
    let (offsets, truth): (Vec<u64>, Vec<_>) = offsets
        .into_iter()
        .zip(truth)
        .filter(|(_, t)| t.iter().any(|f| f.line.is_some()))
        .unzip();
    assert!(!offsets.is_empty(), "the fixture has line info");
    let without = BlazeSymbolizer::default().symbolize(&stripped, &offsets);
    assert!(
        without.iter().flatten().all(|f| f.line.is_none()),
        "stripped: no lines"
    );

    let child = Command::new("debuginfod")
        .args(["-p", &DEBUGINFOD_PORT.to_string(), "-d"])
        .arg(dir.join("db.sqlite"))
        .arg("-F")
        .arg(&served)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start debuginfod");
    let _server = Daemon {
        child,
        what: "debuginfod",
        stop_signal: libc::SIGTERM,
    };
    let url = format!("http://127.0.0.1:{DEBUGINFOD_PORT}");
    let cache: PathBuf = dir.join("cache");
    // The server needs a moment to scan and index the directory.
    let build_id = blazesym::helper::read_elf_build_id(&stripped)
        .expect("read build id")
        .expect("fixture has a build id")
        .to_vec();
    wait_until("debuginfod index", || {
        Debuginfod::new(&url, cache.clone(), false)
            .and_then(|mut d| d.debuginfo(&build_id, &stripped))
            .is_some()
    });
    std::fs::remove_dir_all(&cache).expect("empty the cache");

    let client = Debuginfod::new(&url, cache.clone(), true);
    let mut sym = BlazeSymbolizer::default().with_debuginfod(client);
    let with = sym.symbolize(&stripped, &offsets);
    for ((o, got), want) in offsets.iter().zip(&with).zip(&truth) {
        assert_eq!(got, want, "offset {o:#x}");
    }
    assert!(
        cache
            .join(profiler::resolve::symbolize::hex(&build_id))
            .join("debuginfo")
            .is_file(),
        "cached in the elfutils layout"
    );
}

/// A few file offsets spread over the `.text` section of an ELF file.
fn text_offsets(elf: &Path) -> Vec<u64> {
    let sections = run(Command::new("readelf").arg("-SW").arg(elf));
    let text = sections
        .lines()
        .find(|l| l.contains(" .text "))
        .expect(".text section");
    let fields: Vec<&str> = text
        .split(']')
        .nth(1)
        .expect("section row")
        .split_whitespace()
        .collect();
    // Name Type Address Off Size …
    let off = u64::from_str_radix(fields[3], 16).expect("offset");
    let size = u64::from_str_radix(fields[4], 16).expect("size");
    (1..=16).map(|i| off + size * i / 17).collect()
}
