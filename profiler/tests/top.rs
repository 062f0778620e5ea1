//! `lockprof top` end to end, in a real terminal: tmux runs it at a fixed size (160x45)
//! against the contended fixture, the test drives it with `send-keys` (sort, filter,
//! detail, save, quit) and reads the screen with `capture-pane`, then checks the
//! saved report and that the terminal was given back. `#[ignore]`d like the other
//! root tests; `cargo xtask test` runs them as root (and `cargo xtask setup` installs
//! tmux). Waiting for text on screen uses a generous deadline: it bounds a hang, it
//! does not assert on timing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{demo_bin, find_site, lockprof, repo_root, require_root, tag_line, tempdir};

/// A tmux server of our own (`-L`, its own socket, so other tmux users on the machine
/// are never touched), killed on drop so a failing test leaves nothing running.
struct Tmux {
    name: String,
}

fn tmux(name: &str) -> Command {
    let mut cmd = Command::new("tmux");
    cmd.args(["-L", name]);
    cmd
}

impl Tmux {
    /// Start `shell_cmd` in a detached 160x45 session.
    fn start(shell_cmd: &str) -> Self {
        assert!(
            Command::new("tmux").arg("-V").output().is_ok(),
            "tmux is not installed: run `cargo xtask setup`"
        );
        let name = format!("lockprof-top-test-{}", std::process::id());
        let _ = tmux(&name).arg("kill-server").output();
        let status = tmux(&name)
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "160",
                "-y",
                "45",
                shell_cmd,
            ])
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Self { name }
    }

    fn screen(&self) -> String {
        let out = tmux(&self.name)
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether the pane is showing the alternate screen (a TUI is up).
    fn alternate_screen(&self) -> bool {
        let out = tmux(&self.name)
            .args(["display-message", "-p", "-t", &self.name, "#{alternate_on}"])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    fn keys(&self, keys: &[&str]) {
        let status = tmux(&self.name)
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Wait until every needle is on screen; panic with the screen after 60 s.
    fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            let screen = self.screen();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {needles:?} on screen; last screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = tmux(&self.name).arg("kill-server").output();
    }
}

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
#[ignore = "needs root + BPF + tmux: cargo xtask test"]
fn top_shows_the_fixture_site_and_sorts_filters_details_saves_and_quits() {
    require_root();
    let dir = tempdir();
    let saved = dir.join("saved.json");
    // The shell reports lockprof's exit code and whether the terminal is back in
    // canonical mode, then stays open so the pane can still be read.
    let cmd = format!(
        "{} top --interval 300ms -o {} -- {} --iters 40000; \
         echo LOCKPROF-EXIT=$?; \
         if stty -a | grep -q -- ' icanon'; then echo TERMINAL=cooked; else echo TERMINAL=raw; fi; \
         sleep 600",
        quoted(&lockprof()),
        quoted(&saved),
        quoted(&demo_bin("lockprof-fixture")),
    );
    let tmux = Tmux::start(&cmd);

    let screen = tmux.wait_for(&["lockprof top", "hot_section", "mutex", "alive"]);
    assert!(
        tmux.alternate_screen(),
        "top is not on the alternate screen:\n{screen}"
    );
    // Sort by waits, then by max: the marker moves to that column.
    tmux.keys(&["w"]);
    tmux.wait_for(&["waits/i▼"]);
    tmux.keys(&["m"]);
    tmux.wait_for(&["max/i▼"]);
    // Filter: the cold site goes, the hot one stays.
    tmux.keys(&["/", "h", "o", "t", "_", "s", "e", "c", "Enter"]);
    tmux.wait_for(&["[filter 'hot_sec']", "matching 'hot_sec'", "hot_section"]);
    // Detail of the hot site, then back.
    // Detail of the hot site: "why" (the holders that woke the waits) comes first,
    // then the stacks; threads are last and collapsed.
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for(&["blocked by: the holders", "waiter stacks ("]);
    assert!(
        screen.find("blocked by: the holders") < screen.find("waiter stacks ("),
        "the holders must come before the stacks:\n{screen}"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_for(&["sites 1 of"]);
    // Pause and resume, reset the counters.
    tmux.keys(&["p"]);
    tmux.wait_for(&["[PAUSED]"]);
    tmux.keys(&["p"]);
    tmux.keys(&["r"]);
    tmux.wait_for(&["counters reset"]);
    let screen = tmux.screen();
    assert!(!screen.contains("[PAUSED]"), "still paused:\n{screen}");
    tmux.keys(&["s"]);
    tmux.wait_for(&["saved to"]);
    tmux.keys(&["q"]);
    let screen = tmux.wait_for(&["LOCKPROF-EXIT=0", "TERMINAL="]);
    assert!(
        screen.contains("TERMINAL=cooked"),
        "raw mode left on:\n{screen}"
    );
    assert!(
        !screen.contains("sites 1 of"),
        "the UI stayed on screen:\n{screen}"
    );
    assert!(!tmux.alternate_screen(), "alternate screen not left");

    let report = profiler::report::json::read(&saved).expect("the saved report reads back");
    let line = tag_line("demo-targets/src/bin/lockprof-fixture.rs", "fixture.hot");
    let (_, site) = find_site(&report, "hot_section", "lockprof-fixture.rs", line)
        .unwrap_or_else(|| panic!("no hot_section site at line {line}: {:#?}", report.sites));
    assert!(site.waits > 0);
    let timeline = report
        .timeline
        .as_ref()
        .expect("a saved top report has a timeline");
    assert!(!timeline.intervals.is_empty());
    assert_eq!(timeline.interval_ns, 300_000_000);
    assert_eq!(site.series.len(), timeline.intervals.len());
    assert_eq!(
        site.series.iter().map(|c| c.waits).sum::<u64>(),
        site.waits,
        "the series adds up to the cumulative count"
    );
}

#[test]
#[ignore = "needs tmux: cargo xtask test"]
fn top_replays_a_saved_report_without_root() {
    let sample = repo_root().join("profiler/tests/fixtures/report-sample.json");
    let cmd = format!(
        "{} top --replay {}; echo LOCKPROF-EXIT=$?; sleep 600",
        quoted(&lockprof()),
        quoted(&sample)
    );
    let tmux = Tmux::start(&cmd);
    tmux.wait_for(&["[replay]", "Before::contains", "sites 3 of 3"]);
    tmux.keys(&["Down", "Enter"]);
    tmux.wait_for(&["wait_for_change", "blocked by: the holders"]);
    tmux.keys(&["q"]);
    tmux.wait_for(&["LOCKPROF-EXIT=0"]);
}

#[test]
#[ignore = "needs root + BPF + tmux: cargo xtask test"]
fn top_keeps_the_last_data_on_screen_when_the_target_exits() {
    require_root();
    let cmd = format!(
        "{} top -- {}; echo LOCKPROF-EXIT=$?; sleep 600",
        quoted(&lockprof()),
        quoted(&demo_bin("lockprof-fixture")),
    );
    let tmux = Tmux::start(&cmd);
    // The fixture runs for well under a second; the screen then says so, and keeps
    // its site, without a key being pressed.
    tmux.wait_for(&["[target exited: final data]", "exited)", "hot_section"]);
    tmux.keys(&["q"]);
    tmux.wait_for(&["LOCKPROF-EXIT=0"]);
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn record_interval_writes_a_timeline_that_adds_up() {
    require_root();
    let fixture = demo_bin("lockprof-fixture");
    let rec = common::record(&[
        "-q",
        "--interval",
        "100ms",
        "--",
        &fixture.display().to_string(),
        "--iters",
        "1500",
    ]);
    let report = &rec.report;
    let timeline = report.timeline.as_ref().expect("record writes a timeline");
    assert_eq!(timeline.interval_ns, 100_000_000);
    assert!(timeline.intervals.len() >= 2, "{timeline:?}");
    // Consecutive, starting at 0, ending when the recording did.
    let mut at = 0;
    for i in &timeline.intervals {
        assert_eq!(i.start_ns, at);
        at += i.duration_ns;
    }
    assert_eq!(at, report.duration_ns);
    let sum =
        |f: fn(&profiler::report::Interval) -> u64| timeline.intervals.iter().map(f).sum::<u64>();
    assert_eq!(sum(|i| i.waits), report.totals.waits);
    assert_eq!(sum(|i| i.wait_ns), report.totals.wait_ns);
    assert_eq!(
        sum(|i| i.contention_wait_ns),
        report.totals.contention_wait_ns
    );
    for site in &report.sites {
        assert_eq!(site.series.len(), timeline.intervals.len(), "{}", site.id);
        assert_eq!(
            site.series.iter().map(|c| c.waits).sum::<u64>(),
            site.waits,
            "{}",
            site.id
        );
        assert_eq!(
            site.series.iter().map(|c| c.wait_ns).sum::<u64>(),
            site.total_wait_ns,
            "{}",
            site.id
        );
    }
}

#[test]
#[ignore = "needs root + BPF + tmux: cargo xtask test"]
fn top_saves_the_report_and_exits_when_its_terminal_hangs_up() {
    require_root();
    let dir = tempdir();
    let saved = dir.join("hangup.json");
    // As a user runs it: from a shell, which stays the terminal's session leader.
    let cmd = format!(
        "{} top --interval 300ms -o {} -- {} --iters 100000000; sleep 600",
        quoted(&lockprof()),
        quoted(&saved),
        quoted(&demo_bin("lockprof-fixture")),
    );
    let tmux = Tmux::start(&cmd);
    tmux.wait_for(&["lockprof top", "alive", "waits/s"]);
    // Our own lockprof: the only process naming this test's temporary file.
    let pgrep = Command::new("pgrep")
        .args(["-f", &saved.display().to_string()])
        .output()
        .expect("run pgrep");
    let pid: u32 = String::from_utf8_lossy(&pgrep.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .find(|&p: &u32| {
            std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e.ends_with("lockprof"))
        })
        .expect("lockprof top's pid");
    // The terminal goes away (as when an ssh session drops).
    drop(tmux);
    let deadline = Instant::now() + Duration::from_mins(1);
    let running = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    };
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "lockprof top (pid {pid}) still runs a minute after its terminal hung up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = profiler::report::json::read(&saved).expect("the report saved at hang-up");
    assert!(
        report.sites.iter().any(|s| s
            .function
            .as_deref()
            .is_some_and(|f| f.contains("hot_section"))),
        "no hot_section site in the saved report"
    );
}
