//! `cargo xtask bench breakdown`: where lockprof's BPF time per futex call goes on
//! row (b)'s load of `bench overhead` (`futex-pingpong`, both threads on one CPU,
//! every futex call a blocked wait or the wake of one).
//!
//! Owns: sampling that CPU with `perf record -g` while `lockprof record` runs the
//! ping-pong; finding lockprof's programs' JIT images (the tags of the program fds it
//! holds, matched to `bpf_prog_<tag>_<name>` in `/proc/kallsyms`, each image ending
//! where the next kernel symbol begins); attributing each sample taken inside an image
//! to what the program was doing — its own instructions, or the kernel function it
//! had called (a helper, or a map function the verifier turned a helper call into),
//! grouped by kind ([`Part`]); and the table and `target/bench/breakdown.json`.
//! The context-switch program runs with interrupts off, where sampling cannot see it:
//! its time, and each program's total, come from the kernel's run-time statistics
//! over the same window. Must not: assert on a timing, or touch the programs
//! (read-only: `/proc`, perf).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::bpf_fds::{Prog, RunTimeStats, progs};
use super::jit_lines::{JitLines, Line};
use super::pingpong::last_cpu;
use crate::demo::{build_release_bins, require_root};
use crate::run::{Cmd, on_path, release_bin, say, show, target_dir, write_json};
use crate::setup::{apt_install, setup};

/// Samples per second of the sampled CPU (each stands for 50 µs of it).
const FREQ: u64 = 20_000;

/// How long the ping-pong runs before and after the sampled window, seconds.
const MARGIN_S: u64 = 2;

/// How long lockprof may take to load and attach its programs.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);

/// What a program was doing when a sample hit it: the kernel function it had called,
/// by kind, or its own instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The JIT'd instructions: the probe's logic, array map lookups (inlined by the
    /// verifier), atomic adds.
    Own,
    /// `bpf_probe_read_user` (the call-position key's frame records, a stack copy).
    UserReads,
    /// `bpf_ktime_get_ns`.
    Clock,
    /// Hash map lookups and updates.
    HashMaps,
    /// `bpf_get_current_pid_tgid`, the current task, its saved user registers.
    Ids,
    /// Stack walks (`bpf_get_stackid`).
    StackWalks,
    /// Any other kernel function.
    Other,
}

impl Part {
    const ALL: [Part; 7] = [
        Part::Own,
        Part::UserReads,
        Part::Clock,
        Part::HashMaps,
        Part::Ids,
        Part::StackWalks,
        Part::Other,
    ];

    /// The kind of kernel function `symbol` (called by a program).
    fn of_callee(symbol: &str) -> Part {
        let is = |prefixes: &[&str]| prefixes.iter().any(|p| symbol.starts_with(p));
        if is(&["bpf_probe_read_user", "copy_from_user_nofault"]) {
            Part::UserReads
        } else if is(&["bpf_ktime_get", "ktime_get", "read_tsc"]) {
            Part::Clock
        } else if symbol.contains("htab") || is(&["lookup_nulls_elem_raw", "jhash"]) {
            Part::HashMaps
        } else if is(&[
            "bpf_get_current_pid_tgid",
            "bpf_get_current_task",
            "bpf_task_pt_regs",
        ]) {
            Part::Ids
        } else if is(&["bpf_get_stack", "get_perf_callchain"]) {
            Part::StackWalks
        } else {
            Part::Other
        }
    }

    fn key(self) -> &'static str {
        match self {
            Part::Own => "own_instructions",
            Part::UserReads => "user_memory_reads",
            Part::Clock => "clock_reads",
            Part::HashMaps => "hash_maps",
            Part::Ids => "ids_and_registers",
            Part::StackWalks => "stack_walks",
            Part::Other => "other_kernel_functions",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Part::Own => "its own instructions (logic, arrays, atomics)",
            Part::UserReads => "user memory reads (bpf_probe_read_user)",
            Part::Clock => "clock reads (bpf_ktime_get_ns)",
            Part::HashMaps => "hash map lookups and updates",
            Part::Ids => "ids and registers (pid_tgid, task, pt_regs)",
            Part::StackWalks => "stack walks (bpf_get_stackid)",
            Part::Other => "other kernel functions",
        }
    }
}

/// A program's JIT image: `[start, end)` in kernel text.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Image {
    tag: String,
    name: String,
    start: u64,
    end: u64,
}

/// The images of the programs tagged `tags` in a `/proc/kallsyms` text: each symbol
/// `bpf_prog_<tag>_<name>` up to the next symbol's address.
fn images(kallsyms: &str, tags: &[&str]) -> Vec<Image> {
    let mut addrs: Vec<u64> = Vec::new();
    let mut found = Vec::new();
    for line in kallsyms.lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(_kind), Some(sym)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        addrs.push(addr);
        if let Some(rest) = sym.strip_prefix("bpf_prog_")
            && let Some((tag, name)) = rest.split_once('_')
            && tags.contains(&tag)
        {
            found.push((addr, tag.to_owned(), name.to_owned()));
        }
    }
    addrs.sort_unstable();
    found
        .into_iter()
        .map(|(start, tag, name)| {
            let next = addrs.partition_point(|&a| a <= start);
            Image {
                tag,
                name,
                start,
                end: addrs.get(next).copied().unwrap_or(u64::MAX),
            }
        })
        .collect()
}

/// The samples of `perf script -F ip,sym`: each one's call chain, innermost first.
fn samples(script: &str) -> Vec<Vec<(u64, &str)>> {
    script
        .split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter_map(|l| {
                    let (addr, sym) = l.trim().split_once(' ').unwrap_or((l.trim(), ""));
                    Some((u64::from_str_radix(addr, 16).ok()?, sym.trim()))
                })
                .collect::<Vec<_>>()
        })
        .filter(|chain| !chain.is_empty())
        .collect()
}

/// Samples per program and part, per source line of a program and part, and the
/// other kernel functions' names.
#[derive(Debug, Default, PartialEq, Eq)]
struct Attribution {
    samples: u64,
    parts: BTreeMap<(String, Part), u64>,
    lines: BTreeMap<(String, Line, Part), u64>,
    others: BTreeMap<String, u64>,
}

/// Attribute each sample whose chain passes through one of `images`: to the image's
/// own instructions when the sample is in it, else to the function the program had
/// called (the frame just inside it); and to the source line (`lines`, by image tag)
/// of the program's instruction — the call's, for a sample inside a callee.
fn attribute(
    chains: &[Vec<(u64, &str)>],
    images: &[Image],
    lines: &BTreeMap<String, JitLines>,
) -> Attribution {
    let mut a = Attribution {
        samples: chains.len() as u64,
        ..Attribution::default()
    };
    for chain in chains {
        let hit = chain.iter().enumerate().find_map(|(depth, &(ip, _))| {
            images
                .iter()
                .find(|i| (i.start..i.end).contains(&ip))
                .map(|i| (depth, ip, i))
        });
        let Some((depth, ip, image)) = hit else {
            continue;
        };
        let (part, at) = if depth == 0 {
            (Part::Own, ip)
        } else {
            let callee = chain[depth - 1].1;
            let part = Part::of_callee(callee);
            if part == Part::Other {
                *a.others.entry(callee.to_owned()).or_default() += 1;
            }
            // A return address: the call instruction ends just before it.
            (part, ip - 1)
        };
        *a.parts.entry((image.name.clone(), part)).or_default() += 1;
        if let Some(line) = lines.get(&image.tag).and_then(|l| l.at(at)) {
            *a.lines
                .entry((image.name.clone(), line.clone(), part))
                .or_default() += 1;
        }
    }
    a
}

/// The programs lockprof (`pid`) holds, once all of `wanted` are attached.
fn wait_for_programs(pid: u32, wanted: &[&str]) -> Result<(Vec<Prog>, Vec<Image>)> {
    let deadline = std::time::Instant::now() + ATTACH_TIMEOUT;
    loop {
        let progs = progs(pid);
        let tags: Vec<&str> = progs.iter().map(|p| p.tag.as_str()).collect();
        let kallsyms =
            std::fs::read_to_string("/proc/kallsyms").context("cannot read /proc/kallsyms")?;
        let images = images(&kallsyms, &tags);
        if wanted.iter().all(|w| images.iter().any(|i| i.name == *w)) {
            if images.iter().all(|i| i.start == 0) {
                bail!("/proc/kallsyms shows no addresses (kernel.kptr_restrict): run as root");
            }
            return Ok((progs, images));
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "lockprof did not attach {} within {} s",
                wanted.join(", "),
                ATTACH_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each program's run time between two readings, ns, by name (through its tag's
/// image; programs without one, e.g. not run yet, are left out).
fn run_ns_by_name(before: &[Prog], after: &[Prog], images: &[Image]) -> BTreeMap<String, u64> {
    let mut by_name = BTreeMap::new();
    for p in after {
        let Some(image) = images.iter().find(|i| i.tag == p.tag) else {
            continue;
        };
        let earlier = before.iter().find(|b| b.id == p.id).map_or(0, |b| b.run_ns);
        *by_name.entry(image.name.clone()).or_default() += p.run_ns.saturating_sub(earlier);
    }
    by_name
}

fn ensure_perf() -> Result<()> {
    if on_path("perf") {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!("perf is missing and apt-get is not available: install linux-perf");
    }
    say("bench breakdown: perf: missing, installing linux-perf");
    apt_install(&["linux-perf"])
}

/// The programs' readings around one window.
struct Window {
    before: Vec<Prog>,
    after: Vec<Prog>,
}

impl Window {
    /// Runs of program `tag` in the window.
    fn runs(&self, tag: &str) -> u64 {
        let runs = |progs: &[Prog]| {
            progs
                .iter()
                .filter(|p| p.tag == tag)
                .map(|p| p.runs)
                .sum::<u64>()
        };
        runs(&self.after).saturating_sub(runs(&self.before))
    }
}

/// Once lockprof (`pid`) has attached, with the run-time statistics on: let the
/// ping-pong run, read the programs' run time over `seconds`, then sample `cpu` for
/// as long into `perf_data` (a sample taken inside a program counts in its run time:
/// only the first window's times are used, and the second's run counts).
fn measure(pid: u32, cpu: &str, seconds: u64, perf_data: &std::path::Path) -> Result<Measured> {
    let (progs_now, images) =
        wait_for_programs(pid, &["futex_enter", "futex_exit", "sched_switch"])?;
    // Read while the programs are loaded (they go when lockprof exits).
    let mut lines = BTreeMap::new();
    for image in &images {
        if let Some(p) = progs_now.iter().find(|p| p.tag == image.tag) {
            match JitLines::of_program(p.id) {
                Ok(l) => {
                    lines.insert(image.tag.clone(), l);
                }
                Err(e) => say(&format!(
                    "bench breakdown: no source lines for {}: {e:#}",
                    image.name
                )),
            }
        }
    }
    let _stats = RunTimeStats::enable();
    std::thread::sleep(Duration::from_secs(MARGIN_S));
    let before = progs(pid);
    std::thread::sleep(Duration::from_secs(seconds));
    let timed = Window {
        before,
        after: progs(pid),
    };
    let before = progs(pid);
    Cmd::new("perf")
        .args([
            "record",
            "-q",
            "-g",
            "-a",
            "-C",
            cpu,
            "-F",
            &FREQ.to_string(),
            "-o",
        ])
        .arg(perf_data)
        .args(["--", "sleep", &seconds.to_string()])
        .capture_silently()
        .context("perf record")?;
    let sampled = Window {
        before,
        after: progs(pid),
    };
    Ok(Measured {
        timed,
        sampled,
        images,
        lines,
    })
}

/// What [`measure`] read.
struct Measured {
    timed: Window,
    sampled: Window,
    images: Vec<Image>,
    /// Each image's source lines, by tag.
    lines: BTreeMap<String, JitLines>,
}

pub(super) fn breakdown(seconds: u64) -> Result<()> {
    require_root("'cargo xtask bench breakdown'")?;
    setup()?;
    ensure_perf()?;
    build_release_bins()?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create '{}'", dir.display()))?;
    let cpu = last_cpu()?.to_string();
    let perf_data = dir.join("breakdown.perf.data");
    say(&format!(
        "bench breakdown: lockprof record of futex-pingpong on CPU {cpu}, perf -g at {FREQ} Hz on that CPU for {seconds} s"
    ));
    let mut lockprof = Command::new(release_bin("lockprof"))
        .args(["record", "-q", "-o"])
        .arg(dir.join("breakdown-report.json"))
        .args(["--", "taskset", "-c", &cpu])
        .arg(release_bin("futex-pingpong"))
        .args(["--seconds", &(2 * (seconds + MARGIN_S)).to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start lockprof record")?;
    let measured = measure(lockprof.id(), &cpu, seconds, &perf_data);
    // Waited for whatever happened: the ping-pong ends by itself.
    let status = lockprof.wait().context("lockprof record did not finish")?;
    let Measured {
        timed,
        sampled,
        images,
        lines,
    } = measured?;
    if !status.success() {
        bail!("lockprof record failed ({status})");
    }
    // The machine's futex calls in each window: its runs of `futex_enter` (the
    // ping-pong's, on a machine otherwise quiet).
    let enter_tag = images
        .iter()
        .find(|i| i.name == SAMPLED[0])
        .map(|i| i.tag.clone())
        .unwrap_or_default();
    let script = Cmd::new("perf")
        .args(["script", "-F", "ip,sym", "-i"])
        .arg(&perf_data)
        .capture_silently()
        .context("perf script")?;
    let script = String::from_utf8_lossy(&script.stdout);
    let result = Breakdown {
        cpu,
        seconds,
        timed_calls: timed.runs(&enter_tag) as f64,
        sampled_calls: sampled.runs(&enter_tag) as f64,
        attribution: attribute(&samples(&script), &images, &lines),
        run_ns: run_ns_by_name(&timed.before, &timed.after, &images),
    };
    print!("{}", result.table());
    let json_path = dir.join("breakdown.json");
    write_json(&json_path, &result.json())?;
    say(&format!("wrote {}", show(&json_path)));
    Ok(())
}

/// The programs whose columns the table shows (sampling sees only these two).
const SAMPLED: [&str; 2] = ["futex_enter", "futex_exit"];

/// How many source lines the table lists.
const HOT_LINES: usize = 20;

/// One source line's share of the sampled time.
struct HotLine {
    program: String,
    line: Line,
    /// ns per futex call, all parts.
    ns: f64,
    /// The part of `ns` in functions the line called, by kind.
    callees: Vec<(Part, f64)>,
}

impl HotLine {
    /// `file` shortened to its crate and path inside it (`profiler-ebpf/src/wait.rs`,
    /// `aya-ebpf-0.1.1/src/helpers.rs`).
    fn short_file(&self) -> &str {
        let f = self.line.file.as_str();
        let parts: Vec<usize> = f.match_indices('/').map(|(i, _)| i).collect();
        // The directory above `src/`.
        match f.rfind("/src/") {
            Some(src) => {
                let start = parts.iter().rev().find(|&&i| i < src).map_or(0, |i| i + 1);
                &f[start..]
            }
            None => f,
        }
    }

    fn cell(&self) -> String {
        let callees: Vec<String> = self
            .callees
            .iter()
            .map(|(p, ns)| format!("{} {ns:.1}", p.key()))
            .collect();
        let text: String = self.line.text.chars().take(60).collect();
        format!(
            "{:>6.1}  {:<11} {}:{}  {text}{}",
            self.ns,
            self.program,
            self.short_file(),
            self.line.number,
            if callees.is_empty() {
                String::new()
            } else {
                format!("  [{}]", callees.join(", "))
            }
        )
    }

    fn json(&self) -> Value {
        json!({
            "program": self.program,
            "file": self.short_file(),
            "line": self.line.number,
            "text": self.line.text,
            "ns_per_call": self.ns,
            "in_callees_ns_per_call": self.callees.iter()
                .map(|(p, ns)| (p.key().to_owned(), json!(ns)))
                .collect::<serde_json::Map<String, Value>>(),
        })
    }
}

/// One run's result.
struct Breakdown {
    cpu: String,
    seconds: u64,
    /// The machine's futex calls in the timed window.
    timed_calls: f64,
    /// … and in the sampled one.
    sampled_calls: f64,
    attribution: Attribution,
    /// Each program's run time over the timed window (statistics), ns.
    run_ns: BTreeMap<String, u64>,
}

impl Breakdown {
    /// ns per futex call of `samples` samples.
    fn sampled_ns(&self, samples: u64) -> f64 {
        samples as f64 * 1e9 / FREQ as f64 / self.sampled_calls.max(1.0)
    }

    fn part_ns(&self, program: &str, part: Part) -> f64 {
        self.sampled_ns(
            self.attribution
                .parts
                .get(&(program.to_owned(), part))
                .copied()
                .unwrap_or(0),
        )
    }

    fn program_sampled_ns(&self, program: &str) -> f64 {
        Part::ALL.iter().map(|&p| self.part_ns(program, p)).sum()
    }

    fn stats_ns(&self, program: &str) -> f64 {
        self.run_ns.get(program).copied().unwrap_or(0) as f64 / self.timed_calls.max(1.0)
    }

    /// The most sampled other kernel functions, with their ns per call.
    fn top_others(&self) -> Vec<(String, f64)> {
        let mut others: Vec<(&String, &u64)> = self.attribution.others.iter().collect();
        others.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        others
            .into_iter()
            .take(8)
            .map(|(name, &n)| (name.clone(), self.sampled_ns(n)))
            .collect()
    }

    /// The source lines with the most samples: program, line, ns per call, and the
    /// parts of it that were in callees (ns per call).
    fn hot_lines(&self, n: usize) -> Vec<HotLine> {
        let mut by_line: BTreeMap<(&str, &Line), BTreeMap<Part, u64>> = BTreeMap::new();
        for ((program, line, part), &count) in &self.attribution.lines {
            *by_line
                .entry((program.as_str(), line))
                .or_default()
                .entry(*part)
                .or_default() += count;
        }
        let mut hot: Vec<HotLine> = by_line
            .into_iter()
            .map(|((program, line), parts)| HotLine {
                program: program.to_owned(),
                line: line.clone(),
                ns: self.sampled_ns(parts.values().sum()),
                callees: parts
                    .into_iter()
                    .filter(|(p, _)| *p != Part::Own)
                    .map(|(p, c)| (p, self.sampled_ns(c)))
                    .collect(),
            })
            .collect();
        hot.sort_by(|a, b| b.ns.total_cmp(&a.ns));
        hot.truncate(n);
        hot
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nwhere lockprof's BPF time per futex call goes: futex-pingpong on CPU {}, {} s timed \
             ({:.0} futex calls), then {} s sampled ({} samples at {FREQ} Hz, {:.0} futex calls)",
            self.cpu,
            self.seconds,
            self.timed_calls,
            self.seconds,
            self.attribution.samples,
            self.sampled_calls
        );
        let _ = writeln!(
            out,
            "  {:<48} {:>12} {:>12} {:>8}",
            "ns per futex call", SAMPLED[0], SAMPLED[1], "both"
        );
        let row = |out: &mut String, label: &str, a: f64, b: f64| {
            let _ = writeln!(out, "  {label:<48} {a:>12.1} {b:>12.1} {:>8.1}", a + b);
        };
        for part in Part::ALL {
            row(
                &mut out,
                part.label(),
                self.part_ns(SAMPLED[0], part),
                self.part_ns(SAMPLED[1], part),
            );
        }
        row(
            &mut out,
            "sampled in the programs",
            self.program_sampled_ns(SAMPLED[0]),
            self.program_sampled_ns(SAMPLED[1]),
        );
        row(
            &mut out,
            "the programs by their run-time statistics",
            self.stats_ns(SAMPLED[0]),
            self.stats_ns(SAMPLED[1]),
        );
        let rest: f64 = self
            .run_ns
            .keys()
            .filter(|n| !SAMPLED.contains(&n.as_str()))
            .map(|n| self.stats_ns(n))
            .sum();
        let _ = writeln!(
            out,
            "  {:<48} {rest:>34.1}",
            "the other programs (statistics only)"
        );
        let all: f64 = self.run_ns.keys().map(|n| self.stats_ns(n)).sum();
        let _ = writeln!(out, "  {:<48} {all:>34.1}", "all programs (statistics)");
        let _ = writeln!(
            out,
            "  (sched_switch runs with interrupts off, where sampling never sees it; the \
             statistics, over a window of their own, include their clock reads)"
        );
        let hot = self.hot_lines(HOT_LINES);
        if !hot.is_empty() {
            let _ = writeln!(
                out,
                "  the {} hottest source lines of the two (ns per futex call; in callees):",
                hot.len()
            );
            for h in &hot {
                let _ = writeln!(out, "  {}", h.cell());
            }
        }
        let others = self.top_others();
        if !others.is_empty() {
            let list: Vec<String> = others
                .iter()
                .map(|(name, ns)| format!("{name} {ns:.1}"))
                .collect();
            let _ = writeln!(out, "  other kernel functions: {}", list.join(", "));
        }
        out
    }

    fn json(&self) -> Value {
        let programs: serde_json::Map<String, Value> = self
            .run_ns
            .keys()
            .map(|name| {
                let parts: serde_json::Map<String, Value> = Part::ALL
                    .iter()
                    .map(|&p| (p.key().to_owned(), json!(self.part_ns(name, p))))
                    .collect();
                (
                    name.clone(),
                    json!({
                        "stats_ns_per_call": self.stats_ns(name),
                        "sampled_ns_per_call": self.program_sampled_ns(name),
                        "sampled_parts_ns_per_call": parts,
                    }),
                )
            })
            .collect();
        json!({
            "cpu": self.cpu,
            "seconds": self.seconds,
            "frequency_hz": FREQ,
            "samples": self.attribution.samples,
            "futex_calls_timed": self.timed_calls,
            "futex_calls_sampled": self.sampled_calls,
            "programs": programs,
            "hot_lines": self
                .hot_lines(HOT_LINES)
                .iter()
                .map(HotLine::json)
                .collect::<Vec<_>>(),
            "other_kernel_functions_ns_per_call": self
                .top_others()
                .into_iter()
                .map(|(name, ns)| json!({"function": name, "ns_per_call": ns}))
                .collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "\
ffffffff81000000 T _stext
ffffffffc0026f60 t bpf_prog_56e2f3a83d8dea16_futex_enter\t[bpf]
ffffffffc00288d0 t bpf_prog_206220100bfd04f9_futex_exit\t[bpf]
ffffffffc002d470 t bpf_prog_a9a4cbf1df4789c3_sched_switch\t[bpf]
ffffffffc002d9f0 t bpf_prog_0123456789abcdef_someone_elses\t[bpf]
";

    fn ours() -> Vec<Image> {
        images(
            KALLSYMS,
            &["56e2f3a83d8dea16", "206220100bfd04f9", "a9a4cbf1df4789c3"],
        )
    }

    #[test]
    fn a_programs_image_runs_to_the_next_symbol() {
        let images = ours();
        assert_eq!(images.len(), 3, "only the tags asked for");
        assert_eq!(images[0].name, "futex_enter");
        assert_eq!(
            (images[0].start, images[0].end),
            (0xffff_ffff_c002_6f60, 0xffff_ffff_c002_88d0)
        );
        assert_eq!(images[1].tag, "206220100bfd04f9");
        assert_eq!(images[2].end, 0xffff_ffff_c002_d9f0);
    }

    /// `perf script -F ip,sym` output of three samples: in `futex_exit`'s own code,
    /// in a helper it called, and in a syscall with no program on the chain.
    const SCRIPT: &str = "
\tffffffffc0028a00 bpf_prog_206220100bfd04f9_futex_exit
\tffffffff8135a000 perf_syscall_exit
\tffffffff8223df91 do_syscall_64

\tffffffff81400000 copy_from_user_nofault
\tffffffff81400100 bpf_probe_read_user
\tffffffffc0027000 bpf_prog_56e2f3a83d8dea16_futex_enter
\tffffffff8135a100 perf_syscall_enter

\tffffffff81500000 __htab_map_lookup_elem
\tffffffffc0027100 bpf_prog_56e2f3a83d8dea16_futex_enter

\tffffffff81600000 its_return_thunk
\tffffffffc0028b00 bpf_prog_206220100bfd04f9_futex_exit

\tffffffff816ef1ed generic_permission
\tffffffff8223df91 do_syscall_64
\t           f8090 __GI___libc_open
";

    #[test]
    fn perf_script_blocks_are_chains_innermost_first() {
        let chains = samples(SCRIPT);
        assert_eq!(chains.len(), 5);
        assert_eq!(
            chains[1][0],
            (0xffff_ffff_8140_0000, "copy_from_user_nofault")
        );
        assert_eq!(chains[4][2], (0xf8090, "__GI___libc_open"));
    }

    #[test]
    fn a_sample_goes_to_what_the_program_had_called() {
        let a = attribute(&samples(SCRIPT), &ours(), &BTreeMap::new());
        assert_eq!(a.samples, 5);
        let n = |prog: &str, part| a.parts.get(&(prog.to_owned(), part)).copied();
        assert_eq!(n("futex_exit", Part::Own), Some(1));
        // The leaf is in copy_from_user_nofault, called by the helper the program
        // called: the helper names the part.
        assert_eq!(n("futex_enter", Part::UserReads), Some(1));
        assert_eq!(n("futex_enter", Part::HashMaps), Some(1));
        assert_eq!(n("futex_exit", Part::Other), Some(1));
        assert_eq!(a.others.get("its_return_thunk"), Some(&1));
        // The open() sample touches no program.
        assert_eq!(a.parts.values().sum::<u64>(), 4);
    }

    #[test]
    fn callees_are_grouped_by_kind() {
        assert_eq!(Part::of_callee("bpf_probe_read_user"), Part::UserReads);
        assert_eq!(Part::of_callee("ktime_get_mono_fast_ns"), Part::Clock);
        assert_eq!(Part::of_callee("__htab_map_lookup_elem"), Part::HashMaps);
        assert_eq!(Part::of_callee("lookup_nulls_elem_raw"), Part::HashMaps);
        assert_eq!(Part::of_callee("bpf_get_current_pid_tgid"), Part::Ids);
        assert_eq!(Part::of_callee("bpf_task_pt_regs"), Part::Ids);
        assert_eq!(Part::of_callee("bpf_get_stackid_raw_tp"), Part::StackWalks);
        assert_eq!(Part::of_callee("its_return_thunk"), Part::Other);
    }

    #[test]
    fn a_windows_runs_are_the_difference_of_its_readings() {
        let prog = |id, tag: &str, runs| Prog {
            id,
            kind: 5,
            tag: tag.to_owned(),
            run_ns: 0,
            runs,
        };
        let w = Window {
            before: vec![prog(1, "aa", 10), prog(2, "bb", 5)],
            after: vec![prog(1, "aa", 25), prog(2, "bb", 9), prog(3, "aa", 1)],
        };
        // Two programs with one tag (the same code loaded twice) count together.
        assert_eq!(w.runs("aa"), 16);
        assert_eq!(w.runs("bb"), 4);
        assert_eq!(w.runs("cc"), 0);
    }

    #[test]
    fn ns_per_call_are_samples_over_calls() {
        let mut attribution = attribute(&samples(SCRIPT), &ours(), &BTreeMap::new());
        // 200 samples at 20 kHz: 10 ms of the CPU.
        attribution
            .parts
            .insert(("futex_enter".to_owned(), Part::Clock), 200);
        let prog = |id, tag: &str, run_ns| Prog {
            id,
            kind: 5,
            tag: tag.to_owned(),
            run_ns,
            runs: 0,
        };
        let before = [
            prog(1, "56e2f3a83d8dea16", 1_000),
            prog(3, "a9a4cbf1df4789c3", 0),
        ];
        let after = [
            prog(1, "56e2f3a83d8dea16", 2_001_000),
            prog(3, "a9a4cbf1df4789c3", 500_000),
            prog(9, "ffffffffffffffff", 7),
        ];
        let b = Breakdown {
            cpu: "1".to_owned(),
            seconds: 1,
            timed_calls: 100_000.0,
            sampled_calls: 100_000.0,
            attribution,
            run_ns: run_ns_by_name(&before, &after, &ours()),
        };
        assert!((b.part_ns("futex_enter", Part::Clock) - 100.0).abs() < 1e-9);
        assert!((b.stats_ns("futex_enter") - 20.0).abs() < 1e-9);
        assert!((b.stats_ns("sched_switch") - 5.0).abs() < 1e-9);
        assert_eq!(b.run_ns.len(), 2, "a program of no image is left out");
        let table = b.table();
        assert!(table.contains("clock reads (bpf_ktime_get_ns)"), "{table}");
        let json = b.json();
        assert_eq!(
            json["programs"]["futex_enter"]["sampled_parts_ns_per_call"]["clock_reads"],
            json!(100.0)
        );
        assert_eq!(
            json["other_kernel_functions_ns_per_call"][0]["function"],
            "its_return_thunk"
        );
    }
}
