//! [`TradeManager`]: the use cases of one process, one file each.
//!
//! - [`enter_market`]: the enter_market run (DESIGN.md §5) as named phases.
//! - [`open_positions`]: the open_positions run: close positions, move their exits.
//! - [`settle`]: settling orders left `submitting` by a crash (B3).
//! - [`reconcile`]: startup reconciliation of in-flight orders and broker positions.
//! - [`import`]: recommendation ingestion and the quotes it carries.
//! - [`refresh`]: broker refresh of every account: fills, legs fired and canceled, closes.
//! - [`exits`]: closing a transaction, replacing its exit structure.
//! - [`replace`]: moving a resting exit structure in place, at a broker that replaces orders.
//! - [`instrument_share`]: an order that grows or shrinks an OPENED position.
//! - [`jobs`]: analysis jobs, and the run the last one's ending starts.

mod enter_market;
mod exits;
mod import;
mod instrument_share;
mod jobs;
mod open_positions;
mod reconcile;
mod refresh;
mod replace;
mod settle;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;

use crate::error::EngineError;
use crate::locks::{LeaseConfig, ProcessingGuard, ProcessingLocks};
use crate::metered_broker::MeteredBroker;
use crate::ports::{
    Broker, Clock, FinishedRuns, LeaseHolder, LeaseRelease, LeaseStore, OutcomeCompletion,
    ProcessTable, RunRecord, Store, StoreError,
};
use crate::settings::Settings;

pub use exits::{CloseOutcome, ExitsOutcome};
pub(crate) use import::import_slice;
pub use import::{IMPORT_CHUNK_LINES, ImportSummary, JsonlImport};
pub use instrument_share::ShareOutcome;
pub use jobs::{FieldError, JobEnded, JobError, MAX_JOBS_PER_REQUEST, MAX_REASON_CHARS};
pub use refresh::RefreshReport;

/// The trade manager of one process.
pub struct TradeManager {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    brokers: HashMap<String, Arc<dyn Broker>>,
    clock: Arc<dyn Clock>,
    locks: ProcessingLocks,
}

impl TradeManager {
    /// Wires a manager. `brokers` maps account names to their broker; every call the
    /// manager makes to one is timed ([`MeteredBroker`]).
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        brokers: HashMap<String, Arc<dyn Broker>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let locks = ProcessingLocks::new(settings.lock_timeout);
        let brokers = brokers
            .into_iter()
            .map(|(account, broker)| (account, MeteredBroker::wrap(broker)))
            .collect();
        TradeManager {
            settings: Arc::new(settings),
            store,
            brokers,
            clock,
            locks,
        }
    }

    /// Backs the processing locks with database leases (B2) so runs exclude each other across
    /// processes and hosts sharing the database. `holder.owner` must be unique per process;
    /// `processes` is this host's process table, to take over a dead holder's lease (I3).
    pub fn with_leases(
        mut self,
        store: Arc<dyn LeaseStore>,
        holder: LeaseHolder,
        processes: Arc<dyn ProcessTable>,
        ttl: std::time::Duration,
    ) -> Self {
        let cfg = LeaseConfig {
            store,
            holder,
            ttl,
            clock: self.clock.clone(),
            processes,
        };
        self.locks = ProcessingLocks::with_leases(self.settings.lock_timeout, cfg);
        self
    }

    /// Who this process is in lease and run records.
    fn owner(&self) -> String {
        self.locks
            .owner()
            .map(str::to_string)
            .unwrap_or_else(|| format!("local-{}", std::process::id()))
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The processing locks of this process.
    pub fn locks(&self) -> &ProcessingLocks {
        &self.locks
    }

    /// The broker of an account.
    fn broker(&self, account: &str) -> Result<&Arc<dyn Broker>, EngineError> {
        self.brokers
            .get(account)
            .ok_or_else(|| EngineError::NoBroker(account.to_string()))
    }
}

impl TradeManager {
    /// Writes `records` (with `completions`) and gives back the leases of `guards` in one
    /// store call, the guards' renewals stopped first. The caller then ends each guard with
    /// [`ProcessingGuard::end`]: given back when this succeeded, released on its own when not.
    async fn record_and_give_back(
        &self,
        guards: &[&ProcessingGuard],
        completions: &[OutcomeCompletion],
        records: &[RunRecord],
    ) -> Result<Vec<i64>, StoreError> {
        let owner = self.owner();
        let keys: Vec<String> = guards
            .iter()
            .filter_map(|g| g.lease_key().map(str::to_string))
            .collect();
        for g in guards {
            g.stop_renewing();
        }
        self.store
            .finish_runs(&FinishedRuns {
                completions,
                runs: records,
                leases: LeaseRelease {
                    owner: &owner,
                    keys: &keys,
                },
            })
            .await
    }
}

/// How many accounts' broker calls and writes go at once (a refresh's accounts, a batch's
/// order submissions): enough to overlap PostgreSQL round trips and commits, few enough
/// that a run does not open a connection per account.
const ACCOUNTS_AT_ONCE: usize = 4;

/// Awaits `work` (one future per account), [`ACCOUNTS_AT_ONCE`] at a time; the outputs in
/// the order of `work`.
async fn per_account<F: std::future::Future>(work: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    // Collected first: a stream over the caller's mapping closure would not be `Send`
    // for every lifetime it borrows (rust-lang/rust#102211).
    let work: Vec<F> = work.into_iter().collect();
    futures_util::stream::iter(work)
        .buffered(ACCOUNTS_AT_ONCE)
        .collect()
        .await
}
