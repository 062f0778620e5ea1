//! Root-only tests of how targets are found and symbolized on real systems: a process
//! in its own mount and PID namespace (a container), `--cgroup`, `--name`, stripped
//! binaries with split debug files, and processes that exec.
//!
//! Each test is `#[ignore]`d so `cargo test` stays unprivileged; `cargo xtask test`
//! runs them as root with one test thread, and `require_root` turns a missing privilege
//! into a failure. One test needs no root, only the demo binaries, which that step
//! builds.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{demo_bin, find_site, record, require_root, tag_line, tempdir, top_sites};
use profiler::report::{Report, Site, TargetOrigin};

const FIXTURE_SRC: &str = "demo-targets/src/bin/lockprof-fixture.rs";

/// The fixture's hot site, which must be in `report` with its exact `file:line`.
fn hot_site(report: &Report) -> &Site {
    let line = tag_line(FIXTURE_SRC, "fixture.hot");
    find_site(report, "hot_section", "lockprof-fixture.rs", line)
        .unwrap_or_else(|| panic!("no hot site at line {line}:\n{}", top_sites(report, 6)))
        .1
}

/// Kills its processes (and waits for them) when dropped, so a failed assertion does
/// not leave a fixture running.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Wait until `pid` runs `exe_name` (after its exec), with a generous deadline.
fn wait_for_exec(pid: u32, exe_name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe.file_name().is_some_and(|n| n == exe_name) {
            return;
        }
        assert!(Instant::now() < deadline, "pid {pid} never ran {exe_name}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a setup command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn a_process_in_its_own_mount_and_pid_namespace_is_symbolized_and_shows_both_pids() {
    require_root();
    // The fixture runs from a tmpfs mounted only inside a new mount namespace: its
    // path does not exist on the host, so symbols must come through the process
    // (map_files or /proc/PID/root). It is PID 1 of a new PID namespace.
    let fixture = demo_bin("lockprof-fixture");
    let dir = "/mnt/lockprof-ns-test";
    let script = format!(
        "mkdir -p {dir} && mount -t tmpfs lockprof-ns {dir} && cp {} {dir}/lockprof-fixture \
         && exec {dir}/lockprof-fixture --start-delay-ms 1500 --threads 3 --iters 120",
        fixture.display()
    );
    let unshare = Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "--mount-proc", "sh", "-c"])
        .arg(&script)
        .stdout(Stdio::null())
        .spawn()
        .expect("run unshare (util-linux)");
    let unshare_pid = unshare.id();
    let mut procs = Procs(vec![unshare]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: u32 = loop {
        let children =
            std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
                .unwrap_or_default();
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "unshare started no child");
        std::thread::sleep(Duration::from_millis(10));
    };
    wait_for_exec(pid, "lockprof-fixture");
    assert!(
        !Path::new(dir).join("lockprof-fixture").exists(),
        "the binary must be invisible from the host for this test to mean anything"
    );

    let r = record(&["-p", &pid.to_string()]);
    assert!(procs.0[0].wait().unwrap().success());
    procs.0.clear();
    // The mount point (made on the shared filesystem); its tmpfs went with the namespace.
    let _ = std::fs::remove_dir(dir);
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);

    // Symbolized after the namespace (and its tmpfs) is gone: from the held file.
    let site = hot_site(&r.report);
    assert_eq!(
        site.module.as_deref(),
        Some("/mnt/lockprof-ns-test/lockprof-fixture"),
        "the module as the target sees it"
    );
    assert_eq!(site.threads.len(), 3);
    let t = &r.report.targets[0];
    assert_eq!(
        (t.pid, t.ns_pid),
        (pid, Some(1)),
        "host pid and namespaced pid"
    );
    assert!(
        r.stdout
            .contains(&format!("pid {pid} [ns pid 1] (lockprof-fixtur) attached")),
        "{}",
        r.stdout
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn a_stripped_binary_in_a_container_uses_the_debug_files_of_its_image() {
    require_root();
    // A minimal image: the stripped fixture, its libraries, and its debug file under
    // the image's own /usr/lib/debug, run chrooted in new mount and PID namespaces.
    let fixture = demo_bin("lockprof-fixture");
    let rootfs = tempdir().join("rootfs");
    let id = build_id(&fixture);
    let by_id = rootfs.join("usr/lib/debug/.build-id").join(&id[..2]);
    std::fs::create_dir_all(&by_id).unwrap();
    std::fs::create_dir_all(rootfs.join("app")).unwrap();
    objcopy(&[
        "--only-keep-debug".as_ref(),
        &fixture,
        &by_id.join(format!("{}.debug", &id[2..])),
    ]);
    objcopy(&["--strip-all".as_ref(), &fixture, &rootfs.join("app/app")]);
    let ldd = Command::new("ldd").arg(&fixture).output().expect("run ldd");
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dest = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dest).unwrap();
    }
    let container = Command::new("unshare")
        .args(["--mount", "--pid", "--fork"])
        .arg(format!("--root={}", rootfs.display()))
        .args([
            "/app/app",
            "--start-delay-ms",
            "1500",
            "--threads",
            "2",
            "--iters",
            "100",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("run unshare (util-linux)");
    let unshare_pid = container.id();
    let mut procs = Procs(vec![container]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: u32 = loop {
        let children =
            std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
                .unwrap_or_default();
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "unshare started no child");
        std::thread::sleep(Duration::from_millis(10));
    };
    wait_for_exec(pid, "app");
    let r = record(&["-p", &pid.to_string()]);
    assert!(procs.0[0].wait().unwrap().success());
    procs.0.clear();
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    // Named from the image's debug file, read after the container exited.
    let site = hot_site(&r.report);
    assert!(
        site.module
            .as_deref()
            .is_some_and(|m| m.ends_with("/app/app")),
        "{:?}",
        site.module
    );
    assert_eq!(r.report.targets[0].ns_pid, Some(1));
}

/// A cgroup v2 directory made for one test, removed (after killing what is left in
/// it) when dropped.
struct TestCgroup {
    dir: PathBuf,
    name: String,
}

impl TestCgroup {
    fn new() -> Self {
        let name = format!("lockprof-test-{}", std::process::id());
        let dir = profiler::session::process::cgroup2_root().join(&name);
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("create cgroup '{}': {e}", dir.display()));
        Self { dir, name }
    }

    /// A shell that moves itself into the cgroup, then execs the fixture.
    fn spawn_fixture_in(&self, fixture_args: &str) -> Child {
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec {} {fixture_args}",
            self.dir.display(),
            demo_bin("lockprof-fixture").display()
        );
        Command::new("/bin/sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn /bin/sh")
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn cgroup_attaches_to_its_processes_and_to_those_that_join_while_recording() {
    require_root();
    let cg = TestCgroup::new();
    let first = cg.spawn_fixture_in("--start-delay-ms 1500 --threads 2 --iters 100");
    let first_pid = first.id();
    let mut procs = Procs(vec![first]);
    wait_for_exec(first_pid, "lockprof-fixture");

    let json = tempdir().join("r.json");
    let lockprof = Command::new(common::lockprof())
        .args([
            "record",
            "-q",
            "--print",
            "--duration",
            "3s",
            "--cgroup",
            &cg.name,
            "-o",
        ])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Joins after the recording started: found by polling cgroup.procs.
    std::thread::sleep(Duration::from_millis(400));
    let second = cg.spawn_fixture_in("--start-delay-ms 800 --threads 2 --iters 100");
    let second_pid = second.id();
    procs.0.push(second);
    let out = lockprof.wait_with_output().unwrap();
    for c in &mut procs.0 {
        assert!(c.wait().unwrap().success());
    }
    procs.0.clear();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lockprof failed: {stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("attached in cgroup /{}", cg.name)),
        "{text}"
    );
    let report = profiler::report::json::read(&json).unwrap();
    let pids: Vec<u32> = report.targets.iter().map(|t| t.pid).collect();
    assert!(
        pids.contains(&first_pid) && pids.contains(&second_pid),
        "{pids:?}"
    );
    let cgroup = format!("/{}", cg.name);
    assert!(
        report
            .targets
            .iter()
            .all(|t| t.cgroup.as_deref() == Some(cgroup.as_str())),
        "{:?}",
        report.targets
    );
    let site = hot_site(&report);
    let waited: std::collections::BTreeSet<u32> = site.threads.iter().map(|t| t.pid).collect();
    assert!(
        waited.contains(&first_pid) && waited.contains(&second_pid),
        "both processes waited at the hot site: {:?}",
        site.threads
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn name_attaches_to_every_matching_process() {
    require_root();
    // A copy under a name no other process has (16 chars: comm keeps 15 of them).
    let dir = tempdir();
    let name = format!("lpname-{:09}", std::process::id());
    let exe = dir.join(&name);
    std::fs::copy(demo_bin("lockprof-fixture"), &exe).unwrap();
    let spawn = || {
        Command::new(&exe)
            .args([
                "--start-delay-ms",
                "1500",
                "--threads",
                "2",
                "--iters",
                "100",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut procs = Procs(vec![spawn(), spawn()]);
    let pids: Vec<u32> = procs.0.iter().map(Child::id).collect();
    for &pid in &pids {
        wait_for_exec(pid, &name);
    }
    let r = record(&["--name", &name]);
    for c in &mut procs.0 {
        assert!(c.wait().unwrap().success());
    }
    procs.0.clear();
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    let mut found: Vec<u32> = r.report.targets.iter().map(|t| t.pid).collect();
    found.sort_unstable();
    assert_eq!(found, pids, "exactly the two processes named {name}");
    assert!(
        r.report
            .targets
            .iter()
            .all(|t| t.origin == TargetOrigin::Attach && t.exited)
    );
    let site = hot_site(&r.report);
    assert_eq!(site.threads.len(), 4, "two workers in each process");
}

/// `objcopy` with these arguments, for the stripped-binary tests.
fn objcopy(args: &[&Path]) {
    run(Command::new("objcopy").args(args));
}

fn build_id(path: &Path) -> String {
    let id = blazesym::helper::read_elf_build_id(path)
        .expect("read the fixture's build id")
        .expect("the fixture has a build id");
    id.iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn record_fixture(exe: &Path, extra: &[&str]) -> common::Recorded {
    // The text report too (launch mode with -o prints it only when asked).
    let mut args: Vec<&str> = vec!["--print"];
    args.extend(extra);
    args.extend([
        "--",
        exe.to_str().expect("a UTF-8 temp path"),
        "--threads",
        "3",
        "--iters",
        "100",
    ]);
    let r = record(&args);
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    r
}

/// File offset of a byte inside the fixture's `hot_section`, from its symbol table.
fn hot_section_offset(fixture: &Path) -> u64 {
    use blazesym::inspect::{Inspector, source};
    use std::ops::ControlFlow;
    let src = source::Source::Elf(source::Elf::new(fixture));
    let mut offset = None;
    Inspector::new()
        .for_each(&src, |sym| {
            if sym.name.contains("hot_section") && sym.size.unwrap_or(0) > 4 {
                offset = sym.file_offset;
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("read the fixture's symbols");
    offset.expect("hot_section in the fixture's .symtab") + 4
}

#[test]
#[ignore = "needs the demo binaries (no root): cargo xtask test"]
fn symbolizer_reads_debug_files_then_symtab_and_leaves_the_rest_unnamed() {
    use profiler::resolve::symbolize::{BlazeSymbolizer, Symbolize};
    let fixture = demo_bin("lockprof-fixture");
    let offset = hot_section_offset(&fixture);
    let dir = tempdir();
    let id = build_id(&fixture);
    let debug_dir = dir.join("debug");
    let by_id = debug_dir.join(".build-id").join(&id[..2]);
    std::fs::create_dir_all(&by_id).unwrap();
    objcopy(&[
        "--only-keep-debug".as_ref(),
        &fixture,
        &by_id.join(format!("{}.debug", &id[2..])),
    ]);
    let bare = dir.join("bare");
    objcopy(&["--strip-all".as_ref(), &fixture, &bare]);
    let symtab_only = dir.join("symtab-only");
    objcopy(&["--strip-debug".as_ref(), &fixture, &symtab_only]);
    let hot = |frames: &[profiler::resolve::symbolize::ResolvedFrame]| {
        frames
            .iter()
            .find(|f| f.function.ends_with("hot_section"))
            .cloned()
    };

    // Build id → debug file: function and line.
    let with_debug = BlazeSymbolizer::with_debug_dirs(std::slice::from_ref(&debug_dir))
        .symbolize(&bare, &[offset]);
    let f = hot(&with_debug[0]).unwrap_or_else(|| panic!("{with_debug:?}"));
    assert!(
        f.file
            .as_deref()
            .is_some_and(|p| p.ends_with("lockprof-fixture.rs"))
            && f.line.is_some(),
        "{f:?}"
    );
    // No debug information, .symtab kept: the function, no line.
    let from_symtab = BlazeSymbolizer::default().symbolize(&symtab_only, &[offset]);
    let f = hot(&from_symtab[0]).unwrap_or_else(|| panic!("{from_symtab:?}"));
    assert_eq!((f.file.as_deref(), f.line), (None, None), "{f:?}");
    // Nothing at all: unnamed (the stack keeps it as module+offset).
    let nothing = BlazeSymbolizer::default().symbolize(&bare, &[offset]);
    assert!(hot(&nothing[0]).is_none(), "{nothing:?}");
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn stripped_binaries_use_split_debug_files_and_never_drop_frames() {
    require_root();
    let fixture = demo_bin("lockprof-fixture");
    let dir = tempdir();
    // The debug file, only under the build-id path of a debug directory.
    let id = build_id(&fixture);
    let debug_dir = dir.join("debug");
    let by_id = debug_dir.join(".build-id").join(&id[..2]);
    std::fs::create_dir_all(&by_id).unwrap();
    let debug_file = by_id.join(format!("{}.debug", &id[2..]));
    objcopy(&["--only-keep-debug".as_ref(), &fixture, &debug_file]);
    // Stripped of everything (no .symtab, no DWARF), with and without a debug link.
    let linked = dir.join("fixture-linked");
    let link_arg = format!("--add-gnu-debuglink={}", debug_file.display());
    objcopy(&["--strip-all".as_ref(), link_arg.as_ref(), &fixture, &linked]);
    let bare = dir.join("fixture-bare");
    objcopy(&["--strip-all".as_ref(), &fixture, &bare]);
    let debug_arg = debug_dir.to_str().unwrap();

    for exe in [&linked, &bare] {
        let r = record_fixture(exe, &["--debug-dir", debug_arg]);
        let site = hot_site(&r.report);
        assert_eq!(site.module.as_deref(), exe.to_str(), "{}", exe.display());
    }

    // No debug file anywhere: the frames in the fixture stay as module+offset, and
    // none is dropped.
    let r = record_fixture(&bare, &[]);
    let line = tag_line(FIXTURE_SRC, "fixture.hot");
    assert!(
        find_site(&r.report, "hot_section", "lockprof-fixture.rs", line).is_none(),
        "nothing to name it with"
    );
    let top = &r.report.sites[0];
    assert_eq!(
        top.module.as_deref(),
        bare.to_str(),
        "{}",
        top_sites(&r.report, 3)
    );
    let frames = &top.stacks[0].frames;
    let in_bare: Vec<_> = frames
        .iter()
        .filter(|f| f.module.as_deref() == bare.to_str())
        .collect();
    assert!(
        in_bare.len() >= 3,
        "the fixture's own frames are all kept: {frames:#?}"
    );
    assert!(
        in_bare
            .iter()
            .all(|f| f.module_offset.is_some() && f.file.is_none()),
        "{in_bare:#?}"
    );
    assert!(r.report.losses.unsymbolized_frames >= in_bare.len() as u64);
    // The glibc frames are still named (from glibc's own symbols).
    assert!(
        frames
            .iter()
            .any(|f| f.function.as_deref() == Some("syscall")),
        "{frames:#?}"
    );
    assert!(r.stdout.contains("fixture-bare+0x"), "{}", r.stdout);
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn a_binary_replaced_on_disk_while_running_is_symbolized_from_the_running_copy() {
    require_root();
    // A deploy or a rebuild renames a new file over the running binary: the process
    // keeps mapping the old inode, and the path now names another program.
    let dir = tempdir();
    let app = dir.join("app");
    std::fs::copy(demo_bin("lockprof-fixture"), &app).unwrap();
    let child = Command::new(&app)
        .args([
            "--start-delay-ms",
            "1500",
            "--threads",
            "3",
            "--iters",
            "100",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut procs = Procs(vec![child]);
    wait_for_exec(pid, "app");
    let replacer = std::thread::spawn({
        let app = app.clone();
        let dir = dir.clone();
        move || {
            std::thread::sleep(Duration::from_millis(400));
            let new = dir.join("app.new");
            std::fs::copy("/bin/sh", &new).unwrap();
            std::fs::rename(&new, &app).unwrap();
        }
    });
    let r = record(&["-p", &pid.to_string()]);
    replacer.join().unwrap();
    assert!(procs.0[0].wait().unwrap().success());
    procs.0.clear();
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    let site = hot_site(&r.report);
    assert_eq!(site.module.as_deref(), app.to_str());
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn a_target_that_execs_is_symbolized_from_its_new_image() {
    require_root();
    let fixture = demo_bin("lockprof-fixture");
    let fixture_args = "--threads 3 --iters 100";

    // Launched: the shell runs first, then becomes the fixture.
    let script = format!("sleep 0.3; exec {} {fixture_args}", fixture.display());
    let r = record(&["--", "/bin/sh", "-c", &script]);
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    let site = hot_site(&r.report);
    assert_no_shell_frames(site);
    let launched = &r.report.targets[0];
    assert_eq!(launched.origin, TargetOrigin::Launch);
    assert!(launched.comm.starts_with("lockprof-fixtur"), "{launched:?}");

    // Attached: the same exec in a process that was a shell when lockprof attached.
    let script = format!("sleep 1.2; exec {} {fixture_args}", fixture.display());
    let (_, r) = record_attached_shell(&script);
    assert_no_shell_frames(hot_site(&r.report));
    assert!(r.report.targets[0].comm.starts_with("lockprof-fixtur"));

    // A child that forks, then execs, while its parent shell waits.
    let script = format!("sleep 0.2; {} {fixture_args}; exit 0", fixture.display());
    let r = record(&["--", "/bin/sh", "-c", &script]);
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    assert_no_shell_frames(hot_site(&r.report));
    assert!(
        r.report
            .targets
            .iter()
            .any(|t| t.origin == TargetOrigin::Child && t.comm.starts_with("lockprof-fixtur")),
        "{:?}",
        r.report.targets
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn attach_by_pid_follows_processes_forked_after_attaching() {
    require_root();
    // A parent that forks its worker only after lockprof attached (as PostgreSQL's
    // postmaster forks a backend per connection): the shell sleeps, then runs the
    // fixture as a child process and waits for it.
    let fixture = demo_bin("lockprof-fixture");
    let dir = tempdir();
    let child_pid_file = dir.join("child.pid");
    let script = format!(
        "sleep 1.5; {} --threads 3 --iters 100 & echo $! > {}; wait $!",
        fixture.display(),
        child_pid_file.display()
    );
    let (parent, r) = record_attached_shell(&script);
    let child: u32 = std::fs::read_to_string(&child_pid_file)
        .expect("the shell wrote its child's pid")
        .trim()
        .parse()
        .unwrap();
    assert_ne!(child, parent);
    let t = r
        .report
        .targets
        .iter()
        .find(|t| t.pid == child)
        .unwrap_or_else(|| panic!("child {child} not a target: {:?}", r.report.targets));
    assert_eq!(t.origin, TargetOrigin::Child);
    assert!(t.comm.starts_with("lockprof-fixtur"), "{t:?}");
    let site = hot_site(&r.report);
    assert!(
        site.threads
            .iter()
            .any(|th| th.pid == child && th.wait.waits > 0),
        "the child's waits are in the report with its pid: {:?}",
        site.threads
    );
    assert!(
        site.threads.iter().all(|th| th.pid == child),
        "only the child contends: {:?}",
        site.threads
    );
}

/// Starts `/bin/sh -c script`, records it with `lockprof record -p` until it (and
/// what it follows) exits, and checks both succeeded; returns the shell's pid.
fn record_attached_shell(script: &str) -> (u32, common::Recorded) {
    let shell = Command::new("/bin/sh")
        .args(["-c", script])
        .stdout(Stdio::null())
        .spawn()
        .expect("start /bin/sh");
    let pid = shell.id();
    let mut procs = Procs(vec![shell]);
    let r = record(&["-p", &pid.to_string()]);
    assert!(procs.0[0].wait().expect("wait for the shell").success());
    procs.0.clear();
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    (pid, r)
}

/// No frame of the site's stacks resolved into the pre-exec image (the shell).
fn assert_no_shell_frames(site: &Site) {
    for stack in &site.stacks {
        for f in &stack.frames {
            let module = f.module.as_deref().unwrap_or("");
            assert!(
                !module.ends_with("/sh")
                    && !module.ends_with("/dash")
                    && !module.ends_with("/bash"),
                "stale frame from the shell: {f:?}"
            );
        }
    }
}
