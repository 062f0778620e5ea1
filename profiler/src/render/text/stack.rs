//! The hottest stack of a site, innermost frame first: functions and locations in two
//! aligned columns, runs of lock-implementation frames folded into one line, and how
//! the stack was unwound when that matters to the reader.

use crate::render::fit::{chars, clean, cut_start};
use crate::render::names::{basename, location, short_function, short_path};
use crate::render::text::WIDTH;
use crate::render::text::table::{DETAIL_INDENT, Out};
use crate::render::units::{fmt_count, fmt_pct, more, plural};
use crate::report::model::{Frame, Site, StackShare};

pub(super) fn stack_block(out: &mut Out, site: &Site, max_frames: usize, expand_lock_frames: bool) {
    let Some(stack) = site.stacks.first() else {
        out.kv("stack", "none recorded");
        return;
    };
    let distinct = (site.stacks.len() as u64).saturating_add(site.more_stacks);
    let of = if distinct > 1 {
        format!(", 1 of {} distinct stacks", fmt_count(distinct))
    } else {
        String::new()
    };
    out.kv(
        "stack",
        format!(
            "hottest: {} of this site's wait time ({}{of}), innermost first",
            fmt_pct(stack.wait.total_wait_ns, site.total_wait_ns),
            plural(stack.wait.waits, "wait", "waits"),
        ),
    );
    if let Some(how) = &stack.unwind
        && how != "dwarf"
    {
        out.kv("unwound", unwind_note(how));
    }
    for line in frame_lines(stack, max_frames, expand_lock_frames) {
        out.line(format!("{DETAIL_INDENT}  {line}"));
    }
}

/// What a stack's unwinding method means for the reader (complete DWARF stacks need
/// no note).
fn unwind_note(how: &str) -> String {
    match how {
        "fp" => "by frame pointers (no stack copy): frames of code without them may be missing"
            .to_owned(),
        "dwarf-truncated" => "by DWARF CFI, truncated: the outermost frames are missing".to_owned(),
        other => clean(other).into_owned(),
    }
}

/// `function  file:line  [inlined]`, the function column aligned. Unless
/// `expand_lock_frames`, each run of lock-implementation frames is one line: the
/// outermost of them (the lock call, e.g. `pthread_mutex_lock`) and how many it stands
/// for.
fn frame_lines(stack: &StackShare, max_frames: usize, expand_lock_frames: bool) -> Vec<String> {
    // Budget: indent (6) + function + 2 + location + marker (11).
    const FUNC_MAX: usize = 64;
    const LOC_MAX: usize = WIDTH - 6 - FUNC_MAX - 2 - 11;
    // (frame shown, frames it stands for)
    let mut rows: Vec<(&Frame, usize)> = Vec::new();
    let mut i = 0;
    while i < stack.frames.len() {
        let f = &stack.frames[i];
        let run = if expand_lock_frames || !f.lock_impl {
            1
        } else {
            stack.frames[i..].iter().take_while(|f| f.lock_impl).count()
        };
        rows.push((&stack.frames[i + run - 1], run));
        i += run;
    }
    let shown: Vec<(String, String, String)> = rows
        .iter()
        .take(max_frames)
        .map(|&(f, run)| {
            let (func, loc) = frame_text(f);
            let marker = if run > 1 {
                format!("  [lock impl, {run} frames]")
            } else if f.inlined {
                "  [inlined]".to_owned()
            } else {
                String::new()
            };
            (cut_start(&func, FUNC_MAX), cut_start(&loc, LOC_MAX), marker)
        })
        .collect();
    let width = shown.iter().map(|(f, ..)| chars(f)).max().unwrap_or(0);
    let mut lines: Vec<String> = shown
        .into_iter()
        .map(|(func, loc, marker)| {
            format!("{func:<width$}  {loc}{marker}")
                .trim_end()
                .to_owned()
        })
        .collect();
    let hidden: usize = rows.iter().skip(max_frames).map(|&(_, run)| run).sum();
    if hidden > 0 {
        lines.push(more(hidden as u64, "frame", "frames"));
    }
    lines
}

/// The function (or `module+0xoffset`, or the address) and the location of a frame.
fn frame_text(f: &Frame) -> (String, String) {
    let module = f.module.as_deref().map(clean);
    if let Some(func) = &f.function {
        let loc = match (&f.file, &module) {
            (Some(file), _) => location(&short_path(&clean(file)), f.line),
            (None, Some(module)) => basename(module).to_owned(),
            (None, None) => String::new(),
        };
        (short_function(&clean(func)), loc)
    } else {
        let unresolved = match (&module, &f.module_offset) {
            (Some(module), Some(offset)) => format!("{}+{}", basename(module), clean(offset)),
            (Some(module), None) => format!("{} in {}", clean(&f.address), basename(module)),
            (None, _) => clean(&f.address).into_owned(),
        };
        (unresolved, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{func, libc, site_contains};

    #[test]
    fn whole_stack_shows_inlined_and_unresolved_frames() {
        let site = site_contains();
        insta::assert_snapshot!(frame_lines(&site.stacks[0], 100, false).join("\n"), @r"
        syscall                                       libc.so.6
        unix::futex::futex_wait                       pal/unix/futex.rs:72  [inlined]
        futex::RwLock::read_contended                 sync/rwlock/futex.rs:172
        rwlock::RwLock::read                          sync/poison/rwlock.rs:273  [inlined]
        forwarder::Before::contains                   demo-targets/src/forwarder.rs:179
        Before::lookup                                demo-targets/src/forwarder.rs:220
        demo_targets::forwarder::build_client         demo-targets/src/forwarder.rs:421
        forwarder::run_with::{{closure}}              demo-targets/src/forwarder.rs:372
        sys::backtrace::__rust_begin_short_backtrace  src/sys/backtrace.rs:152  [inlined]
        spawn_unchecked_::{{closure}}::{{closure}}    src/thread/mod.rs:559
        AssertUnwindSafe::call_once                   src/panic/unwind_safe.rs:272  [inlined]
        panicking::try::do_call                       std/src/panicking.rs:589  [inlined]
        Builder::spawn_unchecked_::{{closure}}        src/thread/mod.rs:557
        function::FnOnce::call_once{{vtable.shim}}    src/ops/function.rs:250
        Thread::new::thread_start                     pal/unix/thread.rs:105
        libc.so.6+0x94ac3
        0x7f3a5c926a04
        ");
    }

    #[test]
    fn lock_frames_fold_into_one_line_unless_expanded() {
        let mut lock = vec![
            libc("0x7f0000001000", Some("futex_wait"), "0x1000"),
            libc("0x7f0000001000", Some("__GI___lll_lock_wait"), "0x1000"),
            libc("0x7f0000002000", Some("___pthread_mutex_lock"), "0x2000"),
        ];
        for f in &mut lock {
            f.lock_impl = true;
        }
        let mut frames = lock;
        frames.push(func("0x5500", "app::worker", "src/app.rs", 12, false));
        frames.push(func("0x5600", "app::main", "src/app.rs", 40, false));
        let stack = StackShare {
            frames,
            unwind: Some("dwarf".to_owned()),
            ..StackShare::default()
        };
        insta::assert_snapshot!(frame_lines(&stack, 2, false).join("\n"), @r"
        ___pthread_mutex_lock  libc.so.6  [lock impl, 3 frames]
        app::worker            src/app.rs:12
        … 1 more frame
        ");
        let expanded = frame_lines(&stack, 100, true).join("\n");
        assert!(expanded.contains("__GI___lll_lock_wait"), "{expanded}");
        assert!(!expanded.contains("[lock impl"), "{expanded}");
        assert_eq!(
            unwind_note("dwarf-truncated"),
            "by DWARF CFI, truncated: the outermost frames are missing"
        );
    }
}
