//! The header: which processes were recorded, for how long, the totals of every kind
//! of wait, and every loss counter that is not zero (nothing dropped goes unsaid).

use crate::render::fit::{clean, cut_end, cut_start};
use crate::render::text::table::Out;
use crate::render::units::{fmt_count, fmt_duration_ns, fmt_pct, plural};
use crate::report::model::{Losses, ProbeCost, Report, Target, TargetOrigin};

/// Non-child targets named in the header before "and N more".
const MAX_HEADER_TARGETS: usize = 3;

/// What the probe cost: BPF time, kernel memory, how futex calls were hooked, and
/// lockprof's own CPU over the `duration_ns` recorded. Only for live recordings
/// (older reports lack the memory figure).
fn cost_line(out: &mut Out, cost: &ProbeCost, duration_ns: u64) {
    if cost.kernel_memory_bytes == 0 {
        return;
    }
    let time = if cost.run_time_measured() {
        format!(
            "{} of BPF time in {} runs ({} ns each)",
            fmt_duration_ns(cost.bpf_run_ns),
            fmt_count(cost.bpf_runs),
            cost.bpf_run_ns / cost.bpf_runs,
        )
    } else {
        "BPF time not measured (--probe-time)".to_owned()
    };
    let own = if cost.lockprof_cpu_ns > 0 && duration_ns > 0 {
        format!(
            "; lockprof's own CPU {} ({:.1} ms/s)",
            fmt_duration_ns(cost.lockprof_cpu_ns),
            cost.lockprof_cpu_ns as f64 / duration_ns as f64 * 1e3,
        )
    } else {
        String::new()
    };
    out.line(format!(
        "probe cost: {time}, {:.1} MiB of kernel memory, futex calls hooked through {}{own}",
        cost.kernel_memory_bytes as f64 / 1_048_576.0,
        cost.attach_method,
    ));
}

pub(super) fn header(out: &mut Out, report: &Report) {
    out.line(format!(
        "lockprof: {}",
        targets_summary(&report.targets, report.exited_children_not_listed)
    ));
    let t = &report.totals;
    let contention = if t.waits > 0 {
        format!(
            "; lock contention {}, {} ({} of wait time)",
            plural(t.contention_waits, "wait", "waits"),
            fmt_duration_ns(t.contention_wait_ns),
            fmt_pct(t.contention_wait_ns, t.wait_ns),
        )
    } else {
        String::new()
    };
    out.line(format!(
        "recorded {}: {}, {} waiting{contention}",
        fmt_duration_ns(report.duration_ns),
        plural(t.waits, "blocked wait", "blocked waits"),
        fmt_duration_ns(t.wait_ns),
    ));
    out.line(format!(
        "also: {} eagain (futex word changed, no block), {} ({} waiting), {} by a signal",
        fmt_count(t.eagain),
        plural(t.timeouts, "timeout", "timeouts"),
        fmt_duration_ns(t.timeout_wait_ns),
        plural(t.interrupted, "wait interrupted", "waits interrupted"),
    ));
    for line in crate::render::kinds::by_kind_lines(t) {
        out.line(line);
    }
    if t.other_errors > 0 {
        out.line(format!(
            "errors: {} failed (EFAULT/EINVAL…), not counted as blocks",
            plural(t.other_errors, "wait", "waits"),
        ));
    }
    if t.wake_calls > 0 {
        out.line(format!(
            "wakes: {} woke {}",
            plural(t.wake_calls, "call", "calls"),
            plural(t.threads_woken, "thread", "threads"),
        ));
    }
    if t.unfinished_waits > 0 {
        out.line(format!(
            "unfinished: {} still blocked when the recording stopped (not counted above)",
            plural(t.unfinished_waits, "wait", "waits"),
        ));
    }
    cost_line(out, &report.probe_cost, report.duration_ns);
    if let Some(idle) = &report.go_scheduler_idle {
        out.line(format!(
            "Go scheduler idle: {} of idle runtime threads, {} (not lock sites)",
            plural(idle.waits, "futex wait", "futex waits"),
            fmt_duration_ns(idle.total_wait_ns),
        ));
    }
    let losses = loss_lines(&report.losses);
    if losses.is_empty() {
        out.line("losses: none");
    } else {
        out.line("losses:");
        for loss in losses {
            out.line(format!("  {loss}"));
        }
    }
}

/// `pid 4242 (server) launched, exited with code 0; + 2 child processes`.
/// The targets in one line; `not_listed` exited children are counted with the
/// listed ones.
fn targets_summary(targets: &[Target], not_listed: u64) -> String {
    let named: Vec<&Target> = targets
        .iter()
        .filter(|t| t.origin != TargetOrigin::Child)
        .collect();
    let children = (targets.len() - named.len()) as u64 + not_listed;
    let mut parts: Vec<String> = named
        .iter()
        .take(MAX_HEADER_TARGETS)
        .map(|t| describe_target(t))
        .collect();
    if named.len() > MAX_HEADER_TARGETS {
        parts.push(format!(
            "and {} more",
            plural(
                (named.len() - MAX_HEADER_TARGETS) as u64,
                "process",
                "processes"
            )
        ));
    }
    if children > 0 {
        parts.push(format!(
            "+ {}",
            plural(children, "child process", "child processes")
        ));
    }
    if parts.is_empty() {
        "no target processes".to_owned()
    } else {
        parts.join("; ")
    }
}

fn describe_target(t: &Target) -> String {
    let how = match t.origin {
        TargetOrigin::Attach => "attached",
        TargetOrigin::Launch => "launched",
        TargetOrigin::Child => "child",
    };
    let state = match (t.exited, t.exit_code) {
        (true, Some(code)) => format!(", exited with code {code}"),
        (true, None) => ", exited".to_owned(),
        (false, _) => String::new(),
    };
    let comm = if t.comm.is_empty() {
        String::new()
    } else {
        format!(" ({})", cut_end(&clean(&t.comm), 40))
    };
    // Where it lives, for a containerized process: the pid its own tools show, and
    // its cgroup.
    let ns_pid = t
        .ns_pid
        .map(|p| format!(" [ns pid {p}]"))
        .unwrap_or_default();
    let cgroup = t
        .cgroup
        .as_deref()
        .map(|c| format!(" in cgroup {}", cut_start(&clean(c), 60)))
        .unwrap_or_default();
    format!("pid {}{ns_pid}{comm} {how}{cgroup}{state}", t.pid)
}

/// One line per non-zero loss counter, saying what it cost.
fn loss_lines(l: &Losses) -> Vec<String> {
    let all: [(u64, &str, &str, &str); 15] = [
        (
            l.stack_collisions,
            "stack collision",
            "stack collisions",
            "(time kept under '[unknown stack]', stack lost)",
        ),
        (
            l.stack_errors,
            "stack capture error",
            "stack capture errors",
            "(stack not captured)",
        ),
        (
            l.wait_map_full,
            "wait",
            "waits",
            "not aggregated: kernel wait map full (wait totals undercount)",
        ),
        (
            l.wake_map_full,
            "wake",
            "wakes",
            "not aggregated: kernel wake map full (wake totals undercount)",
        ),
        (
            l.inflight_map_full,
            "wait",
            "waits",
            "not timed: in-flight map full (start not recorded)",
        ),
        (
            l.target_map_full,
            "child process",
            "child processes",
            "not followed: target map full",
        ),
        (
            l.user_read_errors,
            "syscall argument",
            "syscall arguments",
            "unreadable from user memory",
        ),
        (
            l.unsymbolized_frames,
            "unsymbolized frame",
            "unsymbolized frames",
            "(shown as module+offset or address)",
        ),
        (
            l.user_stack_copy_errors,
            "user-stack copy",
            "user-stack copies",
            "not taken (frame-pointer stack used instead)",
        ),
        (
            l.edge_map_full,
            "wake → wait pairing",
            "wake → wait pairings",
            "not recorded: kernel edge map full (waits kept, their wakers missing)",
        ),
        (
            l.last_wake_lost,
            "wake",
            "wakes",
            "not remembered for pairing (their waiters count as unpaired)",
        ),
        (
            l.holder_windows_lost,
            "waker window",
            "waker windows",
            "without holder activity: the waker had exited",
        ),
        (
            l.shared_futex_unmapped,
            "shared futex call",
            "shared futex calls",
            "paired within their process only (its shared memory was not registered yet)",
        ),
        (
            l.blame_map_full,
            "wait interval",
            "wait intervals",
            "not charged to their holder: kernel blame map full (\"blocked by\" undercounts)",
        ),
        (
            l.truncated_stacks,
            "stack",
            "stacks",
            "truncated: CFI unwinding stopped before the thread's root",
        ),
    ];
    all.iter()
        .filter(|(n, ..)| *n > 0)
        .map(|&(n, one, many, meaning)| format!("{} {meaning}", plural(n, one, many)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_shows_namespaced_pid_and_cgroup() {
        let t = Target {
            pid: 4242,
            comm: "server".to_owned(),
            origin: TargetOrigin::Attach,
            ns_pid: Some(1),
            cgroup: Some("/lockprof-test".to_owned()),
            ..Target::default()
        };
        assert_eq!(
            targets_summary(&[t], 0),
            "pid 4242 [ns pid 1] (server) attached in cgroup /lockprof-test"
        );
        let plain = Target {
            pid: 7,
            comm: "app".to_owned(),
            exited: true,
            ..Target::default()
        };
        assert_eq!(targets_summary(&[plain], 0), "pid 7 (app) attached, exited");
    }
}
