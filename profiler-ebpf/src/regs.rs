//! The traced thread's user registers (its syscall `pt_regs`), its ids and the clock.
//!
//! Self-contained (no map of lockprof's): the floor object (`floor.rs`) reads
//! registers through it too. Must not: read user memory — its callers decide what a
//! read is worth.

use aya_ebpf::helpers::{
    bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_ktime_get_ns, bpf_probe_read_kernel,
    bpf_task_pt_regs,
};

// x86_64 `struct pt_regs` offsets (arch/x86/include/asm/ptrace.h). Syscall arguments
// are di, si, dx, r10, r8, r9; `orig_ax` holds the syscall number.
pub const REG_DI: usize = 112;
pub const REG_SI: usize = 104;
pub const REG_ORIG_AX: usize = 120;
const REG_BP: usize = 32;
const REG_IP: usize = 128;
const REG_SP: usize = 152;

/// A `struct pt_regs` in kernel memory, from a raw tracepoint's argument (an untrusted
/// pointer: read through `bpf_probe_read_kernel`).
#[derive(Clone, Copy)]
pub struct Regs(*const u8);

/// The current task's user registers, saved at syscall entry: the trusted BTF pointer
/// `bpf_task_pt_regs` returns, which the verifier lets the program load from directly
/// (a checked load, no helper call — `bpf_probe_read_kernel` cost ≈ 20–30 ns a read).
#[derive(Clone, Copy)]
pub struct TaskRegs(*const u8);

/// The registers the stack code needs, read in one helper call.
#[derive(Clone, Copy)]
pub struct UserPos {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
}

/// How far above the stack pointer a frame pointer may be (see
/// [`UserPos::frame_pointer`]).
pub const MAX_FRAME_DISTANCE: u64 = 256 * 1024;

impl UserPos {
    /// `bp` when it points a little above `sp`, as a frame pointer does. Code without
    /// frame pointers (Debian's glibc) uses `rbp` as a general register: a read through
    /// a wild value faults, and the kernel's fault fixup costs more than a whole
    /// program (≈ 700 ns a call here).
    #[inline(always)]
    pub fn frame_pointer(self) -> Option<u64> {
        (self.bp >= self.sp && self.bp - self.sp < MAX_FRAME_DISTANCE).then_some(self.bp)
    }
}

impl TaskRegs {
    #[inline(always)]
    pub fn current() -> Self {
        // SAFETY: both helpers are valid in tracing programs and return trusted BTF
        // pointers (never null).
        Self(unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u8)
    }

    /// The registers an fentry/fexit program's syscall function was handed (its
    /// `const struct pt_regs *` argument: a BTF pointer, loaded from like
    /// [`TaskRegs::current`]'s, and the same registers without two helper calls).
    #[inline(always)]
    pub fn from_btf_arg(regs: *const u8) -> Self {
        Self(regs)
    }

    /// One saved register (`offset` is a field of `struct pt_regs`).
    #[inline(always)]
    pub fn get(self, offset: usize) -> u64 {
        // SAFETY: the verifier checks the load against `struct pt_regs`' BTF and turns
        // it into a fault-tolerant kernel load.
        unsafe { core::ptr::read_volatile(self.0.add(offset).cast::<u64>()) }
    }

    /// `bp`, `ip` and `sp`.
    #[inline(always)]
    pub fn position(self) -> UserPos {
        UserPos {
            bp: self.get(REG_BP),
            ip: self.get(REG_IP),
            sp: self.get(REG_SP),
        }
    }
}

impl Regs {
    /// Registers handed to a raw syscall tracepoint.
    #[inline(always)]
    pub fn from_ptr(regs: *const u8) -> Self {
        Self(regs)
    }

    /// One saved register.
    #[inline(always)]
    pub fn get(self, offset: usize) -> Result<u64, i32> {
        // SAFETY: bpf_probe_read_kernel validates the kernel pointer.
        unsafe { bpf_probe_read_kernel(self.0.add(offset).cast::<u64>()) }.map_err(|_| 0)
    }
}

/// Byte offsets of `tgid` and `pid` in the kernel's `struct task_struct`, from its
/// BTF: set by userspace at load time. In `.rodata` (frozen), so the verifier knows
/// them as constants and lets a program load `prev->pid`, `prev->tgid` and
/// `next->tgid` of `sched_switch` directly.
#[unsafe(no_mangle)]
static TASK_TGID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static TASK_PID_OFFSET: u32 = 0;

/// The process id of `task`, a BTF tracepoint's trusted `struct task_struct *`.
#[inline(always)]
pub fn task_tgid(task: *const u8) -> u32 {
    task_field(task, &TASK_TGID_OFFSET)
}

/// The thread id of `task` (as [`task_tgid`]).
#[inline(always)]
pub fn task_pid(task: *const u8) -> u32 {
    task_field(task, &TASK_PID_OFFSET)
}

/// The `u32` field of a task at the byte offset in the global `offset`.
#[inline(always)]
fn task_field(task: *const u8, offset: &u32) -> u32 {
    // SAFETY: a read-only global the loader set; volatile so the compiler does not
    // fold in the initializer.
    let offset = unsafe { core::ptr::read_volatile(offset) } as usize;
    // SAFETY: `task` is the tracepoint's trusted `struct task_struct *` and `offset`
    // a `pid_t` member's; the verifier checks the load against the struct's BTF (a
    // fault-tolerant kernel load).
    unsafe { core::ptr::read_volatile(task.add(offset).cast::<u32>()) }
}

/// `(tgid, tid)` of the current task.
#[inline(always)]
pub fn current_ids() -> (u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    ((pid_tgid >> 32) as u32, pid_tgid as u32)
}

#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: bpf_ktime_get_ns has no preconditions; aya marks every helper unsafe.
    unsafe { bpf_ktime_get_ns() }
}
