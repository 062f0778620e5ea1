//! The JSON report against its JSON Schema (`docs/report.schema.json`): the committed
//! fixture reports and freshly serialized ones (every optional field present, and the
//! empty report) validate, and the schema is strict enough to refuse drift — an
//! unknown field, a wrong type, a missing field. A field added to `report::model`
//! fails `fresh_reports_validate` until the schema (and docs/report-schema.md) has it.

mod common;

use common::repo_root;
use profiler::report::{
    AddressShare, Behavior, BlockedBy, Frame, HeldAcross, Interval, IntervalCount, KindShare,
    LockAddress, OffCpuIn, Report, Site, SiteShare, StackShare, SyscallFailure, Target,
    TargetOrigin, ThreadShare, Timeline, Totals, WaitKind, WaitSummary, WakeLatency, WakerShare,
    WakerSite, WakerThread, WokenBy, json,
};
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let path = repo_root().join("docs/report.schema.json");
    let text = std::fs::read_to_string(&path).expect("read the schema");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at '{}'", e, e.instance_path()))
        .collect()
}

fn assert_valid(v: &jsonschema::Validator, name: &str, text: &str) {
    let instance: Value = serde_json::from_str(text).expect("JSON");
    let errs = errors(v, &instance);
    assert!(
        errs.is_empty(),
        "{name} does not match docs/report.schema.json (update the schema with the model):\n{}",
        errs.join("\n")
    );
}

#[test]
fn fixture_reports_validate() {
    let v = validator();
    let made = ["report-sample.json", "report-base.json", "report-new.json"];
    for &name in made.iter().chain(common::RECORDED_FIXTURES) {
        let path = repo_root().join("profiler/tests/fixtures").join(name);
        let text = std::fs::read_to_string(&path).expect("read fixture");
        assert_valid(&v, name, &text);
        // And lockprof reads it.
        json::from_str(&text, name).expect("lockprof reads the fixture");
    }
}

fn frame(inlined: bool) -> Frame {
    Frame {
        address: "0x55d4c2a0a018".to_owned(),
        function: Some("app::Store::put".to_owned()),
        file: Some("src/store.rs".to_owned()),
        line: Some(42),
        module: Some("/opt/app/bin/app".to_owned()),
        module_offset: Some("0xa018".to_owned()),
        inlined,
        lock_impl: inlined,
    }
}

fn held() -> HeldAcross {
    HeldAcross {
        window_ns: 800,
        off_cpu_ns: 700,
        off_cpu_in: vec![OffCpuIn {
            syscall: "clock_nanosleep".to_owned(),
            ns: 700,
        }],
        truncated_windows: 1,
        failed_syscalls: 2,
        last_failure: Some(SyscallFailure {
            syscall: "sendmsg".to_owned(),
            errno: "ENOBUFS".to_owned(),
        }),
    }
}

/// A report with every list non-empty and every optional field set.
fn full_report() -> Report {
    let wait = WaitSummary {
        waits: 3,
        total_wait_ns: 900,
        max_wait_ns: 500,
    };
    Report {
        lockprof_version: "0.1.0".to_owned(),
        targets: vec![Target {
            pid: 7,
            comm: "app".to_owned(),
            cmdline: "app --serve".to_owned(),
            origin: TargetOrigin::Launch,
            exited: true,
            exit_code: Some(-1),
            ns_pid: Some(1),
            cgroup: Some("/lockprof-test/app".to_owned()),
        }],
        started_unix_ms: 1_767_225_600_000,
        totals: Totals {
            by_kind: vec![KindShare {
                kind: WaitKind::Other,
                behavior: Behavior::Lock,
                contention: true,
                waits: 3,
                wait_ns: 900,
            }],
            ..Totals::default()
        },
        duration_ns: 1_000_000_000,
        sites: vec![Site {
            id: "mutex|app|app::Store::put|src/store.rs:42".to_owned(),
            kind: WaitKind::Mutex,
            contention: true,
            behavior: Behavior::Lock,
            lock_impl: "rust-std".to_owned(),
            function: Some("app::Store::put".to_owned()),
            file: Some("src/store.rs".to_owned()),
            line: Some(42),
            module: Some("/opt/app/bin/app".to_owned()),
            waits: 3,
            total_wait_ns: 900,
            histogram: profiler::analyze::histogram::Log2Histogram::default(),
            threads: vec![ThreadShare {
                pid: 7,
                tid: 8,
                name: "worker".to_owned(),
                wait: wait.clone(),
            }],
            addresses: vec![AddressShare {
                pid: 7,
                address: "0x7f00".to_owned(),
                wait: wait.clone(),
            }],
            stacks: vec![StackShare {
                wait: wait.clone(),
                frames: vec![frame(true), frame(false)],
                unwind: Some("dwarf".to_owned()),
            }],
            more_stacks: 1,
            woken_by: vec![WokenBy {
                waker: "mutex|app|app::Store::put|src/store.rs:44".to_owned(),
                function: Some("app::Store::put".to_owned()),
                file: Some("src/store.rs".to_owned()),
                line: Some(44),
                waits: 3,
                wait_ns: 900,
                from_other_processes: 1,
                held: held(),
                wake_to_run: WakeLatency {
                    count: 3,
                    avg_ns: 20,
                    max_ns: 40,
                },
            }],
            wake_to_run: WakeLatency {
                count: 3,
                avg_ns: 20,
                max_ns: 40,
            },
            series: vec![IntervalCount {
                waits: 3,
                wait_ns: 900,
            }],
            from_saved_stacks: true,
            blocked_by: vec![BlockedBy {
                holder: "mutex|app|app::Store::put|src/store.rs:44".to_owned(),
                function: Some("app::Store::put".to_owned()),
                file: Some("src/store.rs".to_owned()),
                line: Some(44),
                intervals: 4,
                wait_ns: 800,
            }],
            blocked_by_unknown_ns: 100,
            ..Site::default()
        }],
        locks: vec![LockAddress {
            pid: 7,
            address: "0x7f00".to_owned(),
            wait: wait.clone(),
            behavior: Behavior::Lock,
            broadcast: true,
            eagain: 2,
            wasted_wakeups: 1,
            sites: vec![SiteShare {
                site: "mutex|app|app::Store::put|src/store.rs:42".to_owned(),
                wait,
            }],
            wakers: vec![WakerShare {
                waker: "mutex|app|app::Store::put|src/store.rs:44".to_owned(),
                calls: 3,
                woken: 3,
                woke_none: 1,
                woke_many: 1,
            }],
        }],
        wakers: vec![WakerSite {
            id: "mutex|app|app::Store::put|src/store.rs:44".to_owned(),
            kind: WaitKind::Mutex,
            lock_impl: "rust-std".to_owned(),
            function: Some("app::Store::put".to_owned()),
            file: Some("src/store.rs".to_owned()),
            line: Some(44),
            module: Some("/opt/app/bin/app".to_owned()),
            calls: 3,
            woken: 3,
            threads: vec![WakerThread {
                pid: 7,
                tid: 9,
                name: "worker".to_owned(),
                calls: 3,
                woken: 3,
            }],
            stack: vec![frame(false)],
            held: held(),
            ..WakerSite::default()
        }],
        timeline: Some(Timeline {
            interval_ns: 1_000_000_000,
            intervals: vec![Interval {
                start_ns: 0,
                duration_ns: 1_000_000_000,
                waits: 3,
                wait_ns: 900,
                contention_waits: 3,
                contention_wait_ns: 900,
            }],
        }),
        ..Report::default()
    }
}

#[test]
fn fresh_reports_validate() {
    let v = validator();
    assert_valid(&v, "a full report", &json::to_string(&full_report()));
    assert_valid(&v, "the empty report", &json::to_string(&Report::default()));
}

#[test]
fn the_schema_refuses_drift() {
    let v = validator();
    let good: Value = serde_json::from_str(&json::to_string(&full_report())).expect("JSON");
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut bad = good.clone();
        f(&mut bad);
        errors(&v, &bad)
    };
    assert!(!mutate(&|r| r["sites"][0]["surprise"] = Value::from(1)).is_empty());
    assert!(!mutate(&|r| r["totals"]["waits"] = Value::from("many")).is_empty());
    assert!(!mutate(&|r| r["sites"][0]["kind"] = Value::from("spin")).is_empty());
    assert!(!mutate(&|r| r["schema_version"] = Value::from(2)).is_empty());
    assert!(
        !mutate(&|r| {
            r["wakers"][0]
                .as_object_mut()
                .expect("object")
                .remove("stack");
        })
        .is_empty()
    );
    assert!(
        !mutate(&|r| r["sites"][0]["stacks"][0]["frames"][0]["line"] = Value::from(-1)).is_empty()
    );
}
