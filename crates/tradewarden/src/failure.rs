//! A command's failure, the exit status it maps to, and the wording of every error: each
//! message starts with what failed and ends, after ` — `, with what to do.
//!
//! | exit | when |
//! |---|---|
//! | 0 | success; a skipped run; a closed stdout; `--help`, `--version` |
//! | 1 | run-time failure ([`Failure::Runtime`]): the database cannot be reached or fails, an expert's run failed (the reports are printed first), a file cannot be written |
//! | 130, 143 | SIGINT, SIGTERM ([`Failure::Interrupted`]): the running command was cancelled and this process's leases were given back |
//! | 2 | bad usage, configuration or input ([`Failure::Input`], and clap's usage errors): configuration problems, bad input lines, an unknown expert, an unreadable input file, `init` onto an existing file |
//!
//! The README's "Exit codes" section is this table; keep them together.

use tradewarden_engine::{EngineError, RunReport, RunStatus};

use crate::shutdown::Interrupt;

/// What to do after a configuration problem.
pub const CHECK_HINT: &str = "run \"tradewarden check\" to see the whole configuration";
/// What to do after a database failure.
pub const DATABASE_HINT: &str = "check [database] url (\"tradewarden check\" shows it) and that the database is running, then run the command again";

/// A failure with its exit status. The message is complete: what failed, why, and what to
/// do; the binary prints it as it is (a run-time failure after `error: `).
#[derive(Debug)]
pub enum Failure {
    /// Bad usage, configuration or input: exit 2.
    Input(String),
    /// Run-time failure: exit 1.
    Runtime(String),
    /// A signal cancelled the command (its leases were given back): exit 130 or 143.
    Interrupted(Interrupt),
}

impl Failure {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Input(_) => 2,
            Failure::Runtime(_) => 1,
            Failure::Interrupted(signal) => signal.exit_code(),
        }
    }

    /// The message, as the binary prints it on stderr.
    pub fn message(&self) -> String {
        match self {
            Failure::Input(msg) => msg.clone(),
            Failure::Runtime(msg) => format!("error: {msg}"),
            Failure::Interrupted(signal) => format!("stopped by {}", signal.name()),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadInput(lines) => Failure::Input(bad_lines(
                lines.iter().map(|(n, msg)| format!("line {n}: {msg}")),
            )),
            EngineError::UnknownExpert(id) => Failure::Input(format!(
                "unknown expert {id}: no expert with this id is configured — {CHECK_HINT}"
            )),
            e if e.is_bad_input() => Failure::Input(format!("{e} — {CHECK_HINT}")),
            e @ EngineError::Store(_) => Failure::Runtime(format!("{e} — {DATABASE_HINT}")),
            e => Failure::Runtime(format!(
                "{e} — see the log lines above; \"tradewarden reconcile\" settles what a stopped run left in flight"
            )),
        }
    }
}

/// A run-time failure from anything displayable, with a generic hint.
pub fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(format!(
        "{e} — see the log lines above (--log-level debug shows more) and run the command again"
    ))
}

/// A database operation that failed: `{what} failed: {e} — {DATABASE_HINT}`.
pub fn store_failed(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(format!("{what} failed: {e} — {DATABASE_HINT}"))
}

/// The report of a batch with bad lines: each line, then the count and what to do.
pub fn bad_lines(lines: impl Iterator<Item = String>) -> String {
    let lines: Vec<String> = lines.collect();
    format!(
        "{}\n{} bad line(s); nothing was stored — fix the lines named above and run the command again",
        lines.join("\n"),
        lines.len()
    )
}

/// Exit 1 after the reports are printed when any expert's run failed.
pub fn any_failed(reports: &[RunReport]) -> Result<(), Failure> {
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.status == RunStatus::Failed)
        .map(|r| {
            format!(
                "expert {}: {}",
                r.expert_id,
                r.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "{} run(s) failed: {} — the other experts' runs are done; fix the cause and run again (\"tradewarden reconcile\" settles what was left in flight)",
            failed.len(),
            failed.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_ends_with_what_to_do() {
        let failures = [
            Failure::from(EngineError::UnknownExpert(9)),
            Failure::from(EngineError::BadInput(vec![(2, "symbol: empty".into())])),
            runtime("boom"),
            store_failed("listing orders", "disk I/O error"),
        ];
        for f in failures {
            let msg = f.message();
            let last = msg.lines().last().unwrap_or_default();
            assert!(last.contains(" — "), "{msg}");
        }
    }
}
