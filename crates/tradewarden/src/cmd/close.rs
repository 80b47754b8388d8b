//! `tradewarden close TRANSACTION_ID`: close a position by hand.

use serde::Serialize;
use tradewarden_domain::lifecycle::CloseReason;
use tradewarden_engine::{CloseOutcome, EngineError, StoreError};

use crate::app::{App, print_json};
use crate::failure::Failure;

/// Arguments of `close`.
pub use crate::cli::CloseArgs as Args;

/// What `close` prints (and `POST /api/v1/transactions/{id}/close` answers).
#[derive(Debug, Serialize)]
pub struct Closed {
    pub transaction_id: i64,
    /// `closing`, `already_closing`, `already_closed` or `entry_canceled`.
    pub outcome: &'static str,
    /// The close order sent (for `closing`).
    pub order_id: Option<i64>,
    /// What happened, in words.
    pub message: String,
}

/// Closes the transaction and prints what happened; an unknown id is bad input (exit 2).
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let id = args.transaction_id;
    let outcome = match app
        .manager
        .close_transaction(id, CloseReason::ManualClose)
        .await
    {
        Ok(o) => o,
        Err(EngineError::Store(StoreError::NotFound(_))) => {
            return Err(Failure::Input(format!(
                "unknown transaction {id}: no transaction has this id — \"tradewarden transactions\" lists them"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    print_json(&closed(id, outcome))
}

/// What became of the transaction, in `close`'s words.
pub fn closed(transaction_id: i64, outcome: CloseOutcome) -> Closed {
    let (name, order_id, message) = match outcome {
        CloseOutcome::Closing { order_id } => (
            "closing",
            Some(order_id),
            format!(
                "transaction {transaction_id} is CLOSING: close order {order_id} sent; a refresh closes it once it fills"
            ),
        ),
        CloseOutcome::AlreadyClosing => (
            "already_closing",
            None,
            format!("transaction {transaction_id} is already closing; nothing changed"),
        ),
        CloseOutcome::AlreadyClosed => (
            "already_closed",
            None,
            format!("transaction {transaction_id} is already closed; nothing changed"),
        ),
        CloseOutcome::EntryCanceled => (
            "entry_canceled",
            None,
            format!(
                "transaction {transaction_id} had not filled: its entry and exit legs were canceled"
            ),
        ),
    };
    Closed {
        transaction_id,
        outcome: name,
        order_id,
        message,
    }
}
