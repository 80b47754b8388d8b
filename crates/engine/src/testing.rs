//! Test doubles for fast engine tests without a database (feature `test-util`): an
//! in-memory store that honours the one-active-position rule and the order status table,
//! and a scripted broker.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use tradewarden_domain::order::client_order_id;
use tradewarden_domain::outcome::entry_outcome;
use tradewarden_domain::transaction::ActivePosition;
use tradewarden_domain::{
    Action, InstallationId, NewRecommendation, Order, OrderRole, OrderStatus, Outcome,
    Recommendation, Transaction, TransactionStatus,
};

use crate::ports::*;
use tradewarden_domain::lifecycle::TransactionChange;

/// Everything the in-memory store holds.
#[derive(Debug, Default)]
pub struct MemoryState {
    pub recommendations: Vec<Recommendation>,
    pub transactions: Vec<Transaction>,
    /// The price each transaction's entry was sized at.
    pub reference_prices: HashMap<i64, Decimal>,
    pub orders: Vec<Order>,
    pub outcomes: Vec<Outcome>,
    /// The decision of each entry's outcome, by order id (the SQL store's `decision` column).
    pub decisions: HashMap<i64, String>,
    /// Run records; a record's id is its index + 1.
    pub runs: Vec<RunRecord>,
    /// Analysis jobs; a job's id is its index + 1.
    pub jobs: Vec<AnalysisJob>,
    pub findings: Vec<Finding>,
    /// key → (holder, expires_at)
    pub leases: HashMap<String, (LeaseHolder, DateTime<Utc>)>,
    /// Liveness key → whether its session is connected; a key not here gives no signal.
    pub sessions: HashMap<i64, bool>,
    /// When set, applying broker answers fails with this error (a store failing mid-run).
    pub fail_apply: Option<StoreError>,
    /// How many times each store method was called, by name: a batch's store calls must
    /// not grow with its number of experts.
    pub calls: BTreeMap<&'static str, usize>,
}

/// The memory store's installation id.
pub const MEMORY_INSTALLATION: &str = "mem";

/// A store in memory. A std mutex is right here: no method awaits while holding it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub state: Mutex<MemoryState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, counting a call of store method `call`.
    fn enter(&self, call: &'static str) -> parking_lot::MutexGuard<'_, MemoryState> {
        let mut s = self.state.lock();
        *s.calls.entry(call).or_default() += 1;
        s
    }
}

fn active_of<'a>(s: &'a MemoryState, expert_id: i64, symbol: &str) -> Option<&'a Transaction> {
    s.transactions
        .iter()
        .find(|t| t.expert_id == expert_id && t.symbol == symbol && t.status.holds_position())
}

#[async_trait]
impl RecommendationStore for MemoryStore {
    async fn begin_import(&self) -> Result<Box<dyn ImportSession + '_>, StoreError> {
        Ok(Box::new(MemoryImport {
            store: self,
            staged: Vec::new(),
        }))
    }

    async fn load_enter_market_batch(
        &self,
        expert_ids: &[i64],
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, EnterMarketData>, StoreError> {
        let s = self.enter("load_enter_market_batch");
        let mut out: HashMap<i64, EnterMarketData> = HashMap::new();
        for r in s.recommendations.iter().filter(|r| {
            expert_ids.contains(&r.expert_id) && r.created_at >= since && r.action != Action::Hold
        }) {
            out.entry(r.expert_id)
                .or_default()
                .recommendations
                .push(r.clone());
        }
        for t in s
            .transactions
            .iter()
            .filter(|t| expert_ids.contains(&t.expert_id) && t.status.holds_position())
        {
            out.entry(t.expert_id)
                .or_default()
                .positions
                .push(ActivePosition {
                    transaction_id: t.id,
                    symbol: t.symbol.clone(),
                    side: t.side,
                    status: t.status,
                    quantity: t.quantity,
                    price: t
                        .open_price
                        .or(s.reference_prices.get(&t.id).copied())
                        .unwrap_or_default(),
                });
        }
        Ok(out)
    }
}

/// An import into the memory store: its recommendations are staged until committed, so a
/// session dropped uncommitted stores nothing.
struct MemoryImport<'a> {
    store: &'a MemoryStore,
    staged: Vec<NewRecommendation>,
}

impl MemoryImport<'_> {
    /// The stored or staged recommendation with `rec`'s identity; staged ones numbered as the
    /// commit will number them.
    fn find(&self, s: &MemoryState, rec: &NewRecommendation) -> Option<Recommendation> {
        let same = |o: &NewRecommendation| o.identity() == rec.identity();
        if let Some(stored) = s.recommendations.iter().find(|o| same(&o.rec)) {
            return Some(stored.clone());
        }
        let k = self.staged.iter().position(same)?;
        Some(Recommendation {
            id: (s.recommendations.len() + k + 1) as i64,
            rec: self.staged[k].clone(),
        })
    }
}

#[async_trait]
impl ImportSession for MemoryImport<'_> {
    async fn insert_new(&mut self, recs: &[&NewRecommendation]) -> Result<Vec<bool>, StoreError> {
        let s = self.store.state.lock();
        let mut inserted = Vec::with_capacity(recs.len());
        for &r in recs {
            let new = self.find(&s, r).is_none();
            if new {
                self.staged.push(r.clone());
            }
            inserted.push(new);
        }
        Ok(inserted)
    }

    async fn stored(
        &mut self,
        recs: &[&NewRecommendation],
    ) -> Result<Vec<Recommendation>, StoreError> {
        let s = self.store.state.lock();
        Ok(recs.iter().filter_map(|r| self.find(&s, r)).collect())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let mut s = self.store.state.lock();
        for rec in self.staged {
            let id = s.recommendations.len() as i64 + 1;
            s.recommendations.push(Recommendation { id, rec });
        }
        Ok(())
    }
}

impl MemoryState {
    fn open_one(&mut self, n: &NewPosition) -> Result<(Transaction, Order), StoreError> {
        if let Some(t) = active_of(self, n.expert_id, &n.symbol) {
            return Err(StoreError::DuplicatePosition {
                expert_id: n.expert_id,
                symbol: n.symbol.clone(),
                existing: Some((t.id, t.status)),
            });
        }
        let transaction_id = self.transactions.len() as i64 + 1;
        let installation = InstallationId::parse(MEMORY_INSTALLATION).expect("valid");
        let (txn, order) = n.stored_rows(
            transaction_id,
            self.orders.len() as i64 + 1,
            client_order_id(&installation, transaction_id, OrderRole::Entry),
        );
        self.reference_prices.insert(txn.id, n.reference_price);
        self.transactions.push(txn.clone());
        self.orders.push(order.clone());
        for mut leg in n.leg_orders(transaction_id, order.id, &installation) {
            leg.id = self.orders.len() as i64 + 1;
            self.orders.push(leg);
        }
        Ok((txn, order))
    }

    fn apply_one(&mut self, id: i64, a: &BrokerOrder) -> Result<Order, StoreError> {
        let i = self
            .orders
            .iter()
            .position(|o| o.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("order {id}")))?;
        if self.orders[i].status.transition(a.status).is_err() {
            return Ok(self.orders[i].clone());
        }
        let o = &mut self.orders[i];
        o.status = a.status;
        o.filled_quantity = a.filled_quantity;
        o.avg_fill_price = a.avg_fill_price.or(o.avg_fill_price);
        o.broker_order_id = a.broker_order_id.clone().or(o.broker_order_id.take());
        let order = o.clone();
        if order.role == OrderRole::Entry {
            self.entry_answered(&order, a);
            let (kind, answer) =
                entry_outcome(order.status, &order.client_order_id, a.reason.as_deref());
            self.complete(&OutcomeCompletion {
                order_id: order.id,
                outcome: kind,
                answer,
            });
        }
        Ok(order)
    }

    /// Completes the outcome of an entry written with its position.
    fn complete(&mut self, c: &OutcomeCompletion) {
        let Some(decision) = self.decisions.get(&c.order_id) else {
            return;
        };
        let detail = format!("{decision}{}", c.answer);
        for o in self
            .outcomes
            .iter_mut()
            .filter(|o| o.order_id == Some(c.order_id))
        {
            o.outcome = c.outcome;
            o.detail = detail.clone();
        }
    }

    /// The outcome written with a position a run decided: provisional `ordered`, or its
    /// refusal.
    fn record_decision(
        &mut self,
        n: &NewPosition,
        result: &Result<(Transaction, Order), StoreError>,
    ) {
        let Some(record) = n.decision_record(result) else {
            return;
        };
        if let (Some(order_id), Some(decision)) = (record.order_id, &n.decision) {
            self.decisions.insert(order_id, decision.clone());
        }
        self.outcomes.push(record);
    }

    fn entry_answered(&mut self, order: &Order, a: &BrokerOrder) {
        let Some(t) = self
            .transactions
            .iter_mut()
            .find(|t| t.id == order.transaction_id)
        else {
            return;
        };
        if a.status.is_executed() && t.status.is_active() {
            t.status = TransactionStatus::Opened;
            t.open_price = a.avg_fill_price;
            t.opened_at = t.opened_at.or(Some(a.updated_at));
        } else if a.status.is_terminal()
            && a.filled_quantity.is_zero()
            && t.status == TransactionStatus::Waiting
        {
            t.status = if a.status == OrderStatus::Error {
                TransactionStatus::Failed
            } else {
                TransactionStatus::Closed
            };
            t.closed_at = Some(a.updated_at);
        }
    }
}

#[async_trait]
impl PositionStore for MemoryStore {
    async fn open_positions(
        &self,
        new: &[NewPosition],
        skips: &[Outcome],
    ) -> Result<Vec<Result<(Transaction, Order), StoreError>>, StoreError> {
        let mut s = self.enter("open_positions");
        s.outcomes.extend_from_slice(skips);
        let out: Vec<_> = new.iter().map(|n| s.open_one(n)).collect();
        for (n, result) in new.iter().zip(&out) {
            s.record_decision(n, result);
        }
        Ok(out)
    }

    async fn apply_broker_orders(
        &self,
        answers: &[(i64, BrokerOrder)],
    ) -> Result<Vec<Order>, StoreError> {
        let mut s = self.enter("apply_broker_orders");
        if let Some(e) = s.fail_apply.clone() {
            return Err(e);
        }
        answers.iter().map(|(id, a)| s.apply_one(*id, a)).collect()
    }

    async fn active_transaction(
        &self,
        expert_id: i64,
        symbol: &str,
    ) -> Result<Option<Transaction>, StoreError> {
        Ok(active_of(&self.enter("active_transaction"), expert_id, symbol).cloned())
    }

    async fn orders_in_flight(&self, expert_id: Option<i64>) -> Result<Vec<Order>, StoreError> {
        let s = self.enter("orders_in_flight");
        Ok(s.orders
            .iter()
            .filter(|o| {
                o.status == OrderStatus::Submitting && expert_id.is_none_or(|e| o.expert_id == e)
            })
            .cloned()
            .collect())
    }

    async fn held_quantities(&self, account: &str) -> Result<HashMap<String, Decimal>, StoreError> {
        let s = self.enter("held_quantities");
        let mut held: HashMap<String, Decimal> = HashMap::new();
        for t in s.transactions.iter().filter(|t| {
            t.account == account
                && matches!(
                    t.status,
                    TransactionStatus::Opened | TransactionStatus::Closing
                )
        }) {
            let signed = if t.side == tradewarden_domain::Side::Buy {
                t.quantity
            } else {
                -t.quantity
            };
            *held.entry(t.symbol.clone()).or_default() += signed;
        }
        Ok(held)
    }

    async fn symbols_in_flight(
        &self,
        account: &str,
        busy: &[i64],
    ) -> Result<BTreeMap<String, InFlightReason>, StoreError> {
        let s = self.enter("symbols_in_flight");
        let mut out = BTreeMap::new();
        for o in s
            .orders
            .iter()
            .filter(|o| o.account == account && o.status.may_be_executing())
        {
            out.insert(o.symbol.clone(), InFlightReason::OrderInFlight);
        }
        for t in s.transactions.iter().filter(|t| {
            t.account == account && busy.contains(&t.expert_id) && !t.status.is_terminal()
        }) {
            out.entry(t.symbol.clone())
                .or_insert(InFlightReason::RunInProgress);
        }
        Ok(out)
    }
}

#[async_trait]
impl JournalStore for MemoryStore {
    async fn finish_runs(&self, finished: &FinishedRuns<'_>) -> Result<Vec<i64>, StoreError> {
        let mut s = self.enter("finish_runs");
        for c in finished.completions {
            s.complete(c);
        }
        let first = s.runs.len() as i64 + 1;
        s.runs.extend_from_slice(finished.runs);
        let LeaseRelease { owner, keys } = finished.leases;
        s.leases
            .retain(|key, (h, _)| h.owner != owner || !keys.contains(key));
        Ok((first..first + finished.runs.len() as i64).collect())
    }

    async fn record_findings(&self, findings: &[Finding]) -> Result<(), StoreError> {
        self.enter("record_findings")
            .findings
            .extend_from_slice(findings);
        Ok(())
    }
}

#[async_trait]
impl OpenPositionsStore for MemoryStore {
    async fn load_open_positions(
        &self,
        expert_id: i64,
        since: DateTime<Utc>,
    ) -> Result<OpenPositionsData, StoreError> {
        use tradewarden_domain::open_positions::HeldPosition;
        let s = self.enter("load_open_positions");
        let mut data = OpenPositionsData::default();
        let mut mine: Vec<&Recommendation> = s
            .recommendations
            .iter()
            .filter(|r| r.expert_id == expert_id)
            .collect();
        mine.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        let mut seen = HashSet::new();
        for (i, r) in mine.iter().enumerate() {
            if r.created_at < since || !seen.insert(r.symbol.clone()) {
                continue;
            }
            data.recommendations.push((*r).clone());
            if let Some(p) = mine[i + 1..].iter().find(|p| p.symbol == r.symbol) {
                data.previous.insert(r.id, p.action);
            }
        }
        data.recommendations.sort_by_key(|r| r.id);
        for t in s.transactions.iter().filter(|t| t.expert_id == expert_id) {
            if t.status == TransactionStatus::Closed {
                let c = data.last_closes.entry(t.symbol.clone()).or_default();
                c.any = c.any.max(t.closed_at);
                continue;
            }
            if t.status.is_terminal() {
                continue;
            }
            let close_working = s.orders.iter().any(|o| {
                o.transaction_id == t.id && o.role == OrderRole::Close && !o.status.is_final()
            });
            let held = HeldPosition {
                transaction_id: t.id,
                side: t.side,
                status: t.status,
                quantity: t.quantity,
                open_price: t.open_price,
                opened_at: t.opened_at,
                take_profit: t.take_profit,
                stop_loss: t.stop_loss,
                close_working,
            };
            if data
                .positions
                .get(&t.symbol)
                .is_none_or(|h| held.precedes(h))
            {
                data.positions.insert(t.symbol.clone(), held);
            }
        }
        Ok(data)
    }

    async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<(), StoreError> {
        self.enter("record_outcomes")
            .outcomes
            .extend_from_slice(outcomes);
        Ok(())
    }
}

#[async_trait]
impl QueryStore for MemoryStore {
    async fn transactions(&self, f: &ListFilter) -> Result<Vec<Transaction>, StoreError> {
        let s = self.enter("transactions");
        Ok(s.transactions
            .iter()
            .filter(|t| f.expert_id.is_none_or(|e| t.expert_id == e))
            .filter(|t| f.status.as_deref().is_none_or(|st| t.status.as_str() == st))
            .cloned()
            .collect())
    }

    async fn orders(&self, f: &ListFilter) -> Result<Vec<Order>, StoreError> {
        let s = self.enter("orders");
        Ok(s.orders
            .iter()
            .filter(|o| f.expert_id.is_none_or(|e| o.expert_id == e))
            .filter(|o| f.status.as_deref().is_none_or(|st| o.status.as_str() == st))
            .cloned()
            .collect())
    }

    async fn outcomes(&self, f: &ListFilter) -> Result<Vec<Outcome>, StoreError> {
        let s = self.enter("outcomes");
        Ok(s.outcomes
            .iter()
            .filter(|o| f.expert_id.is_none_or(|e| o.expert_id == e))
            .filter(|o| {
                f.status
                    .as_deref()
                    .is_none_or(|st| o.outcome.as_str() == st)
            })
            .filter(|o| f.recommendation_id.is_none_or(|r| o.recommendation_id == r))
            .cloned()
            .collect())
    }

    async fn runs(&self, f: &RunFilter) -> Result<Vec<StoredRun>, StoreError> {
        let s = self.enter("runs");
        Ok(s.runs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, r)| stored_run(i as i64 + 1, r))
            .filter(|r| f.expert_id.is_none_or(|e| r.expert_id == Some(e)))
            .filter(|r| f.status.is_none_or(|st| r.status == st))
            .filter(|r| f.since.is_none_or(|t| r.started_at >= t))
            .skip(f.offset as usize)
            .take(f.limit.map_or(usize::MAX, |l| l as usize))
            .collect())
    }

    async fn run(&self, id: i64) -> Result<Option<StoredRun>, StoreError> {
        let s = self.enter("run");
        let index = usize::try_from(id - 1).ok();
        Ok(index.and_then(|i| s.runs.get(i)).map(|r| stored_run(id, r)))
    }
}

/// A run record as the store gives it back.
fn stored_run(id: i64, r: &RunRecord) -> StoredRun {
    StoredRun {
        id,
        expert_id: r.expert_id,
        use_case: r.use_case,
        trigger: r.trigger,
        lock_key: r.lock_key.clone(),
        owner: r.owner.clone(),
        status: r.status,
        counts: r.counts,
        error: r.error.clone(),
        started_at: r.started_at,
        finished_at: r.finished_at,
    }
}

/// Jobs in memory. Ending one takes a database transaction, which the memory store does
/// not have: [`JobStore::begin_job_end`] fails (jobs are tested on the SQL stores).
#[async_trait]
impl JobStore for MemoryStore {
    async fn create_jobs(&self, new: &[NewJob]) -> Result<Vec<AnalysisJob>, StoreError> {
        let mut s = self.enter("create_jobs");
        let mut created = Vec::with_capacity(new.len());
        for n in new {
            let job = AnalysisJob {
                id: s.jobs.len() as i64 + 1,
                expert_id: n.expert_id,
                use_case: n.use_case,
                symbol: n.symbol.clone(),
                status: JobStatus::Pending,
                reason: None,
                recommendation_id: None,
                created_at: n.created_at,
                ended_at: None,
            };
            s.jobs.push(job.clone());
            created.push(job);
        }
        Ok(created)
    }

    async fn begin_job_end(&self) -> Result<Box<dyn JobSession + '_>, StoreError> {
        Err(StoreError::database(
            "the memory store cannot end jobs (no transactions)",
        ))
    }

    async fn jobs(&self, f: &JobFilter) -> Result<Vec<AnalysisJob>, StoreError> {
        let s = self.enter("jobs");
        Ok(s.jobs
            .iter()
            .rev()
            .filter(|j| f.expert_id.is_none_or(|e| j.expert_id == e))
            .filter(|j| f.status.is_none_or(|st| j.status == st))
            .skip(f.offset as usize)
            .take(f.limit.map_or(usize::MAX, |l| l as usize))
            .cloned()
            .collect())
    }

    async fn job(&self, id: i64) -> Result<Option<AnalysisJob>, StoreError> {
        let s = self.enter("job");
        Ok(s.jobs.iter().find(|j| j.id == id).cloned())
    }

    async fn experts_with_pending_jobs(
        &self,
        expert_ids: &[i64],
        use_case: tradewarden_domain::UseCase,
    ) -> Result<HashSet<i64>, StoreError> {
        let s = self.enter("experts_with_pending_jobs");
        Ok(s.jobs
            .iter()
            .filter(|j| j.status == JobStatus::Pending && j.use_case == use_case)
            .filter(|j| expert_ids.contains(&j.expert_id))
            .map(|j| j.expert_id)
            .collect())
    }

    async fn pending_jobs_before(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let s = self.enter("pending_jobs_before");
        Ok(s.jobs
            .iter()
            .filter(|j| j.status == JobStatus::Pending && j.created_at < created_before)
            .map(|j| j.id)
            .collect())
    }

    async fn active_symbols(
        &self,
        expert_id: i64,
        symbols: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let s = self.enter("active_symbols");
        Ok(symbols
            .iter()
            .filter(|sym| active_of(&s, expert_id, sym).is_some())
            .cloned()
            .collect())
    }
}

#[async_trait]
impl LifecycleStore for MemoryStore {
    async fn live_positions(&self, accounts: &[String]) -> Result<Vec<Position>, StoreError> {
        let s = self.enter("live_positions");
        Ok(s.transactions
            .iter()
            .filter(|t| accounts.contains(&t.account))
            .map(|t| s.position_of(t))
            .filter(|p| {
                !p.transaction.status.is_terminal()
                    || p.orders
                        .iter()
                        .any(|o| tradewarden_domain::lifecycle::is_live(o.status))
            })
            .collect())
    }

    async fn position(&self, transaction_id: i64) -> Result<Option<Position>, StoreError> {
        let s = self.enter("position");
        Ok(s.transactions
            .iter()
            .find(|t| t.id == transaction_id)
            .map(|t| s.position_of(t)))
    }

    async fn write_lifecycle(&self, w: &LifecycleWrite) -> Result<LifecycleWritten, StoreError> {
        let mut s = self.enter("write_lifecycle");
        let mut out = LifecycleWritten::default();
        if let Some((id, reason)) = w.closing
            && let Some(t) = s.transactions.iter_mut().find(|t| t.id == id)
            && t.status == TransactionStatus::Opened
        {
            t.status = TransactionStatus::Closing;
            t.close_reason = Some(reason.as_str().to_string());
            out.closing = true;
        }
        for t in s
            .transactions
            .iter_mut()
            .filter(|t| w.reopened.contains(&t.id) && t.status == TransactionStatus::Closing)
        {
            t.status = TransactionStatus::Opened;
            t.close_reason = None;
            out.reopened.push(t.id);
        }
        if let Some((id, tp, sl)) = w.exits
            && let Some(t) = s.transactions.iter_mut().find(|t| t.id == id)
        {
            t.take_profit = tp;
            t.stop_loss = sl;
        }
        let inst = InstallationId::parse(MEMORY_INSTALLATION).expect("valid");
        let inserting = if w.closing.is_none() || out.closing {
            &w.inserted[..]
        } else {
            &[]
        };
        for n in inserting {
            let client_order_id = tradewarden_domain::lifecycle::leg_client_order_id(
                &inst,
                n.transaction_id,
                n.role,
                n.generation,
            );
            if s.orders
                .iter()
                .any(|o| o.client_order_id == client_order_id)
            {
                return Err(StoreError::database(format!(
                    "client_order_id {client_order_id} already stored"
                )));
            }
            let order = Order {
                id: s.orders.len() as i64 + 1,
                transaction_id: n.transaction_id,
                expert_id: n.expert_id,
                account: n.account.clone(),
                symbol: n.symbol.clone(),
                side: n.side,
                role: n.role,
                order_type: n.order_type,
                quantity: n.quantity,
                filled_quantity: Decimal::ZERO,
                limit_price: n.limit_price,
                stop_price: n.stop_price,
                avg_fill_price: None,
                status: n.status,
                client_order_id,
                broker_order_id: None,
                parent_order_id: n.parent_order_id,
                trigger_status: n.trigger_status,
                recommendation_id: None,
                created_at: n.created_at,
            };
            s.orders.push(order.clone());
            out.inserted.push(order);
        }
        for o in s.orders.iter_mut().filter(|o| w.canceled.contains(&o.id)) {
            if matches!(o.status, OrderStatus::WaitingTrigger | OrderStatus::Pending) {
                o.status = OrderStatus::Canceled;
                out.canceled += 1;
            }
        }
        for (id, quantity) in &w.claimed {
            if let Some(o) = s.orders.iter_mut().find(|o| o.id == *id)
                && matches!(o.status, OrderStatus::WaitingTrigger | OrderStatus::Pending)
            {
                o.status = OrderStatus::Submitting;
                o.quantity = *quantity;
                o.created_at = w.at;
                out.claimed.push(o.clone());
            }
        }
        for (id, change) in &w.changes {
            if s.change_transaction(*id, change) {
                match change {
                    TransactionChange::Opened { .. } => out.opened += 1,
                    TransactionChange::Closed { .. } => out.closed += 1,
                    TransactionChange::Quantity { .. } => {}
                }
            }
        }
        Ok(out)
    }
}

impl MemoryState {
    fn position_of(&self, t: &Transaction) -> Position {
        Position {
            transaction: t.clone(),
            orders: self
                .orders
                .iter()
                .filter(|o| o.transaction_id == t.id)
                .cloned()
                .collect(),
        }
    }

    /// Applies a derived change through the transaction status table; whether it applied.
    fn change_transaction(&mut self, id: i64, change: &TransactionChange) -> bool {
        let Some(t) = self.transactions.iter_mut().find(|t| t.id == id) else {
            return false;
        };
        match change {
            TransactionChange::Opened {
                open_price,
                quantity,
                opened_at,
            } if t.status.is_active() => {
                t.status = TransactionStatus::Opened;
                t.open_price = Some(*open_price);
                t.quantity = *quantity;
                t.opened_at = t.opened_at.or(Some(*opened_at));
                true
            }
            TransactionChange::Closed {
                close_price,
                closed_at,
                reason,
            } if t.status.transition(TransactionStatus::Closed).is_ok()
                && t.status != TransactionStatus::Closed =>
            {
                t.status = TransactionStatus::Closed;
                t.close_price = *close_price;
                t.closed_at = Some(*closed_at);
                t.close_reason = Some(reason.as_str().to_string());
                true
            }
            TransactionChange::Quantity {
                quantity,
                open_price,
            } if !t.status.is_terminal() => {
                t.quantity = *quantity;
                t.open_price = Some(*open_price);
                true
            }
            _ => false,
        }
    }
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn try_acquire_lease(
        &self,
        key: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<LeaseAttempt, StoreError> {
        let mut s = self.enter("try_acquire_lease");
        match s.leases.get(key) {
            Some((h, exp)) if *exp > now && h.owner != holder.owner => {
                Ok(LeaseAttempt::Held(Some(h.clone())))
            }
            _ => {
                s.leases
                    .insert(key.to_string(), (holder.clone(), expiry(now, ttl)));
                Ok(LeaseAttempt::Acquired)
            }
        }
    }

    async fn try_acquire_leases(
        &self,
        keys: &[String],
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let mut s = self.enter("try_acquire_leases");
        let mut taken = Vec::new();
        for key in keys {
            let free = s
                .leases
                .get(key)
                .is_none_or(|(h, exp)| *exp <= now || h.owner == holder.owner);
            if free {
                s.leases
                    .insert(key.clone(), (holder.clone(), expiry(now, ttl)));
                taken.push(key.clone());
            }
        }
        Ok(taken)
    }

    async fn take_over_lease(
        &self,
        key: &str,
        dead_owner: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut s = self.enter("take_over_lease");
        match s.leases.get_mut(key) {
            Some(lease) if lease.0.owner == dead_owner => {
                *lease = (holder.clone(), expiry(now, ttl));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn renew_lease(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut s = self.enter("renew_lease");
        match s.leases.get_mut(key) {
            Some((h, exp)) if h.owner == owner && *exp > now => {
                *exp = expiry(now, ttl);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let mut s = self.enter("release_lease");
        if s.leases.get(key).is_some_and(|(h, _)| h.owner == owner) {
            s.leases.remove(key);
        }
        Ok(())
    }

    async fn release_leases_of(&self, owner: &str) -> Result<u64, StoreError> {
        let mut s = self.enter("release_leases_of");
        let before = s.leases.len();
        s.leases.retain(|_, (h, _)| h.owner != owner);
        Ok((before - s.leases.len()) as u64)
    }

    async fn holder_connected(&self, key: i64) -> Result<Option<bool>, StoreError> {
        Ok(self.enter("holder_connected").sessions.get(&key).copied())
    }
}

/// A broker whose answers a test scripts: it fills market orders at its quotes, remembers
/// every order by client_order_id (refusing a reused one), and can be told to fail.
#[derive(Debug, Default)]
pub struct ScriptedBroker {
    pub state: Mutex<ScriptState>,
}

/// What the scripted broker knows and will do.
#[derive(Debug, Default)]
pub struct ScriptState {
    pub cash: Decimal,
    pub quotes: HashMap<String, Decimal>,
    /// Orders received, by client_order_id.
    pub orders: HashMap<String, BrokerOrder>,
    /// Every submission, in order (a refused duplicate too).
    pub submitted: Vec<OrderRequest>,
    /// The next submissions fail with these errors, first first.
    pub fail_next: Vec<BrokerError>,
    /// Client order ids to reject with a reason.
    pub reject: HashSet<String>,
    /// When set, `account()` fails with this error (a broker that cannot be reached).
    pub fail_account: Option<BrokerError>,
    /// Whether `submit()` panics (a broker with a bug).
    pub panic_on_submit: bool,
    /// How many times `account`, `quotes` and `submit_batch` were called.
    pub calls: BTreeMap<&'static str, usize>,
    /// What `positions()` answers.
    pub positions: Vec<BrokerPosition>,
}

impl ScriptState {
    fn count(&mut self, call: &'static str) {
        *self.calls.entry(call).or_default() += 1;
    }
}

impl ScriptedBroker {
    /// A broker with `cash` and the given quotes.
    pub fn new(cash: Decimal, quotes: &[(&str, Decimal)]) -> Self {
        let b = ScriptedBroker::default();
        {
            let mut s = b.state.lock();
            s.cash = cash;
            s.quotes = quotes.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        }
        b
    }
}

#[async_trait]
impl Broker for ScriptedBroker {
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let mut s = self.state.lock();
        s.count("account");
        if let Some(e) = s.fail_account.clone() {
            return Err(e);
        }
        Ok(AccountSnapshot {
            cash: s.cash,
            balance: s.cash,
        })
    }

    async fn quotes(&self, symbols: &[String]) -> Result<HashMap<String, Decimal>, BrokerError> {
        let mut s = self.state.lock();
        s.count("quotes");
        Ok(symbols
            .iter()
            .filter_map(|k| s.quotes.get(k).map(|v| (k.clone(), *v)))
            .collect())
    }

    async fn submit(&self, order: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        let mut s = self.state.lock();
        if s.panic_on_submit {
            drop(s);
            panic!("scripted broker bug");
        }
        s.submitted.push(order.clone());
        if !s.fail_next.is_empty() {
            return Err(s.fail_next.remove(0));
        }
        if s.orders.contains_key(&order.client_order_id) {
            return Err(BrokerError::DuplicateClientOrderId(
                order.client_order_id.clone(),
            ));
        }
        if s.reject.contains(&order.client_order_id) {
            return Err(BrokerError::Rejected("scripted rejection".into()));
        }
        // Exit legs (one-cancels-other groups) rest until a test fills them.
        let price = match order.oco_group {
            Some(_) => None,
            None => s.quotes.get(&order.symbol).copied(),
        };
        let answer = BrokerOrder {
            broker_order_id: Some(format!("scripted-{}", s.orders.len() + 1)),
            client_order_id: order.client_order_id.clone(),
            status: if price.is_some() {
                OrderStatus::Filled
            } else {
                OrderStatus::Accepted
            },
            filled_quantity: if price.is_some() {
                order.quantity
            } else {
                Decimal::ZERO
            },
            avg_fill_price: price,
            reason: None,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            symbol: Some(order.symbol.clone()),
            side: Some(order.side),
            quantity: Some(order.quantity),
        };
        s.orders
            .insert(order.client_order_id.clone(), answer.clone());
        Ok(answer)
    }

    async fn submit_batch(&self, orders: &[OrderRequest]) -> Vec<Result<BrokerOrder, BrokerError>> {
        self.state.lock().count("submit_batch");
        let mut out = Vec::with_capacity(orders.len());
        for o in orders {
            out.push(self.submit(o).await);
        }
        out
    }

    async fn order_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError> {
        Ok(self.state.lock().orders.get(client_order_id).cloned())
    }

    async fn cancel(&self, client_order_id: &str) -> Result<BrokerOrder, BrokerError> {
        let mut s = self.state.lock();
        s.count("cancel");
        let o = s
            .orders
            .get_mut(client_order_id)
            .ok_or_else(|| BrokerError::UnknownOrder(client_order_id.to_string()))?;
        if o.status == OrderStatus::Accepted {
            o.status = OrderStatus::Canceled;
        }
        Ok(o.clone())
    }

    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        Ok(self.state.lock().positions.clone())
    }
}

impl ScriptedBroker {
    /// Fills a resting order at `price`, as a quote crossing it would; the other orders of
    /// its one-cancels-other group are canceled when `oco` is set.
    pub fn fill(&self, client_order_id: &str, price: Decimal, oco: bool) {
        let mut s = self.state.lock();
        let group = s
            .submitted
            .iter()
            .find(|r| r.client_order_id == client_order_id)
            .and_then(|r| r.oco_group.clone());
        let siblings: Vec<String> = s
            .submitted
            .iter()
            .filter(|r| oco && r.oco_group.is_some() && r.oco_group == group)
            .map(|r| r.client_order_id.clone())
            .filter(|id| id != client_order_id)
            .collect();
        if let Some(o) = s.orders.get_mut(client_order_id) {
            o.status = OrderStatus::Filled;
            o.filled_quantity = o.quantity.unwrap_or_default();
            o.avg_fill_price = Some(price);
        }
        for id in siblings {
            if let Some(o) = s.orders.get_mut(&id)
                && o.status == OrderStatus::Accepted
            {
                o.status = OrderStatus::Canceled;
            }
        }
    }
}

/// A market BUY of `quantity` `symbol` for expert 1 on `paper`, referenced at 100, with no
/// exits, recommendation or decision: the position the engine's unit tests open by hand.
pub fn market_buy(symbol: &str, quantity: Decimal) -> crate::ports::NewPosition {
    crate::ports::NewPosition {
        expert_id: 1,
        account: "paper".into(),
        symbol: symbol.into(),
        side: tradewarden_domain::Side::Buy,
        quantity,
        reference_price: Decimal::from(100),
        order_type: tradewarden_domain::OrderType::Market,
        limit_price: None,
        take_profit: None,
        stop_loss: None,
        recommendation_id: None,
        created_at: chrono::Utc::now(),
        decision: None,
    }
}

/// Settings of one expert (1, `e1`, defaults) trading on one paper account, `paper`.
pub fn one_paper_expert() -> crate::settings::Settings {
    use crate::settings::{AccountSettings, Settings};
    Settings {
        experts: BTreeMap::from([(
            1,
            tradewarden_domain::expert::Expert::with_defaults(1, "e1", "paper"),
        )]),
        rulesets: Default::default(),
        accounts: [(
            "paper".to_string(),
            AccountSettings {
                name: "paper".into(),
                minimum_equity_threshold_percent: Decimal::from(5),
            },
        )]
        .into(),
        lock_timeout: Duration::from_millis(50),
        lookback_days: 1,
        max_clock_skew_seconds: 300,
        max_intent_age: Duration::from_secs(300),
        job_timeout: Duration::from_secs(3600),
    }
}

/// A manager of [`one_paper_expert`] over a memory store and a scripted broker with 100,000
/// cash quoting AAPL at 100 and holding `held` AAPL (none when zero).
pub fn paper_manager(
    held: Decimal,
) -> (
    crate::manager::TradeManager,
    std::sync::Arc<MemoryStore>,
    std::sync::Arc<ScriptedBroker>,
) {
    use std::sync::Arc;
    let store = Arc::new(MemoryStore::new());
    let broker = Arc::new(ScriptedBroker::new(
        Decimal::from(100_000),
        &[("AAPL", Decimal::from(100))],
    ));
    if !held.is_zero() {
        broker.state.lock().positions = vec![BrokerPosition {
            symbol: "AAPL".into(),
            quantity: held,
        }];
    }
    let m = crate::manager::TradeManager::new(
        one_paper_expert(),
        store.clone(),
        [("paper".to_string(), broker.clone() as Arc<dyn Broker>)].into(),
        Arc::new(SystemClock),
    );
    (m, store, broker)
}
