//! Progress bars for long work (`import`, `prices import`, `process --all`), drawn with
//! indicatif on stderr — only when stderr is a terminal, `--quiet` was not given, and the
//! work has lasted about a second. Pipes and log files never see an escape code.
//!
//! A bar starts hidden; a watcher thread shows it once the delay has passed (or never, when
//! the work ends first). While a bar is shown, log lines are written around it
//! ([`crate::out::suspended`]). `$TRADEWARDEN_PROGRESS_DELAY_MS` changes the delay (the
//! tests set 0).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::out;

/// Set by `--quiet`.
static QUIET: AtomicBool = AtomicBool::new(false);

/// How long work runs before its bar appears, unless `$TRADEWARDEN_PROGRESS_DELAY_MS` says.
const DEFAULT_DELAY: Duration = Duration::from_millis(1000);

/// Turns every progress bar off (`--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether a bar may appear at all: not `--quiet`, stderr a terminal, `TERM` not `dumb`.
pub fn allowed() -> bool {
    !QUIET.load(Ordering::Relaxed)
        && std::io::stderr().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

fn delay() -> Duration {
    std::env::var("TRADEWARDEN_PROGRESS_DELAY_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(DEFAULT_DELAY, Duration::from_millis)
}

/// What a bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of input, with the lines read so far as the message.
    Bytes,
    /// Experts processed.
    Experts,
    /// No count: a spinner with a message and the time elapsed.
    Spinner,
}

fn style(unit: Unit) -> ProgressStyle {
    let template = match unit {
        Unit::Bytes => {
            "{prefix} [{bar:20}] {msg}, {binary_bytes}/{binary_total_bytes}, {binary_bytes_per_sec}, {eta} left"
        }
        Unit::Experts => "{prefix} [{bar:20}] {pos}/{len} experts processed, {per_sec}, {eta} left",
        Unit::Spinner => "{spinner} {prefix} {msg} ({elapsed})",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A bar for one piece of work; cleared when finished or dropped.
pub struct Progress {
    bar: ProgressBar,
    stop: Option<mpsc::Sender<()>>,
    watcher: Option<JoinHandle<()>>,
}

impl Progress {
    /// A bar named `prefix` counting to `len` in `unit`; it shows itself after the delay when
    /// [`allowed`], and never otherwise.
    pub fn start(prefix: &str, unit: Unit, len: u64) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
            .with_style(style(unit))
            .with_prefix(prefix.to_string());
        let mut progress = Progress {
            bar,
            stop: None,
            watcher: None,
        };
        if allowed() {
            let delay = delay();
            if delay.is_zero() {
                show(&progress.bar);
            } else {
                let (tx, rx) = mpsc::channel::<()>();
                let bar = progress.bar.clone();
                progress.stop = Some(tx);
                progress.watcher = Some(std::thread::spawn(move || {
                    if rx.recv_timeout(delay) == Err(RecvTimeoutError::Timeout) {
                        show(&bar);
                    }
                }));
            }
        }
        progress
    }

    /// Moves on to another phase of the same work (a new unit, length and message); the
    /// bar stays where it is on the screen.
    pub fn phase(&self, unit: Unit, len: u64, message: &str) {
        self.bar.set_style(style(unit));
        self.bar.set_length(len);
        self.bar.set_position(0);
        self.bar.set_message(message.to_string());
    }

    /// Advances by `n`.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Sets the message shown beside the bar.
    pub fn message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Ends the work: stops the watcher and clears the bar from the terminal.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.take();
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        out::set_active_bar(None);
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end();
    }
}

/// Makes a hidden bar visible on stderr, ticking on its own, and routes log lines around it.
fn show(bar: &ProgressBar) {
    bar.set_draw_target(ProgressDrawTarget::stderr());
    out::set_active_bar(Some(bar.clone()));
    bar.enable_steady_tick(Duration::from_millis(100));
    bar.tick();
}
