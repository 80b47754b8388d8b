//! The trade manager: use cases, processing locks, decision records and metrics.
//!
//! - [`ports`]: the traits the engine talks to the outside through (store roles, brokers,
//!   the paper broker's persistence, the clock).
//! - [`locks`]: keyed processing locks, one run per (expert, use case) at a time (S1–S4).
//! - [`liveness`]: telling a lease holder's death, so its lease is taken over at once (I3).
//! - [`settings`]: the validated runtime view of the configuration.
//! - [`manager`]: [`TradeManager`], one file per use case (enter_market, settle, reconcile,
//!   import, refresh, exits).
//! - [`report`]: what the use cases report.
//! - [`fault`]: abort points for crash tests (feature `fault-injection`).
//! - [`metrics`]: names of the Prometheus series the engine emits (S8, B5).
//! - [`metered_broker`]: the broker wrapper that times every broker call.
//!
//! The engine decides with the pure functions of `tradewarden-domain`, then carries the plan
//! out; no lock or database transaction is held across a broker call except the processing
//! lock itself, which exists to serialise exactly that.

pub mod error;
pub mod fault;
pub mod liveness;
pub mod locks;
pub mod manager;
pub mod metered_broker;
pub mod metrics;
pub mod ports;
pub mod report;
pub mod settings;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod unwind;

pub use error::EngineError;
pub use locks::{LeaseConfig, LeaseLost, LockSubject, ProcessingGuard, ProcessingLocks};
pub use manager::{
    CloseOutcome, ExitsOutcome, FieldError, ImportSummary, JobEnded, JobError, JsonlImport,
    MAX_JOBS_PER_REQUEST, RefreshReport, TradeManager,
};
pub use metered_broker::MeteredBroker;
pub use ports::{
    Broker, BrokerError, BrokerOrder, Clock, HostIdentity, LeaseHolder, LeaseStore, OrderRequest,
    ProcessState, ProcessTable, Store, StoreError, SystemClock,
};
pub use report::{
    Counts, InFlight, PositionCounts, ReconcileReport, RunReport, RunStatus, RunTrigger, Settled,
    SettledOrder,
};
pub use settings::{AccountSettings, Settings};
