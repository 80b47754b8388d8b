//! The enter_market run (DESIGN.md §5), carried out for a batch of experts at once, as named
//! phases: `pass_gates` → `settle_in_flight` → `load_inputs` → `view_accounts` →
//! `decide_all` → `store_intents` → `submit` → `record_answers` → `refresh_placed` →
//! `finish` (which completes the outcomes, records the runs and gives the leases back).
//!
//! One expert's run is the batch of one. A batch shares what can be shared: one query per
//! kind of input for all its experts, one database transaction for all their intents, one
//! broker call of each kind per account (account, quotes, the order batch), one store call
//! for all answers, and one transaction for the outcome completions, the run records and the
//! lease releases. Each expert keeps its own lock, lease and guarantees: its intents are
//! committed `submitting` before its broker is called; its lease is checked right before
//! every broker call made for it, and a lost lease leaves its orders `submitting` and ends
//! only its run; a failure or panic in what is its own (its gates, settling, decision,
//! answers) fails only its run; a call it shares with others (a store call, its account's
//! broker) fails the runs that shared it, and only those.
//!
//! Decisions stay pure and per expert (the domain's plan). The experts of one account are
//! decided in id order, each on the account's cash as the buys decided before it will leave
//! it: what running them one after another gave, since a paper market order fills at the
//! quote it was sized at.
//!
//! Decision records are written with the positions they explain (I5): `store_intents`
//! commits the positions, a provisional `ordered` outcome for each, and every skip decided,
//! in one database transaction; each answer recorded afterwards completes its order's
//! outcome in the answer's own transaction. A run that stops anywhere after storing (crash,
//! lost lease, store error) so leaves every outcome behind, provisional at worst.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::enter_market::{self, Decision, EntryExits, Inputs};
use tradewarden_domain::expert::{Expert, ExpertBalance};
use tradewarden_domain::money::{checked_mul, checked_sub};
use tradewarden_domain::outcome::{OutcomeKind, entry_outcome};
use tradewarden_domain::rules::Ruleset;
use tradewarden_domain::{Order, OrderStatus, OrderType, Outcome, Price, Side, UseCase};

use super::TradeManager;
use super::settle::Found;
use crate::error::EngineError;
use crate::fault;
use crate::locks::ProcessingGuard;
use crate::metrics as m;
use crate::ports::{
    AccountSnapshot, AttachedExits, Broker, BrokerError, BrokerOrder, EnterMarketData, NewPosition,
    OrderRequest, OutcomeCompletion, RunRecord, StoreError,
};
use crate::report::{Counts, RunReport, RunStatus, RunTrigger, count_run};
use crate::unwind::CatchUnwind;

/// What a run works with once its gates are passed.
struct RunContext<'a> {
    expert: &'a Expert,
    ruleset: &'a Ruleset,
    broker: &'a Arc<dyn Broker>,
    /// The account's minimum_equity_threshold_percent.
    equity_threshold_percent: Decimal,
}

/// One expert's run in a batch: its lock, what started it, when it started, and where it
/// stands.
struct Run<'a> {
    expert: &'a Expert,
    trigger: RunTrigger,
    guard: ProcessingGuard,
    started: Instant,
    started_at: DateTime<Utc>,
    stage: Stage<'a>,
}

/// Where a run stands.
enum Stage<'a> {
    /// Past its gates, being carried out.
    Going(Box<Going<'a>>),
    /// Ended early: stopped by a gate (a status report) or by an error.
    Ended(Result<RunReport, EngineError>),
}

/// A run past its gates, and what its phases have produced so far.
struct Going<'a> {
    ctx: RunContext<'a>,
    journal: Journal<'a>,
    /// The stored recommendations and positions (`load_inputs`).
    data: EnterMarketData,
    /// What the decision funded (`decide_all`), until it is stored.
    funded: Vec<Funded>,
    /// The entry orders stored (`store_intents`), followed through submission.
    placed: Vec<Placed>,
}

/// An account as the batch's decisions see it: its money, and the quotes of every symbol its
/// runs concern.
struct AccountView {
    snapshot: AccountSnapshot,
    quotes: HashMap<String, Decimal>,
}

impl AccountView {
    /// The view of an account that was not asked: no money, no quotes.
    fn empty() -> Self {
        AccountView {
            snapshot: AccountSnapshot {
                cash: Decimal::ZERO,
                balance: Decimal::ZERO,
            },
            quotes: HashMap::new(),
        }
    }
}

/// A recommendation the plan funded: a position to open, with the exits it is placed with.
struct Funded {
    rec_id: i64,
    symbol: String,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    exits: EntryExits,
    detail: String,
}

/// An entry order stored for a recommendation, followed through submission.
pub(crate) struct Placed {
    pub order: Order,
    /// Its position's exit legs, sent with the entry to a broker that attaches them.
    pub exits: Option<AttachedExits>,
}

/// Brokers' answers to record, by the index of the run whose orders they answer.
type Answers = BTreeMap<usize, Vec<(i64, BrokerOrder)>>;

/// A run at its end: its result, the completions its outcomes still need, and its lock.
struct Ending {
    expert_id: i64,
    result: Result<RunReport, EngineError>,
    completions: Vec<OutcomeCompletion>,
    guard: ProcessingGuard,
    started: Instant,
    record: RunRecord,
}

/// The run's counts, and the skip outcomes decided and not yet written (they are written
/// with the positions).
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
        self.counts.add(UseCase::EnterMarket, kind);
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

impl<'a> Run<'a> {
    /// The run's progress while it is going.
    fn going(&mut self) -> Option<&mut Going<'a>> {
        match &mut self.stage {
            Stage::Going(g) => Some(g),
            Stage::Ended(_) => None,
        }
    }

    /// Ends the run on `error`; what it committed stays.
    fn fail(&mut self, error: EngineError) {
        self.stage = Stage::Ended(Err(error));
    }

    /// Checks the lease right before a broker call made for this run: a lost lease ends it.
    fn still_held(&mut self) -> bool {
        match self.guard.ensure_held() {
            Ok(()) => true,
            Err(lost) => {
                self.fail(lost.into());
                false
            }
        }
    }

    /// The run's report and the outcome completions it still needs, and its record.
    fn end(self, owner: &str, finished_at: DateTime<Utc>) -> Ending {
        let (result, completions) = match self.stage {
            Stage::Going(g) => {
                let (report, completions) = g.complete();
                (Ok(report), completions)
            }
            Stage::Ended(result) => (result, Vec::new()),
        };
        let record = RunRecord {
            expert_id: Some(self.expert.id),
            use_case: Some(UseCase::EnterMarket),
            trigger: Some(self.trigger),
            lock_key: self.guard.key(),
            owner: owner.to_string(),
            status: match &result {
                Ok(r) => r.status,
                Err(_) => RunStatus::Failed,
            },
            counts: Some(result.as_ref().map(|r| r.counts).unwrap_or_default()),
            error: result.as_ref().err().map(ToString::to_string),
            started_at: self.started_at,
            finished_at,
        };
        Ending {
            expert_id: self.expert.id,
            result,
            completions,
            guard: self.guard,
            started: self.started,
            record,
        }
    }
}

impl Going<'_> {
    /// The last step of a run that went through: counts every placed order's outcome from
    /// its final status. Answered orders had their outcomes completed with their answers;
    /// an order still without one gets its `failed` outcome completed at the finish
    /// (settling completes it again). The report carries the run's orders (S6).
    fn complete(self) -> (RunReport, Vec<OutcomeCompletion>) {
        let Going {
            mut journal,
            placed,
            ..
        } = self;
        let mut unanswered = Vec::new();
        let mut orders = Vec::with_capacity(placed.len());
        for p in placed {
            let (kind, answer) = entry_outcome(p.order.status, &p.order.client_order_id, None);
            journal.counts.add(UseCase::EnterMarket, kind);
            if p.order.status == OrderStatus::Submitting {
                unanswered.push(OutcomeCompletion {
                    order_id: p.order.id,
                    outcome: kind,
                    answer,
                });
            }
            orders.push(p.order);
        }
        let report = RunReport {
            run_id: None,
            expert_id: journal.expert_id,
            use_case: UseCase::EnterMarket,
            status: RunStatus::Processed,
            error: None,
            counts: journal.counts,
            orders,
        };
        (report, unanswered)
    }

    /// The position to store for a funded recommendation.
    fn new_position(&self, f: &Funded, now: DateTime<Utc>) -> NewPosition {
        NewPosition {
            expert_id: self.ctx.expert.id,
            account: self.ctx.expert.account.clone(),
            symbol: f.symbol.clone(),
            side: f.side,
            quantity: f.quantity,
            reference_price: f.price,
            order_type: OrderType::Market,
            limit_price: None,
            take_profit: f.exits.take_profit.map(Price::get),
            stop_loss: f.exits.stop_loss.map(Price::get),
            recommendation_id: Some(f.rec_id),
            created_at: now,
            decision: Some(f.detail.clone()),
        }
    }
}

impl AccountView {
    /// Takes from the cash what `funded`'s buys will spend at the prices they were sized at,
    /// so the account's next expert is sized on what is left, as if they had filled. A sale
    /// gives nothing back (whether it fills is not known yet), and a cost that cannot be
    /// computed leaves no cash: both err on the side of ordering less.
    fn reserve(&mut self, funded: &[Funded]) {
        for f in funded.iter().filter(|f| f.side == Side::Buy) {
            let cash = checked_mul(f.quantity, f.price)
                .and_then(|cost| checked_sub(self.snapshot.cash, cost))
                .unwrap_or(Decimal::ZERO);
            self.snapshot.cash = cash.max(Decimal::ZERO);
        }
    }
}

/// A panic caught while awaiting something a run owns, as that run's error.
fn contained<T>(caught: Result<Result<T, EngineError>, String>) -> Result<T, EngineError> {
    caught.unwrap_or_else(|panic| Err(EngineError::Panicked(panic)))
}

/// Awaits a call the runs at `shared_by` share: its failure, or a panic in it, ends each of
/// them.
async fn shared<T, E>(
    runs: &mut [Run<'_>],
    shared_by: &[usize],
    call: impl Future<Output = Result<T, E>>,
) -> Option<T>
where
    E: Clone + Into<EngineError>,
{
    let error = match CatchUnwind::new(call).await {
        Ok(Ok(value)) => return Some(value),
        Ok(Err(e)) => e.into(),
        Err(panic) => EngineError::Panicked(panic),
    };
    for &i in shared_by {
        runs[i].fail(copy_of(&error));
    }
    None
}

/// One error of a shared call, for each run that shared it (the engine's error does not
/// clone: it may carry a panic's text; the kinds a shared call can give all do).
fn copy_of(e: &EngineError) -> EngineError {
    match e {
        EngineError::Store(e) => EngineError::Store(e.clone()),
        EngineError::Broker(e) => EngineError::Broker(e.clone()),
        EngineError::LeaseLost(e) => EngineError::LeaseLost(e.clone()),
        EngineError::Panicked(p) => EngineError::Panicked(p.clone()),
        EngineError::NoBroker(a) => EngineError::NoBroker(a.clone()),
        EngineError::UnknownExpert(id) => EngineError::UnknownExpert(*id),
        EngineError::BadInput(lines) => EngineError::BadInput(lines.clone()),
    }
}

/// The indexes of the runs still going.
fn going(runs: &[Run<'_>]) -> Vec<usize> {
    (0..runs.len())
        .filter(|&i| matches!(runs[i].stage, Stage::Going(_)))
        .collect()
}

/// The runs still going that `select` keeps, by account, each account's in the batch's
/// (expert id) order.
fn by_account(runs: &[Run<'_>], select: impl Fn(&Going) -> bool) -> BTreeMap<String, Vec<usize>> {
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        if let Stage::Going(g) = &run.stage
            && select(g)
        {
            out.entry(run.expert.account.clone()).or_default().push(i);
        }
    }
    out
}

/// Whether the run (still going) has a candidate its account's money or quotes decide on
/// ([`enter_market::needs_account`]).
fn needs_account(run: &Run<'_>) -> bool {
    match &run.stage {
        Stage::Going(g) => enter_market::needs_account(
            g.ctx.expert,
            g.ctx.ruleset,
            &g.data.recommendations,
            &g.data.positions,
        ),
        Stage::Ended(_) => false,
    }
}

/// What asking one account for its money and quotes gave.
enum Asked {
    View(AccountView),
    /// A lease of the runs sharing the account was lost before a call.
    LeaseLost,
    Failed(EngineError),
}

/// The account's money, then the quotes of `symbols`; `all_held` is checked right before
/// each call.
async fn ask_view(broker: &dyn Broker, symbols: &[String], all_held: impl Fn() -> bool) -> Asked {
    if !all_held() {
        return Asked::LeaseLost;
    }
    let snapshot = match broker.account().await {
        Ok(snapshot) => snapshot,
        Err(e) => return Asked::Failed(e.into()),
    };
    if symbols.is_empty() {
        let quotes = HashMap::new();
        return Asked::View(AccountView { snapshot, quotes });
    }
    if !all_held() {
        return Asked::LeaseLost;
    }
    match broker.quotes(symbols).await {
        Ok(quotes) => Asked::View(AccountView { snapshot, quotes }),
        Err(e) => Asked::Failed(e.into()),
    }
}

/// The broker of the runs at `sharing` (one account's): the one their gates found.
fn broker_of<'a>(runs: &[Run<'a>], sharing: &[usize]) -> Option<&'a Arc<dyn Broker>> {
    sharing.iter().find_map(|&i| match &runs[i].stage {
        Stage::Going(g) => Some(g.ctx.broker),
        Stage::Ended(_) => None,
    })
}

/// Of the runs at `indexes`, those whose lease is still held, right before a broker call
/// made for them; the others end.
fn still_held(runs: &mut [Run<'_>], indexes: &[usize]) -> Vec<usize> {
    indexes
        .iter()
        .copied()
        .filter(|&i| runs[i].still_held())
        .collect()
}

impl TradeManager {
    /// Runs enter_market for one expert (DESIGN.md §5): the batch of one. `lookback_days`
    /// overrides the configured window; `trigger` is recorded with the run.
    pub async fn process_enter_market(
        &self,
        expert_id: i64,
        lookback_days: Option<u32>,
        trigger: RunTrigger,
    ) -> Result<RunReport, EngineError> {
        let use_case = UseCase::EnterMarket;
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
        self.run_batch(vec![(expert, guard)], lookback_days, trigger)
            .await
            .pop()
            .map_or_else(
                || Err(EngineError::Panicked("the run left no result".into())),
                |(_, result)| result,
            )
    }

    /// Runs enter_market for every configured expert. An expert whose run fails gets a
    /// `failed` report naming the error; the others still run.
    pub async fn process_all(
        &self,
        lookback_days: Option<u32>,
        trigger: RunTrigger,
    ) -> Vec<RunReport> {
        self.process_all_with(lookback_days, trigger, |_| {}).await
    }

    /// [`TradeManager::process_all`], calling `each` with every report as it is made (a
    /// command line shows progress with it). The experts whose locks are free now run as one
    /// batch; each of the others then runs alone, waiting for its lock as
    /// [`TradeManager::process_enter_market`] does (and skipped if it stays taken). The
    /// reports come back in expert id order.
    pub async fn process_all_with(
        &self,
        lookback_days: Option<u32>,
        trigger: RunTrigger,
        mut each: impl FnMut(&RunReport),
    ) -> Vec<RunReport> {
        let ids: Vec<i64> = self.settings.experts.keys().copied().collect();
        let guards = self
            .locks
            .try_acquire_experts(&ids, UseCase::EnterMarket)
            .await;
        let mut locked = Vec::new();
        let mut waiting = Vec::new();
        for (expert, guard) in self.settings.experts.values().zip(guards) {
            match guard {
                Some(guard) => locked.push((expert, guard)),
                None => waiting.push(expert.id),
            }
        }
        let mut reports = BTreeMap::new();
        for (id, result) in self.run_batch(locked, lookback_days, trigger).await {
            let report = report_of(id, result);
            each(&report);
            reports.insert(id, report);
        }
        for id in waiting {
            let report = report_of(
                id,
                self.process_enter_market(id, lookback_days, trigger).await,
            );
            each(&report);
            reports.insert(id, report);
        }
        reports.into_values().collect()
    }

    /// Carries out the runs of experts whose locks are held (in expert id order), as one
    /// batch; returns each expert's result in that order, once its run is recorded and its
    /// lock released.
    async fn run_batch(
        &self,
        locked: Vec<(&Expert, ProcessingGuard)>,
        lookback_days: Option<u32>,
        trigger: RunTrigger,
    ) -> Vec<(i64, Result<RunReport, EngineError>)> {
        if locked.is_empty() {
            return Vec::new();
        }
        let lookback = lookback_days.unwrap_or(self.settings.lookback_days);
        let ids: Vec<i64> = locked.iter().map(|(e, _)| e.id).collect();
        let pending = self
            .store
            .experts_with_pending_jobs(&ids, UseCase::EnterMarket)
            .await;
        let mut runs = Vec::with_capacity(locked.len());
        for (expert, guard) in locked {
            let (started, started_at) = (Instant::now(), self.clock.now());
            let waiting = match &pending {
                Ok(ids) => Ok(ids.contains(&expert.id)),
                Err(e) => Err(e.clone()),
            };
            let stage = self.pass_gates(expert, waiting).await;
            runs.push(Run {
                expert,
                trigger,
                guard,
                started,
                started_at,
                stage,
            });
        }
        // The phases contain a failure inside one run to that run; a panic anywhere else
        // ends every run still going.
        if let Err(panic) = CatchUnwind::new(self.carry_out(&mut runs, lookback)).await {
            for i in going(&runs) {
                runs[i].fail(EngineError::Panicked(panic.clone()));
            }
        }
        self.finish(runs).await
    }

    /// The phases between the gates and the finish.
    async fn carry_out(&self, runs: &mut [Run<'_>], lookback_days: u32) {
        self.settle_in_flight(runs).await;
        self.load_inputs(runs, lookback_days).await;
        let views = self.view_accounts(runs).await;
        self.decide_all(runs, views).await;
        self.store_intents(runs).await;
        if runs.iter().all(|r| match &r.stage {
            Stage::Going(g) => g.placed.is_empty(),
            Stage::Ended(_) => true,
        }) {
            return;
        }
        fault::point("after_order_stored");
        fault::hold("after_order_stored").await;
        let answers = self.submit(runs).await;
        if !answers.is_empty() {
            fault::point("before_answer_stored");
            self.record_answers(runs, answers).await;
        }
        fault::point("mid_run");
        let refreshed = self.refresh_placed(runs).await;
        self.record_answers(runs, refreshed).await;
    }

    /// Step 2: the run goes on, or stops early with a status when the expert may not open
    /// positions now. `waiting` says whether analysis jobs of it are pending.
    async fn pass_gates<'a>(
        &'a self,
        expert: &'a Expert,
        waiting: Result<bool, StoreError>,
    ) -> Stage<'a> {
        match contained(CatchUnwind::new(self.gates(expert, waiting)).await) {
            Ok(Ok(ctx)) => Stage::Going(Box::new(Going {
                journal: Journal {
                    expert_id: expert.id,
                    counts: Counts::default(),
                    records: Vec::new(),
                    manager: self,
                },
                ctx,
                data: EnterMarketData::default(),
                funded: Vec::new(),
                placed: Vec::new(),
            })),
            Ok(Err(status)) => Stage::Ended(Ok(RunReport::skipped(
                expert.id,
                UseCase::EnterMarket,
                status,
            ))),
            Err(e) => Stage::Ended(Err(e)),
        }
    }

    /// The gates of step 2: a status when the expert may not open positions now.
    async fn gates<'a>(
        &'a self,
        expert: &'a Expert,
        waiting: Result<bool, StoreError>,
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
        if waiting? {
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

    /// Orders of the batch's experts left `submitting` by a crash are settled first (one
    /// query for all, then each expert's under its own lease): their transactions already
    /// hold the slots, and the broker decides whether they exist.
    async fn settle_in_flight(&self, runs: &mut [Run<'_>]) {
        let all = going(runs);
        if all.is_empty() {
            return;
        }
        let Some(in_flight) = shared(runs, &all, self.store.orders_in_flight(None)).await else {
            return;
        };
        let mut by_expert: HashMap<i64, Vec<Order>> = HashMap::new();
        for o in in_flight {
            by_expert.entry(o.expert_id).or_default().push(o);
        }
        for i in all {
            let Some(orders) = by_expert.remove(&runs[i].expert.id) else {
                continue;
            };
            let run = &mut runs[i];
            let Stage::Going(g) = &run.stage else {
                continue;
            };
            let settling = self.settle_orders(g.ctx.broker.as_ref(), &run.guard, orders);
            if let Err(e) = contained(CatchUnwind::new(settling).await) {
                run.fail(e);
            }
        }
    }

    /// Settles one expert's orders left `submitting`, one after another.
    async fn settle_orders(
        &self,
        broker: &dyn Broker,
        guard: &ProcessingGuard,
        orders: Vec<Order>,
    ) -> Result<(), EngineError> {
        for order in orders {
            self.settle(broker, guard, order).await?;
        }
        Ok(())
    }

    /// Step 3's stored inputs, one query per kind for every run: the window's
    /// recommendations and the active positions.
    async fn load_inputs(&self, runs: &mut [Run<'_>], lookback_days: u32) {
        let all = going(runs);
        if all.is_empty() {
            return;
        }
        let ids: Vec<i64> = all.iter().map(|&i| runs[i].expert.id).collect();
        let since = self.clock.now() - ChronoDuration::days(i64::from(lookback_days));
        let loading = self.store.load_enter_market_batch(&ids, since);
        let Some(mut data) = shared(runs, &all, loading).await else {
            return;
        };
        for i in all {
            let id = runs[i].expert.id;
            if let Some(g) = runs[i].going() {
                g.data = data.remove(&id).unwrap_or_default();
            }
        }
    }

    /// Step 3's broker inputs, once per account for all its runs: the account's money and
    /// the quotes of every symbol its runs concern, a few accounts at once
    /// ([`super::per_account`]). An account none of whose runs has a candidate its money or
    /// quotes could decide on (all duplicates, say) is not asked: its runs decide on an
    /// empty view, which changes none of their decisions. A failed call ends every run
    /// that shared it.
    async fn view_accounts(&self, runs: &mut [Run<'_>]) -> HashMap<String, AccountView> {
        let mut views = HashMap::new();
        let mut asking = Vec::new();
        for (account, sharing) in by_account(runs, |_| true) {
            if !sharing.iter().any(|&i| needs_account(&runs[i])) {
                views.insert(account, AccountView::empty());
                continue;
            }
            let Some(broker) = broker_of(runs, &sharing) else {
                continue;
            };
            let sharing = still_held(runs, &sharing);
            if !sharing.is_empty() {
                let symbols = symbols_of(runs, &sharing);
                asking.push((account, broker, sharing, symbols));
            }
        }
        let held = &*runs;
        let asked = super::per_account(asking.iter().map(|(_, broker, sharing, symbols)| {
            let all_held = move || sharing.iter().all(|&i| held[i].guard.ensure_held().is_ok());
            CatchUnwind::new(ask_view(broker.as_ref(), symbols, all_held))
        }))
        .await;
        for ((account, _, sharing, _), asked) in asking.into_iter().zip(asked) {
            let view = match asked {
                Ok(Asked::View(view)) => Some(view),
                // A lease lost before a call: asked again, each run's lease checked, so
                // that only the runs that lost theirs end.
                Ok(Asked::LeaseLost) => self.view_account(runs, &sharing).await,
                Ok(Asked::Failed(e)) => {
                    for &i in &sharing {
                        runs[i].fail(copy_of(&e));
                    }
                    None
                }
                Err(panic) => {
                    for &i in &sharing {
                        runs[i].fail(EngineError::Panicked(panic.clone()));
                    }
                    None
                }
            };
            if let Some(view) = view {
                views.insert(account, view);
            }
        }
        views
    }

    /// One account's money and quotes for the runs at `sharing`; every lease is checked
    /// right before each call, and a failed call ends every run that shared it.
    async fn view_account(&self, runs: &mut [Run<'_>], sharing: &[usize]) -> Option<AccountView> {
        let broker = broker_of(runs, sharing)?;
        let sharing = still_held(runs, sharing);
        if sharing.is_empty() {
            return None;
        }
        let snapshot = shared(runs, &sharing, broker.account()).await?;
        let symbols = symbols_of(runs, &sharing);
        if symbols.is_empty() {
            let quotes = HashMap::new();
            return Some(AccountView { snapshot, quotes });
        }
        let sharing = still_held(runs, &sharing);
        if sharing.is_empty() {
            return None;
        }
        let quotes = shared(runs, &sharing, broker.quotes(&symbols)).await?;
        Some(AccountView { snapshot, quotes })
    }

    /// Steps 3–5 for every run: the domain's plan, per expert, skips recorded and funded
    /// recommendations kept. The experts of one account are decided in id order, each on
    /// the cash the buys decided before it leave. A panic ends only its expert's run.
    async fn decide_all(&self, runs: &mut [Run<'_>], mut views: HashMap<String, AccountView>) {
        for run in runs.iter_mut() {
            let Some(g) = run.going() else { continue };
            let Some(view) = views.get_mut(&g.ctx.expert.account) else {
                // Only the runs of an account whose calls failed have no view, and they
                // ended then.
                run.fail(EngineError::NoBroker(run.expert.account.clone()));
                continue;
            };
            let deciding = async { decide(&g.ctx, &g.data, &*view, &mut g.journal) };
            match CatchUnwind::new(deciding).await {
                Ok(funded) => {
                    view.reserve(&funded);
                    g.funded = funded;
                }
                Err(panic) => run.fail(EngineError::Panicked(panic)),
            }
        }
    }

    /// Step 6, first half: every funded position of every run is stored (transaction with
    /// its take profit and stop + entry order, committed, `submitting` + its exit legs,
    /// `waiting_trigger`: refresh fires them when the entry fills) before anything is sent, together with every
    /// run's decision records (I5), in one database transaction. A position the database
    /// refuses as a duplicate (another process got there first, B1) is reported as the
    /// SAFETY CHECK.
    async fn store_intents(&self, runs: &mut [Run<'_>]) {
        let mut news = Vec::new();
        let mut skips = Vec::new();
        let mut writers = Vec::new();
        for (i, run) in runs.iter_mut().enumerate() {
            let Some(g) = run.going() else { continue };
            if g.journal.records.is_empty() && g.funded.is_empty() {
                continue;
            }
            writers.push(i);
            skips.append(&mut g.journal.records);
            for f in &g.funded {
                news.push(g.new_position(f, self.clock.now()));
            }
        }
        if writers.is_empty() {
            return;
        }
        let storing = self.store.open_positions(&news, &skips);
        let Some(stored) = shared(runs, &writers, storing).await else {
            return;
        };
        let mut stored = stored.into_iter();
        for i in writers {
            if let Err(e) = runs[i].place(&mut stored) {
                runs[i].fail(e.into());
            }
        }
    }

    /// Step 6, second half: each account's orders go to its broker as one batch, each order
    /// once; a few accounts' batches go at once ([`super::per_account`]). Before the batches
    /// are made every run's lease is checked: a run that lost its lease is left out (its
    /// orders stay `submitting` for whoever holds its lock next) and ends; right before each
    /// call its runs' leases are checked again, and a batch one of them lost meanwhile is
    /// not sent. An order without an answer stays `submitting` for settlement.
    async fn submit(&self, runs: &mut [Run<'_>]) -> Answers {
        let mut batches = Vec::new();
        for sharing in by_account(runs, |g| !g.placed.is_empty()).into_values() {
            let Some(broker) = broker_of(runs, &sharing) else {
                continue;
            };
            let sharing = still_held(runs, &sharing);
            if sharing.is_empty() {
                continue;
            }
            let requests: Vec<OrderRequest> = sharing
                .iter()
                .filter_map(|&i| match &runs[i].stage {
                    Stage::Going(g) => Some(&g.placed),
                    Stage::Ended(_) => None,
                })
                .flatten()
                .map(|p| OrderRequest {
                    attached_exits: p.exits,
                    ..OrderRequest::for_order(&p.order)
                })
                .collect();
            batches.push((broker, sharing, requests));
        }
        let held = &*runs;
        let sending = batches
            .iter()
            .map(|(broker, sharing, requests)| async move {
                if sharing
                    .iter()
                    .any(|&i| held[i].guard.ensure_held().is_err())
                {
                    return None;
                }
                Some(CatchUnwind::new(broker.submit_batch(requests)).await)
            });
        let sent = super::per_account(sending).await;
        let mut answers = Answers::new();
        for ((broker, sharing, _), results) in batches.iter().zip(sent) {
            // A panic in the call ends every run that shared it.
            let results = match results {
                Some(Ok(results)) => results,
                None => {
                    still_held(runs, sharing);
                    continue;
                }
                Some(Err(panic)) => {
                    for &i in sharing {
                        runs[i].fail(EngineError::Panicked(panic.clone()));
                    }
                    continue;
                }
            };
            let mut results = results.into_iter();
            for &i in sharing {
                self.take_answers(&mut runs[i], broker.as_ref(), &mut results, &mut answers, i)
                    .await;
            }
        }
        answers
    }

    /// Turns the broker's replies to one run's orders (the next of `results`) into the
    /// answers to record; a failure or panic on the way ends only that run.
    async fn take_answers(
        &self,
        run: &mut Run<'_>,
        broker: &dyn Broker,
        results: &mut impl Iterator<Item = Result<BrokerOrder, BrokerError>>,
        answers: &mut Answers,
        index: usize,
    ) {
        let Stage::Going(g) = &run.stage else { return };
        let mine: Vec<_> = results.by_ref().take(g.placed.len()).collect();
        let answering = self.answers_of(broker, &g.placed, mine);
        match contained(CatchUnwind::new(answering).await) {
            Ok(a) if a.is_empty() => {}
            Ok(a) => {
                answers.insert(index, a);
            }
            Err(e) => run.fail(e),
        }
    }

    /// The answers to record for `placed`, from the broker's `results` in the same order.
    async fn answers_of(
        &self,
        broker: &dyn Broker,
        placed: &[Placed],
        results: Vec<Result<BrokerOrder, BrokerError>>,
    ) -> Result<Vec<(i64, BrokerOrder)>, EngineError> {
        let mut answers = Vec::with_capacity(placed.len());
        for (p, result) in placed.iter().zip(results) {
            if let Some(answer) = self.answer_of(broker, &p.order, result).await? {
                answers.push((p.order.id, answer));
            }
        }
        Ok(answers)
    }

    /// Records brokers' answers for every run in one store call and updates the runs'
    /// orders with them.
    async fn record_answers(&self, runs: &mut [Run<'_>], answers: Answers) {
        if answers.is_empty() {
            return;
        }
        let writers: Vec<usize> = answers.keys().copied().collect();
        let all: Vec<(i64, BrokerOrder)> = answers.into_values().flatten().collect();
        let recording = self.store.apply_broker_orders(&all);
        let Some(updated) = shared(runs, &writers, recording).await else {
            return;
        };
        let mut updated: HashMap<i64, Order> = updated.into_iter().map(|o| (o.id, o)).collect();
        for i in writers {
            let Some(g) = runs[i].going() else { continue };
            for p in g.placed.iter_mut() {
                if let Some(u) = updated.remove(&p.order.id) {
                    p.order = u;
                }
            }
        }
    }

    /// Step 7: asks again about orders still working at the broker (a market order may have
    /// filled since it was accepted), each run under its own lease.
    async fn refresh_placed(&self, runs: &mut [Run<'_>]) -> Answers {
        let mut answers = Answers::new();
        for (i, run) in runs.iter_mut().enumerate() {
            let Stage::Going(g) = &run.stage else {
                continue;
            };
            let refreshing = self.refresh_run(g, &run.guard);
            match CatchUnwind::new(refreshing).await {
                Ok(a) if a.is_empty() => {}
                Ok(a) => {
                    answers.insert(i, a);
                }
                Err(panic) => run.fail(EngineError::Panicked(panic)),
            }
        }
        answers
    }

    /// [`TradeManager::refresh_placed`] for one run.
    async fn refresh_run(&self, g: &Going<'_>, guard: &ProcessingGuard) -> Vec<(i64, BrokerOrder)> {
        let mut refreshed = Vec::new();
        for p in &g.placed {
            let working = matches!(
                p.order.status,
                OrderStatus::Accepted | OrderStatus::PartiallyFilled
            );
            if working
                && guard.ensure_held().is_ok()
                && let Ok(Found::Ours(answer)) = self.look_up(g.ctx.broker.as_ref(), &p.order).await
            {
                refreshed.push((p.order.id, answer));
            }
        }
        refreshed
    }

    /// The last phase: each run's report (its placed orders counted), then one store call
    /// for the outcomes of entries left unanswered, every run's record and every lease given
    /// back; then the locks go. Records are written while the locks are still held, so the
    /// records of one key never overlap. If that call fails, the runs whose outcomes it
    /// carried fail (as a failed completion did) and the leases are given back one by one.
    async fn finish(&self, runs: Vec<Run<'_>>) -> Vec<(i64, Result<RunReport, EngineError>)> {
        let (owner, now) = (self.owner(), self.clock.now());
        let mut endings: Vec<Ending> = runs.into_iter().map(|r| r.end(&owner, now)).collect();
        let completions: Vec<OutcomeCompletion> = endings
            .iter()
            .flat_map(|e| e.completions.iter().cloned())
            .collect();
        let records: Vec<RunRecord> = endings.iter().map(|e| e.record.clone()).collect();
        let guards: Vec<&ProcessingGuard> = endings.iter().map(|e| &e.guard).collect();
        let written = self
            .record_and_give_back(&guards, &completions, &records)
            .await;
        if let Err(e) = &written {
            tracing::warn!("could not record {} run(s): {e}", records.len());
            for ending in endings.iter_mut().filter(|e| !e.completions.is_empty()) {
                ending.result = Err(EngineError::Store(e.clone()));
            }
        }
        let mut ids = written.as_ref().map(|ids| ids.iter().copied()).ok();
        let mut results = Vec::with_capacity(endings.len());
        for mut ending in endings {
            ending.guard.end(written.is_ok()).await;
            metrics::histogram!(m::RUN_SECONDS, "use_case" => UseCase::EnterMarket.as_str())
                .record(ending.started.elapsed().as_secs_f64());
            count_run(
                UseCase::EnterMarket,
                ending.record.status,
                ending.record.trigger.unwrap_or(RunTrigger::Cli),
            );
            let run_id = ids.as_mut().and_then(Iterator::next);
            if let Ok(report) = &mut ending.result {
                report.run_id = run_id;
            }
            results.push((ending.expert_id, ending.result));
        }
        results
    }
}

impl Run<'_> {
    /// Takes this run's results of the batch's `open_positions` (the next of `stored`, one
    /// per funded position): stored entries are placed, refusals by the unique index are
    /// reported like the SAFETY CHECK; any other failure ends the run.
    fn place(
        &mut self,
        stored: &mut impl Iterator<Item = Result<(tradewarden_domain::Transaction, Order), StoreError>>,
    ) -> Result<(), StoreError> {
        let Some(g) = self.going() else {
            return Ok(());
        };
        for f in std::mem::take(&mut g.funded) {
            match stored.next() {
                Some(Ok((txn, order))) => g.placed.push(Placed {
                    order,
                    exits: AttachedExits::of(txn.take_profit, txn.stop_loss),
                }),
                Some(Err(StoreError::DuplicatePosition { existing, .. })) => {
                    warn_refused_by_index(g.ctx.expert.id, &f, existing, &mut g.journal)
                }
                Some(Err(e)) => return Err(e),
                None => return Err(StoreError::database("no result for the position")),
            }
        }
        Ok(())
    }
}

/// The report of a run in `process --all`: its own, or `failed` naming its error.
fn report_of(expert_id: i64, result: Result<RunReport, EngineError>) -> RunReport {
    result.unwrap_or_else(|e| {
        tracing::error!("enter_market run of expert {expert_id} failed: {e}");
        RunReport::failed(expert_id, UseCase::EnterMarket, e.to_string())
    })
}

/// Every symbol the runs at `indexes` concern: their recommendations' and their positions'.
fn symbols_of(runs: &[Run<'_>], indexes: &[usize]) -> Vec<String> {
    let mut symbols = BTreeSet::new();
    for &i in indexes {
        if let Stage::Going(g) = &runs[i].stage {
            let recs = g.data.recommendations.iter().map(|r| &r.symbol);
            let held = g.data.positions.iter().map(|p| &p.symbol);
            symbols.extend(recs.chain(held).cloned());
        }
    }
    symbols.into_iter().collect()
}

/// Steps 3–5 for one expert: the domain's plan on its inputs and its account as `view`
/// shows it; skips are recorded, funded recommendations returned.
fn decide(
    ctx: &RunContext<'_>,
    data: &EnterMarketData,
    view: &AccountView,
    journal: &mut Journal<'_>,
) -> Vec<Funded> {
    let balance = ExpertBalance::compute(
        view.snapshot.balance,
        view.snapshot.cash,
        ctx.expert.virtual_equity_percent,
        &data.positions,
        &view.quotes,
    );
    let planned = enter_market::plan(&Inputs {
        expert: ctx.expert,
        ruleset: ctx.ruleset,
        equity_threshold_percent: ctx.equity_threshold_percent,
        recommendations: &data.recommendations,
        positions: &data.positions,
        balance,
        quotes: &view.quotes,
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
                    metrics::counter!(m::DUPLICATE_POSITIONS_PREVENTED, "by" => "check")
                        .increment(1);
                }
                journal.push(p.rec.id, &p.rec.symbol, outcome, detail, None);
            }
            Decision::Order {
                side,
                quantity,
                price,
                exits,
                detail,
            } => funded.push(Funded {
                rec_id: p.rec.id,
                symbol: p.rec.symbol.clone(),
                side,
                quantity,
                price,
                exits,
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
    f: &Funded,
    existing: Option<(i64, tradewarden_domain::TransactionStatus)>,
    journal: &mut Journal<'_>,
) {
    let (id, status) = tradewarden_domain::outcome::slot_holder(existing);
    safety_check_warning(f.rec_id, &f.symbol, &id, status, expert_id);
    metrics::counter!(m::DUPLICATE_POSITIONS_PREVENTED, "by" => "index").increment(1);
    journal
        .counts
        .add(UseCase::EnterMarket, OutcomeKind::DuplicatePosition);
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
        Action, NewRecommendation, OrderRole, Price, RiskLevel, TimeHorizon, TransactionStatus,
    };

    use super::*;
    use crate::ports::{BrokerError, Clock, PositionStore, SystemClock};
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
            job_timeout: std::time::Duration::from_secs(3600),
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
        let report = m
            .process_enter_market(1, None, crate::report::RunTrigger::Cli)
            .await
            .unwrap();
        assert_eq!(report.counts.ordered, 1, "{report:?}");
        assert_eq!(broker.state.lock().submitted.len(), 1);
        let s = store.state.lock();
        assert_eq!(s.transactions[0].status, TransactionStatus::Opened);
        assert_eq!(s.outcomes.len(), 1);
        assert_eq!(s.outcomes[0].outcome, OutcomeKind::Ordered);
    }

    #[tokio::test]
    async fn a_run_whose_candidates_are_all_duplicates_asks_its_broker_nothing() {
        // Catches: a run with nothing to size still reading the account and its quotes
        // (a broker call per account per run), and a run that needs them not asking.
        let (m, store, broker) = manager(broker(), &[rec("AAPL")]).await;
        m.process_enter_market(1, None, crate::report::RunTrigger::Cli)
            .await
            .unwrap();
        let asked = |what| broker.state.lock().calls.get(what).copied();
        let (accounts, quotes) = (asked("account"), asked("quotes"));
        assert_eq!((accounts, quotes), (Some(1), Some(1)));
        // Unreachable now: a run that asked it would fail.
        broker.state.lock().fail_account = Some(BrokerError::Unavailable("down".into()));
        let again = m
            .process_enter_market(1, None, crate::report::RunTrigger::Cli)
            .await
            .unwrap();
        assert_eq!(again.counts.duplicate_position, 1, "{again:?}");
        assert_eq!((asked("account"), asked("quotes")), (accounts, quotes));
        assert_eq!(store.state.lock().outcomes.len(), 2);
        m.import(&[rec("MSFT")]).await.unwrap();
        let fresh = m
            .process_enter_market(1, None, crate::report::RunTrigger::Cli)
            .await;
        assert!(
            fresh.is_err(),
            "a new candidate needs the account: {fresh:?}"
        );
        assert_eq!(asked("account"), Some(2));
    }

    #[tokio::test]
    async fn a_ruleset_that_reads_the_price_always_asks_for_quotes() {
        // Catches: a decision taken without the quote a trigger of its ruleset reads
        // (its rule never matches without a position: a run that judged by the outcome
        // alone would skip the quotes).
        let mut s = settings();
        let near = Trigger::from_spec(&TriggerSpec {
            event: "profit_loss_percent".into(),
            op: Some("<".into()),
            value: Some(dec!(1000)),
        })
        .unwrap();
        let rules = &mut s.rulesets.get_mut("buy").unwrap().rules;
        rules[0].triggers.push(near);
        let broker = Arc::new(broker());
        let m = TradeManager::new(
            s,
            Arc::new(MemoryStore::new()),
            [("paper".to_string(), broker.clone() as Arc<dyn Broker>)].into(),
            Arc::new(SystemClock),
        );
        m.import(&[rec("AAPL")]).await.unwrap();
        for _ in 0..2 {
            m.process_enter_market(1, None, crate::report::RunTrigger::Cli)
                .await
                .unwrap();
        }
        assert_eq!(broker.state.lock().calls.get("quotes"), Some(&2));
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
            let report = m
                .process_enter_market(1, None, crate::report::RunTrigger::Cli)
                .await
                .unwrap();
            assert_eq!(report.orders[0].status, status, "{fail:?} {reject}");
            assert_eq!(store.state.lock().outcomes[0].outcome, outcome, "{fail:?}");
            assert_eq!(broker.state.lock().submitted.len(), submissions, "{fail:?}");
        }
    }

    #[tokio::test]
    async fn an_existing_active_transaction_blocks_the_recommendation_before_the_broker() {
        let (m, store, broker) = manager(broker(), &[rec("AAPL")]).await;
        store
            .open_position(&crate::testing::market_buy("AAPL", dec!(1)))
            .await
            .unwrap();
        let report = m
            .process_enter_market(1, None, crate::report::RunTrigger::Cli)
            .await
            .unwrap();
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
        m.process_enter_market(1, None, crate::report::RunTrigger::Cli)
            .await
            .unwrap();
        assert_eq!(store.state.lock().orders[0].status, OrderStatus::Submitting);
        // The broker did get it after all (an answer lost on the way back).
        let request = broker.state.lock().submitted[0].clone();
        broker.submit(&request).await.unwrap();
        let before = broker.state.lock().submitted.len();
        let report = m
            .process_enter_market(1, None, crate::report::RunTrigger::Cli)
            .await
            .unwrap();
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
        m.process_enter_market(1, None, crate::report::RunTrigger::Cli)
            .await
            .unwrap_err();
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
            m.process_enter_market(1, None, crate::report::RunTrigger::Cli)
                .await
                .unwrap();
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
            m.process_enter_market(1, None, crate::report::RunTrigger::Cli)
                .await
                .unwrap();
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
            m.process_enter_market(1, None, crate::report::RunTrigger::Cli)
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

    // -----------------------------------------------------------------------------------
    // Exit legs at entry (issue 9 items 1–2).

    /// One leg as stored: (role, side, type, limit, stop, client_order_id).
    type LegRow = (
        OrderRole,
        Side,
        OrderType,
        Option<Decimal>,
        Option<Decimal>,
        String,
    );

    #[tokio::test]
    async fn each_entry_is_stored_with_the_exit_legs_its_rules_give() {
        use OrderRole::{StopLoss, TakeProfit};
        use tradewarden_domain::exits::ExitSettings;
        use tradewarden_domain::rules::{ExitReference, ExitTarget};
        let pct = |percent| ExitTarget::Percent {
            reference: ExitReference::OrderOpenPrice,
            percent,
        };
        let tp = |p| RuleAction::AdjustTakeProfit(pct(p));
        let sl = |p| RuleAction::AdjustStopLoss(pct(p));
        let defaults = ExitSettings::default();
        let off = ExitSettings {
            min_stop_loss_percent: dec!(0),
            ..defaults
        };
        let leg = |role, side, t, limit, stop, tag: &str| -> LegRow {
            (role, side, t, limit, stop, format!("tw-mem-1-{tag}-1"))
        };
        let (buy, sell) = (Action::Buy, Action::Sell);
        let (limit, stop) = (OrderType::Limit, OrderType::Stop);
        // (what, recommendation, the rule's actions after the entry, exit settings, legs,
        // the transaction's take profit and stop). The quote is 100.
        // Catches: legs not stored with the entry, on the wrong side, a short not
        // mirrored, the TP floor or the safeguard stop skipped, a safeguard that 0 does not
        // turn off, a leg stored where no exit was decided.
        let cases: Vec<(
            &str,
            Action,
            Vec<RuleAction>,
            ExitSettings,
            Vec<LegRow>,
            (Option<Decimal>, Option<Decimal>),
        )> = vec![
            (
                "long TP and SL from the rules",
                buy,
                vec![tp(dec!(10)), sl(dec!(-5))],
                defaults,
                vec![
                    leg(TakeProfit, Side::Sell, limit, Some(dec!(110)), None, "tp"),
                    leg(StopLoss, Side::Sell, stop, None, Some(dec!(95)), "sl"),
                ],
                (Some(dec!(110)), Some(dec!(95))),
            ),
            (
                "short mirrored",
                sell,
                vec![tp(dec!(10)), sl(dec!(-5))],
                defaults,
                vec![
                    leg(TakeProfit, Side::Buy, limit, Some(dec!(90)), None, "tp"),
                    leg(StopLoss, Side::Buy, stop, None, Some(dec!(105)), "sl"),
                ],
                (Some(dec!(90)), Some(dec!(105))),
            ),
            (
                "the floor pushes the TP out",
                buy,
                vec![tp(dec!(1)), sl(dec!(-5))],
                defaults,
                vec![
                    leg(TakeProfit, Side::Sell, limit, Some(dec!(102)), None, "tp"),
                    leg(StopLoss, Side::Sell, stop, None, Some(dec!(95)), "sl"),
                ],
                (Some(dec!(102)), Some(dec!(95))),
            ),
            (
                "safeguard stop without an SL rule",
                buy,
                vec![tp(dec!(10))],
                defaults,
                vec![
                    leg(TakeProfit, Side::Sell, limit, Some(dec!(110)), None, "tp"),
                    leg(StopLoss, Side::Sell, stop, None, Some(dec!(93)), "sl"),
                ],
                (Some(dec!(110)), Some(dec!(93))),
            ),
            (
                "safeguard alone on a short",
                sell,
                vec![],
                defaults,
                vec![leg(StopLoss, Side::Buy, stop, None, Some(dec!(107)), "sl")],
                (None, Some(dec!(107))),
            ),
            (
                "min_stop_loss_percent 0: no SL leg",
                buy,
                vec![tp(dec!(10))],
                off,
                vec![leg(
                    TakeProfit,
                    Side::Sell,
                    limit,
                    Some(dec!(110)),
                    None,
                    "tp",
                )],
                (Some(dec!(110)), None),
            ),
            ("neither: no legs", buy, vec![], off, vec![], (None, None)),
        ];
        for (what, action, exits, exit_settings, want_legs, want_txn) in cases {
            let mut s = settings();
            let e = s.experts.get_mut(&1).unwrap();
            e.enable_sell = true;
            e.exits = exit_settings;
            let rule = &mut s.rulesets.get_mut("buy").unwrap().rules[0];
            rule.triggers.clear();
            rule.actions = [if action == buy {
                RuleAction::Buy
            } else {
                RuleAction::Sell
            }]
            .into_iter()
            .chain(exits)
            .collect();
            let store = Arc::new(MemoryStore::new());
            let broker = Arc::new(broker());
            let m = TradeManager::new(
                s,
                store.clone(),
                [("paper".to_string(), broker.clone() as Arc<dyn Broker>)].into(),
                Arc::new(SystemClock),
            );
            m.import(&[NewRecommendation {
                action,
                ..rec("AAPL")
            }])
            .await
            .unwrap();
            let report = m
                .process_enter_market(1, None, crate::report::RunTrigger::Cli)
                .await
                .unwrap();
            assert_eq!(report.counts.ordered, 1, "{what}: {report:?}");
            let st = store.state.lock();
            let entry = &st.orders[0];
            let legs: Vec<LegRow> = st.orders[1..]
                .iter()
                .map(|o| {
                    assert_eq!(
                        (o.status, o.trigger_status, o.parent_order_id, o.quantity),
                        (
                            OrderStatus::WaitingTrigger,
                            Some(OrderStatus::Filled),
                            Some(entry.id),
                            entry.quantity
                        ),
                        "{what}"
                    );
                    (
                        o.role,
                        o.side,
                        o.order_type,
                        o.limit_price,
                        o.stop_price,
                        o.client_order_id.clone(),
                    )
                })
                .collect();
            assert_eq!(legs, want_legs, "{what}");
            let t = &st.transactions[0];
            assert_eq!((t.take_profit, t.stop_loss), want_txn, "{what}");
            let sent: Vec<String> = broker
                .state
                .lock()
                .submitted
                .iter()
                .map(|r| r.client_order_id.clone())
                .collect();
            assert_eq!(
                sent,
                ["tw-mem-1-entry"],
                "{what}: nothing sent for the legs at entry"
            );
        }
    }

    // -----------------------------------------------------------------------------------
    // Batches: `process --all` runs the experts whose locks are free as one batch.

    /// Settings with one expert per `(id, account)`, each account with its own entry.
    fn batch_settings(experts: &[(i64, &str)]) -> Settings {
        let mut s = settings();
        let template = s.experts[&1].clone();
        let threshold = s.accounts["paper"].clone();
        s.experts = experts
            .iter()
            .map(|&(id, account)| {
                let mut e = template.clone();
                e.id = id;
                e.account = account.to_string();
                (id, e)
            })
            .collect();
        s.accounts = experts
            .iter()
            .map(|&(_, account)| {
                let name = account.to_string();
                (
                    name.clone(),
                    AccountSettings {
                        name,
                        ..threshold.clone()
                    },
                )
            })
            .collect();
        s
    }

    /// A BUY of `symbol` by `expert_id` (confident, at 100).
    fn rec_of(expert_id: i64, symbol: &str) -> NewRecommendation {
        NewRecommendation {
            expert_id,
            ..rec(symbol)
        }
    }

    /// A manager over a fresh memory store with these brokers, `recs` imported.
    async fn batch_manager(
        settings: Settings,
        brokers: Vec<(&str, Arc<dyn Broker>)>,
        recs: &[NewRecommendation],
        clock: Arc<dyn Clock>,
    ) -> (TradeManager, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let brokers = brokers
            .into_iter()
            .map(|(account, b)| (account.to_string(), b))
            .collect();
        let m = TradeManager::new(settings, store.clone(), brokers, clock);
        m.import(recs).await.unwrap();
        (m, store)
    }

    /// A process table that can prove nothing: a lease held by another owner is taken only
    /// at its expiry.
    struct Unknowable(crate::ports::HostIdentity);

    impl crate::ports::ProcessTable for Unknowable {
        fn identity(&self) -> &crate::ports::HostIdentity {
            &self.0
        }
        fn process(&self, _pid: u32) -> crate::ports::ProcessState {
            crate::ports::ProcessState::Unknown
        }
    }

    /// `m` with leases in `store`, held as `me` for 300 s (lease times are the manager's
    /// clock's).
    fn leased(m: TradeManager, store: &Arc<MemoryStore>) -> TradeManager {
        let processes = Arc::new(Unknowable(crate::ports::HostIdentity {
            host: "h".into(),
            boot_id: None,
            pid_namespace: None,
        }));
        m.with_leases(
            store.clone(),
            crate::ports::LeaseHolder::anonymous("me"),
            processes,
            std::time::Duration::from_secs(300),
        )
    }

    fn statuses(reports: &[RunReport]) -> Vec<(i64, RunStatus)> {
        reports.iter().map(|r| (r.expert_id, r.status)).collect()
    }

    #[tokio::test]
    async fn in_a_batch_one_accounts_failure_fails_only_its_experts() {
        // Catches: a batch whose shared broker calls fail every expert (or none), or that
        // undoes the others' work. Expert 2 trades on account "b"; its broker cannot be
        // reached at all, or panics on submit (a bug).
        // (how account b fails, error expected, orders of expert 2 and their status)
        let cases = [
            ("unreachable", "connection refused", None),
            (
                "panics",
                "scripted broker bug",
                Some(OrderStatus::Submitting),
            ),
        ];
        for (how, error, order) in cases {
            let b = broker();
            match how {
                "unreachable" => {
                    b.state.lock().fail_account =
                        Some(BrokerError::Unavailable("connection refused".into()))
                }
                _ => b.state.lock().panic_on_submit = true,
            }
            let paper = Arc::new(broker());
            let (m, store) = batch_manager(
                batch_settings(&[(1, "paper"), (2, "b"), (3, "paper")]),
                vec![("paper", paper.clone()), ("b", Arc::new(b))],
                &[rec_of(1, "AAPL"), rec_of(2, "AAPL"), rec_of(3, "AAPL")],
                Arc::new(SystemClock),
            )
            .await;
            let reports = m.process_all(None, crate::report::RunTrigger::Cli).await;
            let want = [
                (1, RunStatus::Processed),
                (2, RunStatus::Failed),
                (3, RunStatus::Processed),
            ];
            assert_eq!(statuses(&reports), want, "{how}");
            assert!(
                reports[1].error.as_deref().unwrap().contains(error),
                "{how}: {reports:?}"
            );
            assert_eq!(
                (reports[0].counts.ordered, reports[2].counts.ordered),
                (1, 1),
                "{how}"
            );
            let s = store.state.lock();
            // The entries (each has its safeguard stop leg waiting besides).
            let of = |id: i64| {
                s.orders
                    .iter()
                    .filter(move |o| o.expert_id == id && o.role == OrderRole::Entry)
            };
            assert_eq!(of(2).next().map(|o| o.status), order, "{how}");
            for id in [1, 3] {
                assert_eq!(
                    of(id).map(|o| o.status).collect::<Vec<_>>(),
                    [OrderStatus::Filled],
                    "{how}"
                );
                let outcomes: Vec<_> = s.outcomes.iter().filter(|o| o.expert_id == id).collect();
                assert_eq!(outcomes.len(), 1, "{how}");
                assert!(
                    outcomes[0].detail.ends_with("filled"),
                    "{how}: {outcomes:?}"
                );
            }
            let runs: Vec<_> = s
                .runs
                .iter()
                .map(|r| (r.lock_key.as_str(), r.status))
                .collect();
            assert_eq!(
                runs,
                [
                    ("expert_1_usecase_enter_market", RunStatus::Processed),
                    ("expert_2_usecase_enter_market", RunStatus::Failed),
                    ("expert_3_usecase_enter_market", RunStatus::Processed),
                ],
                "{how}"
            );
            assert_eq!(
                paper.state.lock().calls["submit_batch"],
                1,
                "{how}: one batch per account"
            );
        }
    }

    #[tokio::test]
    async fn an_expert_whose_lease_another_process_holds_is_skipped_while_the_batch_runs() {
        // Catches: a batch that takes a held lease (two runs of one expert), that waits for
        // it with the others' leases held, or that gives back a lease it does not hold.
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (m, store) = batch_manager(
            batch_settings(&[(1, "paper"), (2, "paper"), (3, "paper")]),
            vec![("paper", Arc::new(broker()))],
            &[rec_of(1, "AAPL"), rec_of(2, "AAPL"), rec_of(3, "AAPL")],
            clock.clone(),
        )
        .await;
        let m = leased(m, &store);
        let key = |id: i64| tradewarden_domain::lock_key(id, UseCase::EnterMarket);
        let far = Utc::now() + chrono::Duration::seconds(300);
        let other = crate::ports::LeaseHolder::anonymous("another process");
        store.state.lock().leases.insert(key(2), (other, far));
        let reports = m.process_all(None, crate::report::RunTrigger::Cli).await;
        let want = [
            (1, RunStatus::Processed),
            (2, RunStatus::SkippedLocked),
            (3, RunStatus::Processed),
        ];
        assert_eq!(statuses(&reports), want);
        let s = store.state.lock();
        let leases: Vec<(&String, &str)> = s
            .leases
            .iter()
            .map(|(k, (h, _))| (k, h.owner.as_str()))
            .collect();
        assert_eq!(
            leases,
            [(&key(2), "another process")],
            "ours given back, theirs kept"
        );
        let ordered: Vec<i64> = s
            .orders
            .iter()
            .filter(|o| o.role == OrderRole::Entry)
            .map(|o| o.expert_id)
            .collect();
        assert_eq!(ordered, [1, 3]);
        let runs: Vec<&str> = s.runs.iter().map(|r| r.lock_key.as_str()).collect();
        assert_eq!(runs, [key(1), key(3)]);
        assert_eq!(
            s.calls["try_acquire_leases"], 1,
            "one statement for the batch's leases"
        );
    }

    /// Delegates to a scripted broker; its first `submit_batch` first takes expert 2's
    /// lease for another owner and moves the clock past every lease's expiry, as if this
    /// process had stalled while the account's orders were at the broker.
    struct Stall {
        inner: ScriptedBroker,
        store: Arc<MemoryStore>,
        clock: Arc<TestClock>,
    }

    #[async_trait::async_trait]
    impl Broker for Stall {
        async fn account(&self) -> Result<crate::ports::AccountSnapshot, BrokerError> {
            self.inner.account().await
        }
        async fn quotes(
            &self,
            symbols: &[String],
        ) -> Result<std::collections::HashMap<String, Decimal>, BrokerError> {
            self.inner.quotes(symbols).await
        }
        async fn submit(&self, order: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
            self.inner.submit(order).await
        }
        async fn submit_batch(
            &self,
            orders: &[OrderRequest],
        ) -> Vec<Result<BrokerOrder, BrokerError>> {
            let key = tradewarden_domain::lock_key(2, UseCase::EnterMarket);
            if let Some(lease) = self.store.state.lock().leases.get_mut(&key) {
                lease.0 = crate::ports::LeaseHolder::anonymous("thief");
            }
            *self.clock.0.lock() += chrono::Duration::seconds(301);
            self.inner.submit_batch(orders).await
        }
        async fn order_by_client_id(&self, id: &str) -> Result<Option<BrokerOrder>, BrokerError> {
            self.inner.order_by_client_id(id).await
        }
        async fn positions(&self) -> Result<Vec<crate::ports::BrokerPosition>, BrokerError> {
            self.inner.positions().await
        }
    }

    #[tokio::test]
    async fn a_lease_lost_in_a_batch_leaves_only_that_experts_orders_submitting() {
        // Catches: a lease checked once for the whole batch (expert 2's order would be sent
        // after its lease was lost), or a lost lease that fails the others' runs. Account
        // "a" is submitted first; its broker call is where this process stalls.
        let clock = Arc::new(TestClock(parking_lot::Mutex::new(Utc::now())));
        let store_for_stall = Arc::new(MemoryStore::new());
        let b = Arc::new(broker());
        let stall = Arc::new(Stall {
            inner: broker(),
            store: store_for_stall.clone(),
            clock: clock.clone(),
        });
        let m = TradeManager::new(
            batch_settings(&[(1, "a"), (2, "b")]),
            store_for_stall.clone(),
            [
                ("a".to_string(), stall.clone() as Arc<dyn Broker>),
                ("b".to_string(), b.clone() as Arc<dyn Broker>),
            ]
            .into(),
            clock.clone(),
        );
        m.import(&[rec_of(1, "AAPL"), rec_of(2, "AAPL")])
            .await
            .unwrap();
        let m = leased(m, &store_for_stall);
        let reports = m.process_all(None, crate::report::RunTrigger::Cli).await;
        assert_eq!(
            statuses(&reports),
            [(1, RunStatus::Processed), (2, RunStatus::Failed)]
        );
        assert!(
            reports[1].error.as_deref().unwrap().contains("lease"),
            "{reports:?}"
        );
        assert_eq!(reports[0].counts.ordered, 1);
        assert!(
            b.state.lock().submitted.is_empty(),
            "nothing sent for expert 2"
        );
        let s = store_for_stall.state.lock();
        let orders: Vec<(i64, OrderStatus)> = s
            .orders
            .iter()
            .filter(|o| o.role == OrderRole::Entry)
            .map(|o| (o.expert_id, o.status))
            .collect();
        assert_eq!(
            orders,
            [(1, OrderStatus::Filled), (2, OrderStatus::Submitting)]
        );
        let provisional = s.outcomes.iter().find(|o| o.expert_id == 2).unwrap();
        assert!(
            provisional
                .detail
                .ends_with("submitting, awaiting the broker's answer"),
            "{provisional:?}"
        );
        let key2 = tradewarden_domain::lock_key(2, UseCase::EnterMarket);
        assert_eq!(
            s.leases[&key2].0.owner, "thief",
            "the thief's lease is untouched"
        );
    }

    #[tokio::test]
    async fn a_batchs_store_and_broker_calls_do_not_grow_with_its_experts() {
        // Catches: a per-expert store or broker call left in the batch (the calls would
        // grow with the experts: 10 statements and 4 commits each, as before).
        let mut seen = Vec::new();
        for n in [1_i64, 2, 6] {
            let experts: Vec<(i64, &str)> = (1..=n).map(|id| (id, "paper")).collect();
            let recs: Vec<_> = (1..=n).map(|id| rec_of(id, "AAPL")).collect();
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let paper = Arc::new(broker());
            let (m, store) = batch_manager(
                batch_settings(&experts),
                vec![("paper", paper.clone())],
                &recs,
                clock.clone(),
            )
            .await;
            let m = leased(m, &store);
            let reports = m.process_all(None, crate::report::RunTrigger::Cli).await;
            assert!(reports.iter().all(|r| r.counts.ordered == 1), "{reports:?}");
            let store_calls = store.state.lock().calls.clone();
            let broker_calls = paper.state.lock().calls.clone();
            seen.push((n, store_calls, broker_calls));
        }
        let (_, store_calls, broker_calls) = &seen[0];
        assert!(store_calls.values().all(|&c| c == 1), "{store_calls:?}");
        assert!(broker_calls.values().all(|&c| c == 1), "{broker_calls:?}");
        for (n, s, b) in &seen[1..] {
            assert_eq!((s, b), (store_calls, broker_calls), "{n} experts");
        }
    }

    #[tokio::test]
    async fn experts_of_one_account_are_sized_on_the_cash_the_others_left() {
        // Catches: a batch that sizes every expert of an account on the cash before any of
        // them ordered: both would spend the whole account (one after another, the second
        // found no cash left).
        let mut s = batch_settings(&[(1, "paper"), (2, "paper")]);
        for e in s.experts.values_mut() {
            e.max_virtual_equity_per_instrument_percent = dec!(100);
        }
        let paper = ScriptedBroker::new(dec!(1000), &[("AAPL", dec!(100)), ("MSFT", dec!(100))]);
        let (m, store) = batch_manager(
            s,
            vec![("paper", Arc::new(paper))],
            &[rec_of(1, "AAPL"), rec_of(2, "MSFT")],
            Arc::new(SystemClock),
        )
        .await;
        let reports = m.process_all(None, crate::report::RunTrigger::Cli).await;
        assert_eq!(
            (
                reports[0].counts.ordered,
                reports[1].counts.insufficient_equity
            ),
            (1, 1),
            "{reports:?}"
        );
        assert_eq!(store.state.lock().orders[0].quantity, dec!(10));
    }
}
