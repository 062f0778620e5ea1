//! The `lockprof` binary: parse → run → exit code. Errors print as one line.
use std::process::ExitCode;

use clap::Parser;
use profiler::cli::{Cli, error_exit_code, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            // A closed pipe (`lockprof report x | head`) is not an error.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("lockprof: error: {err:#}");
            ExitCode::from(error_exit_code(&err))
        }
    }
}
