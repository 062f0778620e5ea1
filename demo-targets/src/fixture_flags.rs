//! `--flag VALUE` command lines of the fixture binaries: every flag takes a value, an
//! unknown flag, a missing or an unparsable value is a one-line error (the binaries
//! print it and exit with 2).

use std::str::FromStr;

/// Hands each `--flag VALUE` pair of `argv` to `set`, which stores the value (parsed
/// with [`value`]) and returns `Ok(false)` for a flag it does not know.
pub fn parse_flags(
    argv: &[String],
    mut set: impl FnMut(&str, &str) -> Result<bool, String>,
) -> Result<(), String> {
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("'{flag}' needs a value"))?;
        if !set(flag, value)? {
            return Err(format!("unknown flag '{flag}'"));
        }
    }
    Ok(())
}

/// The value of `flag` parsed as a `T`.
pub fn value<T: FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("invalid value '{value}' for '{flag}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    /// A fixture-like parser with one flag, `--n`.
    fn parse_n(s: &str) -> Result<u32, String> {
        let mut n = 7;
        parse_flags(&argv(s), |flag, v| {
            match flag {
                "--n" => n = value(flag, v)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(n)
    }

    #[test]
    fn flags_set_values_and_errors_are_one_line() {
        assert_eq!(parse_n(""), Ok(7));
        assert_eq!(parse_n("--n 3 --n 4"), Ok(4));
        assert_eq!(parse_n("--n"), Err("'--n' needs a value".to_owned()));
        assert_eq!(
            parse_n("--n x"),
            Err("invalid value 'x' for '--n'".to_owned())
        );
        assert_eq!(parse_n("--m 1"), Err("unknown flag '--m'".to_owned()));
    }
}
