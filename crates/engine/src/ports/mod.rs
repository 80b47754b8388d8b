//! The traits through which the engine reaches the outside, by role.
//!
//! - [`store`]: the store, split by role (recommendations, positions, journal, queries,
//!   leases) so a caller takes only the role it needs.
//! - [`broker`]: a broker account, and the capability of accepting quotes.
//! - [`lifecycle`]: positions with their orders, for refresh, closing and exits.
//! - [`open_positions`]: what an open_positions run reads and writes.
//! - [`jobs`]: analysis jobs, which hold an expert's runs back until its analysis is done.
//! - [`paper`]: the paper broker's persistence port (load and save only; its fill rules
//!   live in `tradewarden-brokers`).
//! - [`host`]: the host's process table, to tell a dead lease holder on this host.
//! - [`Clock`]: wall-clock time, injected so tests can fix it.
//!
//! They are object-safe (`async_trait`) so the app can wire SQLite or PostgreSQL, the paper
//! broker or a real one, without the engine knowing which.

pub mod broker;
pub mod host;
pub mod jobs;
pub mod lifecycle;
pub mod open_positions;
pub mod paper;
pub mod store;

use chrono::{DateTime, Utc};

pub use broker::{
    AcceptsQuotes, AccountSnapshot, AttachedExits, Broker, BrokerError, BrokerOrder,
    BrokerPosition, HeldPosition, Holdings, OrderRequest, Quote,
};
pub use host::{HostIdentity, ProcessState, ProcessTable};
pub use jobs::{AnalysisJob, JobEnd, JobFilter, JobSession, JobStatus, JobStore, NewJob};
pub use lifecycle::{LifecycleStore, LifecycleWrite, LifecycleWritten, NewExitOrder, Position};
pub use open_positions::{OpenPositionsData, OpenPositionsStore};
pub use paper::{
    BookScope, PaperBook, PaperLedger, PaperOrderRecord, PaperPosition, PaperSave, StoredPaperOrder,
};
pub use store::{
    EnterMarketData, Finding, FinishedRuns, ImportCounts, ImportError, ImportSession,
    InFlightReason, JournalStore, LeaseAttempt, LeaseHolder, LeaseRelease, LeaseStore, ListFilter,
    NewPosition, OutcomeCompletion, Page, PositionStore, QueryStore, RecommendationStore,
    RunFilter, RunRecord, Store, StoreError, StoredRun,
};

/// Wall-clock time, injected so tests can fix it.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
