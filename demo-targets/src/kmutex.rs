//! `kmutex`: containerd duplicate pulls of the same image (issue #4937 → PR #6702,
//! commit 81137585; release cherry-pick 1764ea9).
//!
//! # Upstream bug
//!
//! *Before* (tree e079e4a1): `remotes/handlers.go fetch` calls
//! `content.OpenWriter(ref = "layer-sha256:…")`, which retries `ErrUnavailable` after
//! `rand(retry)` ms with `retry` doubling 16 → 2048 (`content/helpers.go`). The metadata
//! store's `contentStore.Writer` runs inside a bbolt read-write transaction (bolt's
//! single writer lock) and calls the local store's `Writer`, which tries `tryLock(ref)`
//! (a global `locksMu` + `map[ref]`) up to 10 times, sleeping `rand(1<<count)` ms
//! between tries. So each of the N−1 pulls that lose the ref sleeps ~0.5 s *holding the
//! bolt writer lock*, and the winner's `Commit` (which releases the ref) queues behind
//! them (later reported as #8790, fixed by #8792). Every puller then unpacks the same
//! layers (Stat → Prepare → apply → Commit); all commits but one hit `AlreadyExists`.
//!
//! *After* (81137585): `pkg/kmutex` adds a keyed mutex (a weighted(1) semaphore per key
//! with a refcount). The unpacker wraps each layer fetch in `lockBlobDescriptor
//! ("blob://digest")` and each unpack in `lockSnChainID("sn://<snapshotter>/<chainID>")`,
//! so pullers wait their turn one at a time and then find the content or snapshot
//! already present. (CRI wires in `kmutex.New()`; other callers get `NewNoop`.)
//!
//! # Mapping
//!
//! - [`Store::writer`] takes `db` (`km.before.db_lock`, the #1 site in `before`) and runs
//!   the inner try-lock ladder (`--inner-retries`, sleeping `rand(1<<i)` units) with the
//!   guard held; [`Store::open_writer`] is the client backoff; [`Store::commit`] takes
//!   `db` again (`km.commit.db_lock`) to insert the blob and release the ref.
//! - One upstream millisecond is `--backoff-unit-us` (50 µs) so a run takes seconds.
//! - Each pull (`pull-N`, `--pulls`) has `--max-concurrent-downloads` fetch threads
//!   (`fetch-N-K`) that download `--layers` layers (`--fetch-ms` of sleep each), while
//!   `pull-N` unpacks them in chain order: Stat, `--unpack-ms` of calibrated CPU, commit
//!   under `db` (a duplicate if the snapshot already exists).
//! - `after` wraps each fetch and each unpack in [`KeyMutex`] (`km.after.map_lock`,
//!   `km.after.key_wait`), whose unlock calls `notify_one`.
//! - Control: `--inner-retries 0` is the post-#8792 store (one try, no sleep).
//!
//! # Runs
//!
//! Defaults are the spec's (20 pulls × 6 layers): before takes 3–4.5 s, after ~0.2 s.
//! They are also the short run for tests (no extra arguments).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{
    Cpu, Crew, DemoSpec, Headline, Knob, Metrics, Outcome, Params, Rng, RunError, StartGate,
    Variant, bump, load, ms, percentile, unpoison,
};

pub static SPEC: DemoSpec = DemoSpec {
    name: "kmutex",
    about: "containerd concurrent pulls: try-lock sleeps under the bolt lock (containerd#6702)",
    threads_knob: "pulls",
    timed: false,
    knobs: &[
        Knob {
            name: "pulls",
            default: 20,
            min: 1,
            help: "concurrent pulls of the same image",
        },
        Knob {
            name: "layers",
            default: 6,
            min: 1,
            help: "layers in the image",
        },
        Knob {
            name: "max-concurrent-downloads",
            default: 3,
            min: 1,
            help: "fetch threads per pull",
        },
        Knob {
            name: "fetch-ms",
            default: 40,
            min: 0,
            help: "download time per layer (sleep)",
        },
        Knob {
            name: "unpack-ms",
            default: 20,
            min: 0,
            help: "apply time per layer (calibrated CPU)",
        },
        Knob {
            name: "inner-retries",
            default: 10,
            min: 0,
            help: "local store try-lock attempts under the db lock (0 = post-#8792: one try)",
        },
        Knob {
            name: "backoff-unit-us",
            default: 50,
            min: 1,
            help: "length of one upstream backoff millisecond",
        },
    ],
    short_args: "(defaults)",
};

/// Layer `i` of the image, with the names upstream derives from it.
#[derive(Debug, Clone)]
struct Layer {
    /// `layer-sha256:…`: the ingest ref the local store try-locks.
    ingest_ref: String,
    digest: String,
    /// `sn://overlayfs/<chainID>`: the unpack key.
    chain_id: String,
}

impl Layer {
    fn nth(i: usize) -> Layer {
        let digest = format!("sha256:{:064x}", 0xd1_9e57 + i);
        Layer {
            ingest_ref: format!("layer-{digest}"),
            chain_id: format!("sha256:{:064x}", 0xc4a1_0000 + i),
            digest,
        }
    }
}

/// Why a writer could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterError {
    /// The blob is already committed: nothing to download.
    Exists,
    /// Another writer holds the ref (`ErrUnavailable`): back off and retry.
    Unavailable,
}

/// bbolt's contents, all behind its single writer lock.
#[derive(Debug, Default)]
struct Db {
    blobs: HashSet<String>,
    snapshots: HashSet<String>,
}

#[derive(Debug, Default)]
struct Stats {
    trylock_failures: AtomicU64,
    inner_sleeps: AtomicU64,
    backoffs: AtomicU64,
    downloads: AtomicU64,
    unpacks: AtomicU64,
    duplicate_unpacks: AtomicU64,
    db_hold_max_ns: AtomicU64,
}

/// Metadata store over the local content store.
#[derive(Debug)]
pub struct Store {
    /// `content/local/locks.go`: `locksMu` over the ref map.
    ref_locks: Mutex<HashMap<String, Instant>>,
    /// The bolt database; a read-write transaction is this mutex.
    db: Mutex<Db>,
    unit: Duration,
    inner_retries: u64,
    stats: Stats,
}

impl Store {
    fn new(unit: Duration, inner_retries: u64) -> Store {
        Store {
            ref_locks: Mutex::default(),
            db: Mutex::default(),
            unit,
            inner_retries,
            stats: Stats::default(),
        }
    }

    fn note_hold(&self, since: Instant) {
        let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.db_hold_max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// `tryLock(ref)`: never blocks on the ref itself, only briefly on `locksMu`.
    #[inline(never)]
    fn try_lock(&self, ingest_ref: &str) -> bool {
        let mut locks = unpoison(self.ref_locks.lock()); // LOCK-SITE: km.trylock.ref_lock
        if locks.contains_key(ingest_ref) {
            return false;
        }
        locks.insert(ingest_ref.to_owned(), Instant::now());
        true
    }

    #[inline(never)]
    fn unlock_ref(&self, ingest_ref: &str) {
        let mut locks = unpoison(self.ref_locks.lock()); // LOCK-SITE: km.unlock.ref_lock
        locks.remove(ingest_ref);
    }

    /// `metadata.contentStore.Writer`: inside `update(db)`, so everything below, the
    /// local store's sleeping try-lock ladder included, runs with the db lock held.
    #[inline(never)]
    fn writer(&self, layer: &Layer, rng: &mut Rng) -> Result<(), WriterError> {
        let db = unpoison(self.db.lock()); // LOCK-SITE: km.before.db_lock
        let since = Instant::now();
        let result = if db.blobs.contains(&layer.digest) {
            Err(WriterError::Exists)
        } else {
            self.local_writer(&layer.ingest_ref, rng)
        };
        drop(db);
        self.note_hold(since);
        result
    }

    /// `content/local.store.Writer`: up to `inner_retries` try-locks, sleeping
    /// `rand(1<<count)` units after each failure (upstream: ms, 10 tries).
    #[inline(never)]
    fn local_writer(&self, ingest_ref: &str, rng: &mut Rng) -> Result<(), WriterError> {
        for count in 0..self.inner_retries.max(1) {
            if self.try_lock(ingest_ref) {
                return Ok(());
            }
            bump(&self.stats.trylock_failures, 1);
            if self.inner_retries > 0 {
                bump(&self.stats.inner_sleeps, 1);
                let units = rng.below(1 << count.min(62));
                thread::sleep(self.unit * units as u32);
            }
        }
        Err(WriterError::Unavailable)
    }

    /// `content.OpenWriter`: client-side backoff of `rand(retry)` units, `retry`
    /// doubling from 16 to 2048, for as long as the ref is unavailable.
    #[inline(never)]
    fn open_writer(&self, layer: &Layer, rng: &mut Rng) -> Result<(), WriterError> {
        let mut retry: u64 = 16;
        loop {
            match self.writer(layer, rng) {
                Err(WriterError::Unavailable) => {
                    bump(&self.stats.backoffs, 1);
                    thread::sleep(self.unit * rng.below(retry) as u32);
                    if retry < 2048 {
                        retry <<= 1;
                    }
                }
                other => return other,
            }
        }
    }

    /// `Writer.Commit`: record the blob and release the ingest ref, in one update.
    #[inline(never)]
    fn commit(&self, layer: &Layer) {
        let mut db = unpoison(self.db.lock()); // LOCK-SITE: km.commit.db_lock
        let since = Instant::now();
        db.blobs.insert(layer.digest.clone());
        self.unlock_ref(&layer.ingest_ref);
        drop(db);
        self.note_hold(since);
    }

    /// Snapshotter `Stat`: is this chain already unpacked?
    #[inline(never)]
    fn snapshot_exists(&self, layer: &Layer) -> bool {
        let db = unpoison(self.db.lock()); // LOCK-SITE: km.unpack.stat_lock
        db.snapshots.contains(&layer.chain_id)
    }

    /// Snapshotter `Commit`; `false` is `AlreadyExists` (the unpack was wasted).
    #[inline(never)]
    fn commit_snapshot(&self, layer: &Layer) -> bool {
        let mut db = unpoison(self.db.lock()); // LOCK-SITE: km.unpack.commit_lock
        db.snapshots.insert(layer.chain_id.clone())
    }
}

// ---------------------------------------------------------------------------------------
// after: the keyed mutex
// ---------------------------------------------------------------------------------------

/// One key's lock: a binary semaphore whose release wakes exactly one waiter.
#[derive(Debug, Default)]
struct KLock {
    held: Mutex<bool>,
    released: Condvar,
}

/// `pkg/kmutex.keyMutex`: a map of per-key locks, refcounted so idle keys go away.
#[derive(Debug, Default)]
pub struct KeyMutex {
    locks: Mutex<HashMap<String, (Arc<KLock>, usize)>>,
}

/// Holds a key until dropped.
struct KeyGuard<'a> {
    owner: &'a KeyMutex,
    key: String,
    lock: Arc<KLock>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.owner.unlock(&self.key, &self.lock);
    }
}

impl KeyMutex {
    #[inline(never)]
    fn lock(&self, key: String) -> KeyGuard<'_> {
        let lock = self.reference(&key);
        let released = &lock.released;
        let held = unpoison(lock.held.lock()); // LOCK-SITE: km.after.key_lock
        let r = released.wait_while(held, |h| *h); // LOCK-SITE: km.after.key_wait
        let mut held = unpoison(r);
        *held = true;
        drop(held);
        KeyGuard {
            owner: self,
            key,
            lock,
        }
    }

    /// Finds or creates the key's lock and counts this user in.
    #[inline(never)]
    fn reference(&self, key: &str) -> Arc<KLock> {
        let mut locks = unpoison(self.locks.lock()); // LOCK-SITE: km.after.map_lock
        let entry = locks.entry(key.to_owned()).or_default();
        entry.1 += 1;
        Arc::clone(&entry.0)
    }

    #[inline(never)]
    fn unlock(&self, key: &str, lock: &KLock) {
        *unpoison(lock.held.lock()) = false; // LOCK-SITE: km.after.key_release
        lock.released.notify_one();
        let mut locks = unpoison(self.locks.lock()); // LOCK-SITE: km.after.unref_lock
        if let Some(entry) = locks.get_mut(key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                locks.remove(key);
            }
        }
    }
}

#[cfg(test)]
impl KeyMutex {
    #[inline(never)]
    fn keys(&self) -> usize {
        unpoison(self.locks.lock()).len() // LOCK-SITE: test.km.keys
    }
}

// ---------------------------------------------------------------------------------------
// pulls
// ---------------------------------------------------------------------------------------

/// Everything a pull's threads share.
struct Pull {
    next_layer: AtomicUsize,
    fetched: Vec<AtomicBool>,
}

/// The unpacker's view: the store plus (after) the keyed mutex.
struct Unpacker {
    store: Store,
    keys: Option<KeyMutex>,
    layers: Vec<Layer>,
    fetch: Duration,
    unpack_ms: u64,
    cpu: Cpu,
}

impl Unpacker {
    /// One layer fetch (`fetch-N-K`), under `blob://digest` in `after`.
    #[inline(never)]
    fn fetch_layer(&self, layer: &Layer, rng: &mut Rng) {
        let _key = self
            .keys
            .as_ref()
            .map(|k| k.lock(format!("blob://{}", layer.digest)));
        if self.store.open_writer(layer, rng).is_ok() {
            thread::sleep(self.fetch);
            bump(&self.store.stats.downloads, 1);
            self.store.commit(layer);
        }
    }

    /// One layer unpack (`pull-N`), under `sn://overlayfs/<chainID>` in `after`.
    #[inline(never)]
    fn unpack_layer(&self, layer: &Layer) {
        let _key = self
            .keys
            .as_ref()
            .map(|k| k.lock(format!("sn://overlayfs/{}", layer.chain_id)));
        if self.store.snapshot_exists(layer) {
            return;
        }
        self.cpu.work_ms(self.unpack_ms);
        bump(&self.store.stats.unpacks, 1);
        if !self.store.commit_snapshot(layer) {
            bump(&self.store.stats.duplicate_unpacks, 1);
        }
    }
}

pub fn run(variant: Variant, params: &Params, cpu: Cpu) -> Result<Outcome, RunError> {
    let pulls = params.get("pulls");
    let layers = params.count("layers");
    let downloaders = params.get("max-concurrent-downloads");
    let unit = Duration::from_micros(params.get("backoff-unit-us"));
    let seed = params.seed();
    let unpacker = Arc::new(Unpacker {
        store: Store::new(unit, params.get("inner-retries")),
        keys: (variant == Variant::After).then(KeyMutex::default),
        layers: (0..layers).map(Layer::nth).collect(),
        fetch: Duration::from_millis(params.get("fetch-ms")),
        unpack_ms: params.get("unpack-ms"),
        cpu,
    });
    let (gate, opener) = StartGate::new()?;
    let mut pullers: Crew<Instant> = Crew::new()?;
    let mut fetchers: Crew<()> = Crew::new()?;
    for p in 0..pulls {
        let pull = Arc::new(Pull {
            next_layer: AtomicUsize::new(0),
            fetched: (0..layers).map(|_| AtomicBool::new(false)).collect(),
        });
        for k in 0..downloaders {
            let (u, gate, pull) = (Arc::clone(&unpacker), Arc::clone(&gate), Arc::clone(&pull));
            let mut rng = Rng::new(seed, p * downloaders + k);
            fetchers.spawn(format!("fetch-{p}-{k}"), 0, move || {
                gate.pass();
                loop {
                    let i = pull.next_layer.fetch_add(1, Ordering::Relaxed);
                    let Some(layer) = u.layers.get(i) else { break };
                    u.fetch_layer(layer, &mut rng);
                    pull.fetched[i].store(true, Ordering::Release);
                }
            })?;
        }
        let (u, gate) = (Arc::clone(&unpacker), Arc::clone(&gate));
        pullers.spawn(format!("pull-{p}"), 0, move || {
            gate.pass();
            for (layer, fetched) in u.layers.iter().zip(&pull.fetched) {
                // Unpack in chain order as layers arrive; poll rather than park so the
                // harness adds no futex waits.
                while !fetched.load(Ordering::Acquire) {
                    thread::sleep(Duration::from_micros(200));
                }
                u.unpack_layer(layer);
            }
            Instant::now()
        })?;
    }

    let start = Instant::now();
    opener.open();
    let ends = pullers.join()?;
    fetchers.join()?;
    let wall = start.elapsed();

    let pull_s: Vec<f64> = ends
        .iter()
        .map(|e| e.saturating_duration_since(start).as_secs_f64())
        .collect();
    let makespan = percentile(&pull_s, 100.0);
    let stats = &unpacker.store.stats;
    let mut m = Metrics::new();
    m.put("trylock_failures", load(&stats.trylock_failures))
        .put("inner_sleeps", load(&stats.inner_sleeps))
        .put("backoffs", load(&stats.backoffs))
        .put("duplicate_unpacks", load(&stats.duplicate_unpacks))
        .put("unpacks", load(&stats.unpacks))
        .put("downloads", load(&stats.downloads))
        .put("layers", layers)
        .num(
            "db_hold_max_ms",
            ms(Duration::from_nanos(load(&stats.db_hold_max_ns))),
        )
        .num("pull_p50_s", percentile(&pull_s, 50.0))
        .put("cpu_iters_per_ms", cpu.iters_per_ms());
    Ok(Outcome {
        headline: Headline {
            name: "makespan_s",
            value: makespan,
            unit: "s",
            lower_is_better: true,
        },
        metrics: m.into_map(),
        wall_s: wall.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Demo;

    fn count(o: &Outcome, key: &str) -> u64 {
        o.metrics[key].as_u64().expect("integer metric")
    }

    fn small() -> Params {
        let mut p = Params::defaults(Demo::Kmutex.spec());
        p.set("pulls", 6);
        p.set("layers", 3);
        p.set("fetch-ms", 10);
        p.set("unpack-ms", 5);
        p.set("backoff-unit-us", 10);
        p
    }

    #[test]
    fn after_single_flights_fetch_and_unpack() {
        let o = run(Variant::After, &small(), Cpu::calibrate()).expect("run");
        assert_eq!(count(&o, "duplicate_unpacks"), 0);
        assert_eq!(count(&o, "trylock_failures"), 0);
        assert_eq!(count(&o, "downloads"), 3);
        assert_eq!(count(&o, "unpacks"), 3);
    }

    #[test]
    fn before_downloads_once_but_fights_over_refs() {
        let o = run(Variant::Before, &small(), Cpu::calibrate()).expect("run");
        // The ref lock still dedups downloads; everything else is duplicated or waits.
        assert_eq!(count(&o, "downloads"), 3);
        assert!(count(&o, "trylock_failures") > 0, "{:?}", o.metrics);
    }

    #[test]
    fn key_mutex_forgets_idle_keys() {
        let km = KeyMutex::default();
        {
            let _a = km.lock("k".into());
        }
        let b = km.lock("k".into());
        assert_eq!(km.keys(), 1);
        drop(b);
        assert_eq!(km.keys(), 0);
    }
}
