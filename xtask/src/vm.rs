//! `cargo xtask vm`: run a shell script as root in a throwaway VM that boots Debian's
//! own kernel — where this machine kind cannot go. Its kernel refuses BPF trampolines
//! (fentry/fexit load with `EPERM`); Debian's accepts them, so the fentry hooks are
//! tested and measured there (`profiler/tests/fentry.rs`, `bench overhead --only f`).
//!
//! Owns: fetching Debian's cloud kernel package into `target/vm/` (once: `apt-get
//! download`, no install), building an initramfs (busybox-static, the given binaries
//! and the shared libraries they load, an `/init` that runs the script and powers
//! off), booting it under qemu with a time limit, and handing back what the script
//! printed and its exit status. Must not: know what the script does.
//!
//! qemu emulates the CPU (TCG): this machine kind's `/dev/kvm` is a nested paravirtual
//! KVM that does not boot a stock kernel. Boot takes ≈ 2 s; code runs several times
//! slower than natively, so only ratios measured inside one VM mean anything. Both
//! vCPUs run on one host thread (`thread=single`): with a thread per vCPU, the guest
//! kernel patching code another vCPU was running (a tracepoint's static call, when
//! lockprof detached from a target busy in futex calls) left that vCPU deaf to the
//! patcher's IPI now and then under host load — 3 hung boots in 5, never in 4 × 8
//! detaches with one thread.
//! `LOCKPROF_VM_ACCEL=kvm` uses KVM where it works; `LOCKPROF_VM_KERNEL_ARGS` adds to
//! the guest's command line (`loglevel=7` shows what `quiet` hides). The last run's
//! whole console is kept in `target/vm/console.log`.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs};

use anyhow::{Context as _, Result, bail};

use crate::run::{Cmd, on_path, release_bin, say, target_dir};

/// The metapackage naming Debian's current cloud kernel (virtio drivers built in,
/// BTF, BPF trampolines).
const KERNEL_METAPACKAGE: &str = "linux-image-cloud-amd64";
/// Host packages the VM needs: qemu, a static busybox for the VM's userland, cpio for
/// the initramfs.
pub const VM_PACKAGES: [&str; 3] = ["qemu-system-x86", "busybox-static", "cpio"];
/// Printed by `/init` around the script's output.
const BEGIN: &str = "LOCKPROF-VM-BEGIN";
const END: &str = "LOCKPROF-VM-END";

/// What a script printed in the VM, and its exit status.
pub struct VmRun {
    pub output: String,
    pub status: i32,
    /// The guest kernel's release, e.g. `6.1.0-50-cloud-amd64`.
    pub kernel: String,
}

const USAGE: &str = "usage: cargo xtask vm [--bin PATH]... [--timeout SECS] -- SCRIPT";

/// `cargo xtask vm [--bin PATH]... [--timeout SECS] -- SCRIPT`: each `--bin` is in
/// the VM's `PATH`; without any, lockprof and futex-pingpong from `target/release`.
pub fn vm(args: &[String]) -> Result<()> {
    let mut bins = Vec::new();
    let mut timeout = Duration::from_mins(5);
    let mut rest = args.iter();
    let script = loop {
        match rest.next().map(String::as_str) {
            Some("--bin") => {
                let Some(path) = rest.next() else {
                    bail!("--bin needs a path; {USAGE}")
                };
                bins.push(PathBuf::from(path));
            }
            Some("--timeout") => {
                let secs = rest.next().and_then(|s| s.parse().ok());
                let Some(secs) = secs else {
                    bail!("--timeout needs whole seconds; {USAGE}")
                };
                timeout = Duration::from_secs(secs);
            }
            Some("--") => {
                let script: Vec<&str> = rest.map(String::as_str).collect();
                if script.is_empty() {
                    bail!("no script after '--'; {USAGE}");
                }
                break script.join(" ");
            }
            Some(other) => bail!("unknown argument '{other}'; {USAGE}"),
            None => bail!("{USAGE}"),
        }
    };
    if bins.is_empty() {
        bins = vec![release_bin("lockprof"), release_bin("futex-pingpong")];
    }
    let run = run(&bins, &script, timeout)?;
    print!("{}", run.output);
    if run.status != 0 {
        bail!("the script exited with {} in the VM", run.status);
    }
    Ok(())
}

/// Boot Debian's kernel with `bins` and run `script` (busybox `sh`, as root, with
/// proc, sys, devtmpfs and a tmpfs `/tmp` mounted); fails if the VM does not report
/// the script's end within `timeout`.
pub fn run(bins: &[PathBuf], script: &str, timeout: Duration) -> Result<VmRun> {
    ensure_packages()?;
    let (kernel, release) = kernel()?;
    let dir = target_dir()
        .join("vm")
        .join(format!("run-{}", std::process::id()));
    let initramfs = initramfs(&dir, bins, script)?;
    let accel = env::var("LOCKPROF_VM_ACCEL").unwrap_or_else(|_| "tcg,thread=single".into());
    let mut cmdline = String::from("console=ttyS0 quiet panic=-1");
    if let Ok(extra) = env::var("LOCKPROF_VM_KERNEL_ARGS") {
        cmdline = format!("{cmdline} {extra}");
    }
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-accel", &accel, "-cpu", "max", "-m", "2048", "-smp", "2"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initramfs)
        .arg("-append")
        .arg(&cmdline)
        .args(["-nographic", "-no-reboot"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    say(&format!("vm: booting Debian's {release} (qemu, {accel})"));
    let console = run_bounded(qemu, timeout)?;
    let _ = fs::remove_dir_all(&dir);
    // The whole console of the last run, for what the error below leaves out.
    let log = target_dir().join("vm").join("console.log");
    let _ = fs::write(&log, &console);
    let (output, status) = script_output(&console).with_context(|| {
        format!(
            "the VM did not report the script's end within {} s (whole console: {}); it ended with:\n{}",
            timeout.as_secs(),
            log.display(),
            tail(&console, 20)
        )
    })?;
    Ok(VmRun {
        output,
        status,
        kernel: release,
    })
}

/// Install the [`VM_PACKAGES`] that are missing.
fn ensure_packages() -> Result<()> {
    let have =
        on_path("qemu-system-x86_64") && on_path("cpio") && is_static(Path::new("/bin/busybox"));
    if have {
        return Ok(());
    }
    say(&format!("vm: installing {}", VM_PACKAGES.join(" ")));
    crate::setup::apt_install(&VM_PACKAGES)
}

/// Whether `path` is an ELF executable without a program interpreter (statically
/// linked): Debian's `busybox` package is dynamic, `busybox-static` is not.
fn is_static(path: &Path) -> bool {
    fs::read(path).is_ok_and(|elf| {
        elf.starts_with(b"\x7fELF") && !elf.windows(16).any(|w| w.starts_with(b"/lib64/ld-linux"))
    })
}

/// Debian's cloud kernel image (`target/vm/vmlinuz-<release>`), fetched and unpacked
/// on first use; the newest already there otherwise. Returns it and its release.
fn kernel() -> Result<(PathBuf, String)> {
    let dir = target_dir().join("vm");
    fs::create_dir_all(&dir).with_context(|| format!("create '{}'", dir.display()))?;
    if let Some(found) = cached_kernel(&dir) {
        return Ok(found);
    }
    let download = |package: &str| {
        say(&format!(
            "vm: fetching {package} (once, into {})",
            dir.display()
        ));
        Cmd::new("apt-get")
            .args(["download", package])
            .current_dir(&dir)
            .run()
    };
    let mut package = kernel_package()?;
    if download(&package).is_err() {
        // A stale package list names a version the mirror has replaced (security
        // updates do): refresh it and take what it names then.
        Cmd::new("apt-get").arg("update").run()?;
        package = kernel_package()?;
        download(&package)?;
    }
    let deb = fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&package))
        })
        .with_context(|| {
            format!(
                "apt-get download left no {package} package in '{}'",
                dir.display()
            )
        })?;
    let unpacked = dir.join("unpacked");
    Cmd::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .run()?;
    let release = package.trim_start_matches("linux-image-").to_owned();
    let image = dir.join(format!("vmlinuz-{release}"));
    fs::copy(unpacked.join(format!("boot/vmlinuz-{release}")), &image)
        .with_context(|| format!("no boot/vmlinuz-{release} in {package}"))?;
    let _ = fs::remove_dir_all(&unpacked);
    let _ = fs::remove_file(&deb);
    Ok((image, release))
}

fn cached_kernel(dir: &Path) -> Option<(PathBuf, String)> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let release = p
                .file_name()?
                .to_str()?
                .strip_prefix("vmlinuz-")?
                .to_owned();
            Some((p, release))
        })
        .max_by(|a, b| a.1.cmp(&b.1))
}

/// The versioned package the metapackage depends on, e.g.
/// `linux-image-6.1.0-50-cloud-amd64` (after `apt-get update` if apt does not know it).
fn kernel_package() -> Result<String> {
    let depends = || {
        Cmd::new("apt-cache")
            .args(["depends", KERNEL_METAPACKAGE])
            .stdout_if_ok()
            .and_then(|out| parse_depends(&out))
    };
    if let Some(p) = depends() {
        return Ok(p);
    }
    Cmd::new("apt-get").arg("update").run()?;
    depends().with_context(|| format!("apt knows no {KERNEL_METAPACKAGE}: is this Debian?"))
}

/// The first `Depends: linux-image-…` of `apt-cache depends` output.
fn parse_depends(out: &str) -> Option<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_owned)
}

/// An initramfs in `dir` holding busybox, `bins` (debug info stripped: it would only
/// fill the VM's memory) with the libraries they load, and an `/init` running
/// `script`.
fn initramfs(dir: &Path, bins: &[PathBuf], script: &str) -> Result<PathBuf> {
    let root = dir.join("root");
    let _ = fs::remove_dir_all(dir);
    for d in ["bin", "proc", "sys", "dev", "tmp"] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).context("copy /bin/busybox")?;
    for bin in bins {
        let name = bin
            .file_name()
            .with_context(|| format!("'{}' names no file", bin.display()))?;
        if !bin.is_file() {
            bail!(
                "'{}' is missing: build it first (cargo build --release)",
                bin.display()
            );
        }
        Cmd::new("objcopy")
            .arg("--strip-debug")
            .arg(bin)
            .arg(root.join("bin").join(name))
            .capture_silently()?;
        for lib in shared_libraries(bin)? {
            let to = root.join(lib.strip_prefix("/").unwrap_or(&lib));
            if !to.exists() {
                fs::create_dir_all(to.parent().unwrap_or(&root))?;
                fs::copy(&lib, &to).with_context(|| format!("copy '{}'", lib.display()))?;
            }
        }
    }
    fs::write(root.join("script.sh"), script)?;
    let init = root.join("init");
    fs::write(&init, init_script())?;
    Cmd::new("chmod").arg("+x").arg(&init).capture_silently()?;
    let image = dir.join("initramfs.cpio");
    Cmd::new("sh")
        .arg("-c")
        .arg("find . | cpio -o -H newc --quiet > ../initramfs.cpio")
        .current_dir(&root)
        .capture_silently()?;
    Ok(image)
}

/// The libraries `bin` loads, with its program interpreter (from `ldd`).
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = Cmd::new("ldd").arg(bin).capture_silently()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// `/init`: mount what lockprof reads, run the script between the markers, power off.
fn init_script() -> String {
    let mut s = String::from("#!/bin/busybox sh\n/bin/busybox --install -s /bin\n");
    s.push_str("mount -t proc proc /proc\nmount -t sysfs sys /sys\n");
    s.push_str("mount -t devtmpfs dev /dev\nmount -t tmpfs tmp /tmp\n");
    s.push_str("export PATH=/bin\ncd /tmp\n");
    let _ = writeln!(s, "echo {BEGIN}\nsh /script.sh\necho \"{END} $?\"");
    s.push_str("poweroff -f\n");
    s
}

/// Run qemu, killing it after `timeout`; its console (stdout) and stderr.
fn run_bounded(mut qemu: Command, timeout: Duration) -> Result<String> {
    let mut child = qemu.spawn().context("start qemu-system-x86_64")?;
    let mut stdout = child.stdout.take().context("qemu's stdout")?;
    let mut stderr = child.stderr.take().context("qemu's stderr")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    while child.try_wait()?.is_none() {
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut console = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    console.push_str(&String::from_utf8_lossy(
        &err_reader.join().unwrap_or_default(),
    ));
    Ok(console)
}

/// The script's output between the markers (serial line endings made plain) and its
/// exit status; `None` when the end marker never came.
fn script_output(console: &str) -> Option<(String, i32)> {
    let console = console.replace('\r', "");
    let start = console.find(&format!("{BEGIN}\n"))? + BEGIN.len() + 1;
    let rest = &console[start..];
    let end = rest.rfind(&format!("{END} "))?;
    let status = rest[end + END.len() + 1..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((rest[..end].to_owned(), status))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_output_and_status_come_from_between_the_markers() {
        let console = "SeaBIOS\r\n[    0.1] booting\r\nLOCKPROF-VM-BEGIN\r\nline 1\r\nline 2\r\nLOCKPROF-VM-END 3\r\n[    2.0] reboot: Power down\r\n";
        assert_eq!(
            script_output(console),
            Some(("line 1\nline 2\n".to_owned(), 3))
        );
        // A VM killed before the end marker reports nothing.
        assert_eq!(script_output("LOCKPROF-VM-BEGIN\nhalf\n"), None);
    }

    #[test]
    fn the_kernel_package_is_the_metapackages_versioned_dependency() {
        let out = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-50-cloud-amd64\n";
        assert_eq!(
            parse_depends(out).as_deref(),
            Some("linux-image-6.1.0-50-cloud-amd64")
        );
        assert_eq!(parse_depends("linux-image-cloud-amd64\n"), None);
    }
}
