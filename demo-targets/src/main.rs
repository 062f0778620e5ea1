//! `demo-targets`: before/after reproductions of real lock-contention bugs from container
//! infrastructure, written as profiling targets for lockprof.
//!
//! ```text
//! demo-targets <forwarder|switch|kmutex|container-store|layer-store> <before|after>
//!     [--threads N] [--duration-ms D] [--seed S] [--linger-ms L] [demo knobs...]
//! ```
//!
//! Each run prints exactly one JSON line on stdout (see [`common::Report`]). Bad
//! arguments print one line on stderr and exit with 2; a failed run (a thread that
//! cannot be spawned or panics) exits with 1.
//!
//! Everything that takes a lock uses `std::sync` (futex-based on Linux), lives in an
//! `#[inline(never)]` function, and carries a unique `// LOCK-SITE: <tag>` comment on the
//! line of the lock call, so the profiler's tests can map a stack frame to a tag.

mod common;
mod container_store;
mod forwarder;
mod kmutex;
mod layer_store;
mod switch;

use std::io::{self, Write as _};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use common::{Command, Cpu, Demo, Outcome, Params, Report, RunError, Variant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match common::parse_args(&args) {
        Ok(Command::Help) => print_line(common::help_text().trim_end()),
        Ok(Command::Run {
            demo,
            variant,
            params,
        }) => match run(demo, variant, &params) {
            Ok(report) => {
                linger(&params);
                print_line(&report.to_json_line())
            }
            Err(e) => {
                eprintln!("demo-targets: {} {}: {e}", demo.name(), variant.name());
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("demo-targets: error: {e} (see --help)");
            ExitCode::from(2)
        }
    }
}

fn run(demo: Demo, variant: Variant, params: &Params) -> Result<Report, RunError> {
    // Calibrate before any worker exists, so the probe runs on an idle core.
    let cpu = Cpu::calibrate();
    let outcome: Outcome = match demo {
        Demo::Forwarder => forwarder::run(variant, params)?,
        Demo::Switch => switch::run(variant, params, cpu)?,
        Demo::Kmutex => kmutex::run(variant, params, cpu)?,
        Demo::ContainerStore => container_store::run(variant, params)?,
        Demo::LayerStore => layer_store::run(variant, params)?,
    };
    Ok(Report::new(demo, variant, params, outcome))
}

/// `--linger-ms`: keep the process (and its mappings) alive after the workload so a
/// profiler can finish symbolizing before the pid disappears.
fn linger(params: &Params) {
    let linger = params.get("linger-ms");
    if linger > 0 {
        thread::sleep(Duration::from_millis(linger));
    }
}

/// Prints one line; a closed pipe (`| head`) is not an error. Only the main thread
/// prints, after every worker has exited, so the stdout lock is uncontended.
#[inline(never)]
fn print_line(line: &str) -> ExitCode {
    let mut out = io::stdout().lock(); // LOCK-SITE: main.stdout
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-targets: write stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
