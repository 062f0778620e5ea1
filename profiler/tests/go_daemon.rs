//! lockprof attached by pid to a real Go daemon from Debian: containerd 1.6 (Debian's
//! `containerd` package, built with Go 1.19, stripped), started by the test on a
//! private root, state dir and unix socket under a temp dir (no network, no systemd),
//! under concurrent `ctr images import` of one image built here from files (an OCI
//! layout tar, no registry) and `ctr images rm` of it.
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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{lockprof, require_root, tempdir, top_sites};
use object::Object as _;
use profiler::report::{Report, Site, WaitKind};

const CONTAINERD: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";
const IMAGE: &str = "lockprof.test/tiny:latest";
/// Concurrent `ctr` loops: most import, every fourth removes the image again (so the
/// imports keep writing content, unpacking and updating the metadata).
const WORKERS: usize = 8;
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

/// Run `program args…` and return its stdout, failing the test with its output.
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

/// Copy `file` into the layout's blob store under its sha256; returns (digest, size).
fn add_blob(layout: &Path, file: &Path) -> (String, u64) {
    let sum = run(Command::new("sha256sum").arg(file));
    let hex = sum.split_whitespace().next().expect("sha256sum output");
    std::fs::copy(file, layout.join("blobs/sha256").join(hex)).expect("copy blob");
    let size = std::fs::metadata(file).expect("blob size").len();
    (format!("sha256:{hex}"), size)
}

/// An OCI image layout tar of one layer of 200 small files, named [`IMAGE`].
fn build_image(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("data")).expect("rootfs dir");
    for i in 0..200 {
        let text = format!("file {i}\n").repeat(100 + i);
        std::fs::write(rootfs.join("data").join(format!("f{i}")), text).expect("write file");
    }
    let layout = dir.join("oci");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout dir");
    let layer = dir.join("layer.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg("."));
    let (layer_digest, layer_size) = add_blob(&layout, &layer);

    let write_json = |name: &str, v: &serde_json::Value| -> (String, u64) {
        let path = dir.join(name);
        std::fs::write(&path, v.to_string()).expect("write json");
        add_blob(&layout, &path)
    };
    let (config_digest, config_size) = write_json(
        "config.json",
        &serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": { "Cmd": ["/bin/true"] },
            "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        }),
    );
    let (manifest_digest, manifest_size) = write_json(
        "manifest.json",
        &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": config_digest, "size": config_size },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar",
                         "digest": layer_digest, "size": layer_size }],
        }),
    );
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": { "io.containerd.image.name": IMAGE,
                             "org.opencontainers.image.ref.name": "latest" },
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
    let image = dir.join("image.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&image)
        .arg("."));
    image
}

/// containerd on a private root/state/socket, stopped by its PID when dropped.
struct Containerd {
    child: Child,
    socket: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let socket = dir.join("containerd.sock");
        let p = |name: &str| dir.join(name).display().to_string();
        // Everything under `dir`: the CRI plugin (a streaming server, CNI) is off, and
        // the `opt` plugin would otherwise create /opt/containerd.
        let config = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}.ttrpc\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{}\"\n",
            p("root"),
            p("state"),
            socket.display(),
            socket.display(),
            p("opt"),
        );
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config).expect("write config.toml");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("log file");
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let d = Containerd { child, socket };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !d
            .ctr()
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "containerd did not answer on {} within 30s; log:\n{}",
                d.socket.display(),
                std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new(CTR);
        c.arg("-a").arg(&self.socket);
        c.stdin(Stdio::null());
        c
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

/// `WORKERS` threads each running `ctr` commands back to back until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(daemon: &Containerd, image: &Path) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let workers = (0..WORKERS)
            .map(|w| {
                let mut cmd = daemon.ctr();
                if w % 4 == 3 {
                    cmd.args(["images", "rm", IMAGE]);
                } else {
                    cmd.args(["images", "import"]).arg(image);
                }
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
                let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // `rm` of an image another worker already removed fails: that
                        // is load all the same, only successes are counted.
                        if cmd.status().is_ok_and(|s| s.success()) {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            done,
            workers,
        }
    }

    /// Stops the loops and returns how many commands succeeded.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.join();
        }
        self.done.load(Ordering::Relaxed)
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

    let dir = tempdir();
    let image = build_image(&dir);
    let daemon = Containerd::start(&dir);
    // One import first: a broken image or daemon fails here with its message.
    run(daemon.ctr().args(["images", "import"]).arg(&image));

    let load = Load::start(&daemon, &image);
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

    // The runtime's idle threads park on futexes: one folded line, never a site.
    assert!(
        report.sites.iter().all(|s| s.kind != WaitKind::GoIdle
            && !s
                .function
                .as_deref()
                .is_some_and(|f| f.starts_with("runtime.futex"))),
        "Go scheduler idle waits must be folded:\n{listing}"
    );
}
