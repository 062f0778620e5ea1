//! The report: what a recording found, as complete data.
//!
//! Owns: the report model (`model`) and its JSON file format (`json`). Must not: touch
//! the kernel, symbolize or format for people — a `Report` is complete data, so
//! `lockprof report FILE` renders it anywhere without root (rendering is `render`'s).

pub mod json;
pub mod model;

pub use model::*;
