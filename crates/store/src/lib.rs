//! The store: SQLite and PostgreSQL behind the engine's store roles and the paper broker's
//! ledger port, one file per aggregate.
//!
//! - [`db`]: the dialect layer; the SQL and the logic above it are written once.
//! - `store`: [`SqlStore`], connecting and migrating (`migrations/sqlite`,
//!   `migrations/postgres`, embedded with `sqlx::migrate!`).
//! - `recommendations`, `positions`, `journal`, `listings`, `leases`, `paper`, `lifecycle`,
//!   `open_positions`, `jobs`: the roles; `runs`: run records read back.
//! - [`liveness`]: a process's liveness lock on PostgreSQL, which tells others it lives.
//! - `rows`: stored rows to domain values, and the multi-row statement helpers.
//! - `sqlite`: SQLite's one connection per process (rusqlite), statements run inline;
//!   `sqlite_migrations`: the embedded migrations applied to it, in sqlx's bookkeeping.

pub mod db;
mod jobs;
mod journal;
mod leases;
mod lifecycle;
mod listings;
pub mod liveness;
mod open_positions;
mod paper;
mod positions;
mod recommendations;
mod rows;
mod runs;
mod sqlite;
mod sqlite_migrations;
mod store;

pub use liveness::LivenessLock;
pub use store::SqlStore;
