//! What the use cases report: a run's status and counts, and what settling and
//! reconciliation did.

use serde::Serialize;
use tradewarden_domain::outcome::OutcomeKind;
use tradewarden_domain::{Order, OrderStatus, UseCase};

use crate::metrics as m;
use crate::ports::{Finding, InFlightReason};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Processed,
    SkippedLocked,
    SkippedPendingJobs,
    ExpertDisabled,
    AutomationDisabled,
    NoRuleset,
    /// The run stopped on an error; the report's `error` says why.
    Failed,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Processed,
        RunStatus::SkippedLocked,
        RunStatus::SkippedPendingJobs,
        RunStatus::ExpertDisabled,
        RunStatus::AutomationDisabled,
        RunStatus::NoRuleset,
        RunStatus::Failed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Processed => "processed",
            RunStatus::SkippedLocked => "skipped_locked",
            RunStatus::SkippedPendingJobs => "skipped_pending_jobs",
            RunStatus::ExpertDisabled => "expert_disabled",
            RunStatus::AutomationDisabled => "automation_disabled",
            RunStatus::NoRuleset => "no_ruleset",
            RunStatus::Failed => "failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        RunStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What started a run: recorded with it (`runs.trigger`) and a label of
/// `tradewarden_runs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// The command line (`process`, `run`).
    Cli,
    /// An HTTP request (`POST /api/v1/experts/{id}/process`).
    Api,
    /// The last pending analysis job of its expert and use case ended.
    Jobs,
    /// The server's periodic processing.
    Schedule,
}

impl RunTrigger {
    /// Every trigger.
    pub const ALL: [RunTrigger; 4] = [
        RunTrigger::Cli,
        RunTrigger::Api,
        RunTrigger::Jobs,
        RunTrigger::Schedule,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Cli => "cli",
            RunTrigger::Api => "api",
            RunTrigger::Jobs => "jobs",
            RunTrigger::Schedule => "schedule",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        RunTrigger::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for RunTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts one run in `tradewarden_runs_total{use_case, status, trigger}`; called once per
/// run, recorded or skipped.
pub fn count_run(use_case: UseCase, status: RunStatus, trigger: RunTrigger) {
    metrics::counter!(
        m::RUNS_TOTAL,
        "use_case" => use_case.as_str(),
        "status" => status.as_str(),
        "trigger" => trigger.as_str()
    )
    .increment(1);
}

/// Outcome counts of one run, in the documented key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct Counts {
    pub considered: usize,
    pub rules_not_met: usize,
    pub not_permitted: usize,
    pub duplicate_position: usize,
    pub insufficient_equity: usize,
    pub unfunded: usize,
    pub ordered: usize,
    pub failed: usize,
    /// What an open_positions run did with the positions; absent from an enter_market
    /// run's counts, so their documented keys stay as they were.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub positions: Option<PositionCounts>,
}

/// Outcome counts of an open_positions run, beside the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct PositionCounts {
    pub no_position: usize,
    pub close_working: usize,
    pub no_action: usize,
    pub closed: usize,
    pub adjusted: usize,
}

impl PositionCounts {
    /// The count of one of open_positions' own outcomes (`failed` is a common one).
    fn slot(&mut self, kind: OutcomeKind) -> &mut usize {
        match kind {
            OutcomeKind::NoPosition => &mut self.no_position,
            OutcomeKind::CloseWorking => &mut self.close_working,
            OutcomeKind::Closed => &mut self.closed,
            OutcomeKind::Adjusted => &mut self.adjusted,
            _ => &mut self.no_action,
        }
    }
}

impl Counts {
    /// The counts of an open_positions run: the common ones and the positions' ones, zero.
    pub fn for_positions() -> Self {
        Counts {
            positions: Some(PositionCounts::default()),
            ..Counts::default()
        }
    }

    /// Counts one outcome of a `use_case` run (and reports it to the metrics).
    pub fn add(&mut self, use_case: UseCase, kind: OutcomeKind) {
        let slot = match kind {
            OutcomeKind::NoPosition
            | OutcomeKind::CloseWorking
            | OutcomeKind::NoAction
            | OutcomeKind::Closed
            | OutcomeKind::Adjusted => self
                .positions
                .get_or_insert_with(PositionCounts::default)
                .slot(kind),
            OutcomeKind::RulesNotMet => &mut self.rules_not_met,
            OutcomeKind::NotPermitted => &mut self.not_permitted,
            OutcomeKind::DuplicatePosition => &mut self.duplicate_position,
            OutcomeKind::InsufficientEquity => &mut self.insufficient_equity,
            OutcomeKind::Unfunded => &mut self.unfunded,
            OutcomeKind::Ordered => &mut self.ordered,
            OutcomeKind::Failed => &mut self.failed,
        };
        *slot += 1;
        metrics::counter!(
            m::RECOMMENDATION_OUTCOMES,
            "use_case" => use_case.as_str(),
            "outcome" => kind.as_str()
        )
        .increment(1);
    }
}

/// The report of one run: what `process` prints per expert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub expert_id: i64,
    pub use_case: UseCase,
    pub status: RunStatus,
    pub counts: Counts,
    /// The orders the run created (S6); empty when skipped.
    pub orders: Vec<Order>,
    /// Why a `failed` run stopped (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The id of the run's record (`tradewarden runs`); absent for a run that was not
    /// recorded (`skipped_locked`, or its record could not be written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
}

impl RunReport {
    /// The report of a run that did nothing, ending in `status`.
    pub fn skipped(expert_id: i64, use_case: UseCase, status: RunStatus) -> Self {
        RunReport {
            expert_id,
            use_case,
            status,
            counts: Counts::default(),
            orders: Vec::new(),
            error: None,
            run_id: None,
        }
    }

    /// The report of a run that stopped on `error`.
    pub fn failed(expert_id: i64, use_case: UseCase, error: String) -> Self {
        RunReport {
            error: Some(error),
            ..RunReport::skipped(expert_id, use_case, RunStatus::Failed)
        }
    }
}

/// How an order left `submitting` was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Settled {
    /// The broker had it: its answer was recorded.
    Adopted,
    /// The broker never saw it: it was sent now.
    Submitted,
    /// The broker could not be asked; the order is still `submitting`.
    Unreachable,
    /// A live run of its expert holds the lock and settles it.
    Busy,
    /// The broker has another order under its client_order_id (another database gave the
    /// id out): not adopted; the order stays `submitting` and a finding is recorded.
    Foreign,
    /// The broker never got it and it is older than `max_intent_age_seconds`: never sent;
    /// the order is `error`, its transaction FAILED (`intent_expired`).
    Expired,
}

impl Settled {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Settled::Adopted => "adopted",
            Settled::Submitted => "submitted",
            Settled::Unreachable => "unreachable",
            Settled::Busy => "busy",
            Settled::Foreign => "foreign",
            Settled::Expired => "expired",
        }
    }
}

/// What reconciliation did with one in-flight order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettledOrder {
    pub order_id: i64,
    pub client_order_id: String,
    pub how: Settled,
    pub status: OrderStatus,
}

impl SettledOrder {
    /// The line for `order`, settled `how`.
    pub fn of(order: Order, how: Settled) -> Self {
        SettledOrder {
            order_id: order.id,
            client_order_id: order.client_order_id,
            how,
            status: order.status,
        }
    }
}

/// A symbol reconciliation did not compare: its position may be changing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InFlight {
    /// The account reconciled.
    pub account: String,
    /// The symbol left out.
    pub symbol: String,
    /// Why it was left out.
    pub reason: InFlightReason,
}

/// What `reconcile` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub settled: Vec<SettledOrder>,
    pub findings: Vec<Finding>,
    /// Symbols left out of the comparison (extension): orders in flight or a run in progress.
    pub in_flight: Vec<InFlight>,
}
