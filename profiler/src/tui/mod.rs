//! `lockprof top`: a live terminal view of lock contention, like `top` for locks.
//!
//! Owns: the terminal UI, split the ratatui way: `app` (state and pure key/report
//! transitions), `rows` (a site's interval and cumulative numbers), `columns` (which numbers fit
//! next to the site), `view` (`impl Widget for &App`, pure drawing) and `run` (the only
//! part touching the terminal: raw mode, alternate screen, panic hook, the event loop
//! that drives a `record::Session` and feeds its reports to the app). Must not:
//! collect or aggregate itself — it shows the same `Report` that `record -o` writes.

pub mod app;
pub mod columns;
mod hangup;
mod input;
pub mod rows;
pub mod run;
pub mod view;

#[cfg(test)]
mod tests;
