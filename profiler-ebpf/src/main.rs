//! lockprof's kernel side: futex wait and wake probes, confined to futex calls.
//!
//! Owns: deciding which futex calls of which processes are waits/wakes, timing the
//! waits, capturing user stacks, aggregating everything into hash maps shared by all
//! CPUs, pairing a wait with the wake that ended it, and following the children of
//! launched commands. Must not: format, symbolize or allocate per event — userspace
//! reads (and drains) the maps, the probe only counts.
//!
//! # Where the programs attach, and what each event costs
//! - `futex_enter`/`futex_exit` on the per-syscall tracepoints
//!   `syscalls:sys_{enter,exit}_{futex,futex_wait,futex_waitv,futex_wake,futex_requeue}`
//!   ([`futex`]): no program runs for any other syscall. Both start with the target
//!   filter, one bit of `TARGET_BITS` (an array access the verifier inlines: no
//!   helper call, no hashing), before reading the record, which they then load
//!   directly. A traced thread's row is its slot in `TASKS`, an array indexed by
//!   thread id ([`tasks`]), found at entry and at exit without hashing (a small hash
//!   holds the rows of threads whose slot another live thread holds). A wait's entry only stamps the row; a wake's entry finds its stack
//!   (the row's memo of its last two wake positions, else the position's slot in
//!   `POSITIONS`, an array indexed by a hash of thread and position, else the
//!   per-thread cache, an LRU hash, else a walk: [`stacks`]) and announces itself in the futex's wakes-in-flight slot ([`ring`]: an
//!   array slot, no hashing) *before* the kernel wakes anyone. At exit, a wake that
//!   woke somebody is pushed on the futex's ring of last wakes (a hash map), one that
//!   woke nobody withdraws from its slot; a wait that returned `EAGAIN` and a wake
//!   are counted without a stack walk or pairing — the two fast paths (`EAGAIN`, woke
//!   nobody) in their key's slot of `TALLIES`, a direct-mapped array userspace empties
//!   through its mapping ([`tally`]), else on their hash row; a blocked wait finds
//!   its stack the same way, is counted, paired with the futex's newest wake (in the
//!   ring, or in flight: its waker may not have returned yet) into `EDGES`, and its
//!   window split among those wakes ([`blame`]): the waker's own share on its `EDGES`
//!   row, earlier holders' into `BLAME`. A wake that woke one waiter is counted in its
//!   tally slot too. A futex is keyed by (process, address), or for a shared one by
//!   (mapped object, offset) — one more lookup, only for shared calls ([`shared`]).
//! - `fentry_*`/`fexit_*` on the futex syscalls' kernel functions (`__x64_sys_futex`,
//!   …; [`fentry`]), where the kernel lets BPF trampolines attach: the same calls as
//!   the tracepoints, handed to the same code after the same filter, without the
//!   kernel's syscall-tracing path that an enabled syscall tracepoint puts every task
//!   of the machine on. One program per function (a tracing program is bound to the
//!   function it was loaded for); the arguments come from the `pt_regs` the function
//!   is handed, the result from fexit's context. This project's CI machine kind
//!   refuses them (`EPERM`), so userspace falls back to the tracepoints; the root test
//!   `attach_methods.rs` runs them in a VM booting Debian's kernel.
//! - `sched_switch` (BTF tracepoint, only with holder tracking, [`holders`]): the
//!   target bits of the task leaving and the task taking the CPU (`prev->pid`,
//!   `prev->tgid`, `next->tgid`: direct loads at the offsets userspace found in the
//!   kernel's BTF, no helper call) — a switch between
//!   untraced tasks does nothing else; a traced task taking the CPU stamps the CPU's
//!   switch time, a traced thread leaving touches its row (and a thread blocking in a
//!   futex wait needs no register read for its syscall).
//! - `task_newtask` (tracepoint) follows forked processes — never threads — of
//!   launched commands, and `sched_process_exit` (raw) marks an exiting thread's row
//!   ([`children`]).
//! - Fallbacks: when tracefs cannot be mounted, the raw `sys_enter`/`sys_exit`
//!   programs decode futex calls and clones from every syscall of every process (a
//!   system-wide cost, reported as the attach method `raw_syscalls`); `sys_exit` is
//!   also attached for `--syscall-errors` (a traced thread's failed syscalls).
//!
//! # What each path costs (measured)
//! BPF run time per program run from the kernel's statistics (`kernel.bpf_stats_enabled`,
//! `bpftool prog show` 2 s apart, this object's programs only), 2-vCPU VM, kernel 6.18,
//! main's probe and this one alternating in one session; a Python `ctypes` loop making
//! one kind of futex call (`EAGAIN` waits, wakes of nobody), or `futex-pingpong`:
//!
//! | path | lookups (hash) | `futex_enter` | `futex_exit` | before |
//! |---|---|---|---|---|
//! | untraced thread's futex call | 0 | 57–71 ns | 55–57 ns | |
//! | traced `EAGAIN` wait | 1 | 156–157 ns | 363–364 ns | 214 + 368–369 ns |
//! | traced wake that woke nobody | 1 | 363–366 ns | 132–133 ns | 416–417 + 137–138 ns |
//! | the same from ten positions in turn (C loop, session 11) | 1 | 195–223 ns | 102–140 ns | 236–254 + 102–111 ns |
//! | traced wake that woke nobody, counted in its tally slot (session 12) | 0 | 368–372 ns | 80–81 ns | 381–397 + 139–141 ns |
//! | traced `EAGAIN` wait, in its tally slot (session 12) | 0 | 172–188 ns | 343–368 ns | 160–170 + 379–397 ns |
//! | ping-pong (all programs) per futex call | 6–7 | | | 812–813 vs 875–884 ns |
//!
//! The ten-position row: a thread cycling through more call positions than its row's
//! memo holds (memcached's workers lock from about ten depths) found each stack in the
//! stack cache, an LRU hash; now in its slot of `POSITIONS`, an array ([`stacks`]).
//! The largest cost left on these paths was the count row's hash lookup at exit: a
//! build without it ran `futex_exit` at 167–248 ns instead of 316–430 on memcached.
//! Session 12 counts them in tally slots instead ([`tally`]): `futex_exit` 220–289 ns
//! on memcached (before 320–396; 3 rounds alternating). In a one-key loop the row
//! stayed cached, so the `EAGAIN` exit gained less; what is left there is the
//! position key's two user reads (≈ 130 ns).
//!
//! The `EAGAIN` and wake rows are from session 10 (the same loop, two rounds
//! alternating with the previous probe): a thread's row is now its slot in an array
//! indexed by thread id ([`tasks`]), not a hash row, and a wake announces itself in an
//! array slot ([`ring`]) instead of pushing itself on its futex's ring (a hash map)
//! and taking itself back at exit. The hash lookups left on these paths are the count
//! rows'. In memcached, where each lookup misses cache, the pair of programs went from
//! 654–784 ns per futex call to 581–695 with the second change and then from 513–671
//! to 481–597 with the first (4 rounds each, alternating; the bpftrace peer 481–555).
//!
//! "Before" read the caller's frame record through a wild `rbp` in code without
//! frame pointers (the Python interpreter here; Debian's C daemons alike): the
//! faulting user read cost ≈ 600 ns a call. The floor on this VM (`probe.rs::floor_of_timing_a_futex_wait`,
//! `floor.rs`), per ping-pong futex call, on a busy host / a quiet one (session 13):
//! two programs with the target filter alone 123 / 72 ns; plus a clock read at each
//! end and the start time in an array slot 167 / 130 ns, in task-local storage 222 /
//! 126 ns, in a hash by thread id 272 / 178 ns; lockprof 782–882 / 526 ns. A bare wait
//! timer fits under the 150 ns on a quiet host; lockprof's further work per
//! blocking call (its stack, its rows, pairing, blame, holders) does not.
//!
//! Session 14, all programs per ping-pong futex call (`lockprof record -- taskset -c 1
//! futex-pingpong`, both threads on one CPU; statistics over 2 s, 4 rounds alternating
//! with the previous probe): 278–294 → 265–277 ns with a blocked wait's blame to its
//! own waker counted on its edge row and a wake that woke one counted in its tally
//! slot, → 271 with every wake record tagged (`wake_tag`: three multiplies at a push,
//! one check per record read). Of the ≈ 270: the position key's two user reads at a
//! wake's entry and a blocked wait's exit ≈ 56 ns (a build without them), holder
//! tracking ≈ 48 (`--no-holders`), pairing and blame ≈ 30. Tried and reverted: the
//! ring and the in-flight slot in one direct-mapped array slot instead of the LRU hash
//! — 6 ns less per ping-pong call, none on memcached, and two hot futexes sharing a
//! slot lost 85 % of their pairings.
//!
//! Session 15, a profile of the ping-pong (`perf record -C 1` beside `lockprof record
//! -- taskset -c 1 futex-pingpong`; the JIT image read back with
//! `BPF_OBJ_GET_INFO_BY_FD` to place the samples): of the BPF programs' samples, the
//! clock (`read_tsc`, ≈ 20 ns a read) 13 %, user reads (`copy_from_user_nofault`)
//! 18 %, hash lookups 11 %, and in `futex_exit`'s own code the bus-locked adds and
//! compare-and-swaps took a third of the samples. A thread's own rows (`WAITS`,
//! `WAKES`) now take plain adds, and a blocked wait ends at its switch-in when holder
//! tracking stamped it (one clock read less): `futex_exit` 154 → 144 ns per ping-pong
//! call, all programs 309 → 299 (8 rounds alternating, a busier host than session
//! 14's); memcached unchanged (234 ns per futex call both, 4 rounds). Then a waker's
//! sixteen off-CPU periods read newest first, stopping at the first that ended before
//! the waiter's window, and a wake-ring slot copied out (48 bytes) only when its time
//! falls in the window: `futex_exit` 143 → 137, all programs 298 → 292 (8 rounds). A
//! second profile put a wait's and a wake's entry clock read (`read_tsc`, ≈ 20 ns
//! each) above the position key's user reads in `futex_enter`. Tried and not kept: one
//! read of 512 bytes at the frame pointer for both frame records (the caller's record
//! lies 416 bytes up in futex-pingpong; 64 bytes never held it): no faster than two
//! 16-byte reads — the copy costs what the second read saved.
//!
//! Session 16: an edge row counts the rare outcomes — a wait none of whose window was
//! charged to its waker (`unblamed`), a wake-to-run not measured
//! (`wake_to_run_missed`) — instead of one blame interval and one measured latency per
//! wait, two bus-locked adds less for most blocked waits (userspace derives the counts
//! from `waits`): `futex_exit` 117 → 113 ns per ping-pong call (8 rounds alternating).
//!
//! `sched_switch` runs on every context switch of the machine; a switch between two
//! untraced tasks cost 142–153 ns per run when the program stamped every switch's
//! time before its filter, 87–96 ns with the filter on both tasks first (an idle
//! `sleep` traced, memcached under load untraced, 2 runs each alternating), 73 ns
//! with the leaving task's ids loaded from its `task_struct` instead of a helper call
//! (session 12; a traced thread's switch 137–142 ns instead of 160–173 on memcached,
//! of which the clock read is ≈ 50).
//!
//! # Memory
//! Every aggregation map is one hash shared by all CPUs, updated with atomic adds
//! where several threads may share a row (minima and maxima are plain
//! compare-and-store: a race can only miss an extreme) and plain adds where the key
//! names the thread (`WAITS`, `WAKES`: a thread's program runs never overlap),
//! so kernel memory does not grow with the CPU count; the only per-CPU maps hold a
//! few words, and the 16 KiB stack-copy scratch. `profiler::collect::memory` computes
//! the worst case from these definitions (126.2 MiB at 256 CPUs, `cargo xtask bench
//! overhead` row (d)) and reads the real figure from the loaded maps. Userspace drains
//! `WAITS`/`WAKES`/`EDGES` before they
//! fill, and deletes each stack copy once read; whatever still does not fit is
//! counted in `LOSSES`.
//!
//! # Minimum kernel version
//! 5.15 (`bpf_task_pt_regs`, `bpf_get_current_task_btf`, atomic adds on map
//! values); `prev_state` as the 4th `sched_switch` argument needs 5.18 (holders).
//! `futex_waitv` appears in 5.16 and `futex_wait`/`futex_wake`/`futex_requeue` in
//! 6.7: on older kernels their tracepoints are missing and are skipped.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(
    target_arch = "bpf",
    allow(
        internal_features,
        reason = "atomics on map values: the intrinsics lower to BPF's `lock +=`, atomic or and 64-bit compare-and-swap; core's atomic types would need operations the BPF CPU version the probes build for lacks"
    )
)]
#![allow(
    clippy::inline_always,
    reason = "eBPF: helpers must be inlined into the program; bpf-to-bpf calls cost and limit the verifier"
)]
#![allow(
    clippy::needless_pass_by_value,
    reason = "aya's program macros hand the context to the entry point by value"
)]
#![allow(
    clippy::needless_borrows_for_generic_args,
    reason = "passing map keys and values by reference keeps them off the 512-byte BPF stack"
)]
#![allow(
    clippy::cast_ptr_alignment,
    reason = "pt_regs fields are read with bpf_probe_read_kernel, which has no alignment requirement"
)]

#[cfg(target_arch = "bpf")]
mod blame;
#[cfg(target_arch = "bpf")]
mod children;
#[cfg(target_arch = "bpf")]
mod fentry;
#[cfg(target_arch = "bpf")]
mod futex;
#[cfg(target_arch = "bpf")]
mod holders;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod pairing;
#[cfg(target_arch = "bpf")]
mod regs;
#[cfg(target_arch = "bpf")]
mod ring;
#[cfg(target_arch = "bpf")]
mod shared;
#[cfg(target_arch = "bpf")]
mod stacks;
#[cfg(target_arch = "bpf")]
mod tally;
#[cfg(target_arch = "bpf")]
mod tasks;
#[cfg(target_arch = "bpf")]
mod wait;
#[cfg(target_arch = "bpf")]
mod wake;

profiler_ebpf::probe_object!();
