//! Where in the target's own code a thread blocked, and on what kind of lock.
//!
//! Owns: the rules that skip lock-implementation frames (glibc's pthread/lll and
//! syscall wrappers, Rust std's sync and futex code, `parking_lot`, libstdc++), pick the
//! innermost frame of the target's own code as the **site**, and classify the wait
//! from the implementation frames (mutex, rwlock read/write, condvar, semaphore,
//! other). Must not: aggregate or symbolize — it reads one symbolized stack.
//!
//! Why the call site and not the futex address: `parking_lot` parks every waiter on a
//! per-thread futex, and a condvar's mutex re-acquire waits on the mutex's word, so an
//! address alone does not name the lock; the place in the code always does.

use crate::report::{Frame, WaitKind};

/// The outcome for one stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribution {
    /// Index in the stack of the site frame (innermost frame of the target's code).
    pub site: usize,
    pub kind: WaitKind,
    /// The lock implementation recognized (`rust-std`, `glibc`, `parking_lot`,
    /// `libstdc++`), or `unknown`.
    pub lock_impl: &'static str,
}

/// Attribute a stack (innermost first). `fallback` is used when no implementation
/// frame tells the kind (e.g. the futex op says PI-mutex). An empty stack attributes
/// to index 0 with the fallback kind; callers treat it as "unknown stack".
pub fn attribute(frames: &[Frame], fallback: WaitKind) -> Attribution {
    let site = frames
        .iter()
        .enumerate()
        // The innermost frame is the syscall instruction itself: in a module we know
        // nothing about (unmapped by the time we looked), it is libc or the vDSO, not
        // the target's code.
        .position(|(i, f)| !(is_lock_implementation(f) || (i == 0 && f.module.is_none())))
        .unwrap_or_else(|| runtime_site(frames));
    let mut kind = None;
    let mut lock_impl = "unknown";
    // When every frame is implementation, the site frame is one too and may tell.
    let telling = if frames.get(site).is_some_and(is_lock_implementation) {
        site + 1
    } else {
        site
    };
    // The innermost recognizable implementation frame decides: a condvar's mutex
    // re-acquire (Condvar::wait → Mutex::lock_contended → futex) is mutex contention.
    for f in frames.iter().take(telling) {
        if let Some(name) = &f.function
            && let Some(k) = classify_function(name)
        {
            kind = Some(k);
            lock_impl = implementation_of(name, f.module.as_deref());
            break;
        }
    }
    if kind.is_none() {
        // The lock implementation may have been inlined into the site frame or the
        // frame-pointer walk may have skipped it: look at inlined frames of the site.
        for f in frames.iter().skip(site).take_while(|f| f.inlined) {
            if let Some(name) = &f.function
                && let Some(k) = classify_function(name)
            {
                kind = Some(k);
                lock_impl = implementation_of(name, f.module.as_deref());
                break;
            }
        }
    }
    Attribution {
        site,
        kind: kind.unwrap_or(fallback),
        lock_impl,
    }
}

/// The site of a stack with no frame of the target's own code (a lock taken inside
/// the runtime, e.g. std's thread start-up, or a walk that stopped inside libc): the
/// caller of the outermost recognizable lock frame, which says what took the lock;
/// else the outermost frame.
fn runtime_site(frames: &[Frame]) -> usize {
    let last = frames.len().saturating_sub(1);
    frames
        .iter()
        .rposition(|f| {
            f.function
                .as_deref()
                .is_some_and(|n| classify_function(n).is_some())
        })
        .map_or(last, |i| (i + 1).min(last))
}

/// Is this frame part of a lock implementation or the syscall path (not the target's
/// own code)?
pub fn is_lock_implementation(f: &Frame) -> bool {
    if let Some(module) = &f.module
        && is_system_library(module)
    {
        return true;
    }
    match &f.function {
        Some(name) => is_implementation_function(name),
        None => false,
    }
}

/// Shared libraries whose frames are never the target's own code.
fn is_system_library(module: &str) -> bool {
    let base = module.rsplit('/').next().unwrap_or(module);
    [
        "libc.so",
        "libc-",
        "libpthread",
        "ld-linux",
        "libstdc++",
        "libgcc_s",
        "libc++",
    ]
    .iter()
    .any(|p| base.starts_with(p))
}

/// Namespaces of lock implementations and the runtime around them. Rust's std is
/// linked statically, so it is recognized by name, not by module.
const IMPLEMENTATION_NAMESPACES: &[&str] = &[
    // Rust standard library (v0 mangling wraps impls in `<…>`).
    "std::",
    "core::",
    "alloc::",
    "<std::",
    "<core::",
    "<alloc::",
    // parking_lot and lock_api
    "parking_lot::",
    "parking_lot_core::",
    "<parking_lot",
    "lock_api::",
    "<lock_api::",
];

/// glibc-internal symbol prefixes (seen when glibc is linked statically or a symbol
/// has no module). They only apply to C names: `futex_ops::wait` is somebody's Rust
/// module, `futex_wait` is glibc's.
const C_IMPLEMENTATION_PREFIXES: &[&str] = &[
    "pthread_",
    "__pthread",
    "___pthread",
    "__lll_",
    "lll_",
    "__futex",
    "futex_",
    "__GI_",
    "__syscall",
    "__internal_syscall",
    "sem_",
    "__new_sem",
    "__old_sem",
    "do_futex_wait",
    "__libc_",
];

fn is_implementation_function(name: &str) -> bool {
    if super::go::is_runtime_function(name) {
        return true;
    }
    if IMPLEMENTATION_NAMESPACES
        .iter()
        .any(|p| name.starts_with(p))
    {
        return true;
    }
    !name.contains("::")
        && (name == "syscall"
            || C_IMPLEMENTATION_PREFIXES
                .iter()
                .any(|p| name.starts_with(p)))
}

/// The kind of lock a lock-implementation function belongs to, if it tells.
pub fn classify_function(name: &str) -> Option<WaitKind> {
    if let Some(go) = super::go::classify(name) {
        return go;
    }
    // parking_lot_core is the parking machinery shared by all parking_lot locks: the
    // lock type is in the frames around it, never in it.
    if name.starts_with("parking_lot_core::") || name.starts_with("<parking_lot_core::") {
        return None;
    }
    // "pthread" contains "read": drop it before looking for read/write words.
    let n = name.replace("thread_", "").replace("pthread", "");
    let has = |s: &str| n.contains(s);
    if has("Condvar")
        || has("condvar")
        || name.contains("pthread_cond")
        || has("condition_variable")
    {
        return Some(WaitKind::Condvar);
    }
    if has("RwLock") || has("rwlock") || has("shared_mutex") {
        return Some(if has("write") || has("wrlock") || has("exclusive") {
            WaitKind::RwlockWrite
        } else if has("read") || has("rdlock") || has("shared") || has("upgradable") {
            WaitKind::RwlockRead
        } else {
            WaitKind::Rwlock
        });
    }
    // glibc `sem_wait`/`__new_sem_wait_slow64`, Rust `Semaphore`s, C++20
    // `std::counting_semaphore` (`std::__atomic_semaphore::_M_acquire`).
    if has("sem_") || has("Semaphore") || has("semaphore") {
        return Some(WaitKind::Semaphore);
    }
    if has("Mutex") || has("mutex") || has("lll_lock") || has("lll_unlock") {
        return Some(WaitKind::Mutex);
    }
    if name.contains("thread::park")
        || has("Parker")
        || has("join")
        || has("Once")
        || has("once::")
        || has("barrier")
        || has("Barrier")
        || has("mpsc")
        || has("mpmc")
    {
        return Some(WaitKind::Other);
    }
    None
}

fn implementation_of(name: &str, module: Option<&str>) -> &'static str {
    let base = module.map_or("", |m| m.rsplit('/').next().unwrap_or(m));
    if super::go::is_runtime_function(name) {
        "go-runtime"
    } else if name.contains("parking_lot") || name.contains("lock_api") {
        "parking_lot"
    } else if name.starts_with("std::") || name.starts_with("<std::") || name.starts_with("core::")
    {
        if base.starts_with("libstdc++") {
            "libstdc++"
        } else {
            "rust-std"
        }
    } else if base.starts_with("libstdc++") {
        "libstdc++"
    } else {
        "glibc"
    }
}

/// A kind from the futex op alone, for stacks with no telling frame: PI futexes are
/// only used by PI mutexes.
pub fn kind_from_op(op: u32) -> WaitKind {
    use profiler_common::op;
    match op {
        op::LOCK_PI | op::LOCK_PI2 | op::WAIT_REQUEUE_PI | op::UNLOCK_PI => WaitKind::Mutex,
        _ => WaitKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, module: &str) -> Frame {
        Frame {
            address: "0x1".into(),
            function: Some(function.into()),
            file: Some("src/x.rs".into()),
            line: Some(1),
            module: Some(module.into()),
            module_offset: Some("0x1".into()),
            inlined: false,
            lock_impl: false,
        }
    }

    const APP: &str = "/usr/bin/app";
    const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";

    fn stack(names: &[(&str, &str)]) -> Vec<Frame> {
        names.iter().map(|(f, m)| frame(f, m)).collect()
    }

    #[test]
    fn glibc_mutex_site_is_the_caller_of_pthread_mutex_lock() {
        let s = stack(&[
            ("__futex_abstimed_wait_common", LIBC),
            ("__lll_lock_wait", LIBC),
            ("___pthread_mutex_lock", LIBC),
            ("worker", APP),
            ("start_thread", LIBC),
        ]);
        let a = attribute(&s, WaitKind::Other);
        assert_eq!(a.site, 3);
        assert_eq!(a.kind, WaitKind::Mutex);
        assert_eq!(a.lock_impl, "glibc");
    }

    #[test]
    fn glibc_rwlock_and_condvar_and_semaphore() {
        let rd = stack(&[
            ("__futex_abstimed_wait_common", LIBC),
            ("__pthread_rwlock_rdlock_full64", LIBC),
            ("reader", APP),
        ]);
        assert_eq!(attribute(&rd, WaitKind::Other).kind, WaitKind::RwlockRead);
        let wr = stack(&[
            ("__futex_abstimed_wait_common", LIBC),
            ("___pthread_rwlock_wrlock", LIBC),
            ("writer", APP),
        ]);
        assert_eq!(attribute(&wr, WaitKind::Other).kind, WaitKind::RwlockWrite);
        let cv = stack(&[
            ("__futex_abstimed_wait_common", LIBC),
            ("__pthread_cond_wait_common", LIBC),
            ("consumer", APP),
        ]);
        assert_eq!(attribute(&cv, WaitKind::Other).kind, WaitKind::Condvar);
        let sem = stack(&[
            ("__futex_abstimed_wait_common", LIBC),
            ("__new_sem_wait_slow64", LIBC),
            ("pool_get", APP),
        ]);
        let a = attribute(&sem, WaitKind::Other);
        assert_eq!((a.site, a.kind), (2, WaitKind::Semaphore));
    }

    #[test]
    fn rust_std_mutex_rwlock_and_condvar() {
        let m = stack(&[
            ("syscall", LIBC),
            ("std::sys::pal::unix::futex::futex_wait", APP),
            ("std::sys::sync::mutex::futex::Mutex::lock_contended", APP),
            ("demo::Store::writer", APP),
            ("demo::pull", APP),
        ]);
        let a = attribute(&m, WaitKind::Other);
        assert_eq!(
            (a.site, a.kind, a.lock_impl),
            (3, WaitKind::Mutex, "rust-std")
        );

        let r = stack(&[
            ("syscall", LIBC),
            ("std::sys::pal::unix::futex::futex_wait", APP),
            ("std::sys::sync::rwlock::futex::RwLock::read_contended", APP),
            ("demo::Before::lookup", APP),
        ]);
        assert_eq!(attribute(&r, WaitKind::Other).kind, WaitKind::RwlockRead);
        let w = stack(&[
            ("syscall", LIBC),
            (
                "std::sys::sync::rwlock::futex::RwLock::write_contended",
                APP,
            ),
            ("demo::Before::register", APP),
        ]);
        assert_eq!(attribute(&w, WaitKind::Other).kind, WaitKind::RwlockWrite);

        let cv = stack(&[
            ("syscall", LIBC),
            ("std::sys::pal::unix::futex::futex_wait", APP),
            (
                "std::sys::sync::condvar::futex::Condvar::wait_optional_timeout",
                APP,
            ),
            (
                "std::sync::poison::condvar::Condvar::wait_timeout_while",
                APP,
            ),
            ("demo::Before::lookup", APP),
        ]);
        let a = attribute(&cv, WaitKind::Other);
        assert_eq!((a.site, a.kind), (4, WaitKind::Condvar));
    }

    #[test]
    fn condvar_mutex_reacquire_is_mutex_contention() {
        let s = stack(&[
            ("syscall", LIBC),
            ("std::sys::sync::mutex::futex::Mutex::lock_contended", APP),
            (
                "std::sys::sync::condvar::futex::Condvar::wait_optional_timeout",
                APP,
            ),
            ("demo::lookup", APP),
        ]);
        let a = attribute(&s, WaitKind::Other);
        assert_eq!(a.kind, WaitKind::Mutex);
        assert!(a.kind.is_contention());
        assert!(!WaitKind::Condvar.is_contention());
    }

    #[test]
    fn parking_lot_parks_on_thread_futex_but_the_site_is_named() {
        let s = stack(&[
            ("syscall", LIBC),
            (
                "parking_lot_core::thread_parker::imp::ThreadParker::futex_wait",
                APP,
            ),
            ("parking_lot_core::parking_lot::park", APP),
            (
                "parking_lot::raw_rwlock::RawRwLock::lock_exclusive_slow",
                APP,
            ),
            ("app::cache::insert", APP),
        ]);
        let a = attribute(&s, WaitKind::Other);
        assert_eq!(
            (a.site, a.kind, a.lock_impl),
            (4, WaitKind::RwlockWrite, "parking_lot")
        );
        let m = stack(&[
            ("syscall", LIBC),
            ("parking_lot_core::parking_lot::park", APP),
            ("parking_lot::raw_mutex::RawMutex::lock_slow", APP),
            ("app::queue::push", APP),
        ]);
        assert_eq!(attribute(&m, WaitKind::Other).kind, WaitKind::Mutex);
    }

    #[test]
    fn unknown_implementation_uses_fallback_and_truncated_stack_uses_outermost() {
        // A frame-pointer walk that stopped inside libc: two libc frames only.
        let s = stack(&[
            ("__futex_abstimed_wait_common", LIBC),
            ("__lll_lock_wait", LIBC),
        ]);
        let a = attribute(&s, WaitKind::Other);
        assert_eq!(a.site, 1);
        assert_eq!(
            a.kind,
            WaitKind::Mutex,
            "still classified from the lll frame"
        );
        let bare = stack(&[("syscall", LIBC), ("my_spin_lock", APP)]);
        assert_eq!(
            attribute(&bare, kind_from_op(profiler_common::op::LOCK_PI)).kind,
            WaitKind::Mutex
        );
        assert_eq!(attribute(&[], WaitKind::Other).site, 0);
    }

    #[test]
    fn runtime_only_stack_names_what_took_the_lock() {
        // std's thread start-up takes an internal mutex: no user frame at all.
        let s = stack(&[
            ("syscall", LIBC),
            ("std::sys::sync::mutex::futex::Mutex::lock_contended", APP),
            ("std::thread::current::set_current_info", APP),
            ("std::sys::thread::unix::Thread::new::thread_start", APP),
            ("start_thread", LIBC),
        ]);
        let a = attribute(&s, WaitKind::Other);
        assert_eq!((a.site, a.kind), (2, WaitKind::Mutex));
    }

    #[test]
    fn join_and_park_are_other_event_waits() {
        let j = stack(&[
            ("__futex_abstimed_wait_common", LIBC),
            ("__pthread_clockjoin_ex", LIBC),
            ("std::thread::JoinInner<T>::join", APP),
            ("main", APP),
        ]);
        let a = attribute(&j, WaitKind::Mutex);
        assert_eq!((a.site, a.kind), (3, WaitKind::Other));
    }

    #[test]
    fn c_prefixes_do_not_swallow_rust_modules() {
        // Regression: a user crate module named `futex_ops` looked like glibc's
        // `futex_*` internals, so every site fell through to `start_thread`.
        let s = stack(&[
            ("syscall", LIBC),
            ("futex_ops::wait_futex_wait", APP),
            ("futex_ops::scenario", APP),
        ]);
        assert_eq!(attribute(&s, WaitKind::Other).site, 1);
        let c = stack(&[
            ("futex_wait", APP),
            ("syscall_helper", APP),
            ("my_lock", APP),
        ]);
        assert_eq!(
            attribute(&c, WaitKind::Other).site,
            1,
            "C futex_wait is glibc's; syscall_helper is not"
        );
    }

    #[test]
    fn unknown_innermost_frame_is_not_the_site() {
        let mut s = vec![Frame {
            address: "0x7f00".into(),
            ..Frame::default()
        }];
        s.extend(stack(&[("app::worker", APP)]));
        assert_eq!(attribute(&s, WaitKind::Other).site, 1);
    }

    #[test]
    fn unresolved_app_frame_is_a_site() {
        let mut s = stack(&[("syscall", LIBC)]);
        s.push(Frame {
            address: "0x55".into(),
            module: Some(APP.into()),
            ..Frame::default()
        });
        assert_eq!(attribute(&s, WaitKind::Other).site, 1);
    }

    /// Stacks as CFI unwinding delivers them (Debian glibc with libc6-dbg, Rust
    /// std): every implementation frame present, inlined ones included.
    #[test]
    fn full_glibc_stacks_name_the_caller_and_the_precise_kind() {
        let cases: &[(&[&str], WaitKind)] = &[
            (
                &[
                    "futex_wait",
                    "__GI___lll_lock_wait",
                    "lll_mutex_lock_optimized",
                    "___pthread_mutex_lock",
                ],
                WaitKind::Mutex,
            ),
            (
                &[
                    "__futex_abstimed_wait_common",
                    "__futex_lock_pi64",
                    "__pthread_mutex_lock_full",
                    "___pthread_mutex_lock",
                ],
                WaitKind::Mutex,
            ),
            (
                &[
                    "__futex_abstimed_wait_common",
                    "__pthread_rwlock_rdlock_full64",
                    "___pthread_rwlock_rdlock",
                ],
                WaitKind::RwlockRead,
            ),
            (
                &[
                    "__futex_abstimed_wait_common",
                    "__pthread_rwlock_wrlock_full64",
                    "___pthread_rwlock_clockwrlock64",
                ],
                WaitKind::RwlockWrite,
            ),
            (
                &[
                    "__futex_abstimed_wait_common",
                    "__pthread_cond_wait_common",
                    "___pthread_cond_timedwait64",
                ],
                WaitKind::Condvar,
            ),
            (
                &[
                    "__futex_abstimed_wait_common",
                    "do_futex_wait",
                    "__new_sem_wait_slow64",
                    "__new_sem_clockwait",
                ],
                WaitKind::Semaphore,
            ),
        ];
        for (lock_frames, kind) in cases {
            let mut s: Vec<Frame> = lock_frames.iter().map(|f| frame(f, LIBC)).collect();
            let site = s.len();
            s.extend(stack(&[("app::worker", APP), ("start_thread", LIBC)]));
            let a = attribute(&s, WaitKind::Other);
            assert_eq!(
                (a.site, a.kind, a.lock_impl),
                (site, *kind, "glibc"),
                "{lock_frames:?}"
            );
        }
    }

    #[test]
    fn glibc_without_debug_symbols_still_tells_the_kind() {
        // Only .dynsym: internal functions are module+offset, the exported entry
        // point has its name.
        let mut unnamed = frame("x", LIBC);
        unnamed.function = None;
        let s = vec![
            unnamed.clone(),
            unnamed,
            frame("pthread_rwlock_wrlock", LIBC),
            frame("app::store::put", APP),
        ];
        let a = attribute(&s, WaitKind::Other);
        assert_eq!((a.site, a.kind), (3, WaitKind::RwlockWrite));
    }

    #[test]
    fn condvar_mutex_reacquire_in_glibc_is_mutex_contention() {
        let s = stack(&[
            ("futex_wait", LIBC),
            ("__GI___lll_lock_wait", LIBC),
            ("__pthread_mutex_cond_lock", LIBC),
            ("__pthread_cond_wait_common", LIBC),
            ("___pthread_cond_wait", LIBC),
            ("app::consumer", APP),
        ]);
        let a = attribute(&s, WaitKind::Other);
        assert_eq!((a.site, a.kind), (5, WaitKind::Mutex));
    }

    #[test]
    fn full_rust_std_stacks() {
        let std_frames: &[(&[&str], WaitKind)] = &[
            (
                &[
                    "std::sys::pal::unix::futex::futex_wait",
                    "std::sys::sync::rwlock::futex::RwLock::read_contended",
                    "std::sys::sync::rwlock::futex::RwLock::read",
                    "std::sync::poison::rwlock::RwLock<T>::read",
                ],
                WaitKind::RwlockRead,
            ),
            (
                &[
                    "std::sys::pal::unix::futex::futex_wait",
                    "std::sys::sync::rwlock::futex::RwLock::write_contended",
                    "std::sync::poison::rwlock::RwLock<T>::write",
                ],
                WaitKind::RwlockWrite,
            ),
            (
                &[
                    "std::sys::pal::unix::futex::futex_wait",
                    "std::sys::sync::condvar::futex::Condvar::wait_optional_timeout",
                    "std::sys::sync::condvar::futex::Condvar::wait",
                    "std::sync::poison::condvar::Condvar::wait",
                ],
                WaitKind::Condvar,
            ),
            (
                &[
                    "std::sys::pal::unix::futex::futex_wait",
                    "std::sys::sync::mutex::futex::Mutex::lock_contended",
                    "std::sys::sync::mutex::futex::Mutex::lock",
                    "std::sync::poison::mutex::Mutex<T>::lock",
                ],
                WaitKind::Mutex,
            ),
        ];
        for (lock_frames, kind) in std_frames {
            let mut s = vec![frame("syscall", LIBC)];
            s.extend(lock_frames.iter().map(|f| frame(f, APP)));
            let site = s.len();
            s.extend(stack(&[("app::handler", APP), ("app::main", APP)]));
            let a = attribute(&s, WaitKind::Other);
            assert_eq!(
                (a.site, a.kind, a.lock_impl),
                (site, *kind, "rust-std"),
                "{lock_frames:?}"
            );
        }
    }

    #[test]
    fn full_parking_lot_stacks() {
        let cases: &[(&str, WaitKind)] = &[
            (
                "parking_lot::raw_mutex::RawMutex::lock_slow",
                WaitKind::Mutex,
            ),
            (
                "parking_lot::raw_rwlock::RawRwLock::lock_shared_slow",
                WaitKind::RwlockRead,
            ),
            (
                "parking_lot::raw_rwlock::RawRwLock::lock_exclusive_slow",
                WaitKind::RwlockWrite,
            ),
            (
                "parking_lot::raw_rwlock::RawRwLock::lock_upgradable_slow",
                WaitKind::RwlockRead,
            ),
            (
                "parking_lot::condvar::Condvar::wait_until_internal",
                WaitKind::Condvar,
            ),
        ];
        for (slow, kind) in cases {
            let s = stack(&[
                ("syscall", LIBC),
                (
                    "parking_lot_core::thread_parker::imp::ThreadParker::futex_wait",
                    APP,
                ),
                (
                    "parking_lot_core::thread_parker::imp::ThreadParker::park",
                    APP,
                ),
                ("parking_lot_core::parking_lot::park::{{closure}}", APP),
                ("parking_lot_core::parking_lot::park", APP),
                (slow, APP),
                ("lock_api::mutex::Mutex<R,T>::lock", APP),
                ("app::cache::get", APP),
            ]);
            let a = attribute(&s, WaitKind::Other);
            assert_eq!(
                (a.site, a.kind, a.lock_impl),
                (7, *kind, "parking_lot"),
                "{slow}"
            );
        }
    }

    #[test]
    fn cpp_semaphore_and_shared_mutex() {
        const STDCXX: &str = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
        let sem = stack(&[
            ("syscall", LIBC),
            ("std::__detail::__platform_wait<int>", APP),
            ("std::__atomic_semaphore::_M_acquire", APP),
            ("pool::take", APP),
        ]);
        let a = attribute(&sem, WaitKind::Other);
        assert_eq!((a.site, a.kind), (3, WaitKind::Semaphore));
        let shared = stack(&[
            ("__futex_abstimed_wait_common", LIBC),
            ("___pthread_rwlock_rdlock", LIBC),
            ("std::shared_mutex::lock_shared", STDCXX),
            ("db::read", APP),
        ]);
        let a = attribute(&shared, WaitKind::Other);
        assert_eq!(
            (a.site, a.kind, a.lock_impl),
            (3, WaitKind::RwlockRead, "glibc")
        );
    }
}
