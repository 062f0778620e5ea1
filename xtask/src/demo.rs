//! `cargo xtask demo [NAME]`: each demo's before and after run under lockprof, and a
//! summary that shows the fix in the demo's own metric and in lockprof's report.
//!
//! Owns: running `lockprof record -q -o target/lockprof-demo/<demo>-<variant>.json --
//! demo-targets <demo> <variant> <short knobs>` and rendering the side-by-side summary.
//! The demo's JSON line and lockprof's text report share stdout; the summary takes the
//! former from stdout and lockprof's findings from the JSON report file, never from the
//! text. Must not: assert anything (that is `profiler/tests/demos.rs`) or use the spec
//! knobs (that is `cargo xtask bench demos`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::demo_go;
use crate::demos::{self, DemoInfo, DemoRun, improvement, show_ratio, show_value};
use crate::report::{LockReport, SiteRow, human_ns};
use crate::run::{Cmd, is_root, release_bin, say, show, target_dir};
use crate::setup::setup;

/// Sites shown per variant.
const TOP: usize = 3;
/// Width the prose lines are wrapped at.
const WIDTH: usize = 92;

/// Builds lockprof and every demo binary (release): the whole workspace, the package
/// set `cargo xtask build` and `cargo xtask test` use, so that they all resolve the same
/// dependency features and share one set of artifacts.
pub fn build_release_bins() -> Result<()> {
    say("building lockprof and the demo targets (release)");
    Cmd::cargo()
        .args(["build", "--release", "--workspace"])
        .run()
}

/// Refuses early, before any build, when lockprof cannot run.
pub fn require_root(what: &str) -> Result<()> {
    if is_root() {
        Ok(())
    } else {
        bail!(
            "{what} runs lockprof, which loads eBPF programs and so needs root: \
             run it as root (e.g. 'sudo -E env PATH=\"$PATH\" cargo xtask …')"
        )
    }
}

/// One variant's run under lockprof.
struct Profiled {
    run: DemoRun,
    report: LockReport,
    json: PathBuf,
}

pub fn demo(name: Option<&str>) -> Result<()> {
    // The Go demo runs with the others, or alone as `cargo xtask demo go-kmutex`.
    let go = name.is_none_or(|n| n == demo_go::INFO.name);
    let selected = if name == Some(demo_go::INFO.name) {
        Vec::new()
    } else {
        demos::select(name)?
    };
    require_root("'cargo xtask demo'")?;
    setup()?;
    build_release_bins()?;
    let out_dir = target_dir().join("lockprof-demo");
    fs::create_dir_all(&out_dir).with_context(|| format!("create '{}'", out_dir.display()))?;
    let mut overview = Vec::new();
    let rust_demo = release_bin("demo-targets");
    for info in &selected {
        let before = profile(info, &rust_demo, "before", &out_dir)?;
        let after = profile(info, &rust_demo, "after", &out_dir)?;
        println!("{}", summary(info, &before, &after));
        overview.push((info.name, before, after));
    }
    if go {
        let info = &demo_go::INFO;
        let bin = demo_go::build()?;
        let before = profile(info, &bin, "before", &out_dir)?;
        let after = profile(info, &bin, "after", &out_dir)?;
        println!("{}", summary(info, &before, &after));
        overview.push((info.name, before, after));
    }
    if overview.len() > 1 {
        println!("{}", overview_table(&overview));
    }
    let lockprof = show(&release_bin("lockprof"));
    println!(
        "\nlockprof's JSON reports: {}/<demo>-<before|after>.json. The full report (every \
         site, its threads, stacks and wakers):\n  {lockprof} report {}/{}-before.json",
        show(&out_dir),
        show(&out_dir),
        selected.first().map_or(demo_go::INFO.name, |d| d.name),
    );
    Ok(())
}

/// Run `program` (the `demo-targets` binary, whose first argument is the demo's name,
/// or the Go demo's own binary) for `variant` under lockprof.
fn profile(info: &DemoInfo, program: &Path, variant: &str, out_dir: &Path) -> Result<Profiled> {
    let json = out_dir.join(format!("{}-{variant}.json", info.name));
    // A stale report from an earlier run must not pass for this one.
    let _ = fs::remove_file(&json);
    say(&format!(
        "demo {} {variant}: running under lockprof",
        info.name
    ));
    let out = Cmd::new(release_bin("lockprof"))
        .args(["record", "-q", "-o"])
        .arg(&json)
        .arg("--")
        .arg(program)
        .args((program == release_bin("demo-targets")).then_some(info.name))
        .arg(variant)
        .args(info.short_args)
        .capture()
        .with_context(|| format!("demo {} {variant} under lockprof", info.name))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run = DemoRun::parse(&stdout).with_context(|| format!("demo {} {variant}", info.name))?;
    let report = LockReport::read(&json)?;
    Ok(Profiled { run, report, json })
}

fn summary(info: &DemoInfo, before: &Profiled, after: &Profiled) -> String {
    let mut s = String::new();
    let rule = "═".repeat(WIDTH.saturating_sub(info.name.len() + 6));
    let _ = writeln!(s, "\n══ {} {rule}", info.name);
    let _ = writeln!(s, "{}", info.upstream);
    s.push_str(&wrap(&format!("The bug: {}", info.bug), WIDTH, ""));

    // The demo's own metrics, before | after.
    let (b, a) = (&before.run, &after.run);
    let r = improvement(b.value, a.value, b.lower_is_better);
    let verdict = if (0.95..=1.05).contains(&r) {
        "about the same (within 5%)".to_owned()
    } else if r >= 1.0 || r.is_nan() {
        format!("{} better", show_ratio(r))
    } else {
        format!("{} worse", show_ratio(1.0 / r))
    };
    let direction = if b.lower_is_better {
        "lower is better"
    } else {
        "higher is better"
    };
    let head = format!("{} ({})", b.headline, b.unit);
    let _ = writeln!(
        s,
        "\n  {:<30} {:>12} {:>12}",
        "demo metric", "before", "after"
    );
    let _ = writeln!(
        s,
        "  {head:<30} {:>12} {:>12}   {verdict} ({direction})",
        show_value(b.value),
        show_value(a.value)
    );
    for m in info.extra_metrics {
        let cell = |run: &DemoRun| run.metric(m).map_or_else(|| "-".to_owned(), show_value);
        let _ = writeln!(s, "  {m:<30} {:>12} {:>12}", cell(b), cell(a));
    }

    // lockprof's view.
    let _ = writeln!(
        s,
        "\n  lockprof: top {TOP} lock sites by total wait (summed over threads)"
    );
    for (variant, p) in [("before", before), ("after", after)] {
        let rep = &p.report;
        let share = if rep.wait_ns() > 0 {
            format!(
                "{:.0}% lock contention",
                100.0 * rep.contention_wait_ns() as f64 / rep.wait_ns() as f64
            )
        } else {
            "no waits".to_owned()
        };
        let _ = writeln!(
            s,
            "  {variant:<6}  {} blocked waits, {} waiting in all ({share})",
            rep.waits(),
            human_ns(rep.wait_ns())
        );
        let sites = rep.top_sites(TOP);
        if sites.is_empty() {
            let _ = writeln!(s, "          (no lock sites: nothing blocked)");
        }
        for (i, site) in sites.iter().enumerate() {
            let _ = writeln!(s, "    {}. {}", i + 1, site_line(site));
        }
    }
    s.push_str(&wrap(&format!("Expect: {}", info.look_for), WIDTH, "  "));
    let _ = write!(
        s,
        "  lockprof reports: {} and {}",
        show(&before.json),
        show(&after.json),
    );
    s
}

fn site_line(site: &SiteRow) -> String {
    let what = if site.contention {
        "contention"
    } else {
        "event wait"
    };
    let waits = if site.waits == 1 { "wait " } else { "waits" };
    let mut line = format!(
        "{:<12} {:>7} {:>7} {waits}  {what:<10}  {}  {}",
        site.kind,
        human_ns(site.total_wait_ns),
        site.waits,
        site.function,
        site.place
    );
    if !site.threads.is_empty() {
        // Under the function name: the caller prints "    N. " before the line.
        let _ = write!(line, "\n{:55}waited: {}", "", site.threads);
    }
    if !site.woken_by.is_empty() && site.contention {
        let _ = write!(line, "\n{:55}woken by: {}", "", site.woken_by);
    }
    line
}

fn overview_table(rows: &[(&str, Profiled, Profiled)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n══ overview {}", "═".repeat(WIDTH - 12));
    let _ = writeln!(
        s,
        "  {:<16} {:<30} {:>10} {:>10} {:>10}   {:>9} {:>9}",
        "demo", "headline", "before", "after", "better", "wait bef.", "wait aft."
    );
    for (name, b, a) in rows {
        let r = improvement(b.run.value, a.run.value, b.run.lower_is_better);
        let _ = writeln!(
            s,
            "  {name:<16} {:<30} {:>10} {:>10} {:>10}   {:>9} {:>9}",
            format!("{} ({})", b.run.headline, b.run.unit),
            show_value(b.run.value),
            show_value(a.run.value),
            show_ratio(r),
            human_ns(b.report.contention_wait_ns()),
            human_ns(a.report.contention_wait_ns()),
        );
    }
    let _ = write!(
        s,
        "  (wait = lock-contention wait lockprof measured, summed over threads; event waits excluded)"
    );
    s
}

/// Greedy word wrap; every line gets `indent` and a newline.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_short_and_words_whole() {
        let text = "one two three four five six seven eight nine ten";
        let w = wrap(text, 16, "  ");
        assert!(w.lines().all(|l| l.chars().count() <= 16), "{w}");
        assert!(w.lines().all(|l| l.starts_with("  ")));
        assert_eq!(w.split_whitespace().collect::<Vec<_>>().join(" "), text);
    }

    #[test]
    fn site_line_says_contention_or_event_wait() {
        let row = SiteRow {
            kind: "condvar".into(),
            contention: false,
            function: "KeyMutex::lock".into(),
            place: "kmutex.rs:120".into(),
            waits: 228,
            total_wait_ns: 8_000_000_000,
            threads: "pull-* ×20".into(),
            woken_by: String::new(),
        };
        let line = site_line(&row);
        assert!(line.contains("event wait"), "{line}");
        assert!(
            line.contains("8.00s") && line.contains("KeyMutex::lock  kmutex.rs:120"),
            "{line}"
        );
    }
}
