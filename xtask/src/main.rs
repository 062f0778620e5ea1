//! `cargo xtask`: lockprof's build, test, demo and benchmark driver.
//!
//! Owns: argument dispatch and the usage text; each command lives in its own module
//! (`setup`, `test`, `demo`, `bench`), with `run` (running commands), `report`
//! (reading lockprof's JSON report) and `demos` (the demo catalog) shared by them.
//! Must not: depend on the profiler crate. Its build script needs bpf-linker, which
//! `cargo xtask setup` is what installs, so xtask reads lockprof's JSON as plain
//! `serde_json::Value`. Arguments are parsed by hand to keep xtask quick to build.

mod bench;
mod demo;
mod demo_go;
mod demos;
mod fuzz;
mod report;
mod run;
mod setup;
mod test;
mod vm;

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::run::Cmd;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  setup                 install what lockprof needs and is missing (nightly + rust-src,
                        rustfmt/clippy, bpf-linker on LLVM 22); report kernel BTF and root
  build                 setup, then build the whole workspace (release)
  test [--quick]        THE test command (CI runs it): fmt, clippy (host + eBPF), cargo test,
                        then the root-only BPF tests; --quick leaves those out (local only)
  demo [NAME]           run each demo's before/after under lockprof (root) and summarize
                        what changed; NAME: forwarder, switch, kmutex, container-store,
                        layer-store (default: all)
  bench overhead [--quick] [--rounds N] [--only PARTS]
                        what attaching lockprof costs, next to bpftrace and to the futex
                        tracepoints' floor (root): untraced syscall tax (a), futex
                        ping-pong round trip and BPF time per futex call (b), memcached
                        throughput (c), kernel memory and RSS (d), Go probes (g), fentry
                        vs the tracepoints in a VM booting Debian's kernel (v); --only
                        picks parts (e.g. c, abc); writes target/bench/overhead.json
  bench breakdown [--seconds N]
                        where lockprof's BPF time per futex call goes on (b)'s ping-pong
                        (root): perf samples of its programs for N s (default 3), by what
                        they were doing (own code, user reads, clock, hash maps, ids);
                        writes target/bench/breakdown.json
  bench storm [--runs N] [--threads N] [--duration-ms D] [--no-holders]
                        lockprof's cost on a futex storm, unprofiled vs profiled (root);
                        writes target/bench/storm.json
  bench soak [--minutes N] [--max-rss-mib M]
                        lockprof record --interval 1s on a churning workload for N minutes
                        (default 30, root): RSS, kernel memory and CPU per refresh over
                        time, losses; stops early if lockprof's RSS passes M MiB (2048);
                        writes target/bench/soak.json
  bench demos [--runs N]
                        each demo pair N times (default 3) with spec knobs, no lockprof;
                        checks the spec's ratios; writes target/bench/demos.json
  bench gate [--runs N]
                        each demo's before/after N times (default 3) under lockprof (root);
                        'lockprof check --baseline' on every pair: false alarms and misses;
                        writes target/bench/gate.json
  vm [--bin PATH]... [--timeout SECS] -- SCRIPT
                        run SCRIPT (busybox sh, root) in a qemu VM booting Debian's own
                        kernel, which allows fentry (this machine's refuses it), with
                        each --bin (default: lockprof, futex-pingpong); fetches the
                        kernel package into target/vm/ once
  help                  this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line per context layer, outermost first, as anyhow's `{:#}` prints it.
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    // Relative paths in echoed commands (target/release/…) and cargo's workspace
    // discovery both assume the root, wherever `cargo xtask` was started from.
    std::env::set_current_dir(run::workspace_root())?;
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("help", &[][..]),
    };
    match command {
        "setup" => no_args(command, rest).and_then(|()| setup::setup()),
        "build" => no_args(command, rest).and_then(|()| build()),
        "test" => test::test(&test::parse(rest)?),
        "demo" => match rest {
            [] => demo::demo(None),
            [name] if !name.starts_with('-') => demo::demo(Some(name)),
            _ => bail!("usage: cargo xtask demo [NAME] (NAME: {})", demos::names()),
        },
        "bench" => bench::bench(rest),
        "vm" => vm::vm(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("{USAGE}");
            bail!("unknown command '{other}'")
        }
    }
}

fn no_args(command: &str, rest: &[String]) -> Result<()> {
    match rest.first() {
        Some(extra) => bail!("'cargo xtask {command}' takes no arguments (got '{extra}')"),
        None => Ok(()),
    }
}

/// `cargo xtask build`: every workspace binary (lockprof, demo-targets,
/// lockprof-fixture, futex-storm) in release, the profile everything else here uses.
fn build() -> Result<()> {
    setup::setup()?;
    Cmd::cargo()
        .args(["build", "--release", "--workspace"])
        .run()
}
