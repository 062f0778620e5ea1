//! `lockprof top`: a live terminal view of lock contention, like `top` for locks.
//!
//! Owns: the terminal UI, split the ratatui way: `app` (state and pure key/report
//! transitions), `view` (`impl Widget for &App`, pure drawing) and `run` (the only
//! part touching the terminal: raw mode, alternate screen, panic hook, the event loop
//! that drives a `record::Session` and feeds its reports to the app). Must not:
//! collect or aggregate itself — it shows the same `Report` that `record -o` writes.

pub mod app;
pub mod run;
pub mod view;

#[cfg(test)]
mod tests;
