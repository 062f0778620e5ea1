//! Keys and resizes for `top`, read by a thread of their own, and the terminal's
//! hang-up noticed without them.
//!
//! Why a thread: on a terminal that has hung up, crossterm's event reader loops on a
//! descriptor that is always readable and returns nothing, and its `poll`/`read`
//! never return, whatever the timeout (crossterm-rs/crossterm#793). Called from the
//! event loop, that would stop `top` for good — its probes attached, a CPU burnt.
//! Here only the reader thread can be caught; the loop keeps its ticks, sees the
//! hang-up (`hangup`) and ends `top`, which ends the thread.
//!
//! Owns: the reader thread and the channel of its events. Must not: decide what an
//! event means (`run`, `app`).

use std::os::fd::BorrowedFd;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use ratatui::crossterm::event::{self, Event};

use crate::tui::hangup;

/// The terminal's events, as they come.
pub struct Input {
    events: Receiver<Event>,
    /// The descriptor the keys come from, watched for a hang-up.
    tty: Option<BorrowedFd<'static>>,
}

/// The terminal is gone: it hung up, or its reader stopped on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl Input {
    /// Start reading the terminal (in raw mode: call after it was taken).
    pub fn start() -> Input {
        let (tx, events) = mpsc::channel();
        // Detached: it ends when the receiver is dropped (at its next event), on a
        // read error, or with the process.
        let _ = std::thread::Builder::new()
            .name("top-input".into())
            .spawn(move || {
                while let Ok(ev) = event::read() {
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
            });
        Input {
            events,
            tty: hangup::watched(),
        }
    }

    /// Whether the terminal has hung up (its outputs are then silenced, see
    /// [`hangup::silence`]).
    pub fn gone(&self) -> bool {
        let gone = self.tty.is_some_and(hangup::hung_up);
        if gone {
            hangup::silence();
        }
        gone
    }

    /// The next event within `timeout` (`None` if none came).
    pub fn next(&self, timeout: Duration) -> Result<Option<Event>, Gone> {
        if self.gone() {
            return Err(Gone);
        }
        match self.events.recv_timeout(timeout) {
            Ok(ev) => Ok(Some(ev)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                hangup::silence();
                Err(Gone)
            }
        }
    }
}
