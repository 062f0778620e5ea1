//! `--flag value` parsing shared by the load programs in `src/bin/` (`futex-storm`,
//! `futex-pingpong`, `futex-positions`, `memcached-load`, `lock-churn`), each included with
//! `#[path = "../flags.rs"] mod flags;`: they take integer knobs only, and a typo must
//! be a one-line error with exit status 2, not a panic.
//!
//! Must not: know any program's flags or bounds (each program checks its own).

use std::process::ExitCode;
use std::str::FromStr;

/// The `--flag value` pairs of `argv`, in order; `None` when `--help`/`-h` is there.
pub fn pairs(argv: &[String]) -> Result<Option<Vec<(&str, &str)>>, String> {
    let mut out = Vec::new();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let value = it.next().ok_or_else(|| format!("'{flag}' needs a value"))?;
        out.push((flag.as_str(), value.as_str()));
    }
    Ok(Some(out))
}

/// `value` of `flag` as an integer.
pub fn int<T: FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("invalid value '{value}' for '{flag}' (expected an integer)"))
}

/// The parsed arguments, or the exit code after printing the usage (`--help`: on
/// stdout, status 0) or the error (on stderr, status 2).
pub fn or_exit<T>(
    program: &str,
    usage: &str,
    parsed: Result<Option<T>, String>,
) -> Result<T, ExitCode> {
    match parsed {
        Ok(Some(a)) => Ok(a),
        Ok(None) => {
            println!("{usage}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{program}: error: {e}\n{usage}");
            Err(ExitCode::from(2))
        }
    }
}
