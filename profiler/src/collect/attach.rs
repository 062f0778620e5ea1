//! Where the programs attach: fentry/fexit on the futex syscalls' kernel functions
//! where the kernel allows BPF trampolines, else the per-syscall futex tracepoints
//! when tracefs is (or can be) mounted, else the raw syscall tracepoints; the
//! scheduler hooks; the raw `sys_exit` hook only for `--syscall-errors`.

use std::path::Path;

use aya::programs::fentry::FEntryLinkId;
use aya::programs::fexit::FExitLinkId;
use aya::programs::raw_trace_point::RawTracePointLinkId;
use aya::programs::tp_btf::BtfTracePointLinkId;
use aya::programs::trace_point::TracePointLinkId;
use aya::programs::{BtfTracePoint, FEntry, FExit, ProgramError, RawTracePoint, TracePoint};
use aya::{Btf, BtfError, Ebpf};
use profiler_common::{
    FUTEX_FENTRY, FUTEX_SYSCALLS, PROG_FUTEX_ENTER, PROG_FUTEX_EXIT, PROG_SCHED_SWITCH,
    PROG_SYS_ENTER, PROG_SYS_EXIT, PROG_TASK_EXIT, PROG_TASK_NEWTASK, raw_syscalls,
};

use super::{CollectError, error_chain};

/// How futex calls are hooked, decided once at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMethod {
    /// fentry/fexit on `__x64_sys_futex` & co.: no program runs for other syscalls,
    /// and no task is put on the syscall-tracing slow path. Kernels that refuse BPF
    /// trampolines (this project's CI machine kind: `EPERM`) fall back to the next.
    Fentry,
    /// `syscalls:sys_{enter,exit}_<futex call>`: no program runs for other syscalls
    /// (which still take the kernel's syscall-tracing slow path while any syscall
    /// tracepoint is enabled).
    SyscallTracepoints,
    /// Raw `sys_enter`/`sys_exit`: a (short) program runs for every syscall of every
    /// process. Used when tracefs cannot be mounted.
    RawSyscalls,
}

impl AttachMethod {
    /// The name in reports (`probe_cost.attach_method`), `--verbose` and
    /// `--attach-method`.
    pub fn name(self) -> &'static str {
        match self {
            AttachMethod::Fentry => "fentry",
            AttachMethod::SyscallTracepoints => "syscall_tracepoints",
            AttachMethod::RawSyscalls => "raw_syscalls",
        }
    }

    /// The method as `--attach-method` names it.
    pub fn flag(self) -> &'static str {
        match self {
            AttachMethod::Fentry => "fentry",
            AttachMethod::SyscallTracepoints => "syscall-tracepoints",
            AttachMethod::RawSyscalls => "raw-syscalls",
        }
    }

    /// What the method costs the rest of the machine, for `--verbose`.
    pub fn cost(self) -> &'static str {
        match self {
            AttachMethod::Fentry => "no cost for other syscalls",
            AttachMethod::SyscallTracepoints => {
                "no program on other syscalls; while it is enabled every syscall of the machine takes the kernel's syscall-tracing path"
            }
            AttachMethod::RawSyscalls => "a short program runs on every syscall of the machine",
        }
    }

    /// The methods to try, best first: the one `requested` (`--attach-method`), or
    /// fentry and then the per-syscall tracepoints when tracefs is (or can be)
    /// mounted — the child-following program is a tracepoint in both — else the raw
    /// syscall tracepoints. Mounts tracefs when a method needs it.
    pub fn candidates(requested: Option<Self>) -> Vec<Self> {
        let tracefs = || tracefs_ready() || (mount_tracefs() && tracefs_ready());
        match requested {
            Some(Self::RawSyscalls) => vec![Self::RawSyscalls],
            // Without tracefs its attach fails, saying which tracepoint is missing.
            Some(m) => {
                tracefs();
                vec![m]
            }
            None if tracefs() => vec![Self::Fentry, Self::SyscallTracepoints],
            None => vec![Self::RawSyscalls],
        }
    }

    /// What the raw syscall programs must do (the `RAW_SYSCALLS` global). The same
    /// for every method but the raw one, so it can be set before the method is.
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

    /// Whether the child-following program (`task_newtask`) comes with this method
    /// (the raw method follows clones from `sys_exit`).
    fn needs_newtask(self) -> bool {
        self != AttachMethod::RawSyscalls
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
    FEntry(&'static str, FEntryLinkId),
    FExit(&'static str, FExitLinkId),
}

/// The kernel's BTF, parsed when the first program that needs it is loaded (fentry,
/// `sched_switch`) and dropped with this (megabytes of heap).
#[derive(Default)]
pub struct KernelBtf(Option<Btf>);

impl KernelBtf {
    fn get(&mut self, for_program: &str) -> Result<&Btf, CollectError> {
        if self.0.is_none() {
            self.0 = Some(Btf::from_sys_fs().map_err(|e| load_error(for_program, &e))?);
        }
        Ok(self.0.as_ref().expect("parsed above"))
    }
}

/// Hooked futex calls: the method the kernel accepted, its links, and why each
/// method tried before it was refused (for `--verbose`).
pub struct FutexHooks {
    pub method: AttachMethod,
    pub links: Vec<Link>,
    pub refused: Vec<(AttachMethod, String)>,
}

/// Hook the futex calls with the first of `candidates` the kernel accepts (see
/// [`AttachMethod::candidates`]); the error of the last one when none is.
pub fn attach_futex(
    ebpf: &mut Ebpf,
    candidates: &[AttachMethod],
    btf: &mut KernelBtf,
) -> Result<FutexHooks, CollectError> {
    let mut refused = Vec::new();
    for (i, &method) in candidates.iter().enumerate() {
        let attached = match method {
            AttachMethod::Fentry => attach_fentry(ebpf, btf),
            AttachMethod::SyscallTracepoints => {
                attach_all(ebpf, &[PROG_FUTEX_ENTER, PROG_FUTEX_EXIT], btf)
            }
            AttachMethod::RawSyscalls => attach_all(ebpf, &[PROG_SYS_ENTER, PROG_SYS_EXIT], btf),
        };
        match attached {
            Ok(links) => {
                return Ok(FutexHooks {
                    method,
                    links,
                    refused,
                });
            }
            Err(e) if i + 1 < candidates.len() => {
                let why = match e {
                    CollectError::Load(why) => why,
                    e => e.to_string(),
                };
                refused.push((method, why));
            }
            Err(e) => return Err(e),
        }
    }
    Err(CollectError::Load(
        "no way to hook futex calls was tried".into(),
    ))
}

/// The futex programs of `method`, for their run-time statistics.
pub fn futex_programs(method: AttachMethod) -> Vec<&'static str> {
    match method {
        AttachMethod::Fentry => FUTEX_FENTRY
            .iter()
            .flat_map(|h| [h.enter, h.exit])
            .collect(),
        AttachMethod::SyscallTracepoints => vec![PROG_FUTEX_ENTER, PROG_FUTEX_EXIT],
        AttachMethod::RawSyscalls => vec![PROG_SYS_ENTER, PROG_SYS_EXIT],
    }
}

/// The programs a session loads besides the futex hooks: children and exits,
/// `holders` adds `sched_switch`, `syscall_errors` the raw `sys_exit` (which the raw
/// method has already).
pub fn other_programs(
    method: AttachMethod,
    holders: bool,
    syscall_errors: bool,
) -> Vec<&'static str> {
    let mut progs = Vec::new();
    if method.needs_newtask() {
        progs.push(PROG_TASK_NEWTASK);
    }
    progs.push(PROG_TASK_EXIT);
    if holders {
        progs.push(PROG_SCHED_SWITCH);
    }
    if syscall_errors && method != AttachMethod::RawSyscalls {
        progs.push(PROG_SYS_EXIT);
    }
    progs
}

/// fentry and fexit on each futex syscall's kernel function the kernel has (only
/// `futex(2)`'s is required: the others are newer); on any refusal, whatever was
/// attached is detached and the programs unloaded, leaving the next method a clean
/// slate.
fn attach_fentry(ebpf: &mut Ebpf, btf: &mut KernelBtf) -> Result<Vec<Link>, CollectError> {
    let btf = btf.get(FUTEX_FENTRY[0].enter)?;
    let mut links = Vec::new();
    if let Err(e) = attach_fentry_hooks(ebpf, btf, &mut links) {
        detach_all(ebpf, &mut links);
        for hook in FUTEX_FENTRY {
            if let Ok(p) = program::<FEntry>(ebpf, hook.enter) {
                let _ = p.unload();
            }
            if let Ok(p) = program::<FExit>(ebpf, hook.exit) {
                let _ = p.unload();
            }
        }
        return Err(e);
    }
    Ok(links)
}

fn attach_fentry_hooks(
    ebpf: &mut Ebpf,
    btf: &Btf,
    links: &mut Vec<Link>,
) -> Result<(), CollectError> {
    for (i, hook) in FUTEX_FENTRY.iter().enumerate() {
        let enter: &mut FEntry = program(ebpf, hook.enter)?;
        match enter.load(hook.function, btf) {
            Ok(()) => {}
            // futex_waitv (5.16) and the futex2 calls (6.7) are newer than futex(2): a
            // kernel without them never issues them.
            Err(ProgramError::Btf(BtfError::UnknownBtfTypeName { .. })) if i > 0 => continue,
            Err(e) => return Err(fentry_refused(hook.function, &e)),
        }
        let link = enter
            .attach()
            .map_err(|e| attach_error("fentry", hook.function, &e))?;
        links.push(Link::FEntry(hook.enter, link));
        let exit: &mut FExit = program(ebpf, hook.exit)?;
        exit.load(hook.function, btf)
            .map_err(|e| fentry_refused(hook.function, &e))?;
        let link = exit
            .attach()
            .map_err(|e| attach_error("fexit", hook.function, &e))?;
        links.push(Link::FExit(hook.exit, link));
    }
    Ok(())
}

/// Load and attach `names` (the tracepoint and raw-tracepoint programs).
pub fn attach_all(
    ebpf: &mut Ebpf,
    names: &[&'static str],
    btf: &mut KernelBtf,
) -> Result<Vec<Link>, CollectError> {
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
                // (the hook's type).
                let btf = btf.get(name)?;
                let prog: &mut BtfTracePoint = program(ebpf, name)?;
                prog.load(name, btf).map_err(|e| load_error(name, &e))?;
                let link = prog.attach().map_err(|e| attach_error("btf", name, &e))?;
                links.push(Link::Btf(name, link));
            }
            _ => {
                let prog: &mut RawTracePoint = program(ebpf, name)?;
                if prog.fd().is_err() {
                    prog.load().map_err(|e| load_error(name, &e))?;
                }
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
            Link::FEntry(name, id) => {
                if let Ok(p) = program::<FEntry>(ebpf, name) {
                    let _ = p.detach(id);
                }
            }
            Link::FExit(name, id) => {
                if let Ok(p) = program::<FExit>(ebpf, name) {
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

/// The kernel would not load a tracing program on `function`: its own reason in one
/// line when the verifier had nothing to say (a kernel that refuses BPF
/// trampolines, like this project's CI machine kind: `EPERM`), else the whole story.
fn fentry_refused(function: &str, e: &ProgramError) -> CollectError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } if format!("{verifier_log:?}").trim().is_empty() => {
            CollectError::Load(format!("fentry/fexit on {function}: {io_error}"))
        }
        e => load_error(function, e),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_loads_its_futex_hooks_and_the_scheduler_hooks_once() {
        let fentry = futex_programs(AttachMethod::Fentry);
        assert_eq!(fentry.len(), 2 * FUTEX_FENTRY.len());
        assert!(fentry.contains(&"fentry_futex") && fentry.contains(&"fexit_futex"));
        for method in [AttachMethod::Fentry, AttachMethod::SyscallTracepoints] {
            assert_eq!(
                other_programs(method, true, true),
                [
                    PROG_TASK_NEWTASK,
                    PROG_TASK_EXIT,
                    PROG_SCHED_SWITCH,
                    PROG_SYS_EXIT
                ]
            );
            assert_eq!(
                other_programs(method, false, false),
                [PROG_TASK_NEWTASK, PROG_TASK_EXIT]
            );
        }
        // The raw method follows clones and counts failures in its own sys_exit.
        assert_eq!(
            futex_programs(AttachMethod::RawSyscalls),
            [PROG_SYS_ENTER, PROG_SYS_EXIT]
        );
        assert_eq!(
            other_programs(AttachMethod::RawSyscalls, true, true),
            [PROG_TASK_EXIT, PROG_SCHED_SWITCH]
        );
    }

    #[test]
    fn a_named_method_is_the_only_candidate() {
        assert_eq!(
            AttachMethod::candidates(Some(AttachMethod::RawSyscalls)),
            [AttachMethod::RawSyscalls]
        );
    }
}
