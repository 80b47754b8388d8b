//! The validated runtime view of the configuration the engine works from.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rust_decimal::Decimal;
use tradewarden_domain::expert::Expert;
use tradewarden_domain::rules::Ruleset;

/// One account, as the engine needs it (which broker serves it is the app's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    pub name: String,
    /// The equity gate, in percent of an expert's virtual balance.
    pub minimum_equity_threshold_percent: Decimal,
}

/// Everything the engine needs from the configuration, already validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub experts: BTreeMap<i64, Expert>,
    pub rulesets: HashMap<String, Ruleset>,
    pub accounts: HashMap<String, AccountSettings>,
    /// How long a contender waits for a processing lock (the seed's 0.5 s).
    pub lock_timeout: Duration,
    /// Default lookback of an enter_market run, in days.
    pub lookback_days: u32,
    /// How far ahead of now a recommendation's `created_at` may be (`[processing]
    /// max_clock_skew_seconds`); later ones are refused at import.
    pub max_clock_skew_seconds: u32,
    /// An order intent older than this is never sent (`[processing] max_intent_age_seconds`):
    /// an order a crash left `submitting` days ago would go out at today's price.
    pub max_intent_age: Duration,
    /// An analysis job pending longer than this is failed by
    /// [`TradeManager::fail_timed_out_jobs`](crate::TradeManager::fail_timed_out_jobs)
    /// (`[processing] job_timeout_seconds`), so an expert never stalls forever.
    pub job_timeout: Duration,
}
