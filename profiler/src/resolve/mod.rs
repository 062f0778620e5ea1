//! From raw kernel stacks to frames: stack repair (frameless leaves), DWARF unwinding
//! of copied user stacks, and symbolization from the maps captured while targets lived.
//!
//! Owns: addresses → functions, files and lines. Must not: decide what a frame means
//! for locking (that is `analyze`'s), or read the kernel maps (that is `collect`'s).

pub mod debuginfod;
pub mod gopclntab;
pub mod mapped;
pub mod stack_repair;
pub mod symbolize;
pub mod unwind;
