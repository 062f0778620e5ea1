//! Debug files by build id from debuginfod servers, the protocol perf, gdb and
//! systemd-coredump use: `GET <server>/buildid/<hex id>/debuginfo`.
//!
//! Owns: the server list (`DEBUGINFOD_URLS`, space-separated), the cache laid out as
//! elfutils' client lays it out (`$DEBUGINFOD_CACHE_PATH`, else
//! `$XDG_CACHE_HOME/debuginfod_client`, else `~/.cache/debuginfod_client`, each file
//! at `<build id>/debuginfo`, so both clients share it), a minimal HTTP/1.1 client for
//! `http://` servers, a progress line while fetching and one warning per unreachable
//! server. Must not: fail symbolization — a missing or unreachable server only means
//! the frames stay as they are.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::resolve::symbolize::hex;

/// How long to wait for a server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a read may stall before the transfer is given up.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A debuginfod client: servers, cache, and what it already warned about.
#[derive(Debug)]
pub struct Debuginfod {
    servers: Vec<String>,
    cache: PathBuf,
    verbose: bool,
    /// Servers that did not answer (warned once, not asked again).
    unreachable: BTreeSet<String>,
    /// Build ids no server had (not asked again).
    missing: BTreeSet<String>,
}

impl Debuginfod {
    /// The client configured by the environment, or `None` when `DEBUGINFOD_URLS`
    /// names no server.
    pub fn from_env(verbose: bool) -> Option<Self> {
        let urls = std::env::var("DEBUGINFOD_URLS").ok()?;
        let cache = std::env::var_os("DEBUGINFOD_CACHE_PATH")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .map(|d| PathBuf::from(d).join("debuginfod_client"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/debuginfod_client"))
            })?;
        Self::new(&urls, cache, verbose)
    }

    /// A client for the space-separated `urls`, caching under `cache`.
    pub fn new(urls: &str, cache: PathBuf, verbose: bool) -> Option<Self> {
        let servers: Vec<String> = urls
            .split_whitespace()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        (!servers.is_empty()).then_some(Self {
            servers,
            cache,
            verbose,
            unreachable: BTreeSet::new(),
            missing: BTreeSet::new(),
        })
    }

    /// The debug file of `build_id` for `module`: from the cache, else fetched from
    /// the first server that has it (and cached). `None` when no server has it.
    pub fn debuginfo(&mut self, build_id: &[u8], module: &Path) -> Option<PathBuf> {
        let id = hex(build_id);
        let path = self.cache.join(&id).join("debuginfo");
        if path.is_file() {
            return Some(path);
        }
        if self.missing.contains(&id) {
            return None;
        }
        for server in self.servers.clone() {
            if self.unreachable.contains(&server) {
                continue;
            }
            if self.verbose {
                eprintln!(
                    "lockprof: fetching debug info for {} (build id {id}) from {server}",
                    module.display()
                );
            }
            match fetch(&server, &id, &path) {
                Ok(true) => return Some(path),
                Ok(false) => {}
                Err(e) => {
                    eprintln!("lockprof: warning: debuginfod server '{server}' unreachable: {e}");
                    self.unreachable.insert(server);
                }
            }
        }
        self.missing.insert(id);
        None
    }
}

/// Fetch `<server>/buildid/<id>/debuginfo` into `dest`. `Ok(false)`: the server
/// answered but does not have it; `Err`: it could not be asked.
fn fetch(server: &str, id: &str, dest: &Path) -> Result<bool, String> {
    let rest = server
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// servers are supported".to_owned())?;
    let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
    let host_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("resolve '{authority}': {e}"))?
        .next()
        .ok_or_else(|| format!("resolve '{authority}': no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let base = if base.is_empty() {
        String::new()
    } else {
        format!("/{base}")
    };
    write!(
        stream,
        "GET {base}/buildid/{id}/debuginfo HTTP/1.1\r\nHost: {authority}\r\n\
         User-Agent: lockprof/{}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let (status, chunked, length) = read_head(&mut reader)?;
    if status != 200 {
        return Ok(false);
    }
    let body = if chunked {
        read_chunked(&mut reader)?
    } else {
        let mut body = Vec::new();
        match length {
            Some(n) => reader
                .take(n)
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?,
            None => reader.read_to_end(&mut body).map_err(|e| e.to_string())?,
        };
        if length.is_some_and(|n| n != body.len() as u64) {
            return Err("transfer cut short".to_owned());
        }
        body
    };
    // Write next to the destination, then rename: a reader never sees half a file.
    let dir = dest.parent().ok_or("bad cache path")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cache '{}': {e}", dir.display()))?;
    let tmp = dir.join(format!(".debuginfo.{}", std::process::id()));
    std::fs::write(&tmp, &body).map_err(|e| format!("cache '{}': {e}", tmp.display()))?;
    std::fs::rename(&tmp, dest).map_err(|e| format!("cache '{}': {e}", dest.display()))?;
    Ok(true)
}

/// Status code, chunked transfer encoding, content length.
fn read_head(r: &mut impl BufRead) -> Result<(u16, bool, Option<u64>), String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: '{}'", line.trim()))?;
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    Ok((status, chunked, length))
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size '{size_hex}'"))?;
        if size == 0 {
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|e| e.to_string())?;
        line.clear();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A fresh cache directory for one test.
    fn cache_dir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("lockprof-debuginfod-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn serve_once(response: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            while r.read_line(&mut req).unwrap() > 2 && !req.ends_with("\r\n\r\n") {}
            s.write_all(response).unwrap();
            req
        });
        (url, h)
    }

    #[test]
    fn fetches_by_build_id_into_the_elfutils_cache_layout_and_reuses_it() {
        let cache = cache_dir("fetch");
        let (url, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nELF!!");
        let mut d = Debuginfod::new(&url, cache.clone(), false).unwrap();
        let p = d.debuginfo(&[0xab, 0x01], Path::new("/bin/x")).unwrap();
        assert_eq!(p, cache.join("ab01/debuginfo"));
        assert_eq!(std::fs::read(&p).unwrap(), b"ELF!!");
        let req = server.join().unwrap();
        assert!(
            req.starts_with("GET /buildid/ab01/debuginfo HTTP/1.1\r\n"),
            "{req}"
        );
        // Cached: no server needed any more.
        let mut offline = Debuginfod::new("http://127.0.0.1:1", cache.clone(), false).unwrap();
        assert_eq!(
            offline.debuginfo(&[0xab, 0x01], Path::new("/bin/x")),
            Some(p)
        );
    }

    #[test]
    fn chunked_bodies_are_decoded_and_404_is_not_an_error() {
        let cache = cache_dir("chunked");
        let (url, _s) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        let mut d = Debuginfod::new(&url, cache.clone(), false).unwrap();
        let p = d.debuginfo(&[1], Path::new("/bin/x")).unwrap();
        assert_eq!(std::fs::read(p).unwrap(), b"abcde");
        let (url, _s) = serve_once(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        let mut d = Debuginfod::new(&url, cache.clone(), false).unwrap();
        assert_eq!(d.debuginfo(&[2], Path::new("/bin/x")), None);
        assert!(d.unreachable.is_empty(), "it answered");
        assert!(d.missing.contains("02"), "not asked again");
    }

    #[test]
    fn an_unreachable_server_is_a_warning_not_a_failure() {
        // A port nobody listens on: bind, note it, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cache = cache_dir("unreachable");
        let mut d = Debuginfod::new(
            &format!("https://example.invalid http://127.0.0.1:{port}/"),
            cache.clone(),
            false,
        )
        .unwrap();
        assert_eq!(d.debuginfo(&[3], Path::new("/bin/x")), None);
        assert_eq!(d.unreachable.len(), 2, "{:?}", d.unreachable);
        assert!(Debuginfod::new("  ", cache.clone(), false).is_none());
    }
}
