//! `memcached-load`: a contended load for a real memcached on 127.0.0.1, used by
//! `cargo xtask bench overhead` (server throughput with and without lockprof attached)
//! and by the real-daemon tests.
//!
//! ```text
//! memcached-load --port P [--conns N (8)] [--keys K (16)] [--seconds S (10)]
//!                [--batch B (100)] [--set-pct X (90)] [--value-bytes V (32)]
//! ```
//!
//! Each of `--conns` connections (one thread each) writes batches of `--batch`
//! pipelined commands in one `write`, `--set-pct` % `set` and the rest `get`, all on the
//! same `--keys` hot keys, then reads every reply before the next batch. Why this
//! shape: memcached serializes writers of one item on its item lock and on the LRU and
//! slab locks of the item's class, so many connections on few keys make its worker
//! threads (`-t 4`) wait on each other's `pthread_mutex`es; Debian's `memcaslap` gives
//! each connection its own keys and barely contends. Threads are fine here (no GIL): the
//! client spends its time in `write`/`read`, not on a lock of its own.
//!
//! Runs for `--seconds` (at most one hour), then prints one JSON line:
//! `{"ops","ops_per_s","sets","gets","conns","keys","seconds"}` where `ops` counts
//! replies received. A connection error is a one-line message and exit status 1.
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: memcached-load --port P [--conns N (8)] [--keys K (16)] \
[--seconds S (10)] [--batch B (100)] [--set-pct X (90)] [--value-bytes V (32)]";

/// Upper bound of `--seconds`: a load generator left running by mistake must end.
const MAX_SECONDS: u64 = 3600;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Args {
    port: u16,
    conns: usize,
    keys: usize,
    seconds: u64,
    batch: usize,
    set_pct: u32,
    value_bytes: usize,
}

fn parse(argv: &[String]) -> Result<Option<Args>, String> {
    let mut port = None;
    let mut a = Args {
        port: 0,
        conns: 8,
        keys: 16,
        seconds: 10,
        batch: 100,
        set_pct: 90,
        value_bytes: 32,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let value = it.next().ok_or_else(|| format!("'{flag}' needs a value"))?;
        let bad = |_| format!("invalid value '{value}' for '{flag}' (expected an integer)");
        match flag.as_str() {
            "--port" => port = Some(value.parse::<u16>().map_err(bad)?),
            "--conns" => a.conns = value.parse().map_err(bad)?,
            "--keys" => a.keys = value.parse().map_err(bad)?,
            "--seconds" => a.seconds = value.parse().map_err(bad)?,
            "--batch" => a.batch = value.parse().map_err(bad)?,
            "--set-pct" => a.set_pct = value.parse().map_err(bad)?,
            "--value-bytes" => a.value_bytes = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown flag '{flag}'")),
        }
    }
    a.port = match port {
        Some(0) | None => return Err("'--port' is required (1-65535)".into()),
        Some(p) => p,
    };
    for (name, v, max) in [
        ("--conns", a.conns, 4096),
        ("--keys", a.keys, 1_000_000),
        ("--batch", a.batch, 100_000),
        ("--value-bytes", a.value_bytes, 1 << 20),
    ] {
        if v == 0 || v > max {
            return Err(format!("'{name}' must be between 1 and {max}, got {v}"));
        }
    }
    if a.seconds == 0 || a.seconds > MAX_SECONDS {
        return Err(format!(
            "'--seconds' must be between 1 and {MAX_SECONDS}, got {}",
            a.seconds
        ));
    }
    if a.set_pct > 100 {
        return Err(format!(
            "'--set-pct' must be between 0 and 100, got {}",
            a.set_pct
        ));
    }
    Ok(Some(a))
}

/// What one connection sent and got back.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Counts {
    sets: u64,
    gets: u64,
    replies: u64,
}

/// The bytes of one pipelined batch for connection `conn`, batch number `round`.
/// Which commands are sets is a fixed pattern (not random) so runs repeat exactly.
fn batch_bytes(a: &Args, conn: usize, round: u64, value: &[u8]) -> (Vec<u8>, Counts) {
    let mut out = Vec::with_capacity(a.batch * (40 + value.len()));
    let mut c = Counts::default();
    for i in 0..a.batch {
        let n = round as usize * a.batch + i;
        let key = (n * 7 + conn * 3) % a.keys;
        if (n % 100) < a.set_pct as usize {
            out.extend_from_slice(format!("set hot:{key} 0 0 {}\r\n", value.len()).as_bytes());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
            c.sets += 1;
        } else {
            out.extend_from_slice(format!("get hot:{key}\r\n").as_bytes());
            c.gets += 1;
        }
    }
    (out, c)
}

/// Counts the replies that end a command in `buf` (`STORED` ends a set, `END` a get)
/// and returns them with the number of bytes consumed; a trailing partial line stays.
/// A reply that is neither (`SERVER_ERROR …`, `ERROR`) is returned as an error.
fn count_replies(buf: &[u8], value_bytes: usize) -> Result<(u64, usize), String> {
    let mut done = 0;
    let mut pos = 0;
    while let Some(nl) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
        let line = &buf[pos..pos + nl];
        if line.starts_with(b"VALUE ") {
            // The data block follows: skip it whole once it has arrived.
            let need = nl + 2 + value_bytes + 2;
            if buf.len() - pos < need {
                break;
            }
            pos += need;
            continue;
        }
        match line {
            b"STORED" | b"END" => done += 1,
            other => {
                return Err(format!(
                    "unexpected reply '{}'",
                    String::from_utf8_lossy(other)
                ));
            }
        }
        pos += nl + 2;
    }
    Ok((done, pos))
}

/// One connection's loop until `stop`; returns what it sent and got back.
fn connection(
    a: Args,
    conn: usize,
    start: &AtomicBool,
    stop: &AtomicBool,
) -> Result<Counts, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, a.port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect to memcached on {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let value = vec![b'x'; a.value_bytes];
    let mut total = Counts::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 16);
    while !start.load(Ordering::Acquire) {
        thread::sleep(Duration::from_millis(1));
    }
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (bytes, sent) = batch_bytes(&a, conn, round, &value);
        round += 1;
        s.write_all(&bytes)
            .map_err(|e| format!("write to memcached on {addr}: {e}"))?;
        let want = sent.sets + sent.gets;
        let mut got = 0;
        while got < want {
            let n = s
                .read(&mut buf)
                .map_err(|e| format!("read from memcached on {addr}: {e}"))?;
            if n == 0 {
                return Err(format!("memcached on {addr} closed the connection"));
            }
            pending.extend_from_slice(&buf[..n]);
            let (done, used) = count_replies(&pending, a.value_bytes)?;
            pending.drain(..used);
            got += done;
        }
        total.sets += sent.sets;
        total.gets += sent.gets;
        total.replies += got;
    }
    Ok(total)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let a = match parse(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("memcached-load: error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let start = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let (results, elapsed) = thread::scope(|scope| {
        let handles: Vec<_> = (0..a.conns)
            .map(|conn| {
                let (start, stop) = (&start, &stop);
                scope.spawn(move || connection(a, conn, start, stop))
            })
            .collect();
        let t0 = Instant::now();
        start.store(true, Ordering::Release);
        let deadline = t0 + Duration::from_secs(a.seconds);
        // Stop early when a connection failed, so an error is reported at once.
        while Instant::now() < deadline
            && !handles.iter().any(thread::ScopedJoinHandle::is_finished)
        {
            thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a connection thread panicked".into()))
            })
            .collect();
        (results, t0.elapsed().as_secs_f64())
    });
    let mut total = Counts::default();
    for r in results {
        match r {
            Ok(c) => {
                total.sets += c.sets;
                total.gets += c.gets;
                total.replies += c.replies;
            }
            Err(e) => {
                eprintln!("memcached-load: error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let ops_per_s = if elapsed > 0.0 {
        total.replies as f64 / elapsed
    } else {
        0.0
    };
    println!(
        "{{\"ops\":{},\"ops_per_s\":{ops_per_s:.0},\"sets\":{},\"gets\":{},\"conns\":{},\"keys\":{},\"seconds\":{elapsed:.3}}}",
        total.replies, total.sets, total.gets, a.conns, a.keys
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parse_needs_a_port_and_bounds_the_rest() {
        let a = parse(&args(&["--port", "22011", "--conns", "4"]))
            .unwrap()
            .unwrap();
        assert_eq!((a.port, a.conns, a.keys, a.batch), (22011, 4, 16, 100));
        assert!(
            parse(&args(&[]))
                .unwrap_err()
                .contains("'--port' is required")
        );
        let e = parse(&args(&["--port", "1", "--seconds", "99999"])).unwrap_err();
        assert!(e.contains("'--seconds' must be between 1 and 3600"), "{e}");
        let e = parse(&args(&["--port", "1", "--keys", "0"])).unwrap_err();
        assert!(e.contains("'--keys' must be between 1"), "{e}");
        let e = parse(&args(&["--port", "1", "--set-pct", "101"])).unwrap_err();
        assert!(e.contains("'--set-pct'"), "{e}");
        assert!(parse(&args(&["--port", "x"])).is_err());
        assert!(parse(&args(&["--bogus", "1"])).is_err());
    }

    #[test]
    fn batch_mixes_sets_and_gets_on_the_hot_keys() {
        let a = parse(&args(&["--port", "1", "--keys", "4", "--batch", "200"]))
            .unwrap()
            .unwrap();
        let (bytes, c) = batch_bytes(&a, 1, 0, b"vv");
        assert_eq!((c.sets, c.gets), (180, 20));
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.matches("set hot:").count(), 180);
        assert_eq!(text.matches("get hot:").count(), 20);
        for k in 4..10 {
            assert!(!text.contains(&format!("hot:{k} ")), "key {k} is not hot");
        }
    }

    #[test]
    fn replies_are_counted_across_partial_reads() {
        let full = b"STORED\r\nVALUE hot:1 0 2\r\nvv\r\nEND\r\nEND\r\nSTO";
        let (n, used) = count_replies(full, 2).unwrap();
        assert_eq!(n, 3);
        assert_eq!(&full[used..], b"STO");
        // A VALUE header whose data has not arrived yet is left for the next read.
        let (n, used) = count_replies(b"VALUE hot:1 0 2\r\nv", 2).unwrap();
        assert_eq!((n, used), (0, 0));
        let e = count_replies(b"SERVER_ERROR out of memory\r\n", 2).unwrap_err();
        assert!(e.contains("SERVER_ERROR out of memory"), "{e}");
    }
}
