//! The event loop of `lockprof top`: the only code touching the terminal.
//!
//! Owns: entering and leaving raw mode and the alternate screen (restored on exit, on
//! error and on panic, through ratatui's init/restore and its panic hook), reading
//! keys and resizes, driving the live [`Session`] (poll every tick, one report per
//! interval, stop when the targets exit), measuring lockprof's own CPU, saving
//! reports, ending a launched command on quit, and stopping (the report saved) when
//! the terminal hangs up. Must not: decide what a key does
//! or how anything looks (`app`, `view`).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event, KeyEventKind};

use crate::report::{self, Report};
use crate::session::process::signals;
use crate::session::record::{DEFAULT_INTERVAL, RecordOptions, Recording, Session, StopReason};
use crate::tui::app::{Action, App, LiveInfo, Source};
use crate::tui::input::{Gone, Input};

/// How often the session is polled (children, memory maps) and keys are read.
const TICK: Duration = Duration::from_millis(10);

/// What `lockprof top` watches.
#[derive(Clone, Debug)]
pub struct TopOptions {
    /// The targets and probes, as `record` takes them (`duration`: stop recording
    /// then and keep the final report on screen).
    pub record: RecordOptions,
    /// Where `s` saves the report.
    pub save_to: PathBuf,
    /// Where a launched command's stdout and stderr go (the terminal is ours).
    pub command_output: PathBuf,
}

/// Browse a saved report.
pub fn replay(report: Report, save_to: &Path) -> Result<i32> {
    need_terminal()?;
    let mut app = App::replay(report);
    with_terminal(|terminal| {
        draw(terminal, &mut app)?;
        let input = Input::start();
        loop {
            match wait_key(&input, &mut app, Duration::from_secs(1)) {
                // A replay holds nothing unsaved: a hang-up just ends it.
                Step::Quit | Step::HungUp => return Ok(()),
                Step::Save => save(&mut app, save_to),
                Step::Idle | Step::Redraw => {}
            }
            draw(terminal, &mut app)?;
        }
    })?;
    Ok(0)
}

/// Watch a live session until the user quits.
pub fn live(opts: &TopOptions) -> Result<i32> {
    let command = if opts.record.command.is_empty() {
        Vec::new()
    } else {
        // The shell that redirects the output would report a missing program into
        // the output file; say it here instead, as `record` does.
        check_runnable(&opts.record.command[0]).map_err(crate::exit::input_error)?;
        redirected(&opts.record.command, &opts.command_output)
    };
    need_terminal()?;
    // Started before the terminal is taken, so a bad PID or missing privilege is a
    // plain one-line error.
    let session = Session::start(&RecordOptions {
        command,
        verbose: false,
        ..opts.record.clone()
    })?;
    let mut state = Live {
        session: Some(session),
        cpu_at_start: self_cpu_ns(),
        recording: None,
        next_report: Duration::ZERO,
    };
    let mut app = App::new(Source::Live);
    let result = with_terminal(|terminal| state.run(terminal, &mut app, opts));
    let unattended = matches!(result, Ok(Ended::Unattended));
    // Quitting ends a launched command (SIGTERM), as closing `top` would; an attached
    // process is left alone.
    let mut recording = match (state.recording.take(), state.session.take()) {
        (Some(rec), _) => Some(rec),
        (None, Some(session)) => session.stop(StopReason::Signal(libc::SIGTERM), false).ok(),
        (None, None) => None,
    };
    if let Some(rec) = recording.as_mut() {
        // Stopped by -d, the command may still run: quitting ends it all the same.
        rec.stopped = StopReason::Signal(libc::SIGTERM);
        rec.finish(false);
        // Nobody pressed `q` (a hang-up or a stop signal, maybe nobody left to press
        // `s`): keep what was recorded where `s` would have.
        if unattended {
            let _ = save_report(&rec.report, &opts.save_to);
        }
    }
    result.map(|_| 0)
}

fn need_terminal() -> Result<()> {
    if std::io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(crate::exit::input_error(anyhow::anyhow!(
            "lockprof top needs a terminal; use 'lockprof record -o FILE' or 'lockprof report FILE' instead"
        )))
    }
}

/// `program` names an executable file, directly or through `PATH`.
fn check_runnable(program: &OsString) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let path = Path::new(program);
    let found = if path.components().count() > 1 {
        runnable(path)
    } else {
        std::env::var_os("PATH")
            .is_some_and(|dirs| std::env::split_paths(&dirs).any(|d| runnable(&d.join(path))))
    };
    if found {
        Ok(())
    } else {
        anyhow::bail!(
            "cannot run '{}': no such executable file",
            program.to_string_lossy()
        )
    }
}

/// Run `argv` through `sh` so that its output goes to `out`, not over the UI. `exec`
/// keeps the pid, so the launched process is still the target.
fn redirected(argv: &[OsString], out: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        "/bin/sh".into(),
        "-c".into(),
        r#"out=$0; exec "$@" </dev/null >>"$out" 2>&1"#.into(),
        out.as_os_str().to_owned(),
    ];
    v.extend(argv.iter().cloned());
    v
}

struct Live {
    session: Option<Session>,
    /// lockprof's CPU time before the session started (loading the probes is not a
    /// per-second cost).
    cpu_at_start: u64,
    recording: Option<Recording>,
    next_report: Duration,
}

impl Live {
    fn run(
        &mut self,
        terminal: &mut DefaultTerminal,
        app: &mut App,
        opts: &TopOptions,
    ) -> Result<Ended> {
        let input = Input::start();
        loop {
            if signals::received().is_some() {
                // A SIGHUP usually means the terminal is gone: `gone` silences it.
                input.gone();
                return Ok(Ended::Unattended);
            }
            if let Some(session) = self.session.as_mut() {
                let gone = session.poll().unwrap_or_else(|e| {
                    app.set_status(format!("{e:#}"));
                    false
                });
                let timed_out = opts.record.duration.is_some_and(|d| session.elapsed() >= d);
                if gone || timed_out {
                    self.finish(app)?;
                    draw(terminal, app)?;
                } else if session.elapsed() >= self.next_report {
                    let begun = Instant::now();
                    match session.report_now() {
                        Ok(report) => {
                            let mut info = live_info(session, self.cpu_at_start, false);
                            info.report_ns = Some(begun.elapsed().as_nanos() as u64);
                            app.on_report(report, info);
                        }
                        // One failed read loses one refresh, not the session.
                        Err(e) => app.set_status(format!("refresh failed: {e:#}")),
                    }
                    while self.next_report <= session.elapsed() {
                        self.next_report += opts.record.interval.unwrap_or(DEFAULT_INTERVAL);
                    }
                    draw(terminal, app)?;
                }
            }
            // Keys end the wait at once; the session is polled when it asks to be.
            let wait = self.session.as_ref().map_or(TICK, |s| {
                s.next_poll_in()
                    .min(self.next_report.saturating_sub(s.elapsed()))
                    .max(TICK)
            });
            match wait_key(&input, app, wait) {
                Step::Quit => return Ok(Ended::Quit),
                Step::HungUp => return Ok(Ended::Unattended),
                Step::Save => {
                    save(app, &opts.save_to);
                    draw(terminal, app)?;
                }
                Step::Redraw => draw(terminal, app)?,
                Step::Idle => {}
            }
        }
    }

    /// Every target exited: read the final data and keep it on screen.
    fn finish(&mut self, app: &mut App) -> Result<()> {
        if let Some(session) = self.session.take() {
            let threads = session.thread_counts();
            let rec = session.stop(StopReason::TargetsExited, false)?;
            app.on_report(
                rec.report.clone(),
                LiveInfo {
                    threads,
                    self_cpu_ns: self_cpu_ns().saturating_sub(self.cpu_at_start),
                    finished: true,
                    report_ns: None,
                },
            );
            self.recording = Some(rec);
        }
        Ok(())
    }
}

fn live_info(session: &Session, cpu_at_start: u64, finished: bool) -> LiveInfo {
    LiveInfo {
        threads: session.thread_counts(),
        self_cpu_ns: self_cpu_ns().saturating_sub(cpu_at_start),
        finished,
        report_ns: None,
    }
}

/// lockprof's own user + system CPU time so far.
fn self_cpu_ns() -> u64 {
    crate::session::refresh::process_cpu().as_nanos() as u64
}

fn draw(terminal: &mut DefaultTerminal, app: &mut App) -> Result<()> {
    let size = terminal.size().context("read the terminal size")?;
    // Header, sparklines, table title and header, footer.
    app.page = usize::from(size.height.saturating_sub(9)).max(1);
    terminal
        .draw(|frame| frame.render_widget(&*app, frame.area()))
        .context("draw the screen")?;
    Ok(())
}

/// What the loop does after waiting for input.
enum Step {
    Idle,
    Redraw,
    Save,
    Quit,
    /// The terminal is gone (see `hangup`).
    HungUp,
}

/// Why the event loop ended.
enum Ended {
    /// The user quit.
    Quit,
    /// The terminal hung up, or a stop signal came (SIGTERM, SIGHUP, SIGINT from
    /// outside): the report is saved as `s` would save it.
    Unattended,
}

/// Wait up to `timeout` for a key or a resize and apply it.
fn wait_key(input: &Input, app: &mut App, timeout: Duration) -> Step {
    match input.next(timeout) {
        Err(Gone) => Step::HungUp,
        Ok(Some(Event::Key(key))) if key.kind != KeyEventKind::Release => {
            match app.handle_key(key) {
                Action::None => Step::Redraw,
                Action::Save => Step::Save,
                Action::Quit => Step::Quit,
            }
        }
        Ok(Some(Event::Resize(..))) => Step::Redraw,
        Ok(_) => Step::Idle,
    }
}

fn save(app: &mut App, path: &Path) {
    let status = save_report(app.latest_report(), path);
    app.set_status(status);
}

/// Write `report` to `path` (the caller's file under sudo) and say how it went.
fn save_report(report: &Report, path: &Path) -> String {
    match report::json::write(report, path) {
        // Under sudo the file is the caller's (no stderr here: the screen is ours).
        Ok(()) => match crate::session::user::give_to_caller(path) {
            Ok(()) => format!("saved to {}", path.display()),
            Err(e) => format!("saved to {} (still root's: {e})", path.display()),
        },
        Err(e) => format!("save failed: {e}"),
    }
}

/// Take the terminal, run `body`, and give the terminal back whatever happened. The
/// panic hook installed by `try_init` restores it on a panic too.
fn with_terminal<T>(body: impl FnOnce(&mut DefaultTerminal) -> Result<T>) -> Result<T> {
    let mut terminal = ratatui::try_init().context("set up the terminal")?;
    let result = body(&mut terminal);
    ratatui::restore();
    result
}
