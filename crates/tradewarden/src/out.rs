//! Writing results and errors without ever panicking on a closed pipe (I10): `print!` and
//! `eprint!` panic when stdout or stderr is gone (`| head`, `2>&1 >/dev/null | true`).
//!
//! Results are printed once the work is done, so a reader that went away leaves the work
//! done and the command ends quietly; a broken stderr never stops anything.

use std::io::Write;
use std::sync::Mutex;

use indicatif::ProgressBar;

/// The progress bar on screen, if any: stderr writes go around it so it is redrawn below them.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Registers (or, with `None`, forgets) the progress bar on screen ([`crate::progress`]).
pub fn set_active_bar(bar: Option<ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// Runs `write` with the progress bar on screen, if any, taken off it meanwhile.
pub fn suspended<R>(write: impl FnOnce() -> R) -> R {
    let bar = ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// Writes a command's result to stdout. A closed stdout is not an error: the reader has what
/// it wanted, and the work is already done.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes a line to stderr, ignoring a closed stderr.
pub fn stderr_line(text: &str) {
    suspended(|| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    });
}

/// A writer for log lines that swallows write errors, so that logging to a closed stderr
/// neither fails nor panics anywhere (the runtime's worker threads included).
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        suspended(|| {
            let _ = std::io::stderr().write_all(buf);
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
