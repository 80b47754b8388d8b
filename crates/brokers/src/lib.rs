//! Brokers behind the engine's [`Broker`](tradewarden_engine::Broker) trait.
//!
//! - [`alpaca`]: Alpaca's trading API v2 (paper and live accounts), over HTTP.
//! - [`paper`]: the built-in, deterministic paper broker; its book is persisted through the
//!   engine's [`PaperLedger`](tradewarden_engine::ports::PaperLedger) port.

pub mod alpaca;
pub mod paper;

pub use alpaca::AlpacaBroker;
pub use paper::{PaperBook, PaperBroker};
