//! `container-store`: `docker ps` blocked on per-container locks (moby/moby#28183,
//! fixed by PR #31273 "No container locks on `docker ps`", `container/view.go`).
//!
//! # Upstream bug
//!
//! *Before*: `daemon/list.go` `reducePsContainer` takes `container.Lock()` on every
//! container it reports. Mutations legitimately hold that lock across slow work
//! (starting or stopping a container, netlink calls, volume-driver round trips), so one
//! slow container stalls every `docker ps` behind it (#28183, #19328, #27827).
//!
//! *After* (#31273): mutations still take `container.Lock()`, but each one also commits a
//! consistent snapshot of the container to a `ViewDB` (go-memdb, an immutable radix tree),
//! and queries read a snapshot of that database without locking any container.
//!
//! The spec cites this as "moby #30225 → PR #31273". Upstream, #31273 says it fixes
//! #28183 and started from cpuguy83's memdb work in #30225, which it replaced with a
//! smaller, incremental change; the doc follows upstream.
//!
//! # Mapping
//!
//! - `containers: Vec<Arc<Mutex<Container>>>`. `slow-op-N` threads (`--slow-ops`) lock a
//!   random container (`cs.slow_op.container_lock`) and sleep `--hold-ms` holding it,
//!   then pause `--op-gap-ms`.
//! - `before`: `lister-N` threads (`--listers`, = `--threads`) run [`Daemon::list_before`],
//!   which locks each container in turn (`cs.before.container_lock`, the #1 site): every
//!   `ps` waits for whichever container a slow op holds.
//! - `after`: slow ops also publish a copy-on-write snapshot (`Arc<Vec<Snapshot>>`)
//!   under the container lock; [`Daemon::list_after`] clones the current `Arc` under a
//!   brief read lock (`cs.after.snapshot_lock`; std has no atomic `Arc` swap) and takes
//!   no container lock.
//!
//! # Runs
//!
//! Defaults: 32 containers, 4 listers, 2 slow ops holding 200 ms, 2000 ms run. Headline
//! `ps_p99_ms` ≈ hold-ms or more before, well under 1 ms after. Short run for tests:
//! `--duration-ms 1000`.

use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{
    Crew, DURATION_KNOB, DemoSpec, Knob, Metrics, Outcome, Params, Rng, RunError, StartGate,
    StopFlag, Variant, latency_outcome, ms, unpoison,
};

pub static SPEC: DemoSpec = DemoSpec {
    name: "container-store",
    about: "docker ps locks every container; slow ops hold one (moby/moby#31273)",
    threads_knob: "listers",
    timed: true,
    knobs: &[
        DURATION_KNOB,
        Knob {
            name: "listers",
            default: 4,
            min: 1,
            help: "threads running `docker ps` in a loop",
        },
        Knob {
            name: "containers",
            default: 32,
            min: 1,
            help: "containers in the daemon",
        },
        Knob {
            name: "slow-ops",
            default: 2,
            min: 0,
            help: "threads doing slow operations under a container lock",
        },
        Knob {
            name: "hold-ms",
            default: 200,
            min: 0,
            help: "how long a slow op holds its container's lock",
        },
        Knob {
            name: "op-gap-ms",
            default: 20,
            min: 0,
            help: "pause between a thread's slow ops (jittered)",
        },
        Knob {
            name: "ps-gap-ms",
            default: 10,
            min: 0,
            help: "pause between a lister's `ps` calls (jittered)",
        },
    ],
    short_args: "--duration-ms 1000",
};

/// The mutable container object (`container.Container`), trimmed to what `ps` shows.
#[derive(Debug, Clone)]
pub struct Container {
    id: u64,
    name: String,
    running: bool,
    restarts: u64,
}

/// One row of the `ViewDB`: an immutable copy readers may keep.
pub type Snapshot = Container;

/// The daemon's container store plus (after) the view.
#[derive(Debug)]
pub struct Daemon {
    containers: Vec<Arc<Mutex<Container>>>,
    view: RwLock<Arc<Vec<Snapshot>>>,
}

impl Daemon {
    fn new(n: u64) -> Daemon {
        let all: Vec<Container> = (0..n)
            .map(|id| Container {
                id,
                name: format!("svc-{id}"),
                running: true,
                restarts: 0,
            })
            .collect();
        Daemon {
            view: RwLock::new(Arc::new(all.clone())),
            containers: all.into_iter().map(|c| Arc::new(Mutex::new(c))).collect(),
        }
    }

    /// `docker ps` before the fix: `reducePsContainer` locks each container.
    #[inline(never)]
    pub fn list_before(&self) -> Vec<String> {
        let mut rows = Vec::with_capacity(self.containers.len());
        for container in &self.containers {
            let c = unpoison(container.lock()); // LOCK-SITE: cs.before.container_lock
            rows.push(row(&c));
        }
        rows
    }

    /// `docker ps` after the fix: read a consistent snapshot, lock no container.
    #[inline(never)]
    pub fn list_after(&self) -> Vec<String> {
        let current = unpoison(self.view.read()); // LOCK-SITE: cs.after.snapshot_lock
        let view = Arc::clone(&current);
        drop(current);
        view.iter().map(row).collect()
    }

    /// A stop/start that does slow work (netlink, volume driver) under the container's
    /// lock, then records the new state. After the fix it also checkpoints the
    /// container into the view while still holding the lock.
    #[inline(never)]
    fn slow_op(&self, variant: Variant, idx: usize, hold: Duration) {
        let mut c = unpoison(self.containers[idx].lock()); // LOCK-SITE: cs.slow_op.container_lock
        thread::sleep(hold);
        c.running = !c.running;
        c.restarts += 1;
        if variant == Variant::After {
            self.checkpoint(&c);
        }
    }

    /// `container.CheckpointTo(viewDB)`: copy-on-write publish of one row.
    #[inline(never)]
    fn checkpoint(&self, c: &Container) {
        let mut view = unpoison(self.view.write()); // LOCK-SITE: cs.after.view_publish
        let mut rows = Vec::clone(&view);
        if let Some(slot) = rows.get_mut(c.id as usize) {
            *slot = c.clone();
        }
        *view = Arc::new(rows);
    }
}

fn row(c: &Container) -> String {
    let state = if c.running { "Up" } else { "Exited" };
    format!("{:012x} {} {state} ({} restarts)", c.id, c.name, c.restarts)
}

enum Worker {
    Lister { ps_ms: Vec<f64> },
    SlowOp,
}

pub fn run(variant: Variant, params: &Params) -> Result<Outcome, RunError> {
    let duration = Duration::from_millis(params.get("duration-ms"));
    let n = params.get("containers");
    let hold = Duration::from_millis(params.get("hold-ms"));
    let op_gap_ms = params.get("op-gap-ms");
    let ps_gap_ms = params.get("ps-gap-ms");
    let seed = params.seed();
    let daemon = Arc::new(Daemon::new(n));
    let (gate, opener) = StartGate::new()?;
    let stop = Arc::new(StopFlag::default());
    let mut crew: Crew<Worker> = Crew::new()?;

    let listers = params.get("listers");
    for i in 0..listers {
        let (daemon, gate, stop) = (Arc::clone(&daemon), Arc::clone(&gate), Arc::clone(&stop));
        let mut rng = Rng::new(seed, i);
        crew.spawn(format!("lister-{i}"), 0, move || {
            gate.pass();
            let mut ps_ms = Vec::new();
            while !stop.stopped() {
                let t = Instant::now();
                let rows = match variant {
                    Variant::Before => daemon.list_before(),
                    Variant::After => daemon.list_after(),
                };
                ps_ms.push(ms(t.elapsed()));
                std::hint::black_box(rows);
                thread::sleep(Duration::from_micros(rng.jitter(ps_gap_ms * 1000)));
            }
            Worker::Lister { ps_ms }
        })?;
    }
    for i in 0..params.get("slow-ops") {
        let (daemon, gate, stop) = (Arc::clone(&daemon), Arc::clone(&gate), Arc::clone(&stop));
        let mut rng = Rng::new(seed, listers + i);
        crew.spawn(format!("slow-op-{i}"), 0, move || {
            gate.pass();
            while !stop.stopped() {
                let idx = rng.below(n) as usize;
                daemon.slow_op(variant, idx, hold);
                thread::sleep(Duration::from_micros(rng.jitter(op_gap_ms * 1000)));
            }
            Worker::SlowOp
        })?;
    }

    let (results, wall) = crew.run_for(opener, &stop, duration)?;

    let ps_ms: Vec<f64> = results
        .into_iter()
        .flat_map(|w| match w {
            Worker::Lister { ps_ms } => ps_ms,
            Worker::SlowOp => Vec::new(),
        })
        .collect();
    Ok(latency_outcome("ps_p99_ms", &ps_ms, Metrics::new(), wall))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{Demo, assert_p99_waits_only_before};

    fn small() -> Params {
        let mut p = Params::defaults(Demo::ContainerStore.spec());
        p.set("duration-ms", 300);
        p.set("hold-ms", 60);
        p.set("op-gap-ms", 5);
        p.set("listers", 2);
        p
    }

    #[test]
    fn ps_waits_for_slow_ops_before_and_not_after() {
        assert_p99_waits_only_before(run, &small(), "hold-ms");
    }

    #[test]
    fn after_view_sees_slow_op_updates() {
        let d = Daemon::new(3);
        d.slow_op(Variant::After, 1, Duration::ZERO);
        assert!(d.list_after()[1].contains("Exited (1 restarts)"));
        assert_eq!(d.list_before(), d.list_after());
    }
}
