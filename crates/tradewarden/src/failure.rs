//! A command's failure and the exit status it maps to: 2 for bad usage, configuration or
//! input; 1 for a run-time failure; 128 + the signal's number when a signal stopped it.

use tradewarden_engine::{EngineError, RunReport, RunStatus};

use crate::shutdown::Interrupt;

/// A failure with its exit status.
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
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadInput(lines) => Failure::Input(bad_lines(
                lines.iter().map(|(n, msg)| format!("line {n}: {msg}")),
            )),
            e if e.is_bad_input() => Failure::Input(e.to_string()),
            e => Failure::Runtime(e.to_string()),
        }
    }
}

/// A run-time failure from anything displayable.
pub fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
}

/// The report of a batch with bad lines: each line, then the count.
pub fn bad_lines(lines: impl Iterator<Item = String>) -> String {
    let lines: Vec<String> = lines.collect();
    format!(
        "{}\n{} bad line(s); nothing was stored",
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
            "{} run(s) failed: {}",
            failed.len(),
            failed.join("; ")
        )))
    }
}
