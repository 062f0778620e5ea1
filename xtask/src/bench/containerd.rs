//! A real Go daemon for the benchmarks: Debian's containerd on a private root, state
//! and socket under `target/bench/containerd`, its server-side count of gRPC calls
//! handled (Prometheus metrics on 127.0.0.1 in the Go bench port range), and the load
//! of `demo-targets/go/ctrload -mix snapshots` (concurrent `ctr snapshots prepare` and
//! `rm`, a steady rate) that makes its goroutines wait on the metadata database's
//! locks and garbage collector.
//!
//! Owns: installing containerd when missing, starting and stopping the daemon and the
//! load by the PIDs started here, and reading the metrics. The daemon's configuration
//! and the image come from `ctrload setup`, their one home (the root test
//! `profiler/tests/go_daemon.rs` uses them too). Must not: attach anything or decide
//! what a window measures (`go` does).

use std::io::{BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::run::{Cmd, say};

/// The metrics port: in the Go bench range (27000-27999).
pub const METRICS_PORT: u16 = 27_011;
const CONTAINERD: &str = "/usr/bin/containerd";

/// A containerd daemon and the load on it, both stopped on drop.
pub struct Containerd {
    server: Child,
    load: Option<(Child, BufReader<ChildStdout>)>,
    dir: PathBuf,
}

/// What the load did, from `ctrload`'s result line.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadResult {
    /// `ctr` commands that succeeded and failed.
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
}

impl Containerd {
    /// Writes the config and image with `ctrload setup` into `dir` (emptied first),
    /// starts containerd on it and waits until its metrics answer.
    pub fn start(ctrload: &Path, dir: &Path) -> Result<Containerd> {
        ensure_installed()?;
        let _ = std::fs::remove_dir_all(dir);
        Cmd::new(ctrload)
            .arg("-dir")
            .arg(dir)
            .args(["-metrics", &format!("127.0.0.1:{METRICS_PORT}"), "setup"])
            .capture_silently()?;
        let log = std::fs::File::create(dir.join("containerd.log"))
            .with_context(|| format!("create a log file in '{}'", dir.display()))?;
        let server = Command::new(CONTAINERD)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start containerd")?;
        let mut d = Containerd {
            server,
            load: None,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while rpcs_handled().is_err() {
            if let Some(status) = d.server.try_wait()? {
                bail!(
                    "containerd exited at start ({status}): is 127.0.0.1:{METRICS_PORT} free? log: {}",
                    d.dir.join("containerd.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd's metrics did not answer on 127.0.0.1:{METRICS_PORT} within 30 s"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(d)
    }

    pub fn pid(&self) -> u32 {
        self.server.id()
    }

    /// Starts `ctrload -mix snapshots load` with `workers` loops; returns once its
    /// first command went through. It runs until [`Containerd::finish_load`] closes
    /// its stdin.
    pub fn start_load(&mut self, ctrload: &Path, workers: u32) -> Result<()> {
        let started = super::go::spawn_until_ready(
            Command::new(ctrload).arg("-dir").arg(&self.dir).args([
                "-workers",
                &workers.to_string(),
                "-mix",
                "snapshots",
                "load",
            ]),
            "ctrload",
        )?;
        self.load = Some(started);
        Ok(())
    }

    /// Stops the load and returns its result.
    pub fn finish_load(&mut self) -> Result<LoadResult> {
        let Some((mut child, mut out)) = self.load.take() else {
            bail!("no load is running");
        };
        drop(child.stdin.take());
        let mut rest = String::new();
        out.read_to_string(&mut rest).context("read ctrload")?;
        let status = child.wait()?;
        if !status.success() {
            bail!("ctrload failed ({status})");
        }
        parse_load(&rest)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.load.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
        let pid = self.server.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.server.try_wait(), Ok(Some(_))) {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        say("bench: containerd did not stop within 10 s of SIGTERM: killing it");
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ensure_installed() -> Result<()> {
    if Path::new(CONTAINERD).exists() && Path::new("/usr/bin/ctr").exists() {
        return Ok(());
    }
    say("containerd is missing: installing it (Debian package 'containerd')");
    crate::setup::apt_install(&["containerd"])
}

fn parse_load(stdout: &str) -> Result<LoadResult> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"ctrload\""))
        .context("ctrload printed no result line")?;
    let v: serde_json::Value = serde_json::from_str(line).context("parse ctrload's result")?;
    let count = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    Ok(LoadResult {
        ok: count("ok"),
        failed: count("failed"),
        seconds: v
            .get("seconds")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0),
    })
}

/// gRPC calls containerd has handled (every service, every status code): the sum of
/// `grpc_server_handled_total` from its metrics, its own count of requests served.
pub fn rpcs_handled() -> Result<u64> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, METRICS_PORT));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connect to containerd's metrics on {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /v1/metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .context("read containerd's metrics")?;
    parse_handled(&text)
}

fn parse_handled(metrics: &str) -> Result<u64> {
    let mut total = 0.0;
    let mut seen = false;
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("grpc_server_handled_total") {
            let value = rest
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .with_context(|| format!("bad metrics line '{line}'"))?;
            total += value;
            seen = true;
        }
    }
    if !seen {
        bail!("containerd's metrics have no grpc_server_handled_total");
    }
    // Prometheus prints counters as floats; these are whole numbers.
    Ok(total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_calls_are_summed_over_methods_and_codes() {
        let text = "HTTP/1.0 200 OK\r\n\r\n# HELP grpc_server_handled_total x\n\
            grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Create\"} 12\n\
            grpc_server_handled_total{grpc_code=\"NotFound\",grpc_method=\"Delete\"} 3\n\
            grpc_server_started_total{grpc_method=\"Create\"} 40\n";
        assert_eq!(parse_handled(text).unwrap(), 15);
        assert!(parse_handled("go_goroutines 17\n").is_err());
    }

    #[test]
    fn load_result_is_read_among_other_output() {
        let r = parse_load(
            "ready\n{\"ctrload\":\"containerd\",\"failed\":2,\"ok\":29,\"seconds\":5.1}\n",
        )
        .unwrap();
        assert_eq!((r.ok, r.failed), (29, 2));
        assert!((r.seconds - 5.1).abs() < 1e-9);
        assert!(parse_load("ready\n").is_err());
    }
}
