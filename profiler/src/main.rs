//! The `lockprof` binary: parse → run → exit code. Errors print as one line; the
//! codes are listed in `profiler::exit`.
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use profiler::cli::{Cli, run};
use profiler::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Help and version go to stdout, exit 0; a closed pipe is not an error.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(exit::BAD_INPUT);
        }
        Err(e) => {
            eprintln!("lockprof: error: {}", usage_error_line(&e.to_string()));
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(exit::FAILED)),
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
            ExitCode::from(exit::code_for(&err))
        }
    }
}

/// clap's usage error as one line: what is wrong without clap's "error: " prefix,
/// with the details it lists below (missing arguments, possible values, tips) but
/// not its usage line, and a pointer to the help.
fn usage_error_line(text: &str) -> String {
    let mut line = String::new();
    for part in text.lines().map(str::trim) {
        if part.is_empty() || part.starts_with("Usage:") || part.starts_with("For more information")
        {
            continue;
        }
        if let Some(tip) = part.strip_prefix("tip: ") {
            line.push_str("; ");
            line.push_str(tip);
            continue;
        }
        if !line.is_empty() && !line.ends_with(':') && !part.starts_with('[') {
            line.push(',');
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(part.strip_prefix("error: ").unwrap_or(part));
    }
    line.push_str(" (see --help)");
    line
}
