//! [`TradeManager`]: the enter_market run (DESIGN.md §5) and recommendation ingestion.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::Duration as ChronoDuration;
use serde::Serialize;
use tradewarden_domain::enter_market::{self, Decision, Inputs};
use tradewarden_domain::expert::{Expert, ExpertBalance};
use tradewarden_domain::outcome::OutcomeKind;
use tradewarden_domain::{NewRecommendation, Order, OrderStatus, OrderType, Outcome, UseCase};

use crate::error::EngineError;
use crate::fault;
use crate::locks::{LeaseConfig, LockSubject, ProcessingGuard, ProcessingLocks};
use crate::metrics as m;
use crate::ports::{
    Broker, BrokerError, BrokerOrder, Clock, Finding, ImportError, LeaseStore, NewPosition,
    OrderRequest, QuoteUpdate, RunRecord, Store, StoreError,
};
use crate::settings::Settings;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Processed,
    SkippedLocked,
    SkippedPendingJobs,
    ExpertDisabled,
    AutomationDisabled,
    NoRuleset,
    /// The run stopped on an error (only in `process --all` reports, so that one expert's
    /// failure does not stop the others); `error` says why.
    Failed,
}

impl RunStatus {
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
}

/// Outcome counts of one run, in the documented key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    pub considered: usize,
    pub rules_not_met: usize,
    pub not_permitted: usize,
    pub duplicate_position: usize,
    pub insufficient_equity: usize,
    pub unfunded: usize,
    pub ordered: usize,
    pub failed: usize,
}

impl Counts {
    fn add(&mut self, kind: OutcomeKind) {
        let slot = match kind {
            OutcomeKind::RulesNotMet => &mut self.rules_not_met,
            OutcomeKind::NotPermitted => &mut self.not_permitted,
            OutcomeKind::DuplicatePosition => &mut self.duplicate_position,
            OutcomeKind::InsufficientEquity => &mut self.insufficient_equity,
            OutcomeKind::Unfunded => &mut self.unfunded,
            OutcomeKind::Ordered => &mut self.ordered,
            OutcomeKind::Failed => &mut self.failed,
        };
        *slot += 1;
        metrics::counter!(m::RECOMMENDATIONS, "outcome" => kind.as_str()).increment(1);
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
}

impl RunReport {
    fn skipped(expert_id: i64, use_case: UseCase, status: RunStatus) -> Self {
        RunReport {
            expert_id,
            use_case,
            status,
            counts: Counts::default(),
            orders: Vec::new(),
            error: None,
        }
    }
}

/// What `import` prints: the store's counts.
pub type ImportSummary = crate::ports::ImportCounts;

/// The trade manager of one process.
pub struct TradeManager {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    brokers: HashMap<String, Arc<dyn Broker>>,
    clock: Arc<dyn Clock>,
    locks: ProcessingLocks,
}

impl TradeManager {
    /// Wires a manager. `brokers` maps account names to their broker.
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        brokers: HashMap<String, Arc<dyn Broker>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let locks = ProcessingLocks::new(settings.lock_timeout);
        TradeManager {
            settings: Arc::new(settings),
            store,
            brokers,
            clock,
            locks,
        }
    }

    /// Backs the processing locks with database leases (B2) so runs exclude each other across
    /// processes and hosts sharing the database. `owner` must be unique per process.
    pub fn with_leases(
        mut self,
        store: Arc<dyn LeaseStore>,
        owner: String,
        ttl: std::time::Duration,
    ) -> Self {
        let cfg = LeaseConfig {
            store,
            owner,
            ttl,
            clock: self.clock.clone(),
        };
        self.locks = ProcessingLocks::with_leases(self.settings.lock_timeout, cfg);
        self
    }

    /// Who this process is in lease and run records.
    fn owner(&self) -> String {
        self.locks
            .owner()
            .map(str::to_string)
            .unwrap_or_else(|| format!("local-{}", std::process::id()))
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The processing locks of this process.
    pub fn locks(&self) -> &ProcessingLocks {
        &self.locks
    }

    fn broker(&self, account: &str) -> Result<&Arc<dyn Broker>, EngineError> {
        self.brokers
            .get(account)
            .ok_or_else(|| EngineError::NoBroker(account.to_string()))
    }

    /// Parses and stores a JSON Lines batch, all or nothing (I6, B7). Blank lines are
    /// ignored; every bad line is reported with its 1-based number.
    pub async fn import_jsonl(&self, text: &str) -> Result<ImportSummary, EngineError> {
        let now = self.clock.now();
        let mut errors: Vec<(usize, String)> = Vec::new();
        let mut recs = Vec::new();
        let mut line_of = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            match NewRecommendation::parse_line(line, now) {
                Ok(r) => {
                    if !self.settings.experts.contains_key(&r.expert_id) {
                        errors.push((n, format!("expert_id: unknown expert {}", r.expert_id)));
                    } else {
                        recs.push(r);
                        line_of.push(n);
                    }
                }
                Err(errs) => errors.extend(errs.into_iter().map(|e| (n, e.to_string()))),
            }
        }
        if !errors.is_empty() {
            return Err(EngineError::BadInput(errors));
        }
        self.import(&recs).await.map_err(|e| match e {
            EngineError::BadInput(v) => {
                EngineError::BadInput(v.into_iter().map(|(i, msg)| (line_of[i], msg)).collect())
            }
            other => other,
        })
    }

    /// Stores validated recommendations; a recommendation's price is a quote for its
    /// expert's paper account. Conflicts are reported by batch index.
    pub async fn import(&self, recs: &[NewRecommendation]) -> Result<ImportSummary, EngineError> {
        let quotes: Vec<QuoteUpdate> = recs
            .iter()
            .filter_map(|r| {
                let expert = self.settings.experts.get(&r.expert_id)?;
                let account = self.settings.accounts.get(&expert.account)?;
                (account.broker == "paper").then(|| QuoteUpdate {
                    account: account.name.clone(),
                    symbol: r.symbol.clone(),
                    price: r.price_at_date.get(),
                    at: r.created_at,
                })
            })
            .collect();
        match self.store.import(recs, &quotes).await {
            Ok(c) => Ok(c),
            Err(ImportError::Conflicts(v)) => Err(EngineError::BadInput(v)),
            Err(ImportError::Store(e)) => Err(e.into()),
        }
    }

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
        let result = self
            .enter_market_locked(
                expert,
                lookback_days.unwrap_or(self.settings.lookback_days),
                &guard,
            )
            .await;
        // Recorded while the lock is still held, so records of one key never overlap.
        let record = RunRecord {
            lock_key: guard.key(),
            owner: self.owner(),
            status: match &result {
                Ok(r) => r.status.as_str().to_string(),
                Err(e) => format!("failed: {e}"),
            },
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
        let mut reports = Vec::with_capacity(self.settings.experts.len());
        for id in self.settings.experts.keys() {
            let report = match self.process_enter_market(*id, lookback_days).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("enter_market run of expert {id} failed: {e}");
                    RunReport {
                        error: Some(e.to_string()),
                        ..RunReport::skipped(*id, UseCase::EnterMarket, RunStatus::Failed)
                    }
                }
            };
            reports.push(report);
        }
        reports
    }

    /// Whether the expert still has analysis jobs pending. Analysis jobs arrive with a later
    /// issue; the check keeps its place in the run.
    async fn has_pending_jobs(&self, _expert_id: i64) -> bool {
        false
    }

    async fn enter_market_locked(
        &self,
        expert: &Expert,
        lookback_days: u32,
        guard: &ProcessingGuard,
    ) -> Result<RunReport, EngineError> {
        let use_case = UseCase::EnterMarket;
        let skipped = |status| Ok(RunReport::skipped(expert.id, use_case, status));
        if !expert.enabled {
            return skipped(RunStatus::ExpertDisabled);
        }
        if !expert.allow_automated_trade_opening {
            return skipped(RunStatus::AutomationDisabled);
        }
        let Some(ruleset) = expert
            .enter_market_ruleset
            .as_ref()
            .and_then(|n| self.settings.rulesets.get(n))
        else {
            return skipped(RunStatus::NoRuleset);
        };
        if self.has_pending_jobs(expert.id).await {
            return skipped(RunStatus::SkippedPendingJobs);
        }
        let broker = self.broker(&expert.account)?;
        let threshold = self
            .settings
            .accounts
            .get(&expert.account)
            .map(|a| a.minimum_equity_threshold_percent)
            .ok_or_else(|| EngineError::NoBroker(expert.account.clone()))?;

        // Orders of this expert left `submitting` by a crash are settled first: their
        // transactions already hold the slots, and the broker decides whether they exist.
        for order in self.store.orders_in_flight(Some(expert.id)).await? {
            self.settle(broker.as_ref(), guard, order).await?;
        }

        let now = self.clock.now();
        let since = now - ChronoDuration::days(i64::from(lookback_days));
        let data = self.store.load_enter_market(expert.id, since).await?;
        guard.ensure_held()?;
        let snapshot = broker.account().await?;
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
            broker.quotes(&symbols).await?
        };
        let balance = ExpertBalance::compute(
            snapshot.balance,
            snapshot.cash,
            expert.virtual_equity_percent,
            &data.positions,
            &quotes,
        );
        let planned = enter_market::plan(&Inputs {
            expert,
            ruleset,
            equity_threshold_percent: threshold,
            recommendations: &data.recommendations,
            positions: &data.positions,
            balance,
            quotes: &quotes,
        });

        let mut counts = Counts {
            considered: planned.len(),
            ..Counts::default()
        };
        let outcome = |rec_id: i64,
                       symbol: &str,
                       kind: OutcomeKind,
                       detail: String,
                       order_id: Option<i64>| Outcome {
            recommendation_id: rec_id,
            expert_id: expert.id,
            symbol: symbol.to_string(),
            use_case,
            outcome: kind,
            detail,
            order_id,
            decided_at: self.clock.now(),
        };
        // Every decision record of the run is written once, at its end (one commit).
        let mut records = Vec::new();
        let mut funded = Vec::new();
        for p in planned {
            match p.decision {
                Decision::Skip {
                    outcome: kind,
                    detail,
                    existing,
                } => {
                    if let Some((txn_id, status)) = existing {
                        safety_check_warning(
                            p.rec.id,
                            &p.rec.symbol,
                            &txn_id.to_string(),
                            status.as_str(),
                            expert.id,
                        );
                        metrics::counter!(m::DUPLICATES_PREVENTED, "by" => "check").increment(1);
                    }
                    counts.add(kind);
                    records.push(outcome(p.rec.id, &p.rec.symbol, kind, detail, None));
                }
                Decision::Order {
                    side,
                    quantity,
                    price,
                    detail,
                } => funded.push((p.rec, side, quantity, price, detail)),
            }
        }
        // Step 6: store every funded position (transaction + entry order, committed), then
        // send each order once, then record all answers.
        let news: Vec<NewPosition> = funded
            .iter()
            .map(|(rec, side, quantity, price, _)| NewPosition {
                expert_id: expert.id,
                account: expert.account.clone(),
                symbol: rec.symbol.clone(),
                side: *side,
                quantity: *quantity,
                reference_price: *price,
                order_type: OrderType::Market,
                limit_price: None,
                recommendation_id: Some(rec.id),
                created_at: self.clock.now(),
            })
            .collect();
        let stored = if news.is_empty() {
            Vec::new()
        } else {
            self.store.open_positions(&news).await?
        };
        let mut placed: Vec<(Order, i64, String, String)> = Vec::with_capacity(stored.len());
        for ((rec, _, _, _, detail), result) in funded.into_iter().zip(stored) {
            match result {
                Ok((_txn, order)) => placed.push((order, rec.id, rec.symbol.clone(), detail)),
                Err(StoreError::DuplicatePosition { existing, .. }) => {
                    // Another process got there between our read and our insert (B1).
                    let (id, status) = match existing {
                        Some((id, st)) => (id.to_string(), st.as_str()),
                        None => ("unknown".to_string(), "WAITING/OPENED"),
                    };
                    safety_check_warning(rec.id, &rec.symbol, &id, status, expert.id);
                    metrics::counter!(m::DUPLICATES_PREVENTED, "by" => "index").increment(1);
                    counts.add(OutcomeKind::DuplicatePosition);
                    records.push(outcome(
                        rec.id,
                        &rec.symbol,
                        OutcomeKind::DuplicatePosition,
                        format!("{detail}; refused by the database: existing transaction {id} in {status} status"),
                        None,
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !placed.is_empty() {
            fault::point("after_order_stored");
        }
        if !placed.is_empty() {
            // The lease is checked right before the broker call; a lost lease leaves every
            // order `submitting` for whoever holds the lock next.
            guard.ensure_held()?;
            let requests: Vec<OrderRequest> = placed
                .iter()
                .map(|(o, ..)| OrderRequest::for_order(o))
                .collect();
            let results = broker.submit_batch(&requests).await;
            let mut answers = Vec::with_capacity(placed.len());
            for ((order, ..), result) in placed.iter().zip(results) {
                if let Some(answer) = self.answer_of(broker.as_ref(), order, result).await {
                    answers.push((order.id, answer));
                }
            }
            if !answers.is_empty() {
                fault::point("before_answer_stored");
                self.record_answers(&mut placed, &answers).await?;
            }
            fault::point("mid_run");
        }

        // Step 7: refresh what is still working at the broker (a market order may have
        // filled since it was accepted); the answers are recorded in one go.
        let mut refreshed = Vec::new();
        for (order, ..) in &placed {
            if matches!(
                order.status,
                OrderStatus::Accepted | OrderStatus::PartiallyFilled
            ) && guard.ensure_held().is_ok()
                && let Ok(Some(answer)) = broker.order_by_client_id(&order.client_order_id).await
            {
                refreshed.push((order.id, answer));
            }
        }
        if !refreshed.is_empty() {
            self.record_answers(&mut placed, &refreshed).await?;
        }
        let mut orders = Vec::with_capacity(placed.len());
        for (order, rec_id, symbol, detail) in placed {
            let (kind, detail) = match order.status {
                OrderStatus::Rejected | OrderStatus::Error => (
                    OutcomeKind::Failed,
                    format!("{detail}; broker: {}", order.status),
                ),
                OrderStatus::Submitting => (
                    OutcomeKind::Failed,
                    format!("{detail}; no broker answer, order left submitting for reconciliation"),
                ),
                st => (
                    OutcomeKind::Ordered,
                    format!("{detail}; order {} {st}", order.client_order_id),
                ),
            };
            counts.add(kind);
            records.push(outcome(rec_id, &symbol, kind, detail, Some(order.id)));
            orders.push(order);
        }
        if !records.is_empty() {
            self.store.record_outcomes(&records).await?;
        }
        Ok(RunReport {
            expert_id: expert.id,
            use_case,
            status: RunStatus::Processed,
            error: None,
            counts,
            orders,
        })
    }

    /// Records brokers' answers in one store call and updates the run's orders with them.
    async fn record_answers(
        &self,
        placed: &mut [(Order, i64, String, String)],
        answers: &[(i64, BrokerOrder)],
    ) -> Result<(), EngineError> {
        let updated: HashMap<i64, Order> = self
            .store
            .apply_broker_orders(answers)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        for (order, ..) in placed.iter_mut() {
            if let Some(u) = updated.get(&order.id) {
                *order = u.clone();
            }
        }
        Ok(())
    }

    /// Sends one stored order once and returns the answer to record (see
    /// [`TradeManager::answer_of`]).
    async fn send(&self, broker: &dyn Broker, order: &Order) -> Option<BrokerOrder> {
        let result = broker.submit(&OrderRequest::for_order(order)).await;
        self.answer_of(broker, order, result).await
    }

    /// Turns a broker's reply to a submission into the answer to record: a refusal of a
    /// client_order_id it already has becomes a look-up of that order; a rejection is
    /// recorded as such; no answer (`None`) leaves the order `submitting` for settlement.
    async fn answer_of(
        &self,
        broker: &dyn Broker,
        order: &Order,
        result: Result<BrokerOrder, BrokerError>,
    ) -> Option<BrokerOrder> {
        let answer = match result {
            Err(BrokerError::DuplicateClientOrderId(_)) => {
                match broker.order_by_client_id(&order.client_order_id).await {
                    Ok(Some(found)) => Ok(found),
                    Ok(None) => Err(BrokerError::Unavailable(
                        "broker reports the id used but has no such order".into(),
                    )),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        let result = match &answer {
            Ok(_) => "accepted",
            Err(BrokerError::Rejected(_)) => "rejected",
            Err(_) => "unavailable",
        };
        metrics::counter!(m::ORDERS_SUBMITTED, "result" => result).increment(1);
        match answer {
            Ok(a) => Some(a),
            Err(BrokerError::Rejected(reason)) => {
                tracing::warn!(order = order.id, client_order_id = %order.client_order_id, "broker rejected order: {reason}");
                Some(BrokerOrder {
                    broker_order_id: String::new(),
                    client_order_id: order.client_order_id.clone(),
                    status: OrderStatus::Rejected,
                    filled_quantity: Default::default(),
                    avg_fill_price: None,
                    reason: Some(reason),
                    updated_at: self.clock.now(),
                })
            }
            Err(e) => {
                tracing::warn!(order = order.id, client_order_id = %order.client_order_id, "no broker answer: {e}; left submitting");
                None
            }
        }
    }
}

impl TradeManager {
    /// Settles one order left `submitting`: adopts the broker's order when the broker has
    /// its client_order_id, submits it when the broker has never seen it, leaves it when the
    /// broker cannot be asked. Never sends an order the broker may already have.
    async fn settle(
        &self,
        broker: &dyn Broker,
        guard: &ProcessingGuard,
        order: Order,
    ) -> Result<SettledOrder, EngineError> {
        guard.ensure_held()?;
        let (order, how) = match broker.order_by_client_id(&order.client_order_id).await {
            Ok(Some(answer)) => (
                self.store.apply_broker_order(order.id, &answer).await?,
                "adopted",
            ),
            Ok(None) => {
                guard.ensure_held()?;
                match self.send(broker, &order).await {
                    Some(answer) => (
                        self.store.apply_broker_order(order.id, &answer).await?,
                        "submitted",
                    ),
                    None => (order, "unreachable"),
                }
            }
            Err(e) => {
                tracing::warn!(
                    order = order.id,
                    "cannot settle {}: {e}",
                    order.client_order_id
                );
                (order, "unreachable")
            }
        };
        if how != "unreachable" {
            metrics::counter!(m::ORDERS_SETTLED, "how" => how).increment(1);
            tracing::info!(
                order = order.id,
                client_order_id = %order.client_order_id,
                "settled in-flight order: {how}, now {}",
                order.status
            );
        }
        Ok(SettledOrder {
            order_id: order.id,
            client_order_id: order.client_order_id,
            how: how.to_string(),
            status: order.status,
        })
    }

    /// Startup reconciliation (B3): settles every order left `submitting`, under its expert's
    /// processing lock, then compares each account's broker positions with what the open
    /// transactions hold. A difference is reported (WARNING, a stored finding, a metric) and
    /// left for a person to decide: never adopted, never deleted.
    pub async fn reconcile(&self) -> Result<ReconcileReport, EngineError> {
        let mut report = ReconcileReport::default();
        let mut by_expert: std::collections::BTreeMap<i64, Vec<Order>> = Default::default();
        for o in self.store.orders_in_flight(None).await? {
            by_expert.entry(o.expert_id).or_default().push(o);
        }
        for (expert_id, orders) in by_expert {
            let Some(guard) = self.locks.acquire(expert_id, UseCase::EnterMarket).await else {
                // A live run of this expert holds the lock; it settles them itself.
                report
                    .settled
                    .extend(orders.into_iter().map(|o| SettledOrder {
                        order_id: o.id,
                        client_order_id: o.client_order_id,
                        how: "busy".into(),
                        status: o.status,
                    }));
                continue;
            };
            let result = async {
                let mut settled = Vec::new();
                for order in orders {
                    let broker = self.broker(&order.account)?;
                    settled.push(self.settle(broker.as_ref(), &guard, order).await?);
                }
                Ok::<_, EngineError>(settled)
            }
            .await;
            guard.release().await;
            report.settled.extend(result?);
        }

        let mut accounts: Vec<&String> = self.brokers.keys().collect();
        accounts.sort();
        for account in accounts {
            let broker = &self.brokers[account];
            let subject = LockSubject::Account {
                account: account.clone(),
            };
            let Some(guard) = self.locks.acquire_subject(subject).await else {
                continue;
            };
            let positions = broker.positions().await;
            let held = self.store.held_quantities(account).await;
            guard.release().await;
            let (positions, held) = match (positions, held) {
                (Ok(p), Ok(h)) => (p, h),
                (Err(e), _) => {
                    // Never act on a failed positions fetch.
                    tracing::warn!("reconcile {account}: cannot read broker positions: {e}");
                    continue;
                }
                (_, Err(e)) => return Err(e.into()),
            };
            let mut symbols: BTreeSet<String> = held.keys().cloned().collect();
            let broker_qty: HashMap<String, rust_decimal::Decimal> = positions
                .into_iter()
                .map(|p| (p.symbol, p.quantity))
                .collect();
            symbols.extend(broker_qty.keys().cloned());
            let mut found = Vec::new();
            for symbol in symbols {
                let b = broker_qty.get(&symbol).copied().unwrap_or_default();
                let r = held.get(&symbol).copied().unwrap_or_default();
                if b != r {
                    let detail = format!(
                        "broker holds {} {symbol}, open transactions hold {}; left for a person to decide",
                        b.normalize(),
                        r.normalize()
                    );
                    tracing::warn!("RECONCILE: account {account}: {detail}");
                    metrics::counter!(m::RECONCILE_FINDINGS).increment(1);
                    found.push(Finding {
                        account: account.clone(),
                        symbol,
                        broker_quantity: b,
                        recorded_quantity: r,
                        detail,
                        found_at: self.clock.now(),
                    });
                }
            }
            if !found.is_empty() {
                self.store.record_findings(&found).await?;
            }
            report.findings.extend(found);
        }
        Ok(report)
    }
}

/// What reconciliation did with one in-flight order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettledOrder {
    pub order_id: i64,
    pub client_order_id: String,
    /// `adopted` (the broker had it), `submitted` (it never reached the broker),
    /// `unreachable` (the broker could not be asked; still submitting) or `busy` (a live
    /// run of its expert holds the lock and settles it).
    pub how: String,
    pub status: OrderStatus,
}

/// What `reconcile` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub settled: Vec<SettledOrder>,
    pub findings: Vec<Finding>,
}

/// The seed's WARNING line for a prevented duplicate position (S5).
fn safety_check_warning(rec_id: i64, symbol: &str, txn_id: &str, status: &str, expert_id: i64) {
    tracing::warn!(
        "SAFETY CHECK: Skipping recommendation {rec_id} for {symbol} - existing transaction {txn_id} in {status} status for expert {expert_id}"
    );
}
