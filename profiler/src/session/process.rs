//! The processes lockprof traces: checking them, reading their names, launching a
//! command that only starts once the probes are attached, and reaping it.
//!
//! Owns: `/proc` reads about targets (finding them by name or cgroup, their
//! namespaced pid and cgroup), the privilege check, fork/exec/wait, and signal
//! forwarding. Must not: touch BPF (`collect`) or decide when recording stops
//! (`record`).

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use anyhow::{Context, Result, bail};

use crate::session::user::Credentials;

/// Fail with an actionable message unless we can load BPF tracing programs.
pub fn check_privileges() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    // CAP_PERFMON (38) and CAP_BPF (39) are enough on 5.8+.
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    if caps & (1 << 38) != 0 && caps & (1 << 39) != 0 {
        return Ok(());
    }
    bail!(
        "lockprof needs root (or CAP_BPF and CAP_PERFMON) to load its eBPF probes; run it with sudo"
    )
}

/// Is there a live (not zombie) process `pid`?
pub fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.alive)
}

/// What `/proc/PID/stat` says of a process that the session polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Not a zombie (nor dead).
    pub alive: bool,
    /// Its virtual memory size in bytes: any mapping added or removed (an exec, a
    /// `dlopen`) moves it, so an unchanged size means the memory map need not be
    /// read again.
    pub vsize: u64,
}

/// `pid`'s [`Stat`], `None` when there is no such process.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The fields after the parenthesised comm (which may itself contain ')'): the
    // state is field 3 of proc_pid_stat(5), the virtual size field 23.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    Some(Stat {
        alive: state != "Z" && state != "X",
        vsize: fields.nth(19).and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

/// Check that `pid` names a process we can trace, with a one-line error otherwise.
pub fn check_pid(pid: u32) -> Result<()> {
    if pid == 0 {
        bail!("'0' is not a process id");
    }
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        bail!("no process with PID '{pid}'");
    }
    // A thread id is not a process: the probes filter by thread group.
    let tgid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .map(|v| v.trim().to_owned())
        });
    if let Some(tgid) = tgid
        && tgid != pid.to_string()
    {
        bail!("'{pid}' is a thread of process '{tgid}'; pass the process id: -p {tgid}");
    }
    if !is_alive(pid) {
        bail!("process '{pid}' has already exited");
    }
    Ok(())
}

/// `comm` of a process, or empty when gone.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_default()
}

/// Space-joined command line of a process, or empty when gone.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// A process's pid in each PID namespace it belongs to, as the `NSpid:` line of
/// `/proc/PID/status` lists them: host pid first, innermost namespace's last.
pub fn parse_nspid(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The pid `pid` has inside its own PID namespace, when that is not ours (a
/// container); `None` in the host namespace or when gone.
pub fn ns_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let pids = parse_nspid(&status);
    match pids.as_slice() {
        [_, .., inner] => Some(*inner),
        _ => None,
    }
}

/// The cgroup v2 path from the text of `/proc/PID/cgroup` (the `0::` line).
pub fn parse_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_owned())
}

/// The cgroup v2 path of a process (e.g. `/system.slice/app.service`), when known.
pub fn cgroup_of(pid: u32) -> Option<String> {
    parse_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

/// Where cgroups usually live (cgroup v2 on a unified system).
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The mount point of cgroup v2 in the text of `/proc/self/mountinfo`:
/// `/sys/fs/cgroup` on a unified system, `/sys/fs/cgroup/unified` on a hybrid one.
pub fn parse_cgroup2_mount(mountinfo: &str) -> Option<std::path::PathBuf> {
    mountinfo.lines().find_map(|l| {
        // id parent dev root MOUNTPOINT options [optional…] - FSTYPE source superopts
        let (before, after) = l.split_once(" - ")?;
        let fstype = after.split_whitespace().next()?;
        let mount_point = before.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| std::path::PathBuf::from(mount_point))
    })
}

/// Where relative `--cgroup` paths are looked up: the cgroup v2 mount point.
pub fn cgroup2_root() -> std::path::PathBuf {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|m| parse_cgroup2_mount(&m))
        .unwrap_or_else(|| std::path::PathBuf::from(CGROUP_ROOT))
}

/// The directory of a cgroup given as `--cgroup`: an absolute path to an existing
/// cgroup directory as is (v1 or v2), anything else relative to `root`, the cgroup
/// v2 mount (so both `/sys/fs/cgroup/app.slice` and `/app.slice`, as
/// `/proc/PID/cgroup` shows it, work), then to /sys/fs/cgroup (a v1 `memory/app`).
pub fn cgroup_dir(root: &std::path::Path, arg: &str) -> Result<std::path::PathBuf> {
    let given = std::path::Path::new(arg);
    let relative = arg.trim_start_matches('/');
    let candidates = [
        given.is_absolute().then(|| given.to_path_buf()),
        Some(root.join(relative)),
        Some(std::path::Path::new(CGROUP_ROOT).join(relative)),
    ];
    for dir in candidates.into_iter().flatten() {
        if dir.join("cgroup.procs").is_file() {
            return Ok(dir);
        }
    }
    bail!(
        "no cgroup '{arg}': '{}' has no cgroup.procs (cgroup v2 is expected under {})",
        root.join(arg.trim_start_matches('/')).display(),
        root.display()
    )
}

/// The pids listed in a `cgroup.procs` file, one per line.
pub fn parse_cgroup_procs(text: &str) -> Vec<u32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The processes in the cgroup directory `dir` now (empty if it is gone).
pub fn cgroup_procs(dir: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| parse_cgroup_procs(&t))
        .unwrap_or_default()
}

/// Does a process with this `comm` and executable basename answer to `name`? The
/// kernel cuts `comm` to 15 bytes, so a longer name matches a `comm` that is its
/// first 15 bytes.
pub fn name_matches(name: &str, comm: &str, exe_basename: Option<&str>) -> bool {
    const COMM_LEN: usize = 15;
    if name.is_empty() {
        return false;
    }
    let cut = name
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|&end| end <= COMM_LEN)
        .last()
        .unwrap_or(0);
    comm == name || (name.len() > COMM_LEN && comm == &name[..cut]) || exe_basename == Some(name)
}

/// Every live user-space process (not a kernel thread, not lockprof itself) whose
/// comm or executable name is `name`, in pid order.
pub fn pids_named(name: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            // Kernel threads have no executable: nothing to profile in user space.
            let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
                return false;
            };
            let exe = exe.to_string_lossy();
            let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
            let base = exe.rsplit('/').next();
            name_matches(name, &comm(pid), base) && is_alive(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// A forked child held before `exec` until [`Launched::start`], so that the probes
/// see it from its first instruction.
pub struct Launched {
    pub pid: u32,
    gate: Option<OwnedFd>,
    exec_status: OwnedFd,
    program: String,
    /// The user it runs as, when not ours.
    user: Option<String>,
    exit: Option<i32>,
}

/// Fork `argv`, parked before exec. The child keeps our process group and terminal,
/// so Ctrl-C reaches it as it would without lockprof. With `run_as`, the child takes
/// that user's groups, gid and uid (in that order, while it still may) and its
/// `HOME`, `USER` and `LOGNAME` before exec.
pub fn launch(argv: &[OsString], run_as: Option<&Credentials>) -> Result<Launched> {
    let program = argv.first().context("no command given after '--'")?;
    let program_name = program.to_string_lossy().into_owned();
    let args: Vec<CString> = argv
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .with_context(|| format!("argument '{}' contains a NUL byte", a.to_string_lossy()))
        })
        .collect::<Result<_>>()?;
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    // Everything the child needs is prepared here: after fork it may not allocate.
    let env = child_env(run_as);
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let groups: Vec<libc::gid_t> = run_as.map(|c| c.groups.clone()).unwrap_or_default();
    let ids = run_as.map(|c| (c.uid, c.gid));

    let (gate_r, gate_w) = pipe().context("create launch pipe")?;
    let (status_r, status_w) = pipe().context("create launch pipe")?;

    // SAFETY: after fork the child only calls async-signal-safe functions (read,
    // execvp, write, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        // SAFETY: see above; this branch never returns.
        unsafe {
            // Close every close-on-exec fd but our two — exec would close them anyway.
            // This drops our copies of the parent's pipe ends and, if other threads
            // of the parent launched children concurrently, our copies of theirs,
            // which would otherwise keep their exec-status pipes from reaching EOF.
            for fd in 3..4096 {
                if fd != gate_r.as_raw_fd()
                    && fd != status_w.as_raw_fd()
                    && libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0
                {
                    libc::close(fd);
                }
            }
            let mut b = 0u8;
            // Wait for the parent's release byte (or EOF if it died: then exec too, so
            // the command is not left parked forever).
            while libc::read(gate_r.as_raw_fd(), (&raw mut b).cast(), 1) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
            if let Some((uid, gid)) = ids
                && (libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0)
            {
                fail_in_child(status_w.as_raw_fd(), STAGE_USER);
            }
            libc::execvpe(arg_ptrs[0], arg_ptrs.as_ptr(), env_ptrs.as_ptr());
            fail_in_child(status_w.as_raw_fd(), STAGE_EXEC);
        }
    }
    drop(gate_r);
    drop(status_w);
    Ok(Launched {
        pid: pid as u32,
        gate: Some(gate_w),
        exec_status: status_r,
        program: program_name,
        user: run_as.map(|c| c.name.clone()),
        exit: None,
    })
}

/// The launched child failed to take the user's identity.
const STAGE_USER: i32 = 1;
/// The launched child failed to exec.
const STAGE_EXEC: i32 = 2;

/// In the launched child: report the failed stage and errno through the CLOEXEC
/// status pipe `fd`, and exit.
///
/// # Safety
/// Only async-signal-safe calls: fit for a forked child of a threaded process.
unsafe fn fail_in_child(fd: i32, stage: i32) -> ! {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&stage.to_ne_bytes());
    // SAFETY: errno is thread-local and always readable.
    msg[4..].copy_from_slice(&unsafe { *libc::__errno_location() }.to_ne_bytes());
    // SAFETY: writes 8 bytes from a local buffer, then exits without unwinding.
    unsafe {
        libc::write(fd, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

/// Our environment for the child, with `HOME`, `USER` and `LOGNAME` of `run_as`.
fn child_env(run_as: Option<&Credentials>) -> Vec<CString> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    if let Some(c) = run_as {
        let mut set = |key: &str, value: &str| {
            vars.retain(|(k, _)| k != key);
            vars.push((key.into(), value.into()));
        };
        set("USER", &c.name);
        set("LOGNAME", &c.name);
        if let Some(home) = &c.home {
            set("HOME", home);
        }
    }
    vars.into_iter()
        .filter_map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect()
}

impl Launched {
    /// Let the child exec, and wait until the exec has happened (so its memory map is
    /// the program's, not a copy of ours). Fails if the program cannot be run.
    pub fn start(&mut self) -> Result<()> {
        if let Some(gate) = self.gate.take() {
            // A byte, not just EOF: another child forked concurrently may hold a
            // copy of this write end until it execs.
            // SAFETY: writes one byte from a local to an fd we own.
            unsafe { libc::write(gate.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        }
        let mut buf = [0u8; 8];
        let n = loop {
            // SAFETY: reads into a local buffer of the given length.
            let n = unsafe {
                libc::read(
                    self.exec_status.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break n;
            }
        };
        if n == 8 {
            let [s0, s1, s2, s3, e0, e1, e2, e3] = buf;
            let stage = i32::from_ne_bytes([s0, s1, s2, s3]);
            let error = io::Error::from_raw_os_error(i32::from_ne_bytes([e0, e1, e2, e3]));
            self.wait_blocking();
            match &self.user {
                Some(user) if stage == STAGE_USER => bail!(
                    "cannot switch to user '{user}' to run '{}': {error}",
                    self.program
                ),
                Some(user) => bail!("cannot run '{}' as user '{user}': {error}", self.program),
                None => bail!("cannot run '{}': {error}", self.program),
            }
        }
        Ok(())
    }

    /// Reap the child if it has exited; returns its exit code (128 + signal if killed).
    pub fn try_wait(&mut self) -> Option<i32> {
        if self.exit.is_none() {
            self.exit = wait_pid(self.pid, libc::WNOHANG);
        }
        self.exit
    }

    /// Wait for the child to exit.
    pub fn wait_blocking(&mut self) -> i32 {
        if let Some(code) = self.exit {
            return code;
        }
        let code = wait_pid(self.pid, 0).unwrap_or(1);
        self.exit = Some(code);
        code
    }

    /// Send a signal to the child (if still running).
    pub fn signal(&self, sig: i32) {
        if self.exit.is_none() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(self.pid as i32, sig) };
        }
    }
}

fn wait_pid(pid: u32, flags: i32) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only to `status`.
        let r = unsafe { libc::waitpid(pid as i32, &raw mut status, flags) };
        if r == 0 {
            return None;
        }
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // Not our child any more (already reaped): report a generic failure.
            return Some(1);
        }
        return Some(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            1
        });
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// SIGINT/SIGTERM/SIGHUP → a flag the recording loop polls (no work in the handler).
///
/// The first signal stops the recording; the report is still written. A second one
/// (Ctrl-C again while stacks are symbolized) makes symbolization stop at the next
/// module, leaving the rest as module+offset; the handlers are then reset, so a third
/// one ends lockprof at once, as it would without them.
pub mod signals {
    use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

    static RECEIVED: AtomicI32 = AtomicI32::new(0);
    static COUNT: AtomicU32 = AtomicU32::new(0);

    /// The signals that stop a recording.
    const STOP: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    extern "C" fn on_signal(sig: i32) {
        RECEIVED.store(sig, Ordering::SeqCst);
        if COUNT.fetch_add(1, Ordering::SeqCst) >= 1 {
            for s in STOP {
                // SAFETY: signal() is async-signal-safe; SIG_DFL restores the default.
                unsafe { libc::signal(s, libc::SIG_DFL) };
            }
        }
    }

    /// A stop signal arrived more than once: stop waiting for slow work.
    pub fn hurry() -> bool {
        COUNT.load(Ordering::SeqCst) >= 2
    }

    /// Install the handlers (idempotent).
    pub fn install() {
        for sig in STOP {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                libc::sigemptyset(&raw mut action.sa_mask);
                libc::sigaction(sig, &raw const action, std::ptr::null_mut());
            }
        }
    }

    /// The last signal received, if any.
    pub fn received() -> Option<i32> {
        match RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_reads_state_and_virtual_size_after_a_comm_with_parentheses() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 1233 0 0 0 12 3 0 0 20 0 5 0 \
                    98765 1234567168 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                alive: true,
                vsize: 1_234_567_168
            })
        );
        let zombie = parse_stat("7 (x) Z 1 7 7 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0");
        assert_eq!(zombie.map(|s| s.alive), Some(false));
        assert_eq!(zombie.map(|s| s.vsize), Some(0));
        assert_eq!(parse_stat("garbage"), None);
        let me = stat(std::process::id()).expect("our own stat");
        assert!(me.alive && me.vsize > 0, "{me:?}");
    }

    #[test]
    fn check_pid_rejects_missing_and_zero() {
        let err = check_pid(0).unwrap_err().to_string();
        assert!(err.contains("not a process id"), "{err}");
        // PIDs are capped by pid_max (≤ 4194304), so this one cannot exist.
        let err = check_pid(999_999_999).unwrap_err().to_string();
        assert_eq!(err, "no process with PID '999999999'");
    }

    #[test]
    fn self_is_alive_and_named() {
        let me = std::process::id();
        assert!(is_alive(me));
        check_pid(me).unwrap();
        assert!(!comm(me).is_empty());
        assert!(!cmdline(me).is_empty());
    }

    #[test]
    fn launch_runs_only_after_start_and_forwards_exit_code() {
        let argv: Vec<OsString> = ["sh", "-c", "exit 7"].iter().map(OsString::from).collect();
        let mut child = launch(&argv, None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(child.try_wait(), None, "must be parked before start");
        child.start().unwrap();
        assert_eq!(child.wait_blocking(), 7);
    }

    #[test]
    fn nspid_gives_host_pid_first_and_innermost_last() {
        let status = "Name:\tapp\nTgid:\t4242\nNSpid:\t4242\t17\t1\nPPid:\t1\n";
        assert_eq!(parse_nspid(status), [4242, 17, 1]);
        assert_eq!(parse_nspid("Name:\tapp\n"), Vec::<u32>::new());
        // Our own process is in the host namespace here: no namespaced pid.
        let me = std::process::id();
        let own = parse_nspid(&std::fs::read_to_string("/proc/self/status").unwrap());
        assert_eq!(own.first(), Some(&me));
    }

    #[test]
    fn cgroup_v2_line_is_the_path() {
        let text = "12:cpu:/old\n0::/system.slice/app.service\n";
        assert_eq!(
            parse_cgroup(text).as_deref(),
            Some("/system.slice/app.service")
        );
        assert_eq!(parse_cgroup("3:memory:/x\n"), None);
    }

    #[test]
    fn cgroup2_mount_point_is_found_on_unified_and_hybrid_systems() {
        let hybrid = "31 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n\
                      35 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_cgroup2_mount(hybrid),
            Some(std::path::PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_cgroup2_mount(unified),
            Some(std::path::PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            parse_cgroup2_mount("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"),
            None
        );
    }

    #[test]
    fn cgroup_procs_are_one_pid_per_line() {
        assert_eq!(parse_cgroup_procs("12\n7\n\n  9 \nzz\n"), [12, 7, 9]);
        assert!(parse_cgroup_procs("").is_empty());
    }

    #[test]
    fn cgroup_dir_accepts_absolute_and_relative_paths() {
        let root = std::env::temp_dir().join(format!("lockprof-cg-{}", std::process::id()));
        let app = root.join("app.slice");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("cgroup.procs"), "1\n").unwrap();
        assert_eq!(cgroup_dir(&root, "app.slice").unwrap(), app);
        assert_eq!(cgroup_dir(&root, "/app.slice").unwrap(), app);
        assert_eq!(cgroup_dir(&root, app.to_str().unwrap()).unwrap(), app);
        let err = cgroup_dir(&root, "nope").unwrap_err().to_string();
        assert!(err.starts_with("no cgroup 'nope': '"), "{err}");
        assert!(err.contains("has no cgroup.procs"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn names_match_comm_cut_comm_or_exe() {
        assert!(name_matches("server", "server", None));
        assert!(!name_matches("serv", "server", Some("server")));
        // comm is cut to 15 bytes by the kernel.
        assert!(name_matches("lockprof-fixture", "lockprof-fixtur", None));
        assert!(!name_matches("lockprof-fixtur", "lockprof-fixt", None));
        assert!(!name_matches("lockprof-fixtureX", "lockprof-fixtur2", None));
        // A thread-renamed main thread still matches by executable.
        assert!(name_matches("server", "worker-0", Some("server")));
        assert!(!name_matches("", "", Some("")));
    }

    #[test]
    fn pids_named_finds_a_child_and_never_lockprof_itself() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let found = pids_named("sleep");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found.contains(&child.id()), "{found:?}");
        let me = comm(std::process::id());
        assert!(!pids_named(&me).contains(&std::process::id()));
    }

    #[test]
    fn launch_of_missing_program_is_a_clear_error() {
        let argv = vec![OsString::from("/nonexistent/lockprof-test-program")];
        let mut child = launch(&argv, None).unwrap();
        let err = child.start().unwrap_err().to_string();
        assert!(
            err.starts_with("cannot run '/nonexistent/lockprof-test-program': No such file"),
            "{err}"
        );
    }
}
