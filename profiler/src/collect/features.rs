//! The start-up kernel feature check: before anything is loaded or attached, read what
//! the running kernel offers and compare it with what the probes will use, so that a
//! kernel that cannot run them gives one line naming what is missing and the option
//! that avoids it, instead of whatever the verifier says halfway through attaching.
//!
//! Owns: [`KernelInfo`] (the facts, read from `/proc` and `/sys` without root-only
//! files, or built by a test), [`Needs`] (what this recording's options use) and
//! [`check`], a pure function of the two. Must not: load programs, mount anything or
//! decide how to attach — `collect`'s loader does that; this only says whether it can
//! work and what will be degraded.
//!
//! What each feature needs (the README's "Kernel requirements" lists the same):
//!
//! | feature | needs | since |
//! |---|---|---|
//! | any recording | the user registers of the current task (`bpf_task_pt_regs`, `bpf_get_current_task_btf`, so kernel BTF), atomic adds on map values | 5.15 + BTF |
//! | context-switch probe (holders, wake-to-run; off with `--no-holders`) | `sched_switch`'s `prev_state` argument | 5.18 |
//! | futex calls only, nothing on other syscalls (`fentry`, tried first) | BPF trampolines on `__x64_sys_futex` & co.; tracefs for `task_newtask` | 5.5 (found by loading: a refusal falls back) |
//! | futex calls only (no program on other syscalls) | per-syscall tracepoints `syscalls:sys_{enter,exit}_futex*` and tracefs, mounted by lockprof when missing; else raw `sys_enter`/`sys_exit` (graceful) | – |
//! | the probes' run time in the report (`probe_cost.bpf_run_ns`, `--probe-time`) | `BPF_ENABLE_STATS` (`kernel.bpf_stats_enabled`) | 5.8 |
//!
//! Distribution kernels backport features under old version numbers:
//! `LOCKPROF_NO_KERNEL_CHECK=1` skips the version comparisons (the loader's own errors
//! then apply).

use std::path::Path;

use thiserror::Error;

use super::attach::AttachMethod;

/// Oldest kernel any recording works on.
pub const MIN_KERNEL: (u32, u32) = (5, 15);
/// Oldest kernel the context-switch probe works on.
pub const MIN_KERNEL_HOLDERS: (u32, u32) = (5, 18);

/// What the running kernel offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    /// `uname -r`, e.g. `6.18.0-1-amd64`.
    pub release: String,
    /// `/sys/kernel/btf/vmlinux` exists.
    pub btf: bool,
    pub tracefs: Tracefs,
    /// `/proc/sys/kernel/bpf_stats_enabled` exists.
    pub bpf_stats: bool,
}

/// The state of tracefs, where the per-syscall tracepoints are attached by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracefs {
    /// Mounted; `syscall_futex`: `events/syscalls/sys_enter_futex` is there
    /// (`CONFIG_FTRACE_SYSCALLS`).
    Mounted { syscall_futex: bool },
    /// Not mounted, but the kernel has tracefs and its mount point exists: lockprof
    /// mounts it (as root) when it attaches.
    Mountable,
    /// No tracefs in `/proc/filesystems`, or no mount point.
    Unavailable,
}

/// What a recording with these options uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// The context-switch probe (`--no-holders` turns it off).
    pub holders: bool,
    /// The probe hooks futex calls with fentry or on the per-syscall tracepoints when
    /// it can (`--attach-method auto`).
    pub futex_tracepoints: bool,
    /// The attach method named by `--attach-method` when it needs tracefs (the
    /// per-syscall tracepoints, and `task:task_newtask` with fentry).
    pub tracefs_for: Option<AttachMethod>,
    /// The probes' run time is to be measured (`--probe-time`).
    pub probe_time: bool,
}

/// A kernel feature a recording needs is missing.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FeatureError {
    /// Older than [`MIN_KERNEL`]: nothing avoids it.
    #[error(
        "Linux {release} is too old: lockprof needs {}.{} or newer (bpf_task_pt_regs, atomic map adds); set LOCKPROF_NO_KERNEL_CHECK=1 if your distribution backports them",
        MIN_KERNEL.0,
        MIN_KERNEL.1
    )]
    TooOld { release: String },
    /// No kernel BTF: every probe reads the task's registers through a BTF pointer.
    #[error(
        "this kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF), which lockprof's probes need to read a thread's registers (bpf_get_current_task_btf); no option avoids it: use a kernel built with BTF (most distributions since 2020)"
    )]
    NoBtf,
    /// Older than [`MIN_KERNEL_HOLDERS`] with the context-switch probe on.
    #[error(
        "Linux {release} is older than {}.{}, which the context-switch probe needs (sched_switch's prev_state argument): run with --no-holders to record without held-across-blocking and wake-to-run data",
        MIN_KERNEL_HOLDERS.0,
        MIN_KERNEL_HOLDERS.1
    )]
    HoldersTooOld { release: String },
    /// `--attach-method` named a method that needs tracefs, and there is none.
    #[error(
        "--attach-method {method} needs tracefs (the futex and task_newtask tracepoints), and {why}: use --attach-method auto, which falls back to raw sys_enter/sys_exit"
    )]
    NoTracefs {
        method: &'static str,
        why: &'static str,
    },
}

impl KernelInfo {
    /// The running kernel. Reads only world-readable files.
    pub fn read() -> KernelInfo {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| String::new(), |s| s.trim().to_owned());
        let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        KernelInfo {
            release,
            btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
            tracefs: tracefs_state(&filesystems),
            bpf_stats: Path::new("/proc/sys/kernel/bpf_stats_enabled").exists(),
        }
    }

    /// `(major, minor)` of the release; `None` when it does not start with them.
    pub fn version(&self) -> Option<(u32, u32)> {
        let mut parts = self.release.split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }
}

fn tracefs_state(filesystems: &str) -> Tracefs {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let dir = Path::new(dir);
        if dir.join("events").exists() {
            return Tracefs::Mounted {
                syscall_futex: dir.join("events/syscalls/sys_enter_futex").exists(),
            };
        }
    }
    let known = filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("tracefs"));
    if known && Path::new("/sys/kernel/tracing").is_dir() {
        Tracefs::Mountable
    } else {
        Tracefs::Unavailable
    }
}

/// Compares the kernel with the needs: an error for a missing feature the recording
/// cannot do without, else the degradations to tell the user about (one line each).
/// `skip_versions` (`LOCKPROF_NO_KERNEL_CHECK=1`) trusts the kernel's features over its
/// version number.
pub fn check(
    kernel: &KernelInfo,
    needs: Needs,
    skip_versions: bool,
) -> Result<Vec<String>, FeatureError> {
    let version = kernel.version();
    let older_than = |min: (u32, u32)| !skip_versions && version.is_some_and(|v| v < min);
    if older_than(MIN_KERNEL) {
        return Err(FeatureError::TooOld {
            release: kernel.release.clone(),
        });
    }
    if !kernel.btf {
        return Err(FeatureError::NoBtf);
    }
    if needs.holders && older_than(MIN_KERNEL_HOLDERS) {
        return Err(FeatureError::HoldersTooOld {
            release: kernel.release.clone(),
        });
    }
    if let Some(method) = needs.tracefs_for {
        let why = match (method, kernel.tracefs) {
            // fentry needs tracefs for `task:task_newtask` only.
            (AttachMethod::Fentry, Tracefs::Mounted { .. }) => None,
            (_, tracefs) => tracefs_missing(tracefs),
        };
        if let Some(why) = why {
            return Err(FeatureError::NoTracefs {
                method: method.flag(),
                why,
            });
        }
    }
    let mut notes = Vec::new();
    if version.is_none() && !skip_versions {
        notes.push(format!(
            "kernel release '{}' has no version number: the version checks were skipped",
            kernel.release
        ));
    }
    if needs.futex_tracepoints
        && let Some(why) = tracefs_missing(kernel.tracefs)
    {
        notes.push(format!(
            "{why}: futex calls are hooked on raw sys_enter/sys_exit instead, so a short probe program runs on every syscall of the machine"
        ));
    }
    if needs.probe_time && !kernel.bpf_stats {
        notes.push(
            "the kernel has no BPF run-time statistics (kernel.bpf_stats_enabled, 5.8): --probe-time cannot measure the probes' run time".to_owned(),
        );
    }
    Ok(notes)
}

/// Why the per-syscall futex tracepoints cannot be attached; `None` when they can.
fn tracefs_missing(tracefs: Tracefs) -> Option<&'static str> {
    match tracefs {
        Tracefs::Mounted {
            syscall_futex: true,
        }
        | Tracefs::Mountable => None,
        Tracefs::Mounted {
            syscall_futex: false,
        } => Some("the kernel has no per-syscall tracepoints (CONFIG_FTRACE_SYSCALLS)"),
        Tracefs::Unavailable => Some("tracefs is neither mounted nor mountable"),
    }
}

/// Is the version comparison turned off (`LOCKPROF_NO_KERNEL_CHECK=1`)?
pub fn skip_versions_from_env() -> bool {
    std::env::var_os("LOCKPROF_NO_KERNEL_CHECK").is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel with everything (this machine kind: 6.18, BTF, tracefs mounted).
    fn full() -> KernelInfo {
        KernelInfo {
            release: "6.18.0-1-amd64".into(),
            btf: true,
            tracefs: Tracefs::Mounted {
                syscall_futex: true,
            },
            bpf_stats: true,
        }
    }

    const ALL: Needs = Needs {
        holders: true,
        futex_tracepoints: true,
        tracefs_for: None,
        probe_time: true,
    };
    const NO_HOLDERS: Needs = Needs {
        holders: false,
        futex_tracepoints: true,
        tracefs_for: None,
        probe_time: true,
    };

    #[test]
    fn a_full_kernel_passes_without_notes() {
        assert_eq!(check(&full(), ALL, false), Ok(vec![]));
        let mountable = KernelInfo {
            tracefs: Tracefs::Mountable,
            ..full()
        };
        assert_eq!(check(&mountable, ALL, false), Ok(vec![]));
    }

    #[test]
    fn versions_parse() {
        let k = |r: &str| KernelInfo {
            release: r.into(),
            ..full()
        };
        assert_eq!(k("6.18.0-1-amd64").version(), Some((6, 18)));
        assert_eq!(k("5.15.0").version(), Some((5, 15)));
        assert_eq!(k("4.19.0+").version(), Some((4, 19)));
        assert_eq!(k("6.1").version(), Some((6, 1)));
        assert_eq!(k("").version(), None);
        assert_eq!(k("custom").version(), None);
    }

    #[test]
    fn too_old_a_kernel_is_refused_with_no_way_around_but_the_override() {
        let old = KernelInfo {
            release: "4.19.0-25-amd64".into(),
            ..full()
        };
        let err = check(&old, NO_HOLDERS, false).unwrap_err();
        assert_eq!(
            err,
            FeatureError::TooOld {
                release: "4.19.0-25-amd64".into()
            }
        );
        let line = err.to_string();
        assert!(
            line.starts_with("Linux 4.19.0-25-amd64 is too old: lockprof needs 5.15 or newer"),
            "{line}"
        );
        assert!(line.contains("LOCKPROF_NO_KERNEL_CHECK=1"), "{line}");
        assert!(!line.contains('\n'));
        assert_eq!(check(&old, NO_HOLDERS, true), Ok(vec![]));
    }

    #[test]
    fn missing_btf_is_refused_whatever_the_options() {
        let k = KernelInfo {
            btf: false,
            ..full()
        };
        let err = check(&k, ALL, false).unwrap_err();
        assert_eq!(err, FeatureError::NoBtf);
        let line = err.to_string();
        assert!(line.contains("/sys/kernel/btf/vmlinux"), "{line}");
        assert!(line.contains("no option avoids it"), "{line}");
        assert_eq!(check(&k, NO_HOLDERS, false), Err(FeatureError::NoBtf));
    }

    #[test]
    fn holders_need_5_18_and_say_how_to_do_without() {
        for release in ["5.15.0-91-generic", "5.17.15"] {
            let k = KernelInfo {
                release: release.into(),
                ..full()
            };
            let err = check(&k, ALL, false).unwrap_err();
            assert_eq!(
                err,
                FeatureError::HoldersTooOld {
                    release: release.into()
                }
            );
            let line = err.to_string();
            assert!(line.contains("older than 5.18"), "{line}");
            assert!(line.contains("--no-holders"), "{line}");
            assert_eq!(check(&k, NO_HOLDERS, false), Ok(vec![]));
        }
        let k = KernelInfo {
            release: "5.18.0".into(),
            ..full()
        };
        assert_eq!(check(&k, ALL, false), Ok(vec![]));
    }

    #[test]
    fn no_syscall_tracepoints_degrade_to_raw_syscalls_with_a_note() {
        for (tracefs, why) in [
            (
                Tracefs::Unavailable,
                "tracefs is neither mounted nor mountable",
            ),
            (
                Tracefs::Mounted {
                    syscall_futex: false,
                },
                "no per-syscall tracepoints",
            ),
        ] {
            let k = KernelInfo { tracefs, ..full() };
            let notes = check(&k, ALL, false).unwrap();
            assert_eq!(notes.len(), 1, "{notes:?}");
            assert!(notes[0].contains(why), "{notes:?}");
            assert!(notes[0].contains("raw sys_enter/sys_exit"), "{notes:?}");
            // A probe that does not use them does not care.
            let raw_only = Needs {
                futex_tracepoints: false,
                tracefs_for: None,
                ..ALL
            };
            assert_eq!(check(&k, raw_only, false), Ok(vec![]));
        }
    }

    #[test]
    fn a_named_method_that_needs_tracefs_fails_without_it_before_loading() {
        let none = KernelInfo {
            tracefs: Tracefs::Unavailable,
            ..full()
        };
        let no_syscall_events = KernelInfo {
            tracefs: Tracefs::Mounted {
                syscall_futex: false,
            },
            ..full()
        };
        let named = |m| Needs {
            futex_tracepoints: false,
            tracefs_for: Some(m),
            ..ALL
        };
        for m in [AttachMethod::Fentry, AttachMethod::SyscallTracepoints] {
            let e = check(&none, named(m), false).unwrap_err();
            assert_eq!(
                e,
                FeatureError::NoTracefs {
                    method: m.flag(),
                    why: "tracefs is neither mounted nor mountable"
                }
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("--attach-method {} needs tracefs", m.flag()))
            );
            assert_eq!(check(&full(), named(m), false), Ok(vec![]));
        }
        // fentry needs tracefs for the child-following tracepoint only.
        assert_eq!(
            check(&no_syscall_events, named(AttachMethod::Fentry), false),
            Ok(vec![])
        );
        assert!(
            check(
                &no_syscall_events,
                named(AttachMethod::SyscallTracepoints),
                false
            )
            .is_err()
        );
    }

    #[test]
    fn missing_run_time_stats_is_a_note() {
        let k = KernelInfo {
            bpf_stats: false,
            ..full()
        };
        let notes = check(&k, ALL, false).unwrap();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("--probe-time cannot"), "{notes:?}");
        // Not asked for, not missed.
        let unmeasured = Needs {
            probe_time: false,
            ..ALL
        };
        assert_eq!(check(&k, unmeasured, false), Ok(vec![]));
    }

    #[test]
    fn an_unparsable_release_skips_version_checks_with_a_note() {
        let k = KernelInfo {
            release: "custom".into(),
            ..full()
        };
        let notes = check(&k, ALL, false).unwrap();
        assert!(
            notes[0].contains("'custom' has no version number"),
            "{notes:?}"
        );
    }

    #[test]
    fn tracefs_is_mountable_only_when_the_kernel_knows_it() {
        // On this machine the mount point exists; which state we get depends on
        // whether someone mounted it, but an unknown filesystem is never mountable.
        let without = tracefs_state("nodev\tsysfs\nnodev\tproc\n");
        assert_ne!(without, Tracefs::Mountable);
        let read = KernelInfo::read();
        assert!(read.version().is_some(), "{}", read.release);
    }
}
