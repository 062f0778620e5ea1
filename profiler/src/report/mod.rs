//! Rendering and storing reports.
//!
//! Owns: the report model (`model`), the text rendering (`text`) and the JSON file
//! format (`json`). Must not: touch the kernel or symbolize — a `Report` is complete
//! data, so `lockprof report FILE` renders it anywhere without root.

pub mod json;
pub mod model;
pub mod text;

pub use model::*;
