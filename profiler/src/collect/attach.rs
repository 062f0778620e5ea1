//! Where the programs attach: the per-syscall futex tracepoints when tracefs is (or
//! can be) mounted, else the raw syscall tracepoints; the scheduler hooks; the raw
//! `sys_exit` hook only for `--syscall-errors`.

use std::path::Path;

use aya::Ebpf;
use aya::programs::raw_trace_point::RawTracePointLinkId;
use aya::programs::tp_btf::BtfTracePointLinkId;
use aya::programs::trace_point::TracePointLinkId;
use aya::programs::{BtfTracePoint, RawTracePoint, TracePoint};
use profiler_common::{
    FUTEX_SYSCALLS, PROG_FUTEX_ENTER, PROG_FUTEX_EXIT, PROG_SCHED_SWITCH, PROG_SYS_ENTER,
    PROG_SYS_EXIT, PROG_TASK_EXIT, PROG_TASK_NEWTASK, raw_syscalls,
};

use super::{CollectError, error_chain};

/// How futex calls are hooked, decided once at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMethod {
    /// `syscalls:sys_{enter,exit}_<futex call>`: no program runs for other syscalls.
    SyscallTracepoints,
    /// Raw `sys_enter`/`sys_exit`: a (short) program runs for every syscall of every
    /// process. Used when tracefs cannot be mounted.
    RawSyscalls,
}

impl AttachMethod {
    /// The name in reports (`probe_cost.attach_method`) and `--verbose`.
    pub fn name(self) -> &'static str {
        match self {
            AttachMethod::SyscallTracepoints => "syscall_tracepoints",
            AttachMethod::RawSyscalls => "raw_syscalls",
        }
    }

    /// Pick the method: the per-syscall tracepoints need tracefs, mounted here if it
    /// is not yet (a fresh machine often has it unmounted).
    pub fn choose() -> Self {
        if tracefs_ready() || (mount_tracefs() && tracefs_ready()) {
            AttachMethod::SyscallTracepoints
        } else {
            AttachMethod::RawSyscalls
        }
    }

    /// What the raw syscall programs must do (the `RAW_SYSCALLS` global).
    pub fn raw_syscall_bits(self, syscall_errors: bool) -> u32 {
        let mut bits = 0;
        if self == AttachMethod::RawSyscalls {
            bits |= raw_syscalls::FUTEX;
        }
        if syscall_errors {
            bits |= raw_syscalls::FAILURES;
        }
        bits
    }
}

const TRACEFS: &str = "/sys/kernel/tracing";

fn tracefs_ready() -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|d| {
            Path::new(d)
                .join("events/syscalls/sys_enter_futex/id")
                .exists()
        })
}

fn mount_tracefs() -> bool {
    let c = |s: &str| std::ffi::CString::new(s).ok();
    let (Some(src), Some(dir), Some(fs)) = (c("nodev"), c(TRACEFS), c("tracefs")) else {
        return false;
    };
    // SAFETY: valid NUL-terminated strings; no mount data.
    unsafe { libc::mount(src.as_ptr(), dir.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) == 0 }
}

/// One attachment, to detach later.
pub enum Link {
    Raw(&'static str, RawTracePointLinkId),
    Tp(&'static str, TracePointLinkId),
    Btf(&'static str, BtfTracePointLinkId),
}

/// The programs a session loads: `holders` adds `sched_switch`, `syscall_errors`
/// the raw `sys_exit`.
pub fn programs(method: AttachMethod, holders: bool, syscall_errors: bool) -> Vec<&'static str> {
    let mut progs = match method {
        AttachMethod::SyscallTracepoints => {
            vec![PROG_FUTEX_ENTER, PROG_FUTEX_EXIT, PROG_TASK_NEWTASK]
        }
        AttachMethod::RawSyscalls => vec![PROG_SYS_ENTER, PROG_SYS_EXIT],
    };
    progs.push(PROG_TASK_EXIT);
    if holders {
        progs.push(PROG_SCHED_SWITCH);
    }
    if syscall_errors && method == AttachMethod::SyscallTracepoints {
        progs.push(PROG_SYS_EXIT);
    }
    progs
}

/// Load and attach `names` (from [`programs`]).
pub fn attach_all(ebpf: &mut Ebpf, names: &[&'static str]) -> Result<Vec<Link>, CollectError> {
    let mut links = Vec::new();
    for &name in names {
        match name {
            PROG_FUTEX_ENTER | PROG_FUTEX_EXIT => {
                let side = if name == PROG_FUTEX_ENTER {
                    "enter"
                } else {
                    "exit"
                };
                let prog = tracepoint(ebpf, name)?;
                for call in FUTEX_SYSCALLS {
                    let tp = format!("sys_{side}_{call}");
                    match prog.attach("syscalls", &tp) {
                        Ok(link) => links.push(Link::Tp(name, link)),
                        // futex_waitv (5.16) and the futex2 calls (6.7) are newer than
                        // futex(2): a kernel without them never issues them.
                        Err(_) if call != "futex" => {}
                        Err(e) => return Err(attach_error("syscalls", &tp, &e)),
                    }
                }
            }
            PROG_TASK_NEWTASK => {
                let link = tracepoint(ebpf, name)?
                    .attach("task", "task_newtask")
                    .map_err(|e| attach_error("task", "task_newtask", &e))?;
                links.push(Link::Tp(name, link));
            }
            PROG_SCHED_SWITCH => {
                // A BTF tracepoint: its `next` argument is a typed task pointer the
                // program may read (`next->tgid`). Loading it needs the kernel's BTF
                // (the hook's type), parsed here and dropped once loaded.
                let btf = aya::Btf::from_sys_fs().map_err(|e| load_error(name, &e))?;
                let prog: &mut BtfTracePoint = program(ebpf, name)?;
                prog.load(name, &btf).map_err(|e| load_error(name, &e))?;
                drop(btf);
                let link = prog.attach().map_err(|e| attach_error("btf", name, &e))?;
                links.push(Link::Btf(name, link));
            }
            _ => {
                let prog: &mut RawTracePoint = program(ebpf, name)?;
                prog.load().map_err(|e| load_error(name, &e))?;
                let link = prog
                    .attach(name)
                    .map_err(|e| attach_error("raw", name, &e))?;
                links.push(Link::Raw(name, link));
            }
        }
    }
    Ok(links)
}

/// Detach every link; the maps stay readable.
pub fn detach_all(ebpf: &mut Ebpf, links: &mut Vec<Link>) {
    for link in links.drain(..) {
        // Detaching can only fail if the link is already gone, which is the goal.
        match link {
            Link::Raw(name, id) => {
                if let Ok(p) = program::<RawTracePoint>(ebpf, name) {
                    let _ = p.detach(id);
                }
            }
            Link::Tp(name, id) => {
                if let Ok(p) = program::<TracePoint>(ebpf, name) {
                    let _ = p.detach(id);
                }
            }
            Link::Btf(name, id) => {
                if let Ok(p) = program::<BtfTracePoint>(ebpf, name) {
                    let _ = p.detach(id);
                }
            }
        }
    }
}

/// A tracepoint program, loaded on first use (it may attach to several tracepoints).
fn tracepoint<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut TracePoint, CollectError> {
    let prog: &mut TracePoint = program(ebpf, name)?;
    if prog.fd().is_err() {
        prog.load().map_err(|e| load_error(name, &e))?;
    }
    Ok(prog)
}

fn program<'a, P>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut P, CollectError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| CollectError::Load(format!("program '{name}' missing from the object")))?
        .try_into()
        .map_err(|e| CollectError::Load(format!("program '{name}': {e}")))
}

fn load_error(name: &str, e: &dyn std::error::Error) -> CollectError {
    CollectError::Load(format!("program '{name}': {}", error_chain(e)))
}

fn attach_error(category: &str, name: &str, e: &dyn std::error::Error) -> CollectError {
    CollectError::Attach {
        tracepoint: format!("{category}:{name}"),
        reason: error_chain(e),
    }
}
