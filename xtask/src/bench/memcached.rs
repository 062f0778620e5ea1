//! A real memcached for the benchmarks: Debian's `memcached -t 4` on 127.0.0.1 in the
//! bench port range, its server-side throughput counter, and the contended load
//! (`memcached-load`) that makes its worker threads wait on each other's mutexes.
//!
//! Owns: installing memcached when missing, starting and stopping the server and the
//! load by the PIDs started here, and reading `stats` (`cmd_get + cmd_set`). Must not:
//! attach anything or decide what a window measures (`overhead` does).

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::run::{on_path, release_bin, say};

/// memcached's port: in the bench range (22000-22999) so other work on the machine is
/// not disturbed.
pub const PORT: u16 = 22011;

/// A memcached server and the load on it, both stopped on drop.
pub struct Memcached {
    server: Child,
    load: Option<Child>,
}

impl Memcached {
    /// Starts `memcached -t 4` and waits until it answers `stats`.
    pub fn start() -> Result<Memcached> {
        ensure_installed()?;
        let server = Command::new("memcached")
            .args(["-u", "memcache", "-l", "127.0.0.1", "-p"])
            .arg(PORT.to_string())
            .args(["-U", "0", "-t", "4", "-m", "64", "-c", "1024"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start memcached")?;
        let mut m = Memcached { server, load: None };
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats_ops().is_err() {
            if let Some(status) = m.server.try_wait()? {
                bail!("memcached exited at start ({status}): is port {PORT} on 127.0.0.1 free?");
            }
            if Instant::now() > deadline {
                bail!("memcached did not answer on 127.0.0.1:{PORT} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(m)
    }

    pub fn pid(&self) -> u32 {
        self.server.id()
    }

    /// Starts the contended load for at most `seconds` (it is stopped on drop too).
    pub fn start_load(&mut self, conns: u32, seconds: u64) -> Result<()> {
        let load = Command::new(release_bin("memcached-load"))
            .args(["--port", &PORT.to_string(), "--conns", &conns.to_string()])
            .args(["--keys", "16", "--batch", "100", "--set-pct", "90"])
            .args(["--seconds", &seconds.clamp(1, 3600).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start memcached-load")?;
        self.load = Some(load);
        // Let the connections open and the server warm up before the first window.
        std::thread::sleep(Duration::from_secs(1));
        if let Some(l) = self.load.as_mut()
            && let Some(status) = l.try_wait()?
        {
            bail!("memcached-load stopped at once ({status})");
        }
        Ok(())
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        if let Some(l) = self.load.as_mut() {
            let _ = l.kill();
            let _ = l.wait();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn ensure_installed() -> Result<()> {
    if on_path("memcached") || std::path::Path::new("/usr/bin/memcached").exists() {
        return Ok(());
    }
    say("memcached is missing: installing it (Debian package 'memcached')");
    crate::setup::apt_install(&["memcached"])
}

/// `cmd_get + cmd_set` from the server's `stats`: its own count of commands served.
pub fn stats_ops() -> Result<u64> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PORT));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connect to memcached on {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"stats\r\n")?;
    let mut text = Vec::new();
    let mut buf = [0u8; 8192];
    while !text.ends_with(b"END\r\n") {
        let n = s.read(&mut buf).context("read memcached stats")?;
        if n == 0 {
            bail!("memcached closed the stats connection");
        }
        text.extend_from_slice(&buf[..n]);
    }
    parse_ops(&String::from_utf8_lossy(&text))
}

fn parse_ops(stats: &str) -> Result<u64> {
    let stat = |name: &str| -> Result<u64> {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("memcached stats have no '{name}'"))
    };
    Ok(stat("cmd_get")? + stat("cmd_set")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_gets_plus_sets() {
        let stats =
            "STAT pid 1\r\nSTAT cmd_get 120\r\nSTAT cmd_set 1000\r\nSTAT cmd_flush 0\r\nEND\r\n";
        assert_eq!(parse_ops(stats).unwrap(), 1120);
        let err = parse_ops("STAT cmd_get 1\r\nEND\r\n").unwrap_err();
        assert!(format!("{err}").contains("'cmd_set'"));
    }
}
