//! The store, split by role: a caller takes only the role it needs (a read-only API handler
//! takes [`QueryStore`]; the run takes all of them through [`Store`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use tradewarden_domain::lifecycle::{exit_legs, leg_client_order_id};
use tradewarden_domain::transaction::ActivePosition;
use tradewarden_domain::{
    InstallationId, NewRecommendation, Order, OrderRole, OrderStatus, OrderType, Outcome,
    OutcomeKind, Recommendation, Side, Transaction, TransactionStatus,
};

use super::broker::BrokerOrder;
use super::host::{HostIdentity, ProcessState, ProcessTable};

/// Store failures. `DuplicatePosition` is the database's own one-active-position rule (B1).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The partial unique index refused a second WAITING/OPENED transaction.
    #[error("expert {expert_id} already has an active transaction for {symbol}")]
    DuplicatePosition {
        expert_id: i64,
        symbol: String,
        /// The transaction that holds the slot, when it could be read back.
        existing: Option<(i64, TransactionStatus)>,
    },
    /// A row the caller named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database failed (connection, I/O, constraint other than the above).
    #[error("database: {message}")]
    Database {
        message: String,
        /// Whether trying again may succeed (busy, serialization failure, connection lost).
        transient: bool,
        /// The driver's error, kept for its details.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A database failure described by `message`, with no driver error behind it (a stored
    /// value that cannot be read back, a row that should exist and does not).
    pub fn database(message: impl Into<String>) -> Self {
        StoreError::Database {
            message: message.into(),
            transient: false,
            source: None,
        }
    }

    /// Whether trying the same operation again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Database {
                transient: true,
                ..
            }
        )
    }
}

/// A position to open: the transaction, its entry order and its exit legs, written in one
/// database transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPosition {
    pub expert_id: i64,
    pub account: String,
    pub symbol: String,
    pub side: Side,
    pub quantity: Decimal,
    /// The quote the entry was sized at; what a WAITING transaction holds.
    pub reference_price: Decimal,
    pub order_type: OrderType,
    pub limit_price: Option<Decimal>,
    /// The take profit the position is placed with: a limit leg waiting for the entry.
    pub take_profit: Option<Decimal>,
    /// The stop loss the position is placed with: a stop leg waiting for the entry.
    pub stop_loss: Option<Decimal>,
    pub recommendation_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The decision this position carries out (which rule matched, the sizing): with a
    /// `recommendation_id`, written with the position as that recommendation's outcome (I5).
    /// `None` for a position no run decided.
    pub decision: Option<String>,
}

/// The completion of an entry's outcome: what became of its order, appended to the
/// decision's detail (see [`tradewarden_domain::outcome::entry_outcome`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCompletion {
    /// The entry order whose outcome is completed.
    pub order_id: i64,
    /// The outcome's kind from now on.
    pub outcome: OutcomeKind,
    /// The words appended to the decision's detail.
    pub answer: String,
}

/// Why reconciliation leaves a symbol out: its position may be changing while it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InFlightReason {
    /// An order of the account the broker may still be executing
    /// ([`OrderStatus::may_be_executing`](tradewarden_domain::OrderStatus::may_be_executing)).
    OrderInFlight,
    /// An active transaction of an expert whose run holds its lock: the run may be between a
    /// broker's fill and storing it.
    RunInProgress,
}

/// What a run needs from the store, loaded in one go.
#[derive(Debug, Clone, Default)]
pub struct EnterMarketData {
    /// The expert's recommendations created at or after `since`, HOLD excluded.
    pub recommendations: Vec<Recommendation>,
    /// The expert's WAITING and OPENED transactions.
    pub positions: Vec<ActivePosition>,
}

impl NewPosition {
    /// The decision record a store writes with this position (I5): for a position a run
    /// decided (it carries a decision and its recommendation), the provisional `ordered`
    /// outcome of its stored entry, or the duplicate refusal of the unique index; `None`
    /// otherwise (or for another store failure, which fails the run).
    pub fn decision_record(
        &self,
        result: &Result<(Transaction, Order), StoreError>,
    ) -> Option<Outcome> {
        let (Some(decision), Some(recommendation_id)) = (&self.decision, self.recommendation_id)
        else {
            return None;
        };
        let (outcome, detail, order_id) = match result {
            Ok((_, order)) => {
                let (kind, answer) =
                    tradewarden_domain::outcome::provisional_entry_outcome(&order.client_order_id);
                (kind, format!("{decision}{answer}"), Some(order.id))
            }
            Err(StoreError::DuplicatePosition { existing, .. }) => (
                OutcomeKind::DuplicatePosition,
                tradewarden_domain::outcome::refused_by_index(decision, *existing),
                None,
            ),
            Err(_) => return None,
        };
        Some(Outcome {
            recommendation_id,
            expert_id: self.expert_id,
            symbol: self.symbol.clone(),
            // Positions are opened by enter_market runs.
            use_case: tradewarden_domain::UseCase::EnterMarket,
            outcome,
            detail,
            order_id,
            decided_at: self.created_at,
        })
    }

    /// The transaction (WAITING) and entry order (`submitting`) a store writes for this
    /// position, once it has their ids.
    pub fn stored_rows(
        &self,
        transaction_id: i64,
        order_id: i64,
        client_order_id: String,
    ) -> (Transaction, Order) {
        let txn = Transaction {
            id: transaction_id,
            expert_id: self.expert_id,
            account: self.account.clone(),
            symbol: self.symbol.clone(),
            side: self.side,
            quantity: self.quantity,
            status: TransactionStatus::Waiting,
            open_price: None,
            close_price: None,
            take_profit: self.take_profit,
            stop_loss: self.stop_loss,
            opened_at: None,
            closed_at: None,
            close_reason: None,
            created_at: self.created_at,
        };
        let order = Order {
            id: order_id,
            transaction_id,
            expert_id: self.expert_id,
            account: self.account.clone(),
            symbol: self.symbol.clone(),
            side: self.side,
            role: OrderRole::Entry,
            order_type: self.order_type,
            quantity: self.quantity,
            filled_quantity: Decimal::ZERO,
            limit_price: self.limit_price,
            stop_price: None,
            avg_fill_price: None,
            status: OrderStatus::Submitting,
            client_order_id,
            broker_order_id: None,
            parent_order_id: None,
            trigger_status: None,
            recommendation_id: self.recommendation_id,
            created_at: self.created_at,
        };
        (txn, order)
    }

    /// The exit legs a store writes with this position once its transaction and entry order
    /// have ids (issue 9 item 2): one exit structure of generation 1, a limit take profit
    /// and a stop stop-loss on the closing side for the entry's quantity, each
    /// `waiting_trigger` until the entry fills, with its deterministic client_order_id (both
    /// in one one-cancels-other group, [`exit_group`](super::broker::exit_group)). Their
    /// `id` is 0 until stored.
    pub fn leg_orders(
        &self,
        transaction_id: i64,
        entry_order_id: i64,
        installation: &InstallationId,
    ) -> Vec<Order> {
        exit_legs(self.side, self.take_profit, self.stop_loss, 1)
            .into_iter()
            .map(|leg| Order {
                id: 0,
                transaction_id,
                expert_id: self.expert_id,
                account: self.account.clone(),
                symbol: self.symbol.clone(),
                side: leg.side,
                role: leg.role,
                order_type: leg.order_type,
                quantity: self.quantity,
                filled_quantity: Decimal::ZERO,
                limit_price: leg.limit_price,
                stop_price: leg.stop_price,
                avg_fill_price: None,
                status: OrderStatus::WaitingTrigger,
                client_order_id: leg_client_order_id(
                    installation,
                    transaction_id,
                    leg.role,
                    leg.generation,
                ),
                broker_order_id: None,
                parent_order_id: Some(entry_order_id),
                trigger_status: Some(OrderStatus::Filled),
                recommendation_id: self.recommendation_id,
                created_at: self.created_at,
            })
            .collect()
    }
}

/// The result of storing a batch of recommendations: `imported` new ones, `already_present`
/// identical to a stored one or to an earlier line of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ImportCounts {
    pub imported: usize,
    pub already_present: usize,
}

/// Filters for listings; `None` means any. The default lists every row, oldest first (the
/// command line's listings); the API pages newest first.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub expert_id: Option<i64>,
    pub status: Option<String>,
    pub recommendation_id: Option<i64>,
    /// Only rows of this symbol.
    pub symbol: Option<String>,
    /// Only rows created (outcomes: decided) at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Which slice of the matching rows, in which order.
    pub page: Page,
}

/// A slice of a listing: at most `limit` rows (all without one) after skipping `offset`,
/// by id, newest first when `newest_first`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    pub limit: Option<u32>,
    pub offset: u32,
    pub newest_first: bool,
}

impl Page {
    /// The SQL tail that orders and slices by id, with the two numbers bound at `$n` and
    /// `$n+1`: one text for both databases (SQLite and PostgreSQL both take `LIMIT … OFFSET …`
    /// with bound integers).
    pub fn sql(&self, n: usize) -> String {
        let order = if self.newest_first { "DESC" } else { "ASC" };
        format!("ORDER BY id {order} LIMIT ${n} OFFSET ${}", n + 1)
    }

    /// The bound `LIMIT`: `i64::MAX` without a limit (neither database takes `LIMIT NULL`
    /// the same way).
    pub fn limit_value(&self) -> i64 {
        self.limit.map_or(i64::MAX, i64::from)
    }

    /// The bound `OFFSET`.
    pub fn offset_value(&self) -> i64 {
        i64::from(self.offset)
    }
}

/// Recommendations: ingestion and what a run reads.
#[async_trait]
pub trait RecommendationStore: Send + Sync {
    /// Begins an import: one database transaction that chunks of recommendations are written
    /// into, committed by [`ImportSession::commit`] and rolled back when dropped.
    async fn begin_import(&self) -> Result<Box<dyn ImportSession + '_>, StoreError>;

    /// Stores recommendations all or nothing, in one import session. An identical
    /// recommendation already stored, or earlier in `recs`, counts as already present; a
    /// different one with the same identity is an error naming the batch index (0-based) of
    /// every such line.
    async fn import(&self, recs: &[NewRecommendation]) -> Result<ImportCounts, ImportError> {
        crate::manager::import_slice(self, recs).await
    }

    /// Loads what the enter_market runs of several experts need, one query per kind for all
    /// of them: each expert's recommendations created at or after `since` (HOLD excluded)
    /// and its WAITING and OPENED transactions. An expert with neither is absent.
    async fn load_enter_market_batch(
        &self,
        expert_ids: &[i64],
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, EnterMarketData>, StoreError>;

    /// [`RecommendationStore::load_enter_market_batch`] for one expert.
    async fn load_enter_market(
        &self,
        expert_id: i64,
        since: DateTime<Utc>,
    ) -> Result<EnterMarketData, StoreError> {
        Ok(self
            .load_enter_market_batch(&[expert_id], since)
            .await?
            .remove(&expert_id)
            .unwrap_or_default())
    }
}

/// One import's database transaction (B7, I6). Nothing it writes is visible to others before
/// [`ImportSession::commit`]; dropping it uncommitted rolls everything back.
#[async_trait]
pub trait ImportSession: Send {
    /// Inserts each recommendation whose identity (expert_id, symbol, created_at) is not
    /// stored yet; returns, in order, whether each was inserted. The identities of `recs`
    /// are distinct.
    async fn insert_new(&mut self, recs: &[&NewRecommendation]) -> Result<Vec<bool>, StoreError>;

    /// The stored recommendations with the identities of `recs` (those written by this
    /// session included), in any order; an identity with none is left out.
    async fn stored(
        &mut self,
        recs: &[&NewRecommendation],
    ) -> Result<Vec<Recommendation>, StoreError>;

    /// Makes everything written visible, at once.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Positions and their orders: the one-active-position rule and order status changes.
#[async_trait]
pub trait PositionStore: Send + Sync {
    /// Writes, for each position, a WAITING transaction (with its take profit and stop), its
    /// entry order (status `submitting`, with its client_order_id), its exit legs
    /// ([`NewPosition::leg_orders`]: nothing is sent for them until the entry fills), and
    /// the run's decision records, all in one
    /// committed database transaction, so that no stop of the run loses an outcome (I5):
    /// `skips` as given, and for each position with a decision its recommendation's outcome:
    /// `ordered`, provisional
    /// ([`provisional_entry_outcome`](tradewarden_domain::outcome::provisional_entry_outcome)),
    /// carrying its order id; or `duplicate_position` when refused.
    /// A position whose (expert, symbol) already has an active transaction gets
    /// `Err(StoreError::DuplicatePosition)` in its slot; the others are still written.
    async fn open_positions(
        &self,
        new: &[NewPosition],
        skips: &[Outcome],
    ) -> Result<Vec<Result<(Transaction, Order), StoreError>>, StoreError>;

    /// [`PositionStore::open_positions`] for one position, without skips.
    async fn open_position(&self, new: &NewPosition) -> Result<(Transaction, Order), StoreError> {
        self.open_positions(std::slice::from_ref(new), &[])
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::database("no result for the position")))
    }

    /// Applies brokers' answers to orders through the status table, in one database
    /// transaction: an entry that filled moves its transaction to OPENED (open_price,
    /// opened_at); an entry refused with nothing filled closes it (FAILED when it never
    /// reached the broker); the outcome written with an entry's position is completed from
    /// its new status ([`entry_outcome`](tradewarden_domain::outcome::entry_outcome)). An
    /// answer the table does not allow (stale, out of order) is ignored. Returns the orders
    /// as they now stand, in input order.
    async fn apply_broker_orders(
        &self,
        answers: &[(i64, BrokerOrder)],
    ) -> Result<Vec<Order>, StoreError>;

    /// [`PositionStore::apply_broker_orders`] for one order.
    async fn apply_broker_order(
        &self,
        order_id: i64,
        answer: &BrokerOrder,
    ) -> Result<Order, StoreError> {
        self.apply_broker_orders(&[(order_id, answer.clone())])
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("order {order_id}")))
    }

    /// The expert's active transaction for a symbol, if any.
    async fn active_transaction(
        &self,
        expert_id: i64,
        symbol: &str,
    ) -> Result<Option<Transaction>, StoreError>;

    /// Orders still `submitting` (their broker answer never arrived), optionally of one expert.
    async fn orders_in_flight(&self, expert_id: Option<i64>) -> Result<Vec<Order>, StoreError>;

    /// What the OPENED and CLOSING transactions of an account hold per symbol, signed.
    async fn held_quantities(&self, account: &str) -> Result<HashMap<String, Decimal>, StoreError>;

    /// The symbols of an account whose positions may be changing while it is reconciled,
    /// each with why: those of its orders the broker may still be executing, then those of
    /// the active (WAITING, OPENED, CLOSING) transactions of the experts in `busy`.
    async fn symbols_in_flight(
        &self,
        account: &str,
        busy: &[i64],
    ) -> Result<BTreeMap<String, InFlightReason>, StoreError>;
}

/// The journal: decision records, run records, reconciliation findings.
#[async_trait]
pub trait JournalStore: Send + Sync {
    /// Ends a batch of runs in one database transaction: completes the outcomes written with
    /// entry positions (by order id; their kind, and their detail as the decision followed by
    /// the answer; rows of other orders are untouched), stores the runs' records, and gives
    /// back the leases the runs held. Returns the ids of the run records, in the order of
    /// `finished.runs`.
    async fn finish_runs(&self, finished: &FinishedRuns<'_>) -> Result<Vec<i64>, StoreError>;

    /// Stores reconciliation findings.
    async fn record_findings(&self, findings: &[Finding]) -> Result<(), StoreError>;
}

/// Read-only listings for the command line and the API.
#[async_trait]
pub trait QueryStore: Send + Sync {
    /// Transactions, newest first.
    async fn transactions(&self, f: &ListFilter) -> Result<Vec<Transaction>, StoreError>;
    /// Orders, newest first.
    async fn orders(&self, f: &ListFilter) -> Result<Vec<Order>, StoreError>;
    /// Decision records, newest first.
    async fn outcomes(&self, f: &ListFilter) -> Result<Vec<Outcome>, StoreError>;
    /// Run records, newest first (by id), filtered and paged.
    async fn runs(&self, f: &RunFilter) -> Result<Vec<StoredRun>, StoreError>;
    /// One run record.
    async fn run(&self, id: i64) -> Result<Option<StoredRun>, StoreError>;
}

/// Every role the engine's use cases need, in one object.
pub trait Store:
    RecommendationStore
    + PositionStore
    + JournalStore
    + QueryStore
    + LeaseStore
    + super::lifecycle::LifecycleStore
    + super::OpenPositionsStore
    + super::JobStore
{
}

impl<T> Store for T where
    T: RecommendationStore
        + PositionStore
        + JournalStore
        + QueryStore
        + LeaseStore
        + super::lifecycle::LifecycleStore
        + super::OpenPositionsStore
        + super::JobStore
{
}

/// Who holds a lease: its owner id, and what a contender needs to tell whether it still
/// lives (I3). Every part but `owner` may be unknown; what is unknown proves nothing, and a
/// lease whose holder cannot be proven dead is taken only at its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseHolder {
    /// Unique per process (`{host}-{pid}-{random}`): the lease's `owner`, and the runs'.
    pub owner: String,
    /// Where it runs: host name, boot id, pid namespace.
    pub host: Option<HostIdentity>,
    /// Its pid on that host.
    pub pid: Option<u32>,
    /// When that pid started, in clock ticks since boot: tells a reused pid apart.
    pub start_time: Option<u64>,
    /// PostgreSQL: the key of the session advisory lock it holds for its whole life on a
    /// connection of its own; the database frees it when that connection ends.
    pub liveness_key: Option<i64>,
}

impl LeaseHolder {
    /// A holder known only by its owner id: only expiry frees its leases.
    pub fn anonymous(owner: impl Into<String>) -> Self {
        LeaseHolder {
            owner: owner.into(),
            ..Default::default()
        }
    }

    /// This process as `owner`, described by its host's process table, with the liveness key
    /// it holds (if any).
    pub fn this_process(
        owner: impl Into<String>,
        processes: &dyn ProcessTable,
        liveness_key: Option<i64>,
    ) -> Self {
        let pid = std::process::id();
        let start_time = match processes.process(pid) {
            ProcessState::Running { start_time } => Some(start_time),
            ProcessState::Gone | ProcessState::Unknown => None,
        };
        LeaseHolder {
            owner: owner.into(),
            host: Some(processes.identity().clone()),
            pid: Some(pid),
            start_time,
            liveness_key,
        }
    }
}

/// What an attempt to take a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAttempt {
    /// The lease is ours until `now + ttl`.
    Acquired,
    /// Another owner holds it, unexpired: this one. `None` when it was released between the
    /// attempt and the read; trying again may succeed.
    Held(Option<LeaseHolder>),
}

/// Cross-process lock leases (B2, I3): a row per key with its holder and an expiry.
///
/// Times come from the caller's [`Clock`] so expiry is testable; hosts sharing a database
/// are assumed to keep their clocks within a small fraction of the lease time.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes `key` for `holder` until `now + ttl` if it is free, expired, or already ours;
    /// otherwise says who holds it.
    async fn try_acquire_lease(
        &self,
        key: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<LeaseAttempt, StoreError>;
    /// Takes `key` over from `dead_owner`, expired or not, but only while `dead_owner` still
    /// holds it: of two contenders that both found the holder dead, one wins.
    async fn take_over_lease(
        &self,
        key: &str,
        dead_owner: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// [`LeaseStore::try_acquire_lease`] for several keys in one statement, saying only which
    /// were taken (a caller asks about the others one by one, to learn who holds them).
    async fn try_acquire_leases(
        &self,
        keys: &[String],
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<Vec<String>, StoreError>;
    /// Extends our unexpired lease to `now + ttl`; `false` means it was lost.
    async fn renew_lease(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// Gives the key up if we still hold it.
    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError>;
    /// Gives up every lease `owner` holds (at shutdown); returns how many.
    async fn release_leases_of(&self, owner: &str) -> Result<u64, StoreError>;
    /// Whether the process holding liveness key `key` still has its database session.
    /// `None` where the database gives no such signal (SQLite).
    async fn holder_connected(&self, key: i64) -> Result<Option<bool>, StoreError>;
}

/// What ends a batch of runs, written together ([`JournalStore::finish_runs`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct FinishedRuns<'a> {
    /// The outcomes of entries left without a broker answer, completed as such.
    pub completions: &'a [OutcomeCompletion],
    /// One record per run.
    pub runs: &'a [RunRecord],
    /// The leases the runs held, given back.
    pub leases: LeaseRelease<'a>,
}

/// Leases one owner gives back: each key's row is deleted only while `owner` still holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeaseRelease<'a> {
    pub owner: &'a str,
    pub keys: &'a [String],
}

/// The record of one run: whose run it was, what started it, who held which key from when
/// to when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The expert of a use case's run; `None` for an account's refresh.
    pub expert_id: Option<i64>,
    /// The use case run; `None` for an account's refresh.
    pub use_case: Option<tradewarden_domain::UseCase>,
    /// What started it; `None` where the caller does not say (an account's refresh).
    pub trigger: Option<crate::report::RunTrigger>,
    pub lock_key: String,
    pub owner: String,
    pub status: crate::report::RunStatus,
    /// What a use case's run counted (stored as JSON text).
    pub counts: Option<crate::report::Counts>,
    /// Why a `failed` run stopped.
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// A stored run record, as `tradewarden runs` and the API list it. Records written before
/// migration 0009 have no trigger and no counts (expert and use case are read from their
/// lock key by the migration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredRun {
    pub id: i64,
    /// `None` for an account's refresh.
    pub expert_id: Option<i64>,
    pub use_case: Option<tradewarden_domain::UseCase>,
    pub trigger: Option<crate::report::RunTrigger>,
    /// The processing lock the run held (`expert_{id}_usecase_{use_case}`, or an account's).
    pub lock_key: String,
    pub owner: String,
    pub status: crate::report::RunStatus,
    pub counts: Option<crate::report::Counts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// Filters and paging of [`QueryStore::runs`]; `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub expert_id: Option<i64>,
    pub status: Option<crate::report::RunStatus>,
    /// Runs started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many rows (`None`: all).
    pub limit: Option<u32>,
    /// Rows skipped first, newest first.
    pub offset: u32,
}

/// A difference between a broker's position and the open transactions (reconciliation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub account: String,
    pub symbol: String,
    /// Signed: negative is short.
    pub broker_quantity: Decimal,
    /// What OPENED and CLOSING transactions hold, signed.
    pub recorded_quantity: Decimal,
    pub detail: String,
    pub found_at: DateTime<Utc>,
}

/// Why an import stored nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImportError {
    /// Lines (batch index, message) that conflict with stored recommendations.
    #[error("{} conflicting line(s)", .0.len())]
    Conflicts(Vec<(usize, String)>),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
