//! The store: SQLite and PostgreSQL behind the engine's [`Store`](tradewarden_engine::Store)
//! trait and the paper broker's [`PaperLedger`](tradewarden_brokers::PaperLedger).
//!
//! - [`db`]: the dialect layer; the SQL and the logic above it are written once.
//! - [`sql`]: [`SqlStore`], every store operation as one short database transaction.
//! - migrations: `migrations/sqlite` and `migrations/postgres`, embedded in the binary.

pub mod db;
pub mod sql;

pub use sql::SqlStore;
