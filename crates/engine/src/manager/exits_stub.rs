//! TEMPORARY stand-ins for the refresh branch's `close_transaction` and `replace_exits`
//! (same signatures), so open_positions compiles until that branch is merged; deleted then.

use rust_decimal::Decimal;
use tradewarden_domain::lifecycle::CloseReason;

use super::TradeManager;
use crate::error::EngineError;
use crate::ports::StoreError;

/// What a close request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    Closing { order_id: i64 },
    AlreadyClosing,
    AlreadyClosed,
    EntryCanceled,
}

/// What an exit replacement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitsOutcome {
    Replaced { generation: u32 },
    Unchanged,
}

fn not_yet() -> EngineError {
    EngineError::Store(StoreError::database(
        "closing and exit replacement are not available yet",
    ))
}

impl TradeManager {
    /// Stand-in: always fails.
    pub async fn close_transaction(
        &self,
        _transaction_id: i64,
        _reason: CloseReason,
    ) -> Result<CloseOutcome, EngineError> {
        Err(not_yet())
    }

    /// Stand-in: always fails.
    pub async fn replace_exits(
        &self,
        _transaction_id: i64,
        _take_profit: Option<Decimal>,
        _stop_loss: Option<Decimal>,
    ) -> Result<ExitsOutcome, EngineError> {
        Err(not_yet())
    }
}
