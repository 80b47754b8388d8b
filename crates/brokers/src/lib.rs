//! Brokers behind the engine's [`Broker`](tradewarden_engine::Broker) trait.
//!
//! - [`paper`]: the built-in, deterministic paper broker whose state lives in the database.

pub mod paper;

pub use paper::{PaperBroker, PaperLedger};
