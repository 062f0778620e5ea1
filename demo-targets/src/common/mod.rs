//! Shared harness for every demo: argument parsing, seeded jitter, the start gate,
//! calibrated CPU work, percentiles and the one-line JSON result.
//!
//! The harness must stay invisible to a futex profiler, so nothing here blocks on a
//! futex while a workload runs:
//! - [`StartGate`] is an `AtomicBool`; waiters sleep in `read(2)` on a pipe that the
//!   opener closes (no futex, no CPU). A std `Barrier` showed up as a 16 s "contended
//!   site" in the prototype's trace, and a yield/nap poll loop with 768 waiters starved
//!   the spawning thread (+0.2–0.6 s on an idle 2-core machine, seconds under load).
//! - [`Crew`] starts workers one at a time, counts finished workers in an atomic, and
//!   lets them exit one at a time through a pipe turnstile, waiting (polling `/proc`)
//!   until each OS thread is gone before calling `join`: thread start and exit inside
//!   std and glibc take locks that contend when hundreds of threads start or exit at
//!   once, and `pthread_join` finds every thread already exited.
//! - Results travel back through join handles, never through `std::sync::mpsc`.
//! - [`Cpu`] burns a fixed, calibrated iteration count instead of spinning on the wall
//!   clock, so duplicated work stays visible as CPU time under oversubscription.

mod args;
mod cpu;
mod crew;
mod gate;
mod output;
mod rng;
mod stats;

use std::sync::{LockResult, PoisonError};

pub use args::*;
pub use cpu::*;
pub use crew::*;
pub use gate::*;
pub use output::*;
pub use rng::*;
pub use stats::*;

/// Takes the guard out of a lock result even if another thread panicked while holding
/// the lock. A panicking worker already fails the run at join time, so the data behind a
/// poisoned lock is only ever read for counters; recovering keeps the lock call on one
/// short line (`let g = unpoison(self.m.lock()); // LOCK-SITE: ...`) without a panic path.
#[inline]
pub fn unpoison<G>(result: LockResult<G>) -> G {
    result.unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    /// Every `LOCK-SITE:` tag is unique and sits on the line of the lock call, so the
    /// profiler's tests can grep a tag to get the line a stack frame must point at.
    #[test]
    fn lock_site_tags_are_unique_and_on_lock_lines() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        let mut files = 0;
        // The demo binary's sources: the demos and the harness (the fixture binaries
        // in `bin/` tag their own lock sites).
        let entries = [src.clone(), src.join("common")]
            .into_iter()
            .flat_map(|dir| std::fs::read_dir(&dir).expect("read a source folder"));
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).expect("read source");
            for (i, line) in text.lines().enumerate() {
                let Some((code, tag)) = line.split_once("// LOCK-SITE: ") else {
                    continue;
                };
                let tag = tag.trim();
                // Skip doc examples and this test, which mention the marker in prose.
                if code.trim_start().starts_with("//") || tag.is_empty() || tag.contains(' ') {
                    continue;
                }
                let at = format!("{}:{}", path.display(), i + 1);
                assert!(
                    [".lock()", ".read()", ".write()", ".wait"]
                        .iter()
                        .any(|call| code.contains(call)),
                    "{at}: tag {tag} is not on a lock line: {line}"
                );
                assert!(line.len() <= 100, "{at}: keep lock-site lines ≤ 100 chars");
                if let Some(prev) = tags.insert(tag.to_owned(), at.clone()) {
                    panic!("tag {tag} used twice: {prev} and {at}");
                }
            }
        }
        assert!(
            files >= 14,
            "main, five demos and the harness's eight files: scanned {files} files"
        );
        for required in [
            "fwd.before.map_read",
            "fwd.before.cond_wait",
            "fwd.before.map_write",
            "fwd.after.slot_wait",
            "fwd.after.map_lock",
            "sw.before.write_lock",
            "sw.conn_lock.connect",
            "sw.conn_lock.disconnect",
            "sw.after.write_lock",
            "km.before.db_lock",
            "km.commit.db_lock",
            "km.after.key_wait",
            "km.after.map_lock",
            "cs.before.container_lock",
            "cs.slow_op.container_lock",
            "cs.after.snapshot_lock",
            "ls.before.write_lock",
            "ls.after.read_lock",
            "ls.push.read_lock",
        ] {
            assert!(tags.contains_key(required), "missing tag {required}");
        }
    }
}
