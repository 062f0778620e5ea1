//! Whether the terminal `top` reads its keys from has hung up: the ssh session
//! dropped, the tmux pane was killed, the terminal window closed.
//!
//! Why here and not in crossterm: on a dead tty crossterm's event source keeps reading
//! a descriptor that is always readable and returns nothing, so `event::poll` never
//! returns, whatever its timeout, and burns a CPU (crossterm-rs/crossterm#793) — and
//! `top` would keep its probes attached to the machine forever. So `top` reads the
//! keys on a thread of its own (`input`) and asks the kernel, with a `poll` that does
//! not wait, whether the terminal is still there.
//!
//! Owns: that one check on the descriptor crossterm reads (standard input when it is
//! a terminal), and silencing the dead terminal's outputs. Must not: read from it
//! (the keys are crossterm's).

use std::io::IsTerminal;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The descriptor crossterm reads keys from, when `top` can watch it: standard input
/// if it is a terminal (crossterm opens `/dev/tty` otherwise, and a terminal that
/// cannot be opened any more is an error there, not a spin).
pub fn watched() -> Option<BorrowedFd<'static>> {
    let stdin = std::io::stdin();
    // SAFETY: standard input stays open for the life of the process.
    stdin
        .is_terminal()
        .then(|| unsafe { BorrowedFd::borrow_raw(stdin.as_raw_fd()) })
}

/// Has `fd`'s other end gone (hang-up, error, or a closed descriptor)?
pub fn hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never blocks.
    let n = unsafe { libc::poll(&raw mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// After a hang-up: point standard output and error at `/dev/null`. Writes to the
/// dead terminal fail, and a failed `eprintln!` (ratatui's "Failed to restore
/// terminal", a warning) panics — before the report is saved.
pub fn silence() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            // SAFETY: dup2 onto the standard descriptors, which stay open.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};

    use super::*;

    /// A pseudo-terminal pair: (master, slave).
    fn pty() -> (OwnedFd, OwnedFd) {
        // SAFETY: plain libc calls on descriptors we own; each result is checked.
        unsafe {
            let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(master >= 0, "posix_openpt");
            assert_eq!(libc::grantpt(master), 0);
            assert_eq!(libc::unlockpt(master), 0);
            let name = libc::ptsname(master);
            assert!(!name.is_null());
            let slave = libc::open(name, libc::O_RDWR | libc::O_NOCTTY);
            assert!(slave >= 0, "open the pty slave");
            (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
        }
    }

    #[test]
    fn a_terminal_hangs_up_when_its_other_end_closes() {
        let (master, slave) = pty();
        assert!(
            !hung_up(slave.as_fd()),
            "a live terminal with nothing to read"
        );
        drop(master);
        assert!(hung_up(slave.as_fd()), "the terminal's master is gone");
    }
}
