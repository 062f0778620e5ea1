//! lockprof's formatting for people: the one home of the helpers that every output
//! shares — the text report, `lockprof top`, `diff`/`check` verdicts, exports and the
//! xtask's demo and benchmark tables.
//!
//! - [`units`]: durations, counts and shares in three significant digits (`4.56ms`,
//!   `12.3k`, `64%`).
//! - [`names`]: function names shortened for a column (`forwarder::Before::lookup`),
//!   rustc's legacy `::h0123…` hash stripped, path tails (`src/sync/mutex.rs`).
//! - [`fit`]: text from the target made safe (control characters replaced) and cut to
//!   a width in `char`s.
//!
//! A crate of its own, with no dependencies, so that xtask can use it: xtask must not
//! depend on the profiler, whose build script needs bpf-linker, which `cargo xtask
//! setup` installs. Must not: know the report model, do I/O, or emit terminal control.

pub mod fit;
pub mod names;
pub mod units;
