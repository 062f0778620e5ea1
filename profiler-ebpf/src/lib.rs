//! Empty library target: lets `profiler` name this crate as a build-dependency, so
//! cargo rebuilds the probes whenever the crate or `profiler-common` changes.
#![no_std]
