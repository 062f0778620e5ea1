//! `forwarder`: moby/buildkit gateway forwarder herd (PR #6741, issue #5171).
//!
//! # Upstream bug
//!
//! *Before* (`control/gateway/gateway.go` at eb77db88): `GatewayForwarder` keeps
//! `builds map[string]LLBBridgeForwarder` under one `sync.RWMutex` with a single
//! `updateCond = sync.NewCond(mu.RLocker())`. `RegisterBuild`/`UnregisterBuild` take
//! `mu.Lock()` and `Broadcast()`. `lookupForwarder`, run on every gateway RPC, loops
//! under `mu.RLock()` over "is the build in the map? else `updateCond.Wait()`" with a
//! fixed 3 s deadline, and a watcher goroutine that takes `mu.Lock()` and Broadcasts
//! when the lookup's context ends, which is at the end of *every* lookup. Every
//! (un)registration and every finished lookup therefore wakes every waiting lookup; the
//! herd re-takes the read lock while registrations queue for the write lock, so with
//! many builds starting at once registrations slip past 3 s and clients get
//! `forwarding Ping: no such job` (#5171).
//!
//! *After* (4b9488be, merged as 5dc04eb6): a generic `util/registrar.Registrar[K,V]`, a
//! `sync.Mutex` over a map of per-key values, each with its own `notifyCh` closed once
//! by `Register`. `Get` is get-or-create; only the creator arms the 3 s timer that
//! discards the slot, and a lookup waits on its own key's channel, so a registration
//! wakes exactly that build's waiters.
//!
//! # Mapping
//!
//! - `before` = [`Before`]: `RwLock<HashMap>` + epoch `Mutex<u64>` + one `Condvar`.
//!   [`Before::lookup`] captures the epoch, re-checks the map under `read()`
//!   (`fwd.before.map_read`, the #1 site) and waits with `wait_timeout_while(epoch ==
//!   seen)` (`fwd.before.cond_wait`). Broadcasts bump the epoch and `notify_all` while
//!   holding `write()`, from `register`, `unregister` and the end of every lookup (the
//!   ctx watcher). Capturing the epoch before the check gives Go's Cond-over-`RLocker`
//!   semantics without lost wakeups.
//! - Go runs the ctx watcher in its own goroutine; as in the spec's design it runs
//!   inline at the end of `lookup` here, so a client also waits for the write lock
//!   (`fwd.before.watcher_write`, a minor site).
//! - The epoch mutex is released before `notify_all` (see [`Before::broadcast_locked`]):
//!   with the notify under the guard, the woken herd convoys on the epoch mutex and the
//!   Condvar site, not the read lock, tops the profile in most runs.
//! - `after` = [`After`]: a `Mutex<HashMap<u64, Arc<Slot>>>` registrar; each slot is a
//!   `Mutex<Option<..>>` + `Condvar` notified only by its own registration.
//!
//! Clients (`build-N`, `--builds`) look up their id, make `--calls` more lookups
//! `--call-gap-us` apart, then unregister; registrars (`registrar-N`) register ids
//! round-robin after `--reg-delay-us` each (jittered ±50% by `--seed`).
//!
//! # Runs
//!
//! Defaults are the spec's (768 builds, 16 calls, 2 registrars, 200 µs, 50 µs, 3000 ms):
//! before takes 1.5–3.1 s (bimodal: most runs reach the 3 s deadline for a few hundred
//! builds, as in #5171), after ~0.15 s; traced, `fwd.before.map_read` has 2.5–4.5× the
//! wait of `fwd.before.cond_wait`.
//!
//! Short run for tests: `--builds 384 --calls 16 --call-gap-us 0` (~0.5 s before, read
//! lock first by 3–4× in every traced run). Lighter sets are not robust: at
//! `--builds 128 --calls 8` or `--builds 256 --calls 32` the Condvar wait (waiting for
//! the next broadcast while the CPUs work through the herd) often matches or beats the
//! read lock. Scaled-timeout preset: `--builds 512 --calls 32 --timeout-ms 500`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{
    Crew, DemoSpec, Headline, Knob, Metrics, Outcome, Params, Rng, RunError, StartGate, Variant,
    bump, load, ms, percentile, unpoison,
};

pub static SPEC: DemoSpec = DemoSpec {
    name: "forwarder",
    about: "buildkit gateway forwarder: RWMutex + one Cond broadcast herd (moby/buildkit#6741)",
    threads_knob: "builds",
    timed: false,
    knobs: &[
        Knob {
            name: "builds",
            default: 768,
            min: 1,
            help: "client threads, one build id each",
        },
        Knob {
            name: "calls",
            default: 16,
            min: 0,
            help: "extra lookups per build after the first",
        },
        Knob {
            name: "registrars",
            default: 2,
            min: 1,
            help: "threads registering ids round-robin",
        },
        Knob {
            name: "reg-delay-us",
            default: 200,
            min: 0,
            help: "pre-registration work per id (sleep, jittered)",
        },
        Knob {
            name: "call-gap-us",
            default: 50,
            min: 0,
            help: "gap between a build's lookups (sleep, jittered)",
        },
        Knob {
            name: "timeout-ms",
            default: 3000,
            min: 1,
            help: "lookup deadline (upstream constant: 3 s)",
        },
    ],
    short_args: "--builds 384 --calls 16 --call-gap-us 0",
};

/// Client threads' stacks: 768 of them at the default 2 MiB would be wasteful.
const CLIENT_STACK: usize = 256 * 1024;

/// Stand-in for `LLBBridgeForwarder`.
#[derive(Debug)]
pub struct Bridge {
    pub id: u64,
}

/// What a lookup ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Found,
    /// The deadline passed: upstream's `no such job`.
    TimedOut,
}

/// Counters shared by every thread of a run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Condvar returns (epoch changes seen, or slot notifications).
    pub wakeups: AtomicU64,
    /// Wakeups after which the build was still absent.
    pub spurious: AtomicU64,
    /// Broadcasts (before) or per-slot notifications (after).
    pub notifies: AtomicU64,
    pub timeouts: AtomicU64,
    pub lookups: AtomicU64,
}

/// The registry under test; `before` and `after` implement it.
pub trait Forwarder: Send + Sync {
    fn register(&self, id: u64, counters: &Counters);
    fn unregister(&self, id: u64, counters: &Counters);
    fn lookup(&self, id: u64, timeout: Duration, counters: &Counters) -> Lookup;
}

// ---------------------------------------------------------------------------------------
// before: one RwLock, one Condvar, broadcast on everything
// ---------------------------------------------------------------------------------------

/// `GatewayForwarder` before the fix.
#[derive(Debug, Default)]
pub struct Before {
    builds: RwLock<HashMap<u64, Arc<Bridge>>>,
    /// Go's `Cond` has no predicate; the epoch gives waiters one without lost wakeups.
    epoch: Mutex<u64>,
    cond: Condvar,
}

impl Before {
    /// Bumps the epoch and wakes every waiter. The caller holds `builds.write()` (passed
    /// in to prove it), as Go's `Broadcast` runs under `mu.Lock()`.
    ///
    /// The epoch guard is dropped before `notify_all`: Go's waiters re-take only the
    /// shared read lock, so woken waiters must not queue on a mutex the broadcaster
    /// still holds. (Notifying under the guard turns the herd into a convoy on the epoch
    /// mutex, which is a Rust-emulation artefact, not the upstream bug.)
    #[inline(never)]
    fn broadcast_locked(&self, _held: &HashMap<u64, Arc<Bridge>>, counters: &Counters) {
        *unpoison(self.epoch.lock()) += 1; // LOCK-SITE: fwd.before.epoch_bump
        self.cond.notify_all();
        bump(&counters.notifies, 1);
    }

    /// The ctx watcher of `lookupForwarder`: `mu.Lock(); updateCond.Broadcast()` when
    /// the lookup's context ends, i.e. at the end of every lookup.
    #[inline(never)]
    fn watcher_broadcast(&self, counters: &Counters) {
        let builds = unpoison(self.builds.write()); // LOCK-SITE: fwd.before.watcher_write
        self.broadcast_locked(&builds, counters);
    }

    #[inline(never)]
    fn current_epoch(&self) -> u64 {
        *unpoison(self.epoch.lock()) // LOCK-SITE: fwd.before.epoch_read
    }

    /// One map check under the read lock: where the herd piles up behind writers.
    #[inline(never)]
    fn contains(&self, id: u64) -> bool {
        let builds = unpoison(self.builds.read()); // LOCK-SITE: fwd.before.map_read
        builds.get(&id).is_some_and(|b| b.id == id)
    }

    /// `updateCond.Wait()` with the deadline; returns the epoch seen on wakeup, or
    /// `None` on timeout.
    #[inline(never)]
    fn wait_for_change(&self, seen: u64, left: Duration) -> Option<u64> {
        let cv = &self.cond;
        let g = unpoison(self.epoch.lock()); // LOCK-SITE: fwd.before.cond_lock
        let r = cv.wait_timeout_while(g, left, |e| *e == seen); // LOCK-SITE: fwd.before.cond_wait
        let (epoch, res) = unpoison(r);
        if res.timed_out() { None } else { Some(*epoch) }
    }
}

impl Forwarder for Before {
    #[inline(never)]
    fn register(&self, id: u64, counters: &Counters) {
        let mut builds = unpoison(self.builds.write()); // LOCK-SITE: fwd.before.map_write
        builds.insert(id, Arc::new(Bridge { id }));
        self.broadcast_locked(&builds, counters);
    }

    #[inline(never)]
    fn unregister(&self, id: u64, counters: &Counters) {
        let mut builds = unpoison(self.builds.write()); // LOCK-SITE: fwd.before.unreg_write
        builds.remove(&id);
        // UnregisterBuild broadcasts too: it wakes the herd just like register does.
        self.broadcast_locked(&builds, counters);
    }

    /// `lookupForwarder`: re-check the map after every wakeup until the build appears
    /// or the deadline passes, then fire the watcher's broadcast.
    #[inline(never)]
    fn lookup(&self, id: u64, timeout: Duration, counters: &Counters) -> Lookup {
        bump(&counters.lookups, 1);
        let deadline = Instant::now() + timeout;
        let mut seen = self.current_epoch();
        let mut woke = false;
        let result = loop {
            if self.contains(id) {
                break Lookup::Found;
            }
            if woke {
                bump(&counters.spurious, 1);
            }
            // `if ctx.Err() != nil { return nil, "no such job" }`
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Lookup::TimedOut;
            }
            match self.wait_for_change(seen, left) {
                Some(epoch) => {
                    seen = epoch;
                    woke = true;
                    bump(&counters.wakeups, 1);
                }
                None => break Lookup::TimedOut,
            }
        };
        // `defer cancel()` ends the context, and the watcher broadcasts (inline here).
        self.watcher_broadcast(counters);
        result
    }
}

// ---------------------------------------------------------------------------------------
// after: a registrar of per-key slots
// ---------------------------------------------------------------------------------------

/// One `registrarValue`: the bridge once registered, plus its own wakeup channel.
#[derive(Debug, Default)]
pub struct Slot {
    bridge: Mutex<Option<Arc<Bridge>>>,
    ready: Condvar,
}

/// `util/registrar.Registrar[string, LLBBridgeForwarder]` after the fix.
#[derive(Debug, Default)]
pub struct After {
    values: Mutex<HashMap<u64, Arc<Slot>>>,
}

impl After {
    /// `Registrar.Get`'s get-or-create; `true` if this call created the slot (and so
    /// owns the discard timer).
    #[inline(never)]
    fn get_or_create(&self, id: u64) -> (Arc<Slot>, bool) {
        let mut values = unpoison(self.values.lock()); // LOCK-SITE: fwd.after.map_lock
        let mut created = false;
        let slot = values.entry(id).or_insert_with(|| {
            created = true;
            Arc::default()
        });
        (Arc::clone(slot), created)
    }

    /// The creator's timer fired: drop the slot unless it was registered meanwhile.
    #[inline(never)]
    fn discard(&self, id: u64, slot: &Arc<Slot>) {
        let mut values = unpoison(self.values.lock()); // LOCK-SITE: fwd.after.discard_lock
        if values.get(&id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            values.remove(&id);
        }
    }

    /// Waits on this slot only; returns whether the bridge arrived in time.
    #[inline(never)]
    fn wait_slot(slot: &Slot, id: u64, t: Duration) -> bool {
        let cv = &slot.ready;
        let g = unpoison(slot.bridge.lock()); // LOCK-SITE: fwd.after.slot_lock
        let r = cv.wait_timeout_while(g, t, |b| b.is_none()); // LOCK-SITE: fwd.after.slot_wait
        let (bridge, _) = unpoison(r);
        bridge.as_ref().is_some_and(|b| b.id == id)
    }
}

#[cfg(test)]
impl After {
    #[inline(never)]
    fn slots(&self) -> usize {
        unpoison(self.values.lock()).len() // LOCK-SITE: test.fwd.after.slots
    }
}

impl Forwarder for After {
    #[inline(never)]
    fn register(&self, id: u64, counters: &Counters) {
        let (slot, _) = self.get_or_create(id);
        let mut bridge = unpoison(slot.bridge.lock()); // LOCK-SITE: fwd.after.slot_set
        *bridge = Some(Arc::new(Bridge { id }));
        drop(bridge);
        // `close(notifyCh)`: wakes this build's waiters and nobody else.
        slot.ready.notify_all();
        bump(&counters.notifies, 1);
    }

    #[inline(never)]
    fn unregister(&self, id: u64, _counters: &Counters) {
        let mut values = unpoison(self.values.lock()); // LOCK-SITE: fwd.after.unreg_lock
        values.remove(&id);
    }

    #[inline(never)]
    fn lookup(&self, id: u64, timeout: Duration, counters: &Counters) -> Lookup {
        bump(&counters.lookups, 1);
        let (slot, created) = self.get_or_create(id);
        if After::wait_slot(&slot, id, timeout) {
            return Lookup::Found;
        }
        if created {
            self.discard(id, &slot);
        }
        Lookup::TimedOut
    }
}

// ---------------------------------------------------------------------------------------
// workload
// ---------------------------------------------------------------------------------------

/// What one build thread measured.
struct BuildResult {
    first_wait: Duration,
    timed_out: bool,
}

pub fn run(variant: Variant, params: &Params) -> Result<Outcome, RunError> {
    let fwd: Arc<dyn Forwarder> = match variant {
        Variant::Before => Arc::new(Before::default()),
        Variant::After => Arc::new(After::default()),
    };
    run_with(&fwd, params)
}

fn run_with(fwd: &Arc<dyn Forwarder>, params: &Params) -> Result<Outcome, RunError> {
    let builds = params.get("builds");
    let calls = params.get("calls");
    let registrars = params.get("registrars");
    let reg_delay_us = params.get("reg-delay-us");
    let call_gap_us = params.get("call-gap-us");
    let timeout = Duration::from_millis(params.get("timeout-ms"));
    let seed = params.seed();

    let (gate, opener) = StartGate::new()?;
    let counters = Arc::new(Counters::default());

    let mut clients = Crew::new()?;
    for id in 0..builds {
        let (fwd, gate, counters) = (Arc::clone(fwd), Arc::clone(&gate), Arc::clone(&counters));
        clients.spawn(format!("build-{id}"), CLIENT_STACK, move || {
            gate.pass();
            build_client(
                &*fwd,
                id,
                calls,
                call_gap_us,
                timeout,
                &counters,
                Rng::new(seed, id),
            )
        })?;
    }
    let mut regs = Crew::new()?;
    for r in 0..registrars {
        let (fwd, gate, counters) = (Arc::clone(fwd), Arc::clone(&gate), Arc::clone(&counters));
        let mut rng = Rng::new(seed, builds + r);
        regs.spawn(format!("registrar-{r}"), CLIENT_STACK, move || {
            gate.pass();
            for id in (r..builds).step_by(registrars as usize) {
                // The solver's pre-registration work (recordBuildHistory etc.).
                thread::sleep(Duration::from_micros(rng.jitter(reg_delay_us)));
                fwd.register(id, &counters);
            }
        })?;
    }

    let start = Instant::now();
    opener.open();
    let results = clients.join()?;
    regs.join()?;
    let wall = start.elapsed();

    let waits: Vec<f64> = results.iter().map(|r| ms(r.first_wait)).collect();
    let first_timeouts = results.iter().filter(|r| r.timed_out).count();
    let p99 = percentile(&waits, 99.0);
    let mut m = Metrics::new();
    m.num("first_lookup_wait_p50_ms", percentile(&waits, 50.0))
        .num("first_lookup_wait_max_ms", percentile(&waits, 100.0))
        .put("timeouts", load(&counters.timeouts))
        .put("first_lookup_timeouts", first_timeouts)
        .put("spurious_wakeups", load(&counters.spurious))
        .put("wakeups", load(&counters.wakeups))
        .put("notifies", load(&counters.notifies))
        .put("lookups", load(&counters.lookups))
        .num("wall_s", wall.as_secs_f64());
    Ok(Outcome {
        headline: Headline {
            name: "first_lookup_wait_p99_ms",
            value: p99,
            unit: "ms",
            lower_is_better: true,
        },
        metrics: m.into_map(),
        wall_s: wall.as_secs_f64(),
    })
}

/// One build: first lookup (timed), `calls` more, then unregister. A timed-out first
/// lookup fails the build (`no such job`), so it makes no further calls.
fn build_client(
    fwd: &dyn Forwarder,
    id: u64,
    calls: u64,
    call_gap_us: u64,
    timeout: Duration,
    counters: &Counters,
    mut rng: Rng,
) -> BuildResult {
    let t = Instant::now();
    let first = fwd.lookup(id, timeout, counters);
    let first_wait = t.elapsed();
    let timed_out = first == Lookup::TimedOut;
    if timed_out {
        bump(&counters.timeouts, 1);
    } else {
        for _ in 0..calls {
            thread::sleep(Duration::from_micros(rng.jitter(call_gap_us)));
            if fwd.lookup(id, timeout, counters) == Lookup::TimedOut {
                bump(&counters.timeouts, 1);
            }
        }
    }
    fwd.unregister(id, counters);
    BuildResult {
        first_wait,
        timed_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Demo;

    fn small(builds: u64, calls: u64) -> Params {
        let mut p = Params::defaults(Demo::Forwarder.spec());
        p.set("builds", builds);
        p.set("calls", calls);
        p.set("reg-delay-us", 100);
        p
    }

    fn count(o: &Outcome, key: &str) -> u64 {
        o.metrics[key].as_u64().expect("integer metric")
    }

    #[test]
    fn after_wakes_only_the_registered_build() {
        let o = run(Variant::After, &small(48, 4)).expect("run");
        assert_eq!(count(&o, "timeouts"), 0);
        assert_eq!(count(&o, "spurious_wakeups"), 0);
        assert_eq!(count(&o, "lookups"), 240);
    }

    #[test]
    fn before_herds_on_every_broadcast() {
        let builds = 48;
        let o = run(Variant::Before, &small(builds, 4)).expect("run");
        // Each registration and each finished lookup wakes every waiter, so most
        // wakeups find the build still missing. Wide margin: the spec sees ≥ 100·B at
        // its defaults; tiny runs get far fewer.
        assert!(
            count(&o, "spurious_wakeups") >= 2 * builds,
            "{:?}",
            o.metrics
        );
    }

    #[test]
    fn after_lookup_times_out_and_discards_an_unregistered_slot() {
        let fwd = After::default();
        let counters = Counters::default();
        let got = fwd.lookup(7, Duration::from_millis(5), &counters);
        assert_eq!(got, Lookup::TimedOut);
        assert_eq!(fwd.slots(), 0, "the creator discards the slot");
        fwd.register(7, &counters);
        assert_eq!(
            fwd.lookup(7, Duration::from_millis(5), &counters),
            Lookup::Found
        );
    }

    #[test]
    fn before_lookup_sees_a_later_registration() {
        let fwd = Arc::new(Before::default());
        let counters = Arc::new(Counters::default());
        let (f2, c2) = (Arc::clone(&fwd), Arc::clone(&counters));
        let t = thread::spawn(move || f2.lookup(3, Duration::from_secs(5), &c2));
        thread::sleep(Duration::from_millis(20));
        fwd.register(3, &counters);
        assert_eq!(t.join().expect("lookup thread"), Lookup::Found);
    }
}
