//! Test support shared by the unit tests of several folders: the sample report and
//! the builders it is made of. Compiled for tests only.

mod sample_report;

pub(crate) use sample_report::*;
