//! A live profiling session: the targets (attach by pid, name or cgroup; launch a
//! command; signals and exit codes), their memory maps captured while they live, and
//! the `Session` that drives collect → resolve → analyze into a `Report`.
//!
//! Owns: processes, timing of polls, and the order of the pipeline stages. Must not:
//! touch aya (that is `collect`'s), or format output (that is `render`'s and `cli`'s).

mod fold;
pub mod go;
pub mod process;
pub mod procmaps;
pub mod record;
pub(crate) mod refresh;
mod shared;
mod stacks;
mod targets;
mod threads;
pub mod user;
