//! The engine's error type: what went wrong, and whether the caller's input was at fault.

use crate::ports::{BrokerError, StoreError};

/// Errors of the engine's use cases.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The expert id is not configured (bad input, exit 2 on the command line).
    #[error("unknown expert {0}")]
    UnknownExpert(i64),
    /// An input batch had bad lines; nothing was stored. Each entry is (line, message).
    #[error("{} bad line(s); nothing was stored", .0.len())]
    BadInput(Vec<(usize, String)>),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The broker failed in a way the run cannot continue from.
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    /// The run's cross-process lease was lost; it stopped before its next broker call.
    #[error(transparent)]
    LeaseLost(#[from] crate::locks::LeaseLost),
    /// The run panicked; the panic was contained to it (its lock released, the others run).
    #[error("internal error (the run panicked): {0}")]
    Panicked(String),
    /// An account named by the configuration has no broker wired.
    #[error("no broker for account {0:?}")]
    NoBroker(String),
}

impl EngineError {
    /// Whether the caller's input caused the error (as opposed to a run-time failure).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            EngineError::UnknownExpert(_) | EngineError::BadInput(_)
        )
    }
}
