//! What an open_positions run reads and writes: the expert's recommendations in the window
//! with the one before each, its held positions and its past closes, loaded one query per
//! kind for all its positions; and the outcomes it decides.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tradewarden_domain::open_positions::HeldPosition;
use tradewarden_domain::rules::LastCloses;
use tradewarden_domain::{Action, Outcome, Recommendation};

use super::store::StoreError;

/// What an open_positions run of one expert needs from the store.
#[derive(Debug, Clone, Default)]
pub struct OpenPositionsData {
    /// The newest recommendation per symbol among those created at or after the window's
    /// start (HOLD included), in id order.
    pub recommendations: Vec<Recommendation>,
    /// The action of the recommendation before each of them on its symbol (any age), by
    /// the newer one's id.
    pub previous: HashMap<i64, Action>,
    /// The expert's OPENED and CLOSING transactions (and WAITING ones, which the decision
    /// treats as no position), by symbol.
    pub positions: HashMap<String, HeldPosition>,
    /// The expert's past closes, by symbol; a symbol never closed is absent.
    pub last_closes: HashMap<String, LastCloses>,
}

/// The store role of open_positions runs.
#[async_trait]
pub trait OpenPositionsStore: Send + Sync {
    /// Loads what the open_positions run of `expert_id` needs, for the window starting at
    /// `since`: one query per kind, whatever the number of positions.
    async fn load_open_positions(
        &self,
        expert_id: i64,
        since: DateTime<Utc>,
    ) -> Result<OpenPositionsData, StoreError>;

    /// Writes decision records in one database transaction, many rows a statement.
    async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<(), StoreError>;
}
