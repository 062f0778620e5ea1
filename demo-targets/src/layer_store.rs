//! `layer-store`: `podman images` blocked during `podman push` (containers/storage
//! issue #420; fixed by PR #1386 "Lock layers only for reading").
//!
//! # Upstream bug
//!
//! *Before*: read-only paths of the layer store, notably `Layers()` (what
//! `podman images` lists) and `CreateImage`, took the primary layer store's *exclusive*
//! lock. `podman push` holds that store's reader lock for the whole upload, so listing
//! images blocked until the push finished (#420; podman#5356, podman#8167).
//! containers/storage PR #473 ("Split RW and RO Layer locks per method") tried to fix it
//! with separate read-only lock files and was closed unmerged; PR #1386 (2022) switched
//! `Layers()` and `CreateImage` to reader locks.
//!
//! Uncertainty: upstream's lock is a cross-process lock file (plus in-process state),
//! not an in-process `RWMutex`, and the exact call chain that blocked in #420 spanned
//! podman and c/storage versions between 2019 and 2022; this demo models only the
//! exclusive-vs-shared choice on the read path, which is what #1386 changed.
//!
//! # Mapping
//!
//! - One `RwLock<LayerStore>`. The `pusher` thread holds `read()` for `--push-ms` per
//!   push (`ls.push.read_lock`), then pauses `--push-gap-ms`.
//! - `before`: `lister-N` threads (`--listers`, = `--threads`) call
//!   [`Store::layers_before`], which takes `write()` (`ls.before.write_lock`, the #1
//!   site) and so waits out every push; std's `RwLock` is writer-preferring like Go's,
//!   so queued listers also hold off the next push briefly.
//! - `after`: [`Store::layers_after`] takes `read()` (`ls.after.read_lock`) and runs
//!   alongside the push.
//!
//! # Runs
//!
//! Defaults: 64 layers, 4 listers, pushes of 300 ms, 2000 ms run. Headline
//! `list_p99_ms` ≈ push-ms before, well under 1 ms after. Short run for tests:
//! `--duration-ms 1000`.

use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{
    Crew, DURATION_KNOB, DemoSpec, Knob, Metrics, Outcome, Params, Rng, RunError, StartGate,
    StopFlag, Variant, latency_outcome, ms, unpoison,
};

pub static SPEC: DemoSpec = DemoSpec {
    name: "layer-store",
    about: "containers/storage Layers() took the exclusive lock during a push (fix: #1386)",
    threads_knob: "listers",
    timed: true,
    knobs: &[
        DURATION_KNOB,
        Knob {
            name: "listers",
            default: 4,
            min: 1,
            help: "threads running `podman images` in a loop",
        },
        Knob {
            name: "layers",
            default: 64,
            min: 1,
            help: "layers in the store",
        },
        Knob {
            name: "push-ms",
            default: 300,
            min: 0,
            help: "how long one push holds the store's read lock",
        },
        Knob {
            name: "push-gap-ms",
            default: 20,
            min: 0,
            help: "pause between pushes (jittered)",
        },
        Knob {
            name: "list-gap-ms",
            default: 10,
            min: 0,
            help: "pause between a lister's calls (jittered)",
        },
    ],
    short_args: "--duration-ms 1000",
};

#[derive(Debug, Clone)]
pub struct Layer {
    id: String,
    parent: Option<String>,
    size: u64,
}

#[derive(Debug)]
pub struct LayerStore {
    layers: Vec<Layer>,
}

#[derive(Debug)]
pub struct Store {
    layers: RwLock<LayerStore>,
}

impl Store {
    fn new(n: u64) -> Store {
        let layers = (0..n)
            .map(|i| Layer {
                id: format!("{:064x}", 0x1a7e_0000 + i),
                parent: i
                    .checked_sub(1)
                    .map(|p| format!("{:064x}", 0x1a7e_0000 + p)),
                size: (i + 1) * 4096,
            })
            .collect();
        Store {
            layers: RwLock::new(LayerStore { layers }),
        }
    }

    /// `Layers()` before #1386: exclusive lock for a read-only listing.
    #[inline(never)]
    pub fn layers_before(&self) -> Vec<Layer> {
        let store = unpoison(self.layers.write()); // LOCK-SITE: ls.before.write_lock
        store.layers.clone()
    }

    /// `Layers()` after #1386: reader lock.
    #[inline(never)]
    pub fn layers_after(&self) -> Vec<Layer> {
        let store = unpoison(self.layers.read()); // LOCK-SITE: ls.after.read_lock
        store.layers.clone()
    }

    /// `podman push`: reads layer diffs under the reader lock for the whole upload.
    #[inline(never)]
    fn push(&self, upload: Duration) -> u64 {
        let store = unpoison(self.layers.read()); // LOCK-SITE: ls.push.read_lock
        thread::sleep(upload);
        store.layers.iter().map(|l| l.size).sum()
    }
}

/// What `podman images` prints, roughly: one line per top-level layer chain.
fn table(layers: &[Layer]) -> Vec<String> {
    layers
        .iter()
        .filter(|l| l.parent.is_none() || l.size > 0)
        .map(|l| format!("{:.12} {:>8}", l.id, l.size))
        .collect()
}

enum Worker {
    Lister { list_ms: Vec<f64> },
    Pusher { pushes: u64 },
}

pub fn run(variant: Variant, params: &Params) -> Result<Outcome, RunError> {
    let duration = Duration::from_millis(params.get("duration-ms"));
    let push = Duration::from_millis(params.get("push-ms"));
    let push_gap_ms = params.get("push-gap-ms");
    let list_gap_ms = params.get("list-gap-ms");
    let seed = params.seed();
    let store = Arc::new(Store::new(params.get("layers")));
    let (gate, opener) = StartGate::new()?;
    let stop = Arc::new(StopFlag::default());
    let mut crew: Crew<Worker> = Crew::new()?;

    let listers = params.get("listers");
    for i in 0..listers {
        let (store, gate, stop) = (Arc::clone(&store), Arc::clone(&gate), Arc::clone(&stop));
        let mut rng = Rng::new(seed, i);
        crew.spawn(format!("lister-{i}"), 0, move || {
            gate.pass();
            let mut list_ms = Vec::new();
            while !stop.stopped() {
                let t = Instant::now();
                let layers = match variant {
                    Variant::Before => store.layers_before(),
                    Variant::After => store.layers_after(),
                };
                list_ms.push(ms(t.elapsed()));
                std::hint::black_box(table(&layers));
                thread::sleep(Duration::from_micros(rng.jitter(list_gap_ms * 1000)));
            }
            Worker::Lister { list_ms }
        })?;
    }
    {
        let (store, gate, stop) = (Arc::clone(&store), Arc::clone(&gate), Arc::clone(&stop));
        let mut rng = Rng::new(seed, listers);
        crew.spawn("pusher".into(), 0, move || {
            gate.pass();
            let mut pushes = 0;
            while !stop.stopped() {
                std::hint::black_box(store.push(push));
                pushes += 1;
                thread::sleep(Duration::from_micros(rng.jitter(push_gap_ms * 1000)));
            }
            Worker::Pusher { pushes }
        })?;
    }

    let (results, wall) = crew.run_for(opener, &stop, duration)?;

    let mut list_ms = Vec::new();
    let mut pushes = 0;
    for w in results {
        match w {
            Worker::Lister { list_ms: l } => list_ms.extend(l),
            Worker::Pusher { pushes: p } => pushes = p,
        }
    }
    let mut m = Metrics::new();
    m.put("pushes", pushes);
    Ok(latency_outcome("list_p99_ms", &list_ms, m, wall))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{Demo, assert_p99_waits_only_before};

    fn small() -> Params {
        let mut p = Params::defaults(Demo::LayerStore.spec());
        p.set("duration-ms", 300);
        p.set("push-ms", 60);
        p.set("listers", 2);
        p
    }

    #[test]
    fn listing_waits_for_push_before_and_not_after() {
        assert_p99_waits_only_before(run, &small(), "push-ms");
    }

    #[test]
    fn both_paths_list_the_same_layers() {
        let s = Store::new(5);
        let ids = |v: Vec<Layer>| v.into_iter().map(|l| l.id).collect::<Vec<_>>();
        assert_eq!(ids(s.layers_before()), ids(s.layers_after()));
        assert_eq!(s.push(Duration::ZERO), 4096 * 15);
    }
}
