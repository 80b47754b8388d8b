//! The enter_market run of one expert (DESIGN.md §5), as named phases:
//! `settle_in_flight` → `load_inputs` → `decide` → `store_intents` → `submit` →
//! `record_answers` → `refresh_placed` → `complete_outcomes`.
//!
//! It decides synchronously (the domain's pure plan), then carries the plan out; no lock or
//! database transaction is held across a broker call except the processing lock itself.
//!
//! Decision records are written with the positions they explain (I5): `store_intents` commits
//! the positions, a provisional `ordered` outcome for each, and every skip decided so far, in
//! one database transaction; each answer recorded afterwards completes its order's outcome in
//! the answer's own transaction. A run that stops anywhere after storing (crash, lost lease,
//! store error) so leaves every outcome behind, provisional at worst.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::Duration as ChronoDuration;
use rust_decimal::Decimal;
use tradewarden_domain::enter_market::{self, Decision, Inputs};
use tradewarden_domain::expert::{Expert, ExpertBalance};
use tradewarden_domain::outcome::{OutcomeKind, entry_outcome};
use tradewarden_domain::rules::Ruleset;
use tradewarden_domain::{Order, OrderStatus, OrderType, Outcome, Recommendation, Side, UseCase};

use super::TradeManager;
use super::settle::Found;
use crate::error::EngineError;
use crate::fault;
use crate::locks::ProcessingGuard;
use crate::metrics as m;
use crate::ports::{
    AccountSnapshot, Broker, BrokerOrder, EnterMarketData, NewPosition, OrderRequest,
    OutcomeCompletion, RunRecord, StoreError,
};
use crate::report::{Counts, RunReport, RunStatus};
use crate::unwind::CatchUnwind;

/// What a run works with once its gates are passed.
struct RunContext<'a> {
    expert: &'a Expert,
    ruleset: &'a Ruleset,
    broker: &'a Arc<dyn Broker>,
    /// The account's minimum_equity_threshold_percent.
    equity_threshold_percent: Decimal,
}

/// The run's inputs: stored recommendations and positions, the account, the quotes.
pub(crate) struct RunInputs {
    data: EnterMarketData,
    account: AccountSnapshot,
    quotes: HashMap<String, Decimal>,
}

/// A recommendation the plan funded: a position to open.
struct Funded<'a> {
    rec: &'a Recommendation,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    detail: String,
}

/// An entry order stored for a recommendation, followed through submission.
pub(crate) struct Placed {
    pub order: Order,
}

/// The run's counts, and the skip outcomes decided and not yet written (they are written
/// with the positions, or alone when there is none).
struct Journal<'a> {
    expert_id: i64,
    counts: Counts,
    records: Vec<Outcome>,
    manager: &'a TradeManager,
}

impl Journal<'_> {
    /// Records one skip outcome.
    fn push(
        &mut self,
        rec_id: i64,
        symbol: &str,
        kind: OutcomeKind,
        detail: String,
        order_id: Option<i64>,
    ) {
        self.counts.add(kind);
        self.records.push(Outcome {
            recommendation_id: rec_id,
            expert_id: self.expert_id,
            symbol: symbol.to_string(),
            use_case: UseCase::EnterMarket,
            outcome: kind,
            detail,
            order_id,
            decided_at: self.manager.clock.now(),
        });
    }
}

impl TradeManager {
    /// Runs enter_market for one expert (DESIGN.md §5). `lookback_days` overrides the
    /// configured window.
    pub async fn process_enter_market(
        &self,
        expert_id: i64,
        lookback_days: Option<u32>,
    ) -> Result<RunReport, EngineError> {
        let use_case = UseCase::EnterMarket;
        let expert = self
            .settings
            .experts
            .get(&expert_id)
            .ok_or(EngineError::UnknownExpert(expert_id))?;
        let Some(guard) = self.locks.acquire(expert_id, use_case).await else {
            return Ok(RunReport::skipped(
                expert_id,
                use_case,
                RunStatus::SkippedLocked,
            ));
        };
        let started = Instant::now();
        let started_at = self.clock.now();
        let lookback = lookback_days.unwrap_or(self.settings.lookback_days);
        let result = CatchUnwind::new(self.enter_market_locked(expert, lookback, &guard))
            .await
            .unwrap_or_else(|panic| Err(EngineError::Panicked(panic)));
        // Recorded while the lock is still held, so records of one key never overlap.
        let record = RunRecord {
            lock_key: guard.key(),
            owner: self.owner(),
            status: match &result {
                Ok(r) => r.status,
                Err(_) => RunStatus::Failed,
            },
            error: result.as_ref().err().map(ToString::to_string),
            started_at,
            finished_at: self.clock.now(),
        };
        if let Err(e) = self.store.record_run(&record).await {
            tracing::warn!("could not record run of {}: {e}", record.lock_key);
        }
        guard.release().await;
        metrics::histogram!(m::RUN_SECONDS, "use_case" => use_case.as_str())
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Runs enter_market for every configured expert, one after another. An expert whose
    /// run fails gets a `failed` report naming the error; the others still run.
    pub async fn process_all(&self, lookback_days: Option<u32>) -> Vec<RunReport> {
        self.process_all_with(lookback_days, |_| {}).await
    }

    /// [`TradeManager::process_all`], calling `each` with every report as it is made (a
    /// command line shows progress with it).
    pub async fn process_all_with(
        &self,
        lookback_days: Option<u32>,
        mut each: impl FnMut(&RunReport),
    ) -> Vec<RunReport> {
        let mut reports = Vec::with_capacity(self.settings.experts.len());
        for id in self.settings.experts.keys() {
            let report = match self.process_enter_market(*id, lookback_days).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("enter_market run of expert {id} failed: {e}");
                    RunReport::failed(*id, UseCase::EnterMarket, e.to_string())
                }
            };
            each(&report);
            reports.push(report);
        }
        reports
    }

    /// The run under its lock: the gates, then the phases.
    async fn enter_market_locked(
        &self,
        expert: &Expert,
        lookback_days: u32,
        guard: &ProcessingGuard,
    ) -> Result<RunReport, EngineError> {
        let ctx = match self.gates(expert).await? {
            Ok(ctx) => ctx,
            Err(status) => {
                return Ok(RunReport::skipped(expert.id, UseCase::EnterMarket, status));
            }
        };
        self.settle_in_flight(&ctx, guard).await?;
        let inputs = self.load_inputs(&ctx, lookback_days, guard).await?;
        let mut journal = Journal {
            expert_id: expert.id,
            counts: Counts::default(),
            records: Vec::new(),
            manager: self,
        };
        let funded = decide(&ctx, &inputs, &mut journal);
        let mut placed = self.store_intents(&ctx, funded, &mut journal).await?;
        if !placed.is_empty() {
            fault::point("after_order_stored");
            fault::hold("after_order_stored").await;
            let answers = self.submit(&ctx, &placed, guard).await?;
            if !answers.is_empty() {
                fault::point("before_answer_stored");
                self.record_answers(&mut placed, &answers).await?;
            }
            fault::point("mid_run");
            let refreshed = self.refresh_placed(&ctx, &placed, guard).await;
            self.record_answers(&mut placed, &refreshed).await?;
        }
        let orders = self.complete_outcomes(placed, &mut journal).await?;
        Ok(RunReport {
            expert_id: expert.id,
            use_case: UseCase::EnterMarket,
            status: RunStatus::Processed,
            error: None,
            counts: journal.counts,
            orders,
        })
    }

    /// Step 2: stop early, with a status, when the expert may not open positions now.
    async fn gates<'a>(
        &'a self,
        expert: &'a Expert,
    ) -> Result<Result<RunContext<'a>, RunStatus>, EngineError> {
        if !expert.enabled {
            return Ok(Err(RunStatus::ExpertDisabled));
        }
        if !expert.allow_automated_trade_opening {
            return Ok(Err(RunStatus::AutomationDisabled));
        }
        let Some(ruleset) = expert
            .enter_market_ruleset
            .as_ref()
            .and_then(|n| self.settings.rulesets.get(n))
        else {
            return Ok(Err(RunStatus::NoRuleset));
        };
        if self.has_pending_jobs(expert.id).await {
            return Ok(Err(RunStatus::SkippedPendingJobs));
        }
        let broker = self.broker(&expert.account)?;
        let equity_threshold_percent = self
            .settings
            .accounts
            .get(&expert.account)
            .map(|a| a.minimum_equity_threshold_percent)
            .ok_or_else(|| EngineError::NoBroker(expert.account.clone()))?;
        Ok(Ok(RunContext {
            expert,
            ruleset,
            broker,
            equity_threshold_percent,
        }))
    }

    /// Whether the expert still has analysis jobs pending. Analysis jobs arrive with a later
    /// issue; the check keeps its place in the run.
    async fn has_pending_jobs(&self, _expert_id: i64) -> bool {
        false
    }

    /// Orders of this expert left `submitting` by a crash are settled first: their
    /// transactions already hold the slots, and the broker decides whether they exist.
    async fn settle_in_flight(
        &self,
        ctx: &RunContext<'_>,
        guard: &ProcessingGuard,
    ) -> Result<(), EngineError> {
        for order in self.store.orders_in_flight(Some(ctx.expert.id)).await? {
            self.settle(ctx.broker.as_ref(), guard, order).await?;
        }
        Ok(())
    }

    /// Step 3's inputs: the window's recommendations and the active positions from the
    /// store, the account and the quotes of every symbol concerned from the broker.
    async fn load_inputs(
        &self,
        ctx: &RunContext<'_>,
        lookback_days: u32,
        guard: &ProcessingGuard,
    ) -> Result<RunInputs, EngineError> {
        let since = self.clock.now() - ChronoDuration::days(i64::from(lookback_days));
        let data = self.store.load_enter_market(ctx.expert.id, since).await?;
        guard.ensure_held()?;
        let account = ctx.broker.account().await?;
        let symbols: Vec<String> = data
            .recommendations
            .iter()
            .map(|r| r.symbol.clone())
            .chain(data.positions.iter().map(|p| p.symbol.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let quotes = if symbols.is_empty() {
            HashMap::new()
        } else {
            guard.ensure_held()?;
            ctx.broker.quotes(&symbols).await?
        };
        Ok(RunInputs {
            data,
            account,
            quotes,
        })
    }

    /// Step 6, first half: every funded position is stored (transaction + entry order,
    /// committed, `submitting`) before anything is sent, together with the run's decision
    /// records (I5). A position the database refuses as a duplicate (another process got
    /// there first, B1) is reported as the SAFETY CHECK. A run with nothing to store writes
    /// its skips alone.
    async fn store_intents(
        &self,
        ctx: &RunContext<'_>,
        funded: Vec<Funded<'_>>,
        journal: &mut Journal<'_>,
    ) -> Result<Vec<Placed>, EngineError> {
        let skips = std::mem::take(&mut journal.records);
        if funded.is_empty() {
            if !skips.is_empty() {
                self.store.record_outcomes(&skips).await?;
            }
            return Ok(Vec::new());
        }
        let news: Vec<NewPosition> = funded
            .iter()
            .map(|f| NewPosition {
                expert_id: ctx.expert.id,
                account: ctx.expert.account.clone(),
                symbol: f.rec.symbol.clone(),
                side: f.side,
                quantity: f.quantity,
                reference_price: f.price,
                order_type: OrderType::Market,
                limit_price: None,
                recommendation_id: Some(f.rec.id),
                created_at: self.clock.now(),
                decision: Some(f.detail.clone()),
            })
            .collect();
        let stored = self.store.open_positions(&news, &skips).await?;
        let mut placed = Vec::with_capacity(stored.len());
        for (f, result) in funded.into_iter().zip(stored) {
            match result {
                Ok((_txn, order)) => placed.push(Placed { order }),
                Err(StoreError::DuplicatePosition { existing, .. }) => {
                    warn_refused_by_index(ctx.expert.id, &f, existing, journal)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(placed)
    }

    /// Step 6, second half: the run's orders go to the broker as one batch, each once. An
    /// order without an answer stays `submitting` for settlement.
    async fn submit(
        &self,
        ctx: &RunContext<'_>,
        placed: &[Placed],
        guard: &ProcessingGuard,
    ) -> Result<Vec<(i64, BrokerOrder)>, EngineError> {
        // The lease is checked right before the broker call; a lost lease leaves every
        // order `submitting` for whoever holds the lock next.
        guard.ensure_held()?;
        let requests: Vec<OrderRequest> = placed
            .iter()
            .map(|p| OrderRequest::for_order(&p.order))
            .collect();
        let results = ctx.broker.submit_batch(&requests).await;
        let mut answers = Vec::with_capacity(placed.len());
        for (p, result) in placed.iter().zip(results) {
            if let Some(answer) = self
                .answer_of(ctx.broker.as_ref(), &p.order, result)
                .await?
            {
                answers.push((p.order.id, answer));
            }
        }
        Ok(answers)
    }

    /// Records brokers' answers in one store call and updates the run's orders with them.
    async fn record_answers(
        &self,
        placed: &mut [Placed],
        answers: &[(i64, BrokerOrder)],
    ) -> Result<(), EngineError> {
        if answers.is_empty() {
            return Ok(());
        }
        let mut updated: HashMap<i64, Order> = self
            .store
            .apply_broker_orders(answers)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        for p in placed.iter_mut() {
            if let Some(u) = updated.remove(&p.order.id) {
                p.order = u;
            }
        }
        Ok(())
    }

    /// Step 7: asks again about orders still working at the broker (a market order may have
    /// filled since it was accepted).
    async fn refresh_placed(
        &self,
        ctx: &RunContext<'_>,
        placed: &[Placed],
        guard: &ProcessingGuard,
    ) -> Vec<(i64, BrokerOrder)> {
        let mut refreshed = Vec::new();
        for p in placed {
            let working = matches!(
                p.order.status,
                OrderStatus::Accepted | OrderStatus::PartiallyFilled
            );
            if working
                && guard.ensure_held().is_ok()
                && let Ok(Found::Ours(answer)) = self.look_up(ctx.broker.as_ref(), &p.order).await
            {
                refreshed.push((p.order.id, answer));
            }
        }
        refreshed
    }

    /// The last phase: counts every placed order's outcome from its final status. Answered
    /// orders had their outcomes completed with their answers; an order still without one
    /// gets its `failed` outcome now (settling completes it again). Returns the run's orders
    /// (S6).
    async fn complete_outcomes(
        &self,
        placed: Vec<Placed>,
        journal: &mut Journal<'_>,
    ) -> Result<Vec<Order>, EngineError> {
        let mut unanswered = Vec::new();
        let mut orders = Vec::with_capacity(placed.len());
        for p in placed {
            let (kind, answer) = entry_outcome(p.order.status, &p.order.client_order_id, None);
            journal.counts.add(kind);
            if p.order.status == OrderStatus::Submitting {
                unanswered.push(OutcomeCompletion {
                    order_id: p.order.id,
                    outcome: kind,
                    answer,
                });
            }
            orders.push(p.order);
        }
        if !unanswered.is_empty() {
            self.store.complete_outcomes(&unanswered).await?;
        }
        Ok(orders)
    }
}

/// Steps 3–5: the domain's plan; skips are recorded, funded recommendations returned.
fn decide<'a>(
    ctx: &RunContext<'a>,
    inputs: &'a RunInputs,
    journal: &mut Journal<'_>,
) -> Vec<Funded<'a>> {
    let balance = ExpertBalance::compute(
        inputs.account.balance,
        inputs.account.cash,
        ctx.expert.virtual_equity_percent,
        &inputs.data.positions,
        &inputs.quotes,
    );
    let planned = enter_market::plan(&Inputs {
        expert: ctx.expert,
        ruleset: ctx.ruleset,
        equity_threshold_percent: ctx.equity_threshold_percent,
        recommendations: &inputs.data.recommendations,
        positions: &inputs.data.positions,
        balance,
        quotes: &inputs.quotes,
    });
    journal.counts.considered = planned.len();
    let mut funded = Vec::new();
    for p in planned {
        match p.decision {
            Decision::Skip {
                outcome,
                detail,
                existing,
            } => {
                if let Some((txn_id, status)) = existing {
                    safety_check_warning(
                        p.rec.id,
                        &p.rec.symbol,
                        &txn_id.to_string(),
                        status.as_str(),
                        ctx.expert.id,
                    );
                    metrics::counter!(m::DUPLICATES_PREVENTED, "by" => "check").increment(1);
                }
                journal.push(p.rec.id, &p.rec.symbol, outcome, detail, None);
            }
            Decision::Order {
                side,
                quantity,
                price,
                detail,
            } => funded.push(Funded {
                rec: p.rec,
                side,
                quantity,
                price,
                detail,
            }),
        }
    }
    funded
}

/// A position the database's unique index refused: reported exactly like the SAFETY CHECK
/// (its outcome was written with the run's positions).
fn warn_refused_by_index(
    expert_id: i64,
    f: &Funded<'_>,
    existing: Option<(i64, tradewarden_domain::TransactionStatus)>,
    journal: &mut Journal<'_>,
) {
    let (id, status) = tradewarden_domain::outcome::slot_holder(existing);
    safety_check_warning(f.rec.id, &f.rec.symbol, &id, status, expert_id);
    metrics::counter!(m::DUPLICATES_PREVENTED, "by" => "index").increment(1);
    journal.counts.add(OutcomeKind::DuplicatePosition);
}

/// The seed's WARNING line for a prevented duplicate position (S5).
fn safety_check_warning(rec_id: i64, symbol: &str, txn_id: &str, status: &str, expert_id: i64) {
    tracing::warn!(
        "SAFETY CHECK: Skipping recommendation {rec_id} for {symbol} - existing transaction {txn_id} in {status} status for expert {expert_id}"
    );
}

#[cfg(test)]
mod tests {
    //! The run's phases against the in-memory store and the scripted broker: milliseconds
    //! per case, no database.
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use rust_decimal_macros::dec;
    use tradewarden_domain::rules::{Rule, RuleAction, Ruleset, Trigger, TriggerSpec};
    use tradewarden_domain::{
        Action, NewRecommendation, Price, RiskLevel, TimeHorizon, TransactionStatus,
    };

    use super::*;
    use crate::ports::{BrokerError, Clock, NewPosition, PositionStore, SystemClock};
    use crate::settings::{AccountSettings, Settings};
    use crate::testing::{MemoryStore, ScriptedBroker};

    fn settings() -> Settings {
        let mut e = Expert::with_defaults(1, "e1", "paper");
        e.allow_automated_trade_opening = true;
        e.enter_market_ruleset = Some("buy".into());
        let bullish = Trigger::from_spec(&TriggerSpec {
            event: "bullish".into(),
            op: None,
            value: None,
        })
        .unwrap();
        Settings {
            experts: BTreeMap::from([(1, e)]),
            rulesets: [(
                "buy".to_string(),
                Ruleset {
                    name: "buy".into(),
                    rules: vec![Rule {
                        name: "bullish".into(),
                        continue_processing: false,
                        triggers: vec![bullish],
                        actions: vec![RuleAction::Buy],
                    }],
                },
            )]
            .into(),
            accounts: [(
                "paper".to_string(),
                AccountSettings {
                    name: "paper".into(),
                    minimum_equity_threshold_percent: dec!(5),
                },
            )]
            .into(),
            lock_timeout: std::time::Duration::from_millis(50),
            lookback_days: 1,
            max_clock_skew_seconds: 300,
            max_intent_age: std::time::Duration::from_secs(300),
        }
    }

    fn rec(symbol: &str) -> NewRecommendation {
        NewRecommendation {
            expert_id: 1,
            symbol: symbol.into(),
            action: Action::Buy,
            confidence: dec!(80),
            expected_profit_percent: dec!(10),
            price_at_date: Price::new(dec!(100)).unwrap(),
            risk_level: RiskLevel::Low,
            time_horizon: TimeHorizon::ShortTerm,
            target_price: None,
            details: None,
            created_at: Utc::now(),
        }
    }

    /// A manager over a fresh memory store and a broker quoting AAPL at 100, with `recs`
    /// imported.
    async fn manager(
        broker: ScriptedBroker,
        recs: &[NewRecommendation],
    ) -> (TradeManager, Arc<MemoryStore>, Arc<ScriptedBroker>) {
        manager_at(broker, recs, Arc::new(SystemClock)).await
    }

    /// [`manager`] with time from `clock`.
    async fn manager_at(
        broker: ScriptedBroker,
        recs: &[NewRecommendation],
        clock: Arc<dyn Clock>,
    ) -> (TradeManager, Arc<MemoryStore>, Arc<ScriptedBroker>) {
        let store = Arc::new(MemoryStore::new());
        let broker = Arc::new(broker);
        let m = TradeManager::new(
            settings(),
            store.clone(),
            [("paper".to_string(), broker.clone() as Arc<dyn Broker>)].into(),
            clock,
        );
        m.import(recs).await.unwrap();
        (m, store, broker)
    }

    /// A clock the test moves.
    struct TestClock(parking_lot::Mutex<chrono::DateTime<Utc>>);

    impl Clock for TestClock {
        fn now(&self) -> chrono::DateTime<Utc> {
            *self.0.lock()
        }
    }

    fn broker() -> ScriptedBroker {
        ScriptedBroker::new(dec!(100000), &[("AAPL", dec!(100))])
    }

    use chrono::Utc;

    #[tokio::test]
    async fn a_funded_recommendation_is_stored_then_sent_once_and_recorded_ordered() {
        let (m, store, broker) = manager(broker(), &[rec("AAPL")]).await;
        let report = m.process_enter_market(1, None).await.unwrap();
        assert_eq!(report.counts.ordered, 1, "{report:?}");
        assert_eq!(broker.state.lock().submitted.len(), 1);
        let s = store.state.lock();
        assert_eq!(s.transactions[0].status, TransactionStatus::Opened);
        assert_eq!(s.outcomes.len(), 1);
        assert_eq!(s.outcomes[0].outcome, OutcomeKind::Ordered);
    }

    #[tokio::test]
    async fn each_phase_outcome_table() {
        // (what the broker does first, expected outcome, expected order status, submissions)
        let cases: Vec<(Option<BrokerError>, bool, OutcomeKind, OrderStatus, usize)> = vec![
            (None, false, OutcomeKind::Ordered, OrderStatus::Filled, 1),
            (
                Some(BrokerError::Unavailable("down".into())),
                false,
                OutcomeKind::Failed,
                OrderStatus::Submitting,
                1,
            ),
            (None, true, OutcomeKind::Failed, OrderStatus::Rejected, 1),
            (
                Some(BrokerError::RateLimited { retry_after: None }),
                false,
                OutcomeKind::Failed,
                OrderStatus::Submitting,
                1,
            ),
        ];
        for (fail, reject, outcome, status, submissions) in cases {
            let b = broker();
            if let Some(e) = fail.clone() {
                b.state.lock().fail_next.push(e);
            }
            if reject {
                b.state.lock().reject.insert("tw-mem-1-entry".into());
            }
            let (m, store, broker) = manager(b, &[rec("AAPL")]).await;
            let report = m.process_enter_market(1, None).await.unwrap();
            assert_eq!(report.orders[0].status, status, "{fail:?} {reject}");
            assert_eq!(store.state.lock().outcomes[0].outcome, outcome, "{fail:?}");
            assert_eq!(broker.state.lock().submitted.len(), submissions, "{fail:?}");
        }
    }

    #[tokio::test]
    async fn an_existing_active_transaction_blocks_the_recommendation_before_the_broker() {
        let (m, store, broker) = manager(broker(), &[rec("AAPL")]).await;
        store
            .open_position(&NewPosition {
                expert_id: 1,
                account: "paper".into(),
                symbol: "AAPL".into(),
                side: Side::Buy,
                quantity: dec!(1),
                reference_price: dec!(100),
                order_type: OrderType::Market,
                limit_price: None,
                recommendation_id: None,
                created_at: Utc::now(),
                decision: None,
            })
            .await
            .unwrap();
        let report = m.process_enter_market(1, None).await.unwrap();
        assert_eq!(report.counts.duplicate_position, 1, "{report:?}");
        // Settling sends the stored intent once; the duplicate is never sent.
        assert_eq!(broker.state.lock().submitted.len(), 1);
    }

    #[tokio::test]
    async fn an_unanswered_order_is_settled_by_lookup_on_the_next_run_never_sent_twice() {
        let b = broker();
        b.state
            .lock()
            .fail_next
            .push(BrokerError::Unavailable("timeout".into()));
        let (m, store, broker) = manager(b, &[rec("AAPL")]).await;
        m.process_enter_market(1, None).await.unwrap();
        assert_eq!(store.state.lock().orders[0].status, OrderStatus::Submitting);
        // The broker did get it after all (an answer lost on the way back).
        let request = broker.state.lock().submitted[0].clone();
        broker.submit(&request).await.unwrap();
        let before = broker.state.lock().submitted.len();
        let report = m.process_enter_market(1, None).await.unwrap();
        assert_eq!(report.counts.duplicate_position, 1, "{report:?}");
        assert_eq!(
            broker.state.lock().submitted.len(),
            before,
            "adopted, not resent"
        );
        let s = store.state.lock();
        assert_eq!(s.orders[0].status, OrderStatus::Filled);
        // Catches: a settled order whose outcome keeps saying it got no answer.
        let first = s.outcomes.iter().find(|o| o.order_id == Some(1)).unwrap();
        assert_eq!(first.outcome, OutcomeKind::Ordered, "{first:?}");
        assert!(
            first.detail.ends_with("order tw-mem-1-entry filled"),
            "{first:?}"
        );
    }

    #[tokio::test]
    async fn a_run_that_fails_after_storing_its_orders_keeps_every_outcome() {
        // Catches: decision records written only at the end of a run: a store error (or a
        // crash, or a lost lease) after the orders were stored would lose all of them.
        let mut sell = rec("MSFT");
        sell.action = Action::Sell;
        let (m, store, broker) = manager(broker(), &[rec("AAPL"), sell]).await;
        store.state.lock().fail_apply = Some(StoreError::database("disk full"));
        m.process_enter_market(1, None).await.unwrap_err();
        assert_eq!(broker.state.lock().submitted.len(), 1);
        let s = store.state.lock();
        let kinds: Vec<(&str, OutcomeKind, Option<i64>)> = s
            .outcomes
            .iter()
            .map(|o| (o.symbol.as_str(), o.outcome, o.order_id))
            .collect();
        assert_eq!(
            kinds,
            [
                ("MSFT", OutcomeKind::RulesNotMet, None),
                ("AAPL", OutcomeKind::Ordered, Some(s.orders[0].id)),
            ]
        );
        assert!(
            s.outcomes[1]
                .detail
                .ends_with("submitting, awaiting the broker's answer"),
            "provisional: {:?}",
            s.outcomes[1]
        );
    }

    #[tokio::test]
    async fn an_intent_older_than_its_maximum_age_is_never_sent() {
        // Catches: settling that sends a `submitting` intent whatever its age (a crash three
        // days ago would be sent at today's price), or that expires one the broker has.
        // (broker got it, age in seconds, order status after settling, sent again)
        let cases = [
            (false, 301, OrderStatus::Error, false),
            (false, 3 * 86_400, OrderStatus::Error, false),
            (false, 299, OrderStatus::Filled, true),
            (true, 3 * 86_400, OrderStatus::Filled, false),
        ];
        for (broker_got_it, age, status, sent) in cases {
            let clock = Arc::new(TestClock(parking_lot::Mutex::new(Utc::now())));
            let b = broker();
            b.state
                .lock()
                .fail_next
                .push(BrokerError::Unavailable("timeout".into()));
            let (m, store, broker) = manager_at(b, &[rec("AAPL")], clock.clone()).await;
            m.process_enter_market(1, None).await.unwrap();
            if broker_got_it {
                let request = broker.state.lock().submitted[0].clone();
                broker.state.lock().submitted.clear();
                broker.submit(&request).await.unwrap();
            }
            let coid = store.state.lock().orders[0].client_order_id.clone();
            let sends = || {
                let b = broker.state.lock();
                b.submitted
                    .iter()
                    .filter(|r| r.client_order_id == coid)
                    .count()
            };
            let before = sends();
            *clock.0.lock() += chrono::Duration::seconds(age);
            m.process_enter_market(1, None).await.unwrap();
            let case = format!("broker got it: {broker_got_it}, age {age}");
            assert_eq!(sends() > before, sent, "{case}");
            let s = store.state.lock();
            assert_eq!(s.orders[0].status, status, "{case}");
            if status == OrderStatus::Error {
                let t = &s.transactions[0];
                assert_eq!(t.status, TransactionStatus::Failed, "{case}");
                let o = &s.outcomes[0];
                assert_eq!(o.outcome, OutcomeKind::Failed, "{case}");
                let expired =
                    format!("intent_expired: {age} s old, older than max_intent_age_seconds = 300");
                assert!(
                    o.detail.ends_with(&format!("; not sent: {expired}")),
                    "{case}: {o:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn reconcile_leaves_out_an_expert_whose_run_holds_its_lock() {
        // Catches: reconciliation comparing the positions of an expert whose run is in
        // progress (it may be between a broker's fill and storing it). The scripted broker
        // reports no positions, so a comparison of AAPL is a finding.
        let (m, _store, _) = manager(broker(), &[rec("AAPL")]).await;
        assert_eq!(
            m.process_enter_market(1, None)
                .await
                .unwrap()
                .counts
                .ordered,
            1
        );
        let run = m.locks().acquire(1, UseCase::EnterMarket).await.unwrap();
        let r = m.reconcile().await.unwrap();
        assert!(r.findings.is_empty(), "{r:?}");
        let in_flight: Vec<_> = r
            .in_flight
            .iter()
            .map(|f| (f.symbol.as_str(), f.reason))
            .collect();
        assert_eq!(
            in_flight,
            [("AAPL", crate::ports::InFlightReason::RunInProgress)]
        );
        run.release().await;
        let r = m.reconcile().await.unwrap();
        assert_eq!(
            r.findings.len(),
            1,
            "compared once no run holds the lock: {r:?}"
        );
        assert!(r.in_flight.is_empty());
    }
}
