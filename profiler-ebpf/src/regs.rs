//! The traced thread's user registers (its syscall `pt_regs`), the clock, and user
//! memory reads.

use aya_ebpf::helpers::{
    bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_ktime_get_ns, bpf_probe_read_kernel,
    bpf_probe_read_user, bpf_task_pt_regs,
};
use profiler_common::Loss;

use crate::maps::count_loss;

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

/// `futex_waitv`/`futex_requeue` take an array of `struct futex_waitv { u64 val;
/// u64 uaddr; u32 flags; u32 reserved; }`: the first entry's address (the one user
/// memory read of such a call), or the array's address when unreadable (counted).
#[inline(always)]
pub fn first_waiter_addr(waiters: u64) -> u64 {
    // SAFETY: bpf_probe_read_user validates the user pointer.
    if let Ok(a) = unsafe { bpf_probe_read_user((waiters + 8) as *const u64) } {
        a
    } else {
        count_loss(Loss::UserReadError);
        waiters
    }
}
