//! The open_positions run of one expert (issue 9 item 5, reference §3 without its quirks),
//! as named phases: take the lock → `gates` → `load` → `view` → `decide_each` →
//! `record` the passive outcomes → `carry_out` the closes and exit moves → `record` their
//! outcomes → `finish` (run record, lease given back).
//!
//! The lock is `expert_{id}_usecase_open_positions`, through the same locks and leases as
//! enter_market: a different key, so an enter_market run of the same expert proceeds while
//! this one holds its own. Every considered recommendation (the newest per symbol in the
//! window, HOLD included) gets one outcome: `no_position`, `close_working`, `no_action`,
//! `closed`, `adjusted`, or `failed` when carrying the decision out failed. An
//! instrument-share decision sends one order on the position's transaction
//! ([`TradeManager::change_share`]); its outcome is `adjusted`.
//!
//! Inputs load one query per kind for all of the expert's positions, and the broker is
//! asked once for the account and once for all quotes: the cost does not grow in round
//! trips with the number of positions, only the actions taken do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::expert::{Expert, ExpertBalance};
use tradewarden_domain::lifecycle::CloseReason;
use tradewarden_domain::money::{checked_div, checked_mul};
use tradewarden_domain::open_positions::{self, Decision, Funds, HeldPosition, Situation};
use tradewarden_domain::outcome::OutcomeKind;
use tradewarden_domain::rules::Ruleset;
use tradewarden_domain::transaction::ActivePosition;
use tradewarden_domain::{Outcome, TransactionStatus, UseCase};

use super::TradeManager;
use super::{CloseOutcome, ExitsOutcome, ShareOutcome};
use crate::error::EngineError;
use crate::locks::{LeaseLost, ProcessingGuard};
use crate::metrics as m;
use crate::ports::{Broker, OpenPositionsData, RunRecord};
use crate::report::{Counts, RunReport, RunStatus, RunTrigger, count_run};
use crate::unwind::CatchUnwind;

/// What the run works with once its gates are passed.
struct Gated<'a> {
    expert: &'a Expert,
    ruleset: &'a Ruleset,
    broker: &'a Arc<dyn Broker>,
}

/// The broker's view the decisions need: quotes of the held symbols, the expert's virtual
/// equity (for `instrument_account_share`) and its money (for the instrument-share actions).
#[derive(Default)]
struct View {
    quotes: HashMap<String, Decimal>,
    virtual_equity: Option<Decimal>,
    funds: Option<Funds>,
}

/// A run about to be recorded: whose, what started it, and when.
struct FinishingRun {
    expert_id: i64,
    trigger: RunTrigger,
    started: Instant,
    started_at: DateTime<Utc>,
}

/// One considered recommendation and what was decided for it.
struct Decided {
    rec_id: i64,
    symbol: String,
    decision: Decision,
}

impl TradeManager {
    /// Runs open_positions for one expert. `lookback_days` overrides the configured window.
    /// Skipped (`skipped_locked`) while another run holds the expert's open_positions lock;
    /// `automation_disabled` without `allow_automated_trade_modification`, `no_ruleset`
    /// without an `open_positions_ruleset`; `skipped_pending_jobs` while analysis jobs of
    /// open_positions are pending. `trigger` is recorded with the run.
    pub async fn process_open_positions(
        &self,
        expert_id: i64,
        lookback_days: Option<u32>,
        trigger: RunTrigger,
    ) -> Result<RunReport, EngineError> {
        let use_case = UseCase::OpenPositions;
        let expert = self
            .settings
            .experts
            .get(&expert_id)
            .ok_or(EngineError::UnknownExpert(expert_id))?;
        let Some(guard) = self.locks.acquire(expert_id, use_case).await else {
            count_run(use_case, RunStatus::SkippedLocked, trigger);
            return Ok(RunReport::skipped(
                expert_id,
                use_case,
                RunStatus::SkippedLocked,
            ));
        };
        let (started, started_at) = (Instant::now(), self.clock.now());
        let lookback = lookback_days.unwrap_or(self.settings.lookback_days);
        let running = self.positions_run(expert, &guard, lookback);
        let result = CatchUnwind::new(running)
            .await
            .unwrap_or_else(|panic| Err(EngineError::Panicked(panic)));
        let run = FinishingRun {
            expert_id,
            trigger,
            started,
            started_at,
        };
        self.finish_positions_run(run, guard, result).await
    }

    /// Runs open_positions for every configured expert, one after another, in id order. An
    /// expert whose run fails gets a `failed` report naming the error; the others still run.
    pub async fn process_all_open_positions(
        &self,
        lookback_days: Option<u32>,
        trigger: RunTrigger,
    ) -> Vec<RunReport> {
        let ids: Vec<i64> = self.settings.experts.keys().copied().collect();
        self.process_open_positions_of(&ids, lookback_days, trigger)
            .await
    }

    /// [`TradeManager::process_all_open_positions`] for the experts `ids`, in that order.
    pub async fn process_open_positions_of(
        &self,
        ids: &[i64],
        lookback_days: Option<u32>,
        trigger: RunTrigger,
    ) -> Vec<RunReport> {
        let mut reports = Vec::with_capacity(ids.len());
        for &id in ids {
            let report = self
                .process_open_positions(id, lookback_days, trigger)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!("open_positions run of expert {id} failed: {e}");
                    RunReport::failed(id, UseCase::OpenPositions, e.to_string())
                });
            reports.push(report);
        }
        reports
    }

    /// The run between taking the lock and finishing it.
    async fn positions_run(
        &self,
        expert: &Expert,
        guard: &ProcessingGuard,
        lookback_days: u32,
    ) -> Result<RunReport, EngineError> {
        let gated = match self.positions_gates(expert).await? {
            Ok(g) => g,
            Err(status) => {
                tracing::info!(
                    "open_positions run of expert {} skipped: {status}",
                    expert.id
                );
                return Ok(RunReport::skipped(
                    expert.id,
                    UseCase::OpenPositions,
                    status,
                ));
            }
        };
        let since = self.clock.now() - ChronoDuration::days(i64::from(lookback_days));
        let data = self.store.load_open_positions(expert.id, since).await?;
        let view = self.positions_view(&gated, guard, &data).await?;
        let decided = decide_each(&gated, &data, &view);
        let mut counts = Counts::for_positions();
        counts.considered = decided.len();
        let (passive, active): (Vec<Decided>, Vec<Decided>) = decided.into_iter().partition(|d| {
            !matches!(
                d.decision,
                Decision::Close { .. } | Decision::Adjust { .. } | Decision::Share { .. }
            )
        });
        let passive: Vec<Outcome> = passive
            .into_iter()
            .map(|d| {
                let kind = d.decision.outcome();
                self.positions_outcome(expert.id, &d, kind, d.decision.detail().to_string(), None)
            })
            .collect();
        self.store.record_outcomes(&passive).await?;
        let (outcomes, lost) = self.carry_out_all(expert.id, guard, &active).await?;
        if let Some(lost) = lost {
            return Err(lost.into());
        }
        for o in passive.iter().chain(&outcomes) {
            counts.add(UseCase::OpenPositions, o.outcome);
        }
        Ok(RunReport {
            expert_id: expert.id,
            use_case: UseCase::OpenPositions,
            status: RunStatus::Processed,
            counts,
            orders: Vec::new(),
            error: None,
            run_id: None,
        })
    }

    /// The gates: a status when the expert may not modify positions now.
    async fn positions_gates<'a>(
        &'a self,
        expert: &'a Expert,
    ) -> Result<Result<Gated<'a>, RunStatus>, EngineError> {
        if !expert.enabled {
            return Ok(Err(RunStatus::ExpertDisabled));
        }
        if !expert.allow_automated_trade_modification {
            return Ok(Err(RunStatus::AutomationDisabled));
        }
        let Some(ruleset) = expert
            .open_positions_ruleset
            .as_ref()
            .and_then(|n| self.settings.rulesets.get(n))
        else {
            return Ok(Err(RunStatus::NoRuleset));
        };
        if self
            .store
            .has_pending_jobs(expert.id, UseCase::OpenPositions)
            .await?
        {
            return Ok(Err(RunStatus::SkippedPendingJobs));
        }
        let broker = self.broker(&expert.account)?;
        Ok(Ok(Gated {
            expert,
            ruleset,
            broker,
        }))
    }

    /// The quotes of the symbols the expert holds and its virtual equity, one broker call
    /// each, under the lease; nothing is asked when it holds nothing.
    async fn positions_view(
        &self,
        gated: &Gated<'_>,
        guard: &ProcessingGuard,
        data: &OpenPositionsData,
    ) -> Result<View, EngineError> {
        let mut symbols: Vec<String> = data
            .recommendations
            .iter()
            .filter(|r| {
                data.positions
                    .get(&r.symbol)
                    .is_some_and(|p| p.status == TransactionStatus::Opened)
            })
            .map(|r| r.symbol.clone())
            .collect();
        if symbols.is_empty() {
            return Ok(View::default());
        }
        symbols.sort();
        guard.ensure_held()?;
        let account = gated.broker.account().await?;
        guard.ensure_held()?;
        let quotes = gated.broker.quotes(&symbols).await?;
        let virtual_equity = checked_mul(account.balance, gated.expert.virtual_equity_percent)
            .and_then(|v| checked_div(v, Decimal::ONE_HUNDRED))
            .ok();
        let funds = virtual_equity.map(|virtual_equity| {
            let active = active_positions(data);
            let balance = ExpertBalance::compute(
                account.balance,
                account.cash,
                gated.expert.virtual_equity_percent,
                &active,
                &quotes,
            );
            Funds {
                virtual_equity,
                available: balance.available,
                max_instrument_percent: gated.expert.max_virtual_equity_per_instrument_percent,
            }
        });
        Ok(View {
            quotes,
            virtual_equity,
            funds,
        })
    }

    /// Carries out the closes and exit moves one after another, each right after checking
    /// the lease, and records each one's outcome as soon as it is carried out (so a crash
    /// later in the run loses none of the outcomes of what was done): a lost lease stops them
    /// (the rest are left to whoever holds the lock next).
    async fn carry_out_all(
        &self,
        expert_id: i64,
        guard: &ProcessingGuard,
        active: &[Decided],
    ) -> Result<(Vec<Outcome>, Option<LeaseLost>), EngineError> {
        let mut outcomes = Vec::with_capacity(active.len());
        for d in active {
            if let Err(lost) = guard.ensure_held() {
                return Ok((outcomes, Some(lost)));
            }
            let outcome = self.carry_out_decision(expert_id, d).await;
            self.store
                .record_outcomes(std::slice::from_ref(&outcome))
                .await?;
            outcomes.push(outcome);
        }
        Ok((outcomes, None))
    }

    /// Carries out a close or an exit move; its outcome says what became of it.
    async fn carry_out_decision(&self, expert_id: i64, d: &Decided) -> Outcome {
        let detail = d.decision.detail();
        let (kind, said, order_id) = match &d.decision {
            Decision::Close { transaction_id, .. } => closed(
                self.close_transaction(*transaction_id, CloseReason::Rule)
                    .await,
            ),
            Decision::Adjust {
                transaction_id,
                take_profit,
                stop_loss,
                ..
            } => {
                let replacing = self.replace_exits(
                    *transaction_id,
                    take_profit.map(|p| p.get()),
                    stop_loss.map(|p| p.get()),
                );
                adjusted(replacing.await)
            }
            Decision::Share {
                transaction_id,
                order,
                ..
            } => shared(self.change_share(*transaction_id, *order).await),
            other => (other.outcome(), String::new(), None),
        };
        if kind == OutcomeKind::Failed {
            tracing::warn!(
                "open_positions of expert {expert_id}: {} on {} failed{said}",
                d.decision.outcome(),
                d.symbol
            );
        }
        self.positions_outcome(expert_id, d, kind, format!("{detail}{said}"), order_id)
    }

    /// One decision record of this use case.
    fn positions_outcome(
        &self,
        expert_id: i64,
        d: &Decided,
        kind: OutcomeKind,
        detail: String,
        order_id: Option<i64>,
    ) -> Outcome {
        Outcome {
            recommendation_id: d.rec_id,
            expert_id,
            symbol: d.symbol.clone(),
            use_case: UseCase::OpenPositions,
            outcome: kind,
            detail,
            order_id,
            decided_at: self.clock.now(),
        }
    }

    /// Records the run and gives its lease back (one store call), then lets the lock go.
    async fn finish_positions_run(
        &self,
        run: FinishingRun,
        guard: ProcessingGuard,
        mut result: Result<RunReport, EngineError>,
    ) -> Result<RunReport, EngineError> {
        let FinishingRun {
            expert_id,
            trigger,
            started,
            started_at,
        } = run;
        let record = RunRecord {
            expert_id: Some(expert_id),
            use_case: Some(UseCase::OpenPositions),
            trigger: Some(trigger),
            lock_key: guard.key(),
            owner: self.owner(),
            status: match &result {
                Ok(r) => r.status,
                Err(_) => RunStatus::Failed,
            },
            counts: Some(
                result
                    .as_ref()
                    .map(|r| r.counts)
                    .unwrap_or_else(|_| Counts::for_positions()),
            ),
            error: result.as_ref().err().map(ToString::to_string),
            started_at,
            finished_at: self.clock.now(),
        };
        let written = self
            .record_and_give_back(&[&guard], &[], std::slice::from_ref(&record))
            .await;
        match written {
            Ok(ids) => {
                guard.given_back();
                if let Ok(report) = &mut result {
                    report.run_id = ids.first().copied();
                }
            }
            Err(e) => {
                tracing::warn!(
                    "could not record the open_positions run of expert {expert_id}: {e}"
                );
                guard.release().await;
            }
        }
        metrics::histogram!(m::RUN_SECONDS, "use_case" => UseCase::OpenPositions.as_str())
            .record(started.elapsed().as_secs_f64());
        count_run(UseCase::OpenPositions, record.status, trigger);
        result
    }
}

/// The domain's decision for each considered recommendation.
fn decide_each(gated: &Gated<'_>, data: &OpenPositionsData, view: &View) -> Vec<Decided> {
    data.recommendations
        .iter()
        .map(|r| {
            let position = data.positions.get(&r.symbol);
            let current_price = view.quotes.get(&r.symbol).copied();
            let situation = Situation {
                recommendation: &r.rec,
                previous_action: data.previous.get(&r.id).copied(),
                position,
                current_price,
                instrument_account_share: position
                    .zip(current_price)
                    .and_then(|(p, price)| share(p.quantity, price, view.virtual_equity?)),
                last_closes: data.last_closes.get(&r.symbol).copied().unwrap_or_default(),
                funds: view.funds,
            };
            Decided {
                rec_id: r.id,
                symbol: r.symbol.clone(),
                decision: open_positions::decide(gated.ruleset, &gated.expert.exits, &situation),
            }
        })
        .collect()
}

/// The expert's positions as the balance maths counts them (at their open price, or 0 when
/// it is unknown).
fn active_positions(data: &OpenPositionsData) -> Vec<ActivePosition> {
    data.positions
        .iter()
        .map(|(symbol, p): (&String, &HeldPosition)| ActivePosition {
            transaction_id: p.transaction_id,
            symbol: symbol.clone(),
            side: p.side,
            status: p.status,
            quantity: p.quantity,
            price: p.open_price.unwrap_or_default(),
        })
        .collect()
}

/// A holding's value in percent of the virtual equity; `None` when it cannot be computed.
fn share(quantity: Decimal, price: Decimal, virtual_equity: Decimal) -> Option<Decimal> {
    if virtual_equity <= Decimal::ZERO {
        return None;
    }
    let value = checked_mul(quantity.abs(), price).ok()?;
    checked_mul(
        checked_div(value, virtual_equity).ok()?,
        Decimal::ONE_HUNDRED,
    )
    .ok()
}

/// The outcome of a close request: its kind, the words appended to the decision, the close
/// order.
fn closed(r: Result<CloseOutcome, EngineError>) -> (OutcomeKind, String, Option<i64>) {
    match r {
        Ok(CloseOutcome::Closing { order_id }) => (
            OutcomeKind::Closed,
            format!("; close order {order_id} sent"),
            Some(order_id),
        ),
        Ok(CloseOutcome::EntryCanceled) => (
            OutcomeKind::Closed,
            "; the entry had not filled: canceled".into(),
            None,
        ),
        Ok(CloseOutcome::AlreadyClosing) => {
            (OutcomeKind::CloseWorking, "; already closing".into(), None)
        }
        Ok(CloseOutcome::AlreadyClosed) => (OutcomeKind::NoAction, "; already closed".into(), None),
        Err(e) => (OutcomeKind::Failed, format!("; close failed: {e}"), None),
    }
}

/// The outcome of an instrument-share order.
fn shared(r: Result<ShareOutcome, EngineError>) -> (OutcomeKind, String, Option<i64>) {
    match r {
        Ok(ShareOutcome::Sent { order_id }) => (
            OutcomeKind::Adjusted,
            format!("; order {order_id} sent"),
            Some(order_id),
        ),
        Ok(ShareOutcome::Working) => (
            OutcomeKind::NoAction,
            "; an instrument share order of the position is still working".into(),
            None,
        ),
        Ok(ShareOutcome::NotOpened) => (
            OutcomeKind::NoAction,
            "; the position is not OPENED any more".into(),
            None,
        ),
        Ok(ShareOutcome::TooSmall) => (
            OutcomeKind::NoAction,
            "; less than one unit would be left: nothing sold".into(),
            None,
        ),
        Err(e) => (
            OutcomeKind::Failed,
            format!("; instrument share order failed: {e}"),
            None,
        ),
    }
}

/// The outcome of an exit replacement.
fn adjusted(r: Result<ExitsOutcome, EngineError>) -> (OutcomeKind, String, Option<i64>) {
    match r {
        Ok(ExitsOutcome::Replaced { generation }) => (
            OutcomeKind::Adjusted,
            format!("; exit legs replaced (generation {generation})"),
            None,
        ),
        Ok(ExitsOutcome::Unchanged) => (
            OutcomeKind::NoAction,
            "; the exits were already there".into(),
            None,
        ),
        Err(e) => (
            OutcomeKind::Failed,
            format!("; exit replacement failed: {e}"),
            None,
        ),
    }
}
