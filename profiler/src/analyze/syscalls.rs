//! Names for `x86_64` syscall numbers and errno values, as the kernel reports them.
//!
//! Owns: the two lookup tables used when a report says what a lock holder was doing
//! (`off CPU in clock_nanosleep`, `sendmsg → ENOBUFS`). Must not: decide anything;
//! unknown numbers are shown as numbers, never guessed.

use profiler_common::{OFF_NO_SYSCALL, OFF_RUNNABLE};

/// What a thread was in while off CPU: a syscall name, "runnable" (preempted, waiting
/// for a CPU), "no syscall" (e.g. a page fault), or "other" (`None`: the kernel's
/// bucket for periods beyond its per-edge slots).
pub fn off_cpu_reason(nr: Option<u32>) -> String {
    match nr {
        None => "other".to_owned(),
        Some(OFF_RUNNABLE) => "runnable (waiting for a CPU)".to_owned(),
        Some(OFF_NO_SYSCALL) => "no syscall (page fault or similar)".to_owned(),
        Some(n) => syscall_name(n),
    }
}

/// `x86_64` syscall name, or `syscall N` for numbers not in the table.
pub fn syscall_name(nr: u32) -> String {
    SYSCALLS
        .binary_search_by_key(&nr, |&(n, _)| n)
        .map_or_else(|_| format!("syscall {nr}"), |i| SYSCALLS[i].1.to_owned())
}

/// Symbolic errno (`ENOBUFS`), or `errno N`. The kernel-internal restart codes a
/// signal-interrupted syscall returns are named as such.
pub fn errno_name(errno: u32) -> String {
    ERRNOS
        .binary_search_by_key(&errno, |&(n, _)| n)
        .map_or_else(|_| format!("errno {errno}"), |i| ERRNOS[i].1.to_owned())
}

/// Sorted by number (binary-searched). The syscalls a daemon commonly blocks or
/// fails in; see `arch/x86/entry/syscalls/syscall_64.tbl`.
const SYSCALLS: &[(u32, &str)] = &[
    (0, "read"),
    (1, "write"),
    (2, "open"),
    (3, "close"),
    (4, "stat"),
    (5, "fstat"),
    (6, "lstat"),
    (7, "poll"),
    (8, "lseek"),
    (9, "mmap"),
    (10, "mprotect"),
    (11, "munmap"),
    (12, "brk"),
    (13, "rt_sigaction"),
    (14, "rt_sigprocmask"),
    (16, "ioctl"),
    (17, "pread64"),
    (18, "pwrite64"),
    (19, "readv"),
    (20, "writev"),
    (21, "access"),
    (22, "pipe"),
    (23, "select"),
    (24, "sched_yield"),
    (25, "mremap"),
    (26, "msync"),
    (28, "madvise"),
    (32, "dup"),
    (33, "dup2"),
    (34, "pause"),
    (35, "nanosleep"),
    (40, "sendfile"),
    (41, "socket"),
    (42, "connect"),
    (43, "accept"),
    (44, "sendto"),
    (45, "recvfrom"),
    (46, "sendmsg"),
    (47, "recvmsg"),
    (48, "shutdown"),
    (49, "bind"),
    (50, "listen"),
    (53, "socketpair"),
    (54, "setsockopt"),
    (55, "getsockopt"),
    (56, "clone"),
    (57, "fork"),
    (58, "vfork"),
    (59, "execve"),
    (60, "exit"),
    (61, "wait4"),
    (62, "kill"),
    (64, "semget"),
    (65, "semop"),
    (66, "semctl"),
    (69, "msgsnd"),
    (70, "msgrcv"),
    (72, "fcntl"),
    (73, "flock"),
    (74, "fsync"),
    (75, "fdatasync"),
    (76, "truncate"),
    (77, "ftruncate"),
    (78, "getdents"),
    (82, "rename"),
    (83, "mkdir"),
    (84, "rmdir"),
    (87, "unlink"),
    (89, "readlink"),
    (130, "rt_sigsuspend"),
    (162, "sync"),
    (200, "tkill"),
    (202, "futex"),
    (213, "epoll_create"),
    (217, "getdents64"),
    (228, "clock_gettime"),
    (230, "clock_nanosleep"),
    (232, "epoll_wait"),
    (233, "epoll_ctl"),
    (234, "tgkill"),
    (247, "waitid"),
    (257, "openat"),
    (262, "newfstatat"),
    (270, "pselect6"),
    (271, "ppoll"),
    (277, "sync_file_range"),
    (281, "epoll_pwait"),
    (288, "accept4"),
    (290, "eventfd2"),
    (291, "epoll_create1"),
    (293, "pipe2"),
    (295, "preadv"),
    (296, "pwritev"),
    (299, "recvmmsg"),
    (306, "syncfs"),
    (307, "sendmmsg"),
    (318, "getrandom"),
    (327, "preadv2"),
    (328, "pwritev2"),
    (332, "statx"),
    (426, "io_uring_enter"),
    (435, "clone3"),
    (441, "epoll_pwait2"),
    (449, "futex_waitv"),
    (454, "futex_wake"),
    (455, "futex_wait"),
    (456, "futex_requeue"),
];

/// Sorted by number; `include/uapi/asm-generic/errno{-base,}.h` and the kernel's
/// internal restart codes.
const ERRNOS: &[(u32, &str)] = &[
    (1, "EPERM"),
    (2, "ENOENT"),
    (3, "ESRCH"),
    (4, "EINTR"),
    (5, "EIO"),
    (6, "ENXIO"),
    (7, "E2BIG"),
    (9, "EBADF"),
    (10, "ECHILD"),
    (11, "EAGAIN"),
    (12, "ENOMEM"),
    (13, "EACCES"),
    (14, "EFAULT"),
    (16, "EBUSY"),
    (17, "EEXIST"),
    (19, "ENODEV"),
    (20, "ENOTDIR"),
    (21, "EISDIR"),
    (22, "EINVAL"),
    (23, "ENFILE"),
    (24, "EMFILE"),
    (25, "ENOTTY"),
    (27, "EFBIG"),
    (28, "ENOSPC"),
    (29, "ESPIPE"),
    (30, "EROFS"),
    (32, "EPIPE"),
    (34, "ERANGE"),
    (35, "EDEADLK"),
    (36, "ENAMETOOLONG"),
    (38, "ENOSYS"),
    (39, "ENOTEMPTY"),
    (61, "ENODATA"),
    (62, "ETIME"),
    (75, "EOVERFLOW"),
    (88, "ENOTSOCK"),
    (90, "EMSGSIZE"),
    (95, "EOPNOTSUPP"),
    (97, "EAFNOSUPPORT"),
    (98, "EADDRINUSE"),
    (99, "EADDRNOTAVAIL"),
    (100, "ENETDOWN"),
    (101, "ENETUNREACH"),
    (103, "ECONNABORTED"),
    (104, "ECONNRESET"),
    (105, "ENOBUFS"),
    (106, "EISCONN"),
    (107, "ENOTCONN"),
    (110, "ETIMEDOUT"),
    (111, "ECONNREFUSED"),
    (113, "EHOSTUNREACH"),
    (114, "EALREADY"),
    (115, "EINPROGRESS"),
    (125, "ECANCELED"),
    (512, "ERESTARTSYS (interrupted)"),
    (513, "ERESTARTNOINTR (interrupted)"),
    (514, "ERESTARTNOHAND (interrupted)"),
    (516, "ERESTART_RESTARTBLOCK (interrupted)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_without_duplicates() {
        assert!(SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ERRNOS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn names_known_numbers_and_shows_unknown_ones() {
        assert_eq!(syscall_name(230), "clock_nanosleep");
        assert_eq!(syscall_name(46), "sendmsg");
        assert_eq!(syscall_name(202), "futex");
        assert_eq!(syscall_name(999), "syscall 999");
        assert_eq!(errno_name(105), "ENOBUFS");
        assert_eq!(errno_name(11), "EAGAIN");
        assert_eq!(errno_name(4095), "errno 4095");
    }

    #[test]
    fn off_cpu_reasons() {
        assert_eq!(off_cpu_reason(Some(35)), "nanosleep");
        assert_eq!(
            off_cpu_reason(Some(OFF_RUNNABLE)),
            "runnable (waiting for a CPU)"
        );
        assert!(off_cpu_reason(Some(OFF_NO_SYSCALL)).starts_with("no syscall"));
        assert_eq!(off_cpu_reason(None), "other");
    }
}
