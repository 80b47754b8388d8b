//! Brokers behind the engine's [`Broker`](tradewarden_engine::Broker) trait.
//!
//! - [`paper`]: the built-in, deterministic paper broker; its book is persisted through the
//!   engine's [`PaperLedger`](tradewarden_engine::ports::PaperLedger) port.

pub mod paper;

pub use paper::{PaperBook, PaperBroker};
