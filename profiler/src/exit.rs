//! lockprof's exit codes, in one table, and the error kinds that choose them.
//!
//! Owns: the numbers a script sees and the rule for each. Must not: print anything
//! (`main` prints the one-line error) or decide what is bad input (the caller wraps
//! its error in [`InputError`] when it is).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (within budget, no regression) |
//! | 1 | over budget or a regression (`check`, `record --check`) |
//! | 2 | usage error or bad input, found before anything started: flags, values, files, targets, privileges |
//! | 3 | lockprof failed while running (the kernel refused the probes, a read failed) |
//! | 4 | the report could not be written where asked; it was saved to a fallback file whose path is printed |
//! | other | `record -- CMD`: the launched command's own exit code when it failed |
//!
//! When two apply, the first of these wins: lockprof's own failure (2, 3, 4), then a
//! launched command that failed (its code), then the budget verdict (1). So
//! `record --check` judges the budget only when the command succeeded; a script that
//! must tell the command's 1 from a breach passes `--check-exit-code N`.

/// Success.
pub const OK: u8 = 0;
/// Over budget, or a regression against the baseline.
pub const OVER_BUDGET: u8 = 1;
/// A usage error or bad input (clap uses 2 for its own usage errors too).
pub const BAD_INPUT: u8 = 2;
/// lockprof failed while running.
pub const FAILED: u8 = 3;
/// The report went to a fallback file instead of the one asked for.
pub const SAVED_ELSEWHERE: u8 = 4;

/// Bad input: a flag value, a file, a target or a missing privilege, reported before
/// anything started (exit [`BAD_INPUT`]).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct InputError(pub anyhow::Error);

/// Wraps an error as [`InputError`].
pub fn input_error(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(InputError(e.into()))
}

/// The exit code for an error returned by the command line: [`BAD_INPUT`] when any
/// error in the chain is an [`InputError`], [`FAILED`] otherwise.
pub fn code_for(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|e| e.downcast_ref::<InputError>().is_some())
    {
        BAD_INPUT
    } else {
        FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn input_errors_exit_2_even_with_context_added() {
        let e = input_error(anyhow::anyhow!("bad"));
        assert_eq!(code_for(&e), BAD_INPUT);
        let wrapped = Err::<(), _>(e).context("while starting").unwrap_err();
        assert_eq!(code_for(&wrapped), BAD_INPUT);
        assert_eq!(code_for(&anyhow::anyhow!("kernel said no")), FAILED);
    }

    #[test]
    fn input_error_prints_as_its_cause() {
        let e = input_error(anyhow::anyhow!("no process with PID '7'"));
        assert_eq!(format!("{e:#}"), "no process with PID '7'");
    }
}
