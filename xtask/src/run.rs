//! Running external commands, and the few facts about the machine every command needs.
//!
//! Owns: [`Cmd`] (echo a command as a shell line, run it, turn a non-zero exit into an
//! error that names the command), progress output, the root check and the paths of the
//! workspace and its target directory. Must not: know what any command is for; the
//! callers in `setup`, `test`, `demo` and `bench` decide that.
//!
//! Progress and command echoes go to stderr (as cargo's own do), results (summaries,
//! tables) to stdout, so `cargo xtask demo > summary.txt` keeps only the results.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::{env, fs};

use anyhow::{Context as _, Result, bail};

/// Prints one progress line on stderr: `xtask: <message>`.
pub fn say(message: &str) {
    eprintln!("xtask: {message}");
}

/// A command line to run from the workspace root.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            dir: None,
        }
    }

    /// `cargo`: the rustup proxy on PATH, so `+nightly` works. (`$CARGO` is the
    /// toolchain's own binary, which does not understand `+toolchain`.)
    pub fn cargo() -> Self {
        Self::new("cargo")
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// The command as a shell line (`KEY=value prog arg...`), for echoes and errors.
    pub fn line(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.envs {
            let _ = write!(s, "{}={} ", k.to_string_lossy(), quote(v));
        }
        s.push_str(&quote(&self.program));
        for a in &self.args {
            s.push(' ');
            s.push_str(&quote(a));
        }
        s
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        if let Some(dir) = &self.dir {
            c.current_dir(dir);
        }
        c
    }

    /// Echoes the command, runs it with inherited stdio and fails on a non-zero exit.
    pub fn run(&self) -> Result<()> {
        eprintln!("$ {}", self.line());
        let status = self
            .command()
            .status()
            .with_context(|| format!("cannot start '{}'", self.line()))?;
        check(status, &self.line())
    }

    /// Echoes the command and runs it capturing stdout and stderr; fails on a non-zero
    /// exit with the end of stderr in the message.
    pub fn capture(&self) -> Result<Output> {
        eprintln!("$ {}", self.line());
        self.capture_silently()
    }

    /// [`Cmd::capture`] without the echo (for quick probes such as `--version`).
    pub fn capture_silently(&self) -> Result<Output> {
        let out = self
            .command()
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot start '{}'", self.line()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "'{}' failed ({}){}{}",
                self.line(),
                describe(out.status),
                if tail.is_empty() { "" } else { ":\n" },
                tail.join("\n")
            );
        }
        Ok(out)
    }

    /// Runs the command silently and returns its stdout if it exited with 0.
    pub fn stdout_if_ok(&self) -> Option<String> {
        let out = self
            .command()
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn check(status: ExitStatus, line: &str) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!("'{line}' failed ({})", describe(status))
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("{status}"),
    }
}

/// Single-quotes an argument for the echo when a shell would need it.
fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Is `program` an executable file in a `PATH` directory?
pub fn on_path(program: &str) -> bool {
    env::var_os("PATH").is_some_and(|path| {
        env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(program)).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

/// Effective uid 0? Read from `/proc/self/status` (`Uid: real effective saved fs`) so
/// xtask needs no libc binding.
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

/// The workspace root (xtask's parent directory).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_owned(), Path::to_owned)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else `target`. Relative
/// paths are relative to the workspace root, which `main` makes the current directory,
/// so echoed commands stay short.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("target"),
    }
}

/// A release binary built by `cargo build --release`.
pub fn release_bin(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

/// Writes `value` as pretty JSON to `path`, creating the directory.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("create '{}'", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value).context("serialize JSON")?;
    fs::write(path, text + "\n").with_context(|| format!("write '{}'", path.display()))
}

/// Path relative to the workspace root when it is inside it (shorter messages).
pub fn show(path: &Path) -> String {
    let root = workspace_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_quotes_only_what_needs_it() {
        let cmd = Cmd::new("cargo")
            .env("LLVM_PREFIX", "/usr/lib/llvm-22")
            .args(["install", "bpf-linker", "--features", "llvm-22"])
            .arg("it's");
        assert_eq!(
            cmd.line(),
            r"LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --features llvm-22 'it'\''s'"
        );
        assert_eq!(Cmd::new("x").arg("").line(), "x ''");
    }

    #[test]
    fn failed_command_names_itself() {
        let err = Cmd::new("false").capture_silently().unwrap_err();
        assert!(format!("{err:#}").contains("'false' failed (exit code 1)"));
        let err = Cmd::new("/nonexistent/prog").run().unwrap_err();
        assert!(format!("{err:#}").contains("cannot start '/nonexistent/prog'"));
    }

    #[test]
    fn finds_programs_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("surely-not-a-program-xyz"));
    }
}
