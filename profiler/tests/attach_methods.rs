//! Root-only tests of the three ways lockprof hooks futex calls (`--attach-method`):
//! each must count what the tracepoints count. fentry is refused by this machine
//! kind's kernel, so it is tested in a VM booting Debian's own kernel (`cargo xtask
//! vm`, qemu), and here only for refusing cleanly or working.

mod common;

use std::process::{Command, Stdio};

use common::{demo_bin, lockprof, record, require_root, tempdir};
use profiler::report::Report;

/// The ping-pong's own counts, from its result line (`{"round_trips":…}`).
struct PingPong {
    blocked_waits: u64,
}

fn ping_pong_line(stdout: &str) -> PingPong {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"round_trips\""))
        .unwrap_or_else(|| panic!("futex-pingpong printed no result line:\n{stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("futex-pingpong JSON");
    PingPong {
        blocked_waits: v["blocked_waits"].as_u64().expect("blocked_waits"),
    }
}

/// The report of a `futex-pingpong` run hooked with `method` counts every wait that
/// blocked at its one site, pairs it with the wake that ended it, and (holders on)
/// measures its wake-to-run latency.
fn assert_counts_the_ping_pong(report: &Report, run: &PingPong, method: &str) {
    assert_eq!(report.probe_cost.attach_method, method);
    let site = report
        .sites
        .iter()
        .find(|s| s.function.as_deref() == Some("futex_pingpong::wait_turn"))
        .unwrap_or_else(|| panic!("{method}: no wait_turn site: {:?}", report.sites));
    // Every blocked wait of the run: the launched command starts only once traced.
    assert_eq!(
        site.waits, run.blocked_waits,
        "{method}: blocked waits counted"
    );
    let paired: u64 = site.woken_by.iter().map(|w| w.waits).sum();
    let hand_over = site
        .woken_by
        .iter()
        .find(|w| w.function.as_deref() == Some("futex_pingpong::hand_over"))
        .unwrap_or_else(|| panic!("{method}: not woken by hand_over: {:?}", site.woken_by));
    assert!(
        hand_over.waits * 100 >= site.waits * 99,
        "{method}: {} of {} waits paired with hand_over",
        hand_over.waits,
        site.waits
    );
    assert!(
        site.wake_to_run.count * 100 >= paired * 99,
        "{method}: wake-to-run measured for {} of {paired} paired waits",
        site.wake_to_run.count
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn each_attach_method_counts_every_blocked_wait_or_is_refused_before_the_command_starts() {
    require_root();
    let pingpong = demo_bin("futex-pingpong");
    let pingpong = pingpong.to_str().expect("utf-8 path");
    for (flag, name) in [
        ("syscall-tracepoints", "syscall_tracepoints"),
        ("raw-syscalls", "raw_syscalls"),
    ] {
        let r = record(&[
            "-q",
            "--attach-method",
            flag,
            "--",
            pingpong,
            "--seconds",
            "1",
        ]);
        assert!(r.output.status.success(), "{flag}: {}", r.stderr);
        assert_counts_the_ping_pong(&r.report, &ping_pong_line(&r.stdout), name);
    }
    // fentry: this machine kind's kernel refuses BPF trampolines. Asked for by name, a
    // refusal is one line and an error exit before the command is launched; a kernel
    // that accepts it must count like the others.
    let dir = tempdir();
    let marker = dir.join("launched");
    let out = Command::new(lockprof())
        .args(["record", "-q", "--attach-method", "fentry", "-o"])
        .arg(dir.join("r.json"))
        .args(["--", "sh", "-c", "touch \"$0\" && exec \"$@\""])
        .arg(&marker)
        .args([pingpong, "--seconds", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("run lockprof");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        let report = profiler::report::json::read(&dir.join("r.json")).expect("report");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_counts_the_ping_pong(&report, &ping_pong_line(&stdout), "fentry");
    } else {
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("lockprof: error: ")
                && stderr.contains("fentry/fexit on __x64_sys_futex"),
            "{stderr}"
        );
        assert!(
            !marker.exists(),
            "the command ran although lockprof refused"
        );
    }
}

/// Output of `cargo xtask vm` for `script`, with this test build's lockprof,
/// `futex-pingpong` and `futex-ops` in the VM.
fn in_debian_vm(script: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(common::repo_root())
        .args(["xtask", "vm", "--bin"])
        .arg(lockprof())
        .arg("--bin")
        .arg(demo_bin("futex-pingpong"))
        .arg("--bin")
        .arg(demo_bin("futex-ops"))
        .args(["--", script])
        .stdin(Stdio::null())
        .output()
        .expect("run cargo xtask vm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "cargo xtask vm failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The report JSON in a section of the VM's output (pretty-printed: it starts at a
/// line holding only `{`).
fn report_in(section: &str, what: &str) -> Report {
    let json = &section[section.find("\n{\n").map_or(0, |i| i + 1)..];
    profiler::report::json::from_str(json, what)
        .unwrap_or_else(|e| panic!("{what}: {e}\n{section}"))
}

#[test]
#[ignore = "needs root + qemu: cargo xtask test"]
fn fentry_counts_what_the_tracepoints_count_on_debians_kernel() {
    require_root();
    // In one VM: the same ping-pong launched under fentry (auto picks it there) and
    // under the tracepoints; then lockprof attached to a running ping-pong and stopped
    // in the middle of it — with its threads inside the hooked function, blocked in
    // futex waits, when the trampolines go. Each section: a header, the ping-pong's
    // line (and exit statuses), the report.
    let stdout = in_debian_vm(
        "for m in auto syscall-tracepoints; do \
           echo \"== $m\"; \
           lockprof record -q --attach-method $m -o /tmp/r.json -- futex-pingpong --seconds 2 || exit 1; \
           cat /tmp/r.json; echo; \
         done; \
         echo '== attach'; \
         up() { read u _ < /proc/uptime; echo $u; }; \
         mkfifo /tmp/in; exec 3<>/tmp/in; \
         futex-pingpong --on-stdin 1 < /tmp/in > /tmp/pp 3>&- & P=$!; \
         lockprof record -p $P -o /tmp/r.json 2>/tmp/err >/dev/null 3>&- & L=$!; \
         until grep -qs 'lockprof: recording' /tmp/err; do kill -0 $L || exit 1; sleep 0.1; done; \
         echo 4000 >&3; echo \"run started at $(up)\"; \
         sleep 1; kill -INT $L; wait $L; echo \"lockprof exit $? at $(up)\"; \
         exec 3>&-; wait $P; echo \"ping-pong exit $?\"; cat /tmp/pp; cat /tmp/r.json; echo; \
         echo '== futex-ops'; \
         lockprof record -q -o /tmp/r.json -- futex-ops || exit 1; cat /tmp/r.json; echo",
    );
    let sections: Vec<&str> = stdout.split("== ").skip(1).collect();
    assert_eq!(sections.len(), 4, "{stdout}");
    for (section, method) in sections.iter().zip(["fentry", "syscall_tracepoints"]) {
        let report = report_in(section, method);
        assert_counts_the_ping_pong(&report, &ping_pong_line(section), method);
    }
    // Detached while the ping-pong's threads were inside `__x64_sys_futex`: lockprof
    // stopped cleanly in the middle of a 4 s run (it waits on stdin for a run to
    // start, so a slow VM attaches in time), and the ping-pong then finished the run.
    let attach = sections[2];
    let at = |prefix: &str| -> f64 {
        let line = attach
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}…':\n{attach}"));
        line.rsplit(' ').next().unwrap().parse().expect("uptime")
    };
    let lockprof_stopped = at("lockprof exit 0 at ") - at("run started at ");
    assert!(
        attach.lines().any(|l| l == "ping-pong exit 0"),
        "the ping-pong failed:\n{attach}"
    );
    let line = attach
        .lines()
        .find(|l| l.starts_with("{\"round_trips\""))
        .expect("the run's line");
    let seconds = serde_json::from_str::<serde_json::Value>(line).unwrap()["seconds"]
        .as_f64()
        .expect("seconds");
    assert!(
        lockprof_stopped < seconds,
        "lockprof stopped {lockprof_stopped:.2} s into a {seconds:.2} s run"
    );
    let run = ping_pong_line(attach);
    let report = report_in(attach, "attach");
    assert_eq!(report.probe_cost.attach_method, "fentry");
    let waits: u64 = report
        .sites
        .iter()
        .filter(|s| s.function.as_deref() == Some("futex_pingpong::wait_turn"))
        .map(|s| s.waits)
        .sum();
    assert!(
        waits > 0 && waits < run.blocked_waits,
        "attached for part of the run: {waits} of {} blocked waits",
        run.blocked_waits
    );
    // Every futex operation the guest kernel has, decoded from the syscall
    // functions' registers by the fentry programs as from the tracepoints' records.
    let ops = sections[3];
    let report = report_in(ops, "futex-ops");
    assert_eq!(report.probe_cost.attach_method, "fentry");
    let ran = common::assert_every_futex_op_seen(&report, &common::fixture_line(ops));
    // Debian 12's 6.1 has all but the 6.7 futex2 calls (futex_wait, futex_requeue).
    assert!(ran >= 8, "{ran} of futex-ops' scenarios ran in the VM");
}
