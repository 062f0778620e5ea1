//! `switch`: containers/gvisor-tap-vsock virtual switch (PR #613).
//!
//! # Upstream bug
//!
//! *Before* (`pkg/tap/switch.go` at 64a0c60d): `Switch` has `conns` under
//! `connLock sync.Mutex`, the MAC table `cam` under `camLock sync.RWMutex`, and a
//! switch-wide `writeLock sync.Mutex`. `txPkt` takes `writeLock` and then `connLock`
//! (both deferred), forwards a broadcast to every conn but the source or looks the
//! unicast destination up in `cam`, and calls `txBuf`, which retries `conn.Write` in a
//! tight loop while it fails with ENOBUFS, with both locks held throughout. The per-VM
//! rx goroutine (`rxBuf`) learns the source MAC under `camLock` and sends every frame not
//! addressed to the gateway through `txPkt`, so broadcasts (ARP, DHCP, IPv6 ND) queue
//! behind the retry loop even with a single VM, where the target set is empty.
//! `connect`/`disconnect` block on `connLock` the same way. A stalled rx goroutine stops
//! reading the VM's socket, so the VM drops packets and TCP retransmits.
//!
//! *After* (22964b63…b3cfb4c4, merged as 0d5969b6): `txPkt` snapshots the targets (or
//! clones one conn) under `connLock` and releases it; `txBuf` takes `writeLock` itself;
//! `disconnect` takes `connLock` then `camLock`. `writeLock` is still one switch-wide
//! mutex held across ENOBUFS retries: the fix frees `connLock`, the rx path and
//! connect/disconnect, not the host→VM writers.
//!
//! # Mapping
//!
//! - `before`: [`Switch::tx_pkt_before`] locks `write_lock` (`sw.before.write_lock`, the
//!   #1 site) then `conns`, and runs the ENOBUFS loop ([`Switch::tx_buf_before`]) under
//!   both.
//! - `after`: [`Switch::tx_pkt_after`] clones under `conns` and releases; the write goes
//!   through [`Switch::tx_buf_after`], which locks `write_lock` (`sw.after.write_lock`).
//! - [`SimSock`] is a lock-free, time-based bounded datagram queue (`--sock-cap`,
//!   drained one per `--drain-ns`, or `--drain-batch` at a time); a failed write costs
//!   `--enobufs-cost-ns` of calibrated CPU, like the syscall.
//! - Threads: `tx-stream-N` (`--tx-streams`) send host→VM0 in a loop; `rx-vm0` drains
//!   a lock-free bounded inbound queue (`--rxq-cap`) through `rx_buf`, every
//!   `--bcast-every`th frame being a broadcast; `vm-stream-N` (`--vm-streams`) are
//!   AIMD senders pushing up to `--burst` frames per 1 ms tick, halving the window and
//!   sleeping `--rto-ms` on a drop; `churn` connects and disconnects a conn
//!   `--churn-hz` times a second.
//! - Upstream's `disconnect` before the fix did not take `camLock` under `connLock`;
//!   here both variants share the fixed `disconnect` (churn conns never enter the CAM,
//!   so the extra lock is uncontended and does not change the picture).
//!
//! # Runs
//!
//! Defaults are the spec's (8 tx streams, 2000 ms), and the profiler's tests use them
//! as they are. Shorter runs are not robust for the per-thread comparison: in *after*,
//! `rx-vm0` and `churn` only wait when a thread holding `conns` (or a lingering churn
//! conn's `write_lock` turn) is preempted, and on a 2-core machine busy with other work
//! one such preemption costs 5–30 ms, while `churn`'s *before* wait in a 1 s run was
//! as low as 90 ms (0.6–1.9 s for both threads in 2 s runs under the same load).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

mod sock;

use sock::Inbound;
pub use sock::SimSock;

use crate::common::{
    Cpu, Crew, DURATION_KNOB, DemoSpec, Headline, Knob, Metrics, Outcome, Params, Rng, RunError,
    StartGate, StopFlag, Variant, bump, cv, load, percentile, unpoison, us,
};

pub static SPEC: DemoSpec = DemoSpec {
    name: "switch",
    about: "gvisor-tap-vsock switch: ENOBUFS retries under writeLock+connLock (PR #613)",
    threads_knob: "tx-streams",
    timed: true,
    knobs: &[
        DURATION_KNOB,
        Knob {
            name: "tx-streams",
            default: 8,
            min: 1,
            help: "host->VM sender threads",
        },
        Knob {
            name: "vm-streams",
            default: 4,
            min: 1,
            help: "VM->host AIMD sender threads",
        },
        Knob {
            name: "sock-cap",
            default: 64,
            min: 1,
            help: "VM socket buffer, datagrams",
        },
        Knob {
            name: "drain-ns",
            default: 20_000,
            min: 1,
            help: "VM socket drain time per datagram (20000 = 50 kpps)",
        },
        Knob {
            name: "drain-batch",
            default: 1,
            min: 1,
            help: "datagrams drained per burst",
        },
        Knob {
            name: "enobufs-cost-ns",
            default: 1000,
            min: 0,
            help: "CPU cost of one failed write (the syscall)",
        },
        Knob {
            name: "rxq-cap",
            default: 256,
            min: 1,
            help: "inbound (VM->host) queue capacity, frames",
        },
        Knob {
            name: "bcast-every",
            default: 64,
            min: 1,
            help: "every Nth inbound frame is a broadcast",
        },
        Knob {
            name: "burst",
            default: 20,
            min: 1,
            help: "max frames per VM stream per 1 ms tick (the window cap)",
        },
        Knob {
            name: "rto-ms",
            default: 10,
            min: 0,
            help: "VM stream back-off after a drop",
        },
        Knob {
            name: "churn-hz",
            default: 1000,
            min: 1,
            help: "connect+disconnect cycles per second",
        },
    ],
    short_args: "(defaults)",
};

pub type Mac = u64;
const GATEWAY_MAC: Mac = 0x5a94_efe4_0cdd;
const VM0_MAC: Mac = 0x5a94_efe4_0cee;
const BROADCAST_MAC: Mac = 0xffff_ffff_ffff;
const VM0_ID: u64 = 0;
/// Source id for frames from the host side (not a conn).
const HOST_ID: u64 = u64::MAX;

/// An Ethernet frame, reduced to its addresses.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    src: Mac,
    dst: Mac,
}

// ---------------------------------------------------------------------------------------
// the switch
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
pub struct Conn {
    id: u64,
    sock: SimSock,
}

/// `tap.Switch`.
#[derive(Debug)]
pub struct Switch {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    cam: RwLock<HashMap<Mac, u64>>,
    write_lock: Mutex<()>,
    cpu: Cpu,
    enobufs_cost_ns: u64,
    enobufs: AtomicU64,
    to_gateway: AtomicU64,
}

impl Switch {
    fn new(cpu: Cpu, enobufs_cost_ns: u64) -> Switch {
        Switch {
            conns: Mutex::default(),
            cam: RwLock::default(),
            write_lock: Mutex::new(()),
            cpu,
            enobufs_cost_ns,
            enobufs: AtomicU64::new(0),
            to_gateway: AtomicU64::new(0),
        }
    }

    #[inline(never)]
    pub fn connect(&self, conn: Arc<Conn>) {
        let mut conns = unpoison(self.conns.lock()); // LOCK-SITE: sw.conn_lock.connect
        conns.insert(conn.id, conn);
    }

    /// The `Accept` defer: forget the conn, then its CAM entries (fixed lock order).
    #[inline(never)]
    pub fn disconnect(&self, id: u64) {
        let mut conns = unpoison(self.conns.lock()); // LOCK-SITE: sw.conn_lock.disconnect
        conns.remove(&id);
        let mut cam = unpoison(self.cam.write()); // LOCK-SITE: sw.disconnect.cam_lock
        cam.retain(|_, conn| *conn != id);
    }

    #[inline(never)]
    fn cam_lookup(&self, mac: Mac) -> Option<u64> {
        let cam = unpoison(self.cam.read()); // LOCK-SITE: sw.cam.lookup
        cam.get(&mac).copied()
    }

    #[inline(never)]
    fn cam_learn(&self, mac: Mac, id: u64) {
        let mut cam = unpoison(self.cam.write()); // LOCK-SITE: sw.cam.learn
        cam.insert(mac, id);
    }

    /// `txPkt` before the fix: both locks held across every `txBuf` retry loop.
    #[inline(never)]
    pub fn tx_pkt_before(&self, frame: Frame, src: u64, stop: &StopFlag) -> u64 {
        let _write = unpoison(self.write_lock.lock()); // LOCK-SITE: sw.before.write_lock
        let conns = unpoison(self.conns.lock()); // LOCK-SITE: sw.before.conn_lock
        let mut sent = 0;
        if frame.dst == BROADCAST_MAC {
            for conn in conns.values().filter(|c| c.id != src) {
                sent += u64::from(self.tx_buf_before(conn, stop));
            }
        } else if let Some(conn) = self.cam_lookup(frame.dst).and_then(|id| conns.get(&id)) {
            sent += u64::from(self.tx_buf_before(conn, stop));
        }
        sent
    }

    /// `txPkt` after the fix: pick targets under `conns`, release, then write.
    #[inline(never)]
    pub fn tx_pkt_after(&self, frame: Frame, src: u64, stop: &StopFlag) -> u64 {
        let targets = self.targets_after(frame, src);
        targets
            .iter()
            .map(|conn| u64::from(self.tx_buf_after(conn, stop)))
            .sum()
    }

    #[inline(never)]
    fn targets_after(&self, frame: Frame, src: u64) -> Vec<Arc<Conn>> {
        let dst = if frame.dst == BROADCAST_MAC {
            None
        } else {
            match self.cam_lookup(frame.dst) {
                Some(id) => Some(id),
                None => return Vec::new(),
            }
        };
        let conns = unpoison(self.conns.lock()); // LOCK-SITE: sw.after.conn_snapshot
        match dst {
            None => conns.values().filter(|c| c.id != src).cloned().collect(),
            Some(id) => conns.get(&id).cloned().into_iter().collect(),
        }
    }

    /// `txBuf` before the fix: the caller holds `write_lock` and `conns`.
    #[inline(never)]
    fn tx_buf_before(&self, conn: &Conn, stop: &StopFlag) -> bool {
        self.write_retrying(&conn.sock, stop)
    }

    /// `txBuf` after the fix: the residual switch-wide `writeLock`.
    #[inline(never)]
    fn tx_buf_after(&self, conn: &Conn, stop: &StopFlag) -> bool {
        let _write = unpoison(self.write_lock.lock()); // LOCK-SITE: sw.after.write_lock
        self.write_retrying(&conn.sock, stop)
    }

    /// The ENOBUFS loop: retry until the VM drains a slot. Whatever locks the caller
    /// holds are held for all of it.
    #[inline(never)]
    fn write_retrying(&self, sock: &SimSock, stop: &StopFlag) -> bool {
        loop {
            if sock.try_write() {
                return true;
            }
            bump(&self.enobufs, 1);
            self.cpu.work_ns(self.enobufs_cost_ns);
            if stop.stopped() {
                return false;
            }
        }
    }

    #[inline(never)]
    fn tx_pkt(&self, variant: Variant, frame: Frame, src: u64, stop: &StopFlag) -> u64 {
        match variant {
            Variant::Before => self.tx_pkt_before(frame, src, stop),
            Variant::After => self.tx_pkt_after(frame, src, stop),
        }
    }

    /// `rxBuf`: learn the source MAC, deliver to the gateway, and switch anything not
    /// addressed only to the gateway through `txPkt`.
    #[inline(never)]
    fn rx_buf(&self, variant: Variant, frame: Frame, src: u64, stop: &StopFlag) {
        self.cam_learn(frame.src, src);
        if frame.dst == GATEWAY_MAC || frame.dst == BROADCAST_MAC {
            bump(&self.to_gateway, 1);
        }
        if frame.dst != GATEWAY_MAC {
            self.tx_pkt(variant, frame, src, stop);
        }
    }
}

// ---------------------------------------------------------------------------------------
// workload
// ---------------------------------------------------------------------------------------

enum Worker {
    Tx(u64),
    Rx { frames: u64, bcast_us: Vec<f64> },
    Vm { accepted: u64, drops: u64 },
    Churn { connect_us: Vec<f64> },
}

pub fn run(variant: Variant, params: &Params, cpu: Cpu) -> Result<Outcome, RunError> {
    let duration = Duration::from_millis(params.get("duration-ms"));
    let (sock_cap, drain_ns, batch) = (
        params.get("sock-cap"),
        params.get("drain-ns"),
        params.get("drain-batch"),
    );
    let bcast_every = params.get("bcast-every");
    let burst = params.get("burst");
    let rto = Duration::from_millis(params.get("rto-ms"));
    let churn_period = Duration::from_nanos(1_000_000_000 / params.get("churn-hz"));
    let seed = params.seed();

    let sw = Arc::new(Switch::new(cpu, params.get("enobufs-cost-ns")));
    sw.connect(Arc::new(Conn {
        id: VM0_ID,
        sock: SimSock::new(sock_cap, drain_ns, batch),
    }));
    // The VM has spoken before (DHCP), so the gateway knows its MAC.
    sw.cam_learn(VM0_MAC, VM0_ID);
    let inbound = Arc::new(Inbound {
        len: AtomicUsize::new(0),
        cap: params.count("rxq-cap"),
    });
    let (gate, opener) = StartGate::new()?;
    let stop = Arc::new(StopFlag::default());
    let mut crew: Crew<Worker> = Crew::new()?;

    for i in 0..params.get("tx-streams") {
        let (sw, gate, stop) = (Arc::clone(&sw), Arc::clone(&gate), Arc::clone(&stop));
        crew.spawn(format!("tx-stream-{i}"), 0, move || {
            gate.pass();
            let frame = Frame {
                src: GATEWAY_MAC,
                dst: VM0_MAC,
            };
            let mut sent = 0;
            while !stop.stopped() {
                sent += sw.tx_pkt(variant, frame, HOST_ID, &stop);
            }
            Worker::Tx(sent)
        })?;
    }
    {
        let (sw, gate, stop, inbound) = (
            Arc::clone(&sw),
            Arc::clone(&gate),
            Arc::clone(&stop),
            Arc::clone(&inbound),
        );
        crew.spawn("rx-vm0".into(), 0, move || {
            gate.pass();
            rx_loop(&sw, variant, &inbound, bcast_every, &stop)
        })?;
    }
    for i in 0..params.get("vm-streams") {
        let (gate, stop, inbound) = (Arc::clone(&gate), Arc::clone(&stop), Arc::clone(&inbound));
        let mut rng = Rng::new(seed, i);
        crew.spawn(format!("vm-stream-{i}"), 0, move || {
            gate.pass();
            // Stagger the streams' ticks so they do not all burst at the same instant.
            thread::sleep(Duration::from_micros(rng.below(1000)));
            vm_stream(&inbound, burst, rto, &stop)
        })?;
    }
    {
        let (sw, gate, stop) = (Arc::clone(&sw), Arc::clone(&gate), Arc::clone(&stop));
        crew.spawn("churn".into(), 0, move || {
            gate.pass();
            churn(&sw, sock_cap, drain_ns, churn_period, &stop)
        })?;
    }

    let (results, wall) = crew.run_for(opener, &stop, duration)?;

    let secs = duration.as_secs_f64();
    let (mut tx, mut vm, mut drops) = (Vec::new(), Vec::new(), 0);
    let (mut rx_frames, mut bcast_us, mut connect_us) = (0, Vec::new(), Vec::new());
    for r in results {
        match r {
            Worker::Tx(n) => tx.push(n as f64),
            Worker::Rx {
                frames,
                bcast_us: b,
            } => {
                rx_frames = frames;
                bcast_us = b;
            }
            Worker::Vm { accepted, drops: d } => {
                vm.push(accepted as f64);
                drops += d;
            }
            Worker::Churn { connect_us: c } => connect_us = c,
        }
    }
    let rx_pps = rx_frames as f64 / secs;
    let host_to_vm: f64 = tx.iter().sum();
    let mut m = Metrics::new();
    m.put("rx_frames", rx_frames)
        .put("vm_to_host_drops", drops)
        .num("bcast_p50_us", percentile(&bcast_us, 50.0))
        .num("bcast_p99_us", percentile(&bcast_us, 99.0))
        .num("bcast_max_us", percentile(&bcast_us, 100.0))
        .put("broadcasts", bcast_us.len())
        .num("connect_p50_us", percentile(&connect_us, 50.0))
        .num("connect_p99_us", percentile(&connect_us, 99.0))
        .put("connects", connect_us.len())
        .put("enobufs", load(&sw.enobufs))
        .put("host_to_vm_pkts", host_to_vm as u64)
        .num("host_to_vm_pps", host_to_vm / secs)
        .put("tx_stream_packets", tx.clone())
        .num("tx_stream_cv", cv(&tx))
        .put("vm_stream_packets", vm.clone())
        .num("vm_stream_cv", cv(&vm))
        .put("cpu_iters_per_ms", cpu.iters_per_ms());
    Ok(Outcome {
        headline: Headline {
            name: "rx_pps",
            value: rx_pps,
            unit: "frames/s",
            lower_is_better: false,
        },
        metrics: m.into_map(),
        wall_s: wall.as_secs_f64(),
    })
}

/// `rx-vm0`: read the VM's frames and run each through `rx_buf`; time broadcasts.
fn rx_loop(
    sw: &Switch,
    variant: Variant,
    inbound: &Inbound,
    bcast_every: u64,
    stop: &StopFlag,
) -> Worker {
    let mut frames = 0_u64;
    let mut bcast_us = Vec::new();
    while !stop.stopped() {
        if !inbound.pop() {
            // A blocking read in Go; a nap here keeps the idle reader off the futex.
            thread::sleep(Duration::from_micros(20));
            continue;
        }
        frames += 1;
        if frames.is_multiple_of(bcast_every) {
            let frame = Frame {
                src: VM0_MAC,
                dst: BROADCAST_MAC,
            };
            let t = Instant::now();
            sw.rx_buf(variant, frame, VM0_ID, stop);
            bcast_us.push(us(t.elapsed()));
        } else {
            let frame = Frame {
                src: VM0_MAC,
                dst: GATEWAY_MAC,
            };
            sw.rx_buf(variant, frame, VM0_ID, stop);
        }
    }
    Worker::Rx { frames, bcast_us }
}

/// `vm-stream-N`: a TCP-like sender. Each 1 ms tick it offers `window` frames; a full
/// inbound queue is a drop (a retransmit later), which halves the window and waits out
/// an RTO; a clean tick grows the window by one up to `burst`.
fn vm_stream(inbound: &Inbound, burst: u64, rto: Duration, stop: &StopFlag) -> Worker {
    const TICK: Duration = Duration::from_millis(1);
    let (mut accepted, mut drops, mut window) = (0, 0, burst.min(4));
    let mut next = Instant::now();
    while !stop.stopped() {
        let mut dropped = false;
        for _ in 0..window {
            if inbound.push() {
                accepted += 1;
            } else {
                drops += 1;
                dropped = true;
                break;
            }
        }
        if dropped {
            window = (window / 2).max(1);
            thread::sleep(rto);
            next = Instant::now() + TICK;
        } else {
            window = (window + 1).min(burst);
            next += TICK;
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
    Worker::Vm { accepted, drops }
}

/// `churn`: short-lived conns (VMs or vsock clients coming and going).
fn churn(sw: &Switch, cap: u64, drain_ns: u64, period: Duration, stop: &StopFlag) -> Worker {
    let mut connect_us = Vec::new();
    let mut id = 1;
    let mut next = Instant::now();
    while !stop.stopped() {
        let conn = Arc::new(Conn {
            id,
            sock: SimSock::new(cap, drain_ns, 1),
        });
        let t = Instant::now();
        sw.connect(conn);
        connect_us.push(us(t.elapsed()));
        sw.disconnect(id);
        id += 1;
        next += period;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Worker::Churn { connect_us }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Demo;

    fn metric(o: &Outcome, key: &str) -> f64 {
        o.metrics[key].as_f64().expect("numeric metric")
    }

    fn count(o: &Outcome, key: &str) -> u64 {
        o.metrics[key].as_u64().expect("integer metric")
    }

    #[test]
    fn sim_sock_accepts_cap_then_enobufs() {
        // 1 s per datagram: nothing drains during the test.
        let sock = SimSock::new(4, 1_000_000_000, 1);
        assert!((0..4).all(|_| sock.try_write()));
        assert!(!sock.try_write());
    }

    #[test]
    fn sim_sock_drains_over_time() {
        let sock = SimSock::new(2, 1_000_000, 1);
        while sock.try_write() {}
        thread::sleep(Duration::from_millis(5));
        assert!(
            sock.try_write(),
            "1 ms per datagram: a slot frees within 5 ms"
        );
    }

    #[test]
    fn inbound_is_bounded() {
        let q = Inbound {
            len: AtomicUsize::new(0),
            cap: 2,
        };
        assert!(q.push() && q.push() && !q.push());
        assert!(q.pop() && q.pop() && !q.pop());
    }

    #[test]
    fn after_frees_the_rx_path_and_connect() {
        let mut p = Params::defaults(Demo::Switch.spec());
        p.set("duration-ms", 300);
        p.set("tx-streams", 4);
        let cpu = Cpu::calibrate();
        let before = run(Variant::Before, &p, cpu).expect("run before");
        let after = run(Variant::After, &p, cpu).expect("run after");
        // Robust directions only: the before run is bimodal (barging mutex), so only
        // the connect path, which always queues behind the retry loop, is compared.
        assert!(metric(&after, "connect_p99_us") < metric(&before, "connect_p99_us"));
        assert!(
            metric(&after, "bcast_p99_us") < 1000.0,
            "{:?}",
            after.metrics
        );
        assert!(count(&after, "host_to_vm_pkts") > 0);
        assert!(count(&before, "enobufs") > 0);
    }
}
