//! [`SqlStore`]: the engine's store and the paper broker's ledger on SQLite or PostgreSQL.
//!
//! Every operation is one short database transaction; none is held across a broker call.
//! Round trips are kept few on purpose (a SQLite round trip through sqlx costs tens of
//! microseconds): batches are multi-row statements, and a run's inputs load in two queries.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use tradewarden_brokers::paper::{self, PaperLedger, PaperState};
use tradewarden_domain::order::client_order_id;
use tradewarden_domain::outcome::OutcomeKind;
use tradewarden_domain::transaction::ActivePosition;
use tradewarden_domain::{
    Action, NewRecommendation, Order, OrderRole, OrderStatus, OrderType, Outcome, Price,
    Recommendation, RiskLevel, Side, TimeHorizon, Transaction, TransactionStatus, UseCase,
};
use tradewarden_engine::ports::{
    EnterMarketData, Finding, ImportCounts, ImportError, ListFilter, NewPosition, QuoteUpdate,
    RunRecord,
};
use tradewarden_engine::{BrokerError, BrokerOrder, LeaseStore, OrderRequest, Store, StoreError};

use crate::db::{Kind, Pool, Row, Tx, Val, is_unique_violation, map_err};

/// The store on one database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
}

fn migrator(kind: Kind) -> Migrator {
    let files: [(&str, &str); 2] = match kind {
        Kind::Sqlite => [
            ("core", include_str!("../migrations/sqlite/0001_core.sql")),
            (
                "leases runs",
                include_str!("../migrations/sqlite/0002_leases_runs.sql"),
            ),
        ],
        Kind::Postgres => [
            ("core", include_str!("../migrations/postgres/0001_core.sql")),
            (
                "leases runs",
                include_str!("../migrations/postgres/0002_leases_runs.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .into_iter()
            .enumerate()
            .map(|(i, (desc, sql))| {
                Migration::new(
                    i as i64 + 1,
                    Cow::Borrowed(desc),
                    MigrationType::Simple,
                    sqlx::AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

fn bad_value(what: &str, v: &str) -> StoreError {
    StoreError::Database(format!("stored {what} is not valid: {v:?}"))
}

fn side(s: &str) -> Result<Side, StoreError> {
    Side::parse(s).ok_or_else(|| bad_value("side", s))
}

/// Converts a stored row into an [`Order`].
fn order_from(r: &Row) -> Result<Order, StoreError> {
    let status = r.text("status")?;
    let role = r.text("role")?;
    let order_type = r.text("order_type")?;
    Ok(Order {
        id: r.i64("id")?,
        transaction_id: r.i64("transaction_id")?,
        expert_id: r.i64("expert_id")?,
        account: r.text("account")?,
        symbol: r.text("symbol")?,
        side: side(&r.text("side")?)?,
        role: OrderRole::parse(&role).ok_or_else(|| bad_value("role", &role))?,
        order_type: OrderType::parse(&order_type)
            .ok_or_else(|| bad_value("order_type", &order_type))?,
        quantity: r.dec("quantity")?,
        filled_quantity: r.dec("filled_quantity")?,
        limit_price: r.opt_dec("limit_price")?,
        stop_price: r.opt_dec("stop_price")?,
        avg_fill_price: r.opt_dec("avg_fill_price")?,
        status: OrderStatus::parse(&status).ok_or_else(|| bad_value("order status", &status))?,
        client_order_id: r.text("client_order_id")?,
        broker_order_id: r.opt_text("broker_order_id")?,
        parent_order_id: r.opt_i64("parent_order_id")?,
        trigger_status: match r.opt_text("trigger_status")? {
            None => None,
            Some(s) => Some(OrderStatus::parse(&s).ok_or_else(|| bad_value("trigger_status", &s))?),
        },
        recommendation_id: r.opt_i64("recommendation_id")?,
        created_at: r.time("created_at")?,
    })
}

fn txn_status(s: &str) -> Result<TransactionStatus, StoreError> {
    TransactionStatus::parse(s).ok_or_else(|| bad_value("transaction status", s))
}

/// Converts a stored row into a [`Transaction`].
fn transaction_from(r: &Row) -> Result<Transaction, StoreError> {
    Ok(Transaction {
        id: r.i64("id")?,
        expert_id: r.i64("expert_id")?,
        account: r.text("account")?,
        symbol: r.text("symbol")?,
        side: side(&r.text("side")?)?,
        quantity: r.dec("quantity")?,
        status: txn_status(&r.text("status")?)?,
        open_price: r.opt_dec("open_price")?,
        close_price: r.opt_dec("close_price")?,
        take_profit: r.opt_dec("take_profit")?,
        stop_loss: r.opt_dec("stop_loss")?,
        opened_at: r.opt_time("opened_at")?,
        closed_at: r.opt_time("closed_at")?,
        close_reason: r.opt_text("close_reason")?,
        created_at: r.time("created_at")?,
    })
}

fn recommendation_from(r: &Row) -> Result<Recommendation, StoreError> {
    let action = r.text("action")?;
    let risk = r.text("risk_level")?;
    let horizon = r.text("time_horizon")?;
    let price = |name: &str| -> Result<Option<Price>, StoreError> {
        match r.opt_dec(name)? {
            None => Ok(None),
            Some(d) => Price::new(d)
                .map(Some)
                .map_err(|_| bad_value(name, &d.to_string())),
        }
    };
    Ok(Recommendation {
        id: r.i64("id")?,
        rec: NewRecommendation {
            expert_id: r.i64("expert_id")?,
            symbol: r.text("symbol")?,
            action: Action::parse(&action).ok_or_else(|| bad_value("action", &action))?,
            confidence: r.dec("confidence")?,
            expected_profit_percent: r.dec("expected_profit_percent")?,
            price_at_date: price("price_at_date")?
                .ok_or_else(|| bad_value("price_at_date", "null"))?,
            risk_level: RiskLevel::parse(&risk).ok_or_else(|| bad_value("risk_level", &risk))?,
            time_horizon: TimeHorizon::parse(&horizon)
                .ok_or_else(|| bad_value("time_horizon", &horizon))?,
            target_price: price("target_price")?,
            details: r.opt_text("details")?,
            created_at: r.time("created_at")?,
        },
    })
}

fn outcome_from(r: &Row) -> Result<Outcome, StoreError> {
    let uc = r.text("use_case")?;
    let kind = r.text("outcome")?;
    Ok(Outcome {
        recommendation_id: r.i64("recommendation_id")?,
        expert_id: r.i64("expert_id")?,
        symbol: r.text("symbol")?,
        use_case: UseCase::parse(&uc).ok_or_else(|| bad_value("use_case", &uc))?,
        outcome: OutcomeKind::parse(&kind).ok_or_else(|| bad_value("outcome", &kind))?,
        detail: r.text("detail")?,
        order_id: r.opt_i64("order_id")?,
        decided_at: r.time("decided_at")?,
    })
}

/// `($1, $2, …), ($n, …)` for a multi-row insert of `rows` rows of `cols` columns; on SQLite
/// `(?, ?, …)`, see [`PARAMS_PER_STATEMENT`].
fn values_clause(kind: Kind, rows: usize, cols: usize) -> String {
    values_clause_with(kind, rows, &vec![""; cols])
}

/// Like [`values_clause`], where a non-empty entry of `fixed` is a SQL literal written in
/// place of that column's parameter.
fn values_clause_with(kind: Kind, rows: usize, fixed: &[&str]) -> String {
    let params = fixed.iter().filter(|f| f.is_empty()).count();
    let mut s = String::with_capacity(rows * fixed.len() * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        let mut n = r * params;
        for (c, f) in fixed.iter().enumerate() {
            if c > 0 {
                s.push_str(", ");
            }
            if f.is_empty() && kind == Kind::Sqlite {
                s.push('?');
            } else if f.is_empty() {
                n += 1;
                s.push('$');
                s.push_str(&n.to_string());
            } else {
                s.push_str(f);
            }
        }
        s.push(')');
    }
    s
}

/// Bound parameters per multi-row statement (SQLite allows 32,766). sqlx-sqlite looks a
/// numbered parameter (`$n`) up by name, a linear scan, so binding costs grow with the square
/// of a statement's parameters (4,800 `$n` made an import of 2,000 rows CPU-bound); multi-row
/// statements therefore use anonymous `?` on SQLite, which binds by position.
const PARAMS_PER_STATEMENT: usize = 2400;

/// Rows per multi-row statement of `cols` columns.
fn chunk_rows(cols: usize) -> usize {
    (PARAMS_PER_STATEMENT / cols).max(1)
}

const ORDER_COLUMNS: &str = "id, transaction_id, expert_id, account, symbol, side, role, order_type, quantity, \
    filled_quantity, limit_price, stop_price, avg_fill_price, status, client_order_id, broker_order_id, \
    parent_order_id, trigger_status, recommendation_id, created_at";

const TXN_COLUMNS: &str = "id, expert_id, account, symbol, side, quantity, status, open_price, close_price, \
    take_profit, stop_loss, opened_at, closed_at, close_reason, created_at";

type RecKey = (i64, String, DateTime<Utc>);

impl SqlStore {
    /// Connects to `sqlite://PATH` or `postgres://…` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        let pool = Pool::connect(url).await?;
        let store = SqlStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the embedded migrations of this database kind. On PostgreSQL the migrator
    /// takes an advisory lock, so instances starting together migrate once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let m = migrator(self.pool.kind());
        // SQLite has no migration lock: processes starting together on a fresh file can race
        // to create the tables. The loser sees the winner's work on a second look.
        let mut attempt = 0;
        loop {
            let res = match &self.pool {
                Pool::Sqlite(p) => m.run(p).await,
                Pool::Postgres(p) => m.run(p).await,
            };
            match res {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 5 && self.pool.kind() == Kind::Sqlite => {
                    attempt += 1;
                    tracing::debug!("migration attempt {attempt} failed ({e}); retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(StoreError::Database(format!("migration failed: {e}"))),
            }
        }
    }

    /// The underlying pool (for tests and the lease store).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Creates each paper account with its starting cash, unless it exists already (a
    /// persisted account keeps its state across restarts and config edits).
    pub async fn init_paper_accounts(
        &self,
        accounts: &[(String, Decimal)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (name, cash) in accounts {
            tx.execute(
                "INSERT INTO paper_accounts (account, cash) VALUES ($1, $2) ON CONFLICT (account) DO NOTHING",
                &[name.as_str().into(), (*cash).into()],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await
    }

    async fn upsert_quotes(tx: &mut Tx, quotes: &[QuoteUpdate]) -> Result<(), StoreError> {
        // Newest per (account, symbol) first: one statement may not touch a row twice.
        let mut newest: HashMap<(&str, &str), &QuoteUpdate> = HashMap::new();
        for q in quotes {
            newest
                .entry((q.account.as_str(), q.symbol.as_str()))
                .and_modify(|cur| {
                    if q.at >= cur.at {
                        *cur = q;
                    }
                })
                .or_insert(q);
        }
        let mut list: Vec<&QuoteUpdate> = newest.into_values().collect();
        list.sort_by(|a, b| (&a.account, &a.symbol).cmp(&(&b.account, &b.symbol)));
        for chunk in list.chunks(chunk_rows(4)) {
            let sql = format!(
                "INSERT INTO quotes (account, symbol, price, at) VALUES {} \
                 ON CONFLICT (account, symbol) DO UPDATE SET price = excluded.price, at = excluded.at \
                 WHERE excluded.at >= quotes.at",
                values_clause(tx.kind(), chunk.len(), 4)
            );
            let args: Vec<Val> = chunk
                .iter()
                .flat_map(|q| {
                    [
                        q.account.as_str().into(),
                        q.symbol.as_str().into(),
                        q.price.into(),
                        q.at.into(),
                    ]
                })
                .collect();
            tx.execute(&sql, &args).await.map_err(map_err)?;
        }
        Ok(())
    }

    async fn order_by_id(tx: &mut Tx, id: i64) -> Result<Order, StoreError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let row = tx.fetch_one(&sql, &[id.into()]).await.map_err(map_err)?;
        order_from(&row.ok_or_else(|| StoreError::NotFound(format!("order {id}")))?)
    }

    /// Applies broker answers to distinct orders inside `tx` (see
    /// [`Store::apply_broker_orders`]), a few statements for the whole batch: one
    /// `UPDATE … FROM (VALUES …)` per answered status, in which the status table decides (a row
    /// changes only from a status that may legally move to the answer's, and comes back in
    /// the same trip), then one for the transactions whose entries filled.
    async fn apply_answers(
        tx: &mut Tx,
        answers: &[(i64, BrokerOrder)],
    ) -> Result<Vec<Order>, StoreError> {
        let kind = tx.kind();
        let mut by_status: HashMap<OrderStatus, Vec<&(i64, BrokerOrder)>> = HashMap::new();
        for a in answers {
            by_status.entry(a.1.status).or_default().push(a);
        }
        let mut updated: HashMap<i64, Order> = HashMap::with_capacity(answers.len());
        for (to, group) in by_status {
            let status = to.as_str();
            let from: Vec<String> = OrderStatus::ALL
                .into_iter()
                .filter(|f| f.transition(to).is_ok())
                .map(|f| format!("'{}'", f.as_str()))
                .collect();
            for chunk in group.chunks(chunk_rows(6)) {
                let sql = format!(
                    "UPDATE orders SET status = '{status}', filled_quantity = v.column2, \
                     avg_fill_price = COALESCE(v.column3, orders.avg_fill_price), \
                     broker_order_id = COALESCE(v.column4, orders.broker_order_id), \
                     reason = COALESCE(v.column5, orders.reason), updated_at = v.column6 \
                     FROM (VALUES {}) AS v WHERE orders.id = v.column1 AND orders.status IN ({}) RETURNING {ORDER_COLUMNS}",
                    values_clause(kind, chunk.len(), 6),
                    from.join(", ")
                );
                let args: Vec<Val> = chunk
                    .iter()
                    .flat_map(|(id, a)| {
                        [
                            (*id).into(),
                            a.filled_quantity.into(),
                            a.avg_fill_price.into(),
                            (!a.broker_order_id.is_empty())
                                .then(|| a.broker_order_id.clone())
                                .into(),
                            a.reason.clone().into(),
                            a.updated_at.into(),
                        ]
                    })
                    .collect();
                for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
                    let o = order_from(&row)?;
                    updated.insert(o.id, o);
                }
            }
        }

        // The transactions of entries that filled (in part): the position exists.
        let opened: Vec<(&Order, &BrokerOrder)> = answers
            .iter()
            .filter_map(|(id, a)| updated.get(id).map(|o| (o, a)))
            .filter(|(o, a)| o.role == OrderRole::Entry && a.status.is_executed())
            .collect();
        for chunk in opened.chunks(chunk_rows(4)) {
            let sql = format!(
                "UPDATE transactions SET status = 'OPENED', open_price = v.column2, \
                 opened_at = COALESCE(transactions.opened_at, v.column3), quantity = v.column4 \
                 FROM (VALUES {}) AS v WHERE transactions.id = v.column1 AND transactions.status IN ('WAITING', 'OPENED')",
                values_clause(kind, chunk.len(), 4)
            );
            let args: Vec<Val> = chunk
                .iter()
                .flat_map(|(o, a)| {
                    let quantity = if a.status == OrderStatus::Filled {
                        o.quantity
                    } else {
                        a.filled_quantity
                    };
                    [
                        o.transaction_id.into(),
                        a.avg_fill_price.into(),
                        a.updated_at.into(),
                        quantity.into(),
                    ]
                })
                .collect();
            tx.execute(&sql, &args).await.map_err(map_err)?;
        }
        // Entries refused with nothing filled: the slot is free again (rare; one by one).
        for (id, a) in answers {
            let Some(o) = updated.get(id) else { continue };
            if o.role != OrderRole::Entry || !a.status.is_terminal() || !a.filled_quantity.is_zero()
            {
                continue;
            }
            let (new_status, reason) = if a.status == OrderStatus::Error {
                (TransactionStatus::Failed, "entry_not_submitted")
            } else {
                (
                    TransactionStatus::Closed,
                    "entry_orders_terminal_no_execution",
                )
            };
            let reason = match &a.reason {
                Some(r) => format!("{reason}: {r}"),
                None => reason.to_string(),
            };
            tx.execute(
                "UPDATE transactions SET status = $1, closed_at = $2, close_reason = $3 WHERE id = $4 AND status = 'WAITING'",
                &[new_status.as_str().into(), a.updated_at.into(), reason.into(), o.transaction_id.into()],
            )
            .await
            .map_err(map_err)?;
        }

        let mut out = Vec::with_capacity(answers.len());
        for (id, a) in answers {
            match updated.remove(id) {
                Some(o) => out.push(o),
                None => {
                    // A stale or out-of-order answer: keep what we have.
                    let current = Self::order_by_id(tx, *id).await?;
                    tracing::warn!(
                        order = id,
                        "ignoring broker answer: {} -> {} is not allowed",
                        current.status,
                        a.status
                    );
                    out.push(current);
                }
            }
        }
        Ok(out)
    }

    async fn active_by_symbol(
        &self,
        expert_id: i64,
        symbol: &str,
    ) -> Result<Option<Transaction>, StoreError> {
        let sql = format!(
            "SELECT {TXN_COLUMNS} FROM transactions WHERE expert_id = $1 AND symbol = $2 AND status IN ('WAITING', 'OPENED')"
        );
        let rows = self
            .pool
            .fetch(&sql, &[expert_id.into(), symbol.into()])
            .await?;
        rows.first().map(transaction_from).transpose()
    }
}

/// The rows [`Store::open_positions`] wrote for one position, as values.
fn new_position_rows(
    new: &NewPosition,
    txn_id: i64,
    order_id: i64,
    coid: String,
) -> (Transaction, Order) {
    let txn = Transaction {
        id: txn_id,
        expert_id: new.expert_id,
        account: new.account.clone(),
        symbol: new.symbol.clone(),
        side: new.side,
        quantity: new.quantity,
        status: TransactionStatus::Waiting,
        open_price: None,
        close_price: None,
        take_profit: None,
        stop_loss: None,
        opened_at: None,
        closed_at: None,
        close_reason: None,
        created_at: new.created_at,
    };
    let order = Order {
        id: order_id,
        transaction_id: txn_id,
        expert_id: new.expert_id,
        account: new.account.clone(),
        symbol: new.symbol.clone(),
        side: new.side,
        role: OrderRole::Entry,
        order_type: new.order_type,
        quantity: new.quantity,
        filled_quantity: Decimal::ZERO,
        limit_price: new.limit_price,
        stop_price: None,
        avg_fill_price: None,
        status: OrderStatus::Submitting,
        client_order_id: coid,
        broker_order_id: None,
        parent_order_id: None,
        trigger_status: None,
        recommendation_id: new.recommendation_id,
        created_at: new.created_at,
    };
    (txn, order)
}

fn broker_unavailable(e: StoreError) -> BrokerError {
    BrokerError::Unavailable(format!("paper ledger: {e}"))
}

fn paper_order_from(r: &Row) -> Result<BrokerOrder, StoreError> {
    let status = r.text("status")?;
    Ok(BrokerOrder {
        broker_order_id: format!("paper-{}", r.i64("id")?),
        client_order_id: r.text("client_order_id")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| bad_value("paper order status", &status))?,
        filled_quantity: r.dec("filled_quantity")?,
        avg_fill_price: r.opt_dec("avg_fill_price")?,
        reason: r.opt_text("reason")?,
        updated_at: r.time("updated_at")?,
    })
}

#[async_trait]
impl Store for SqlStore {
    async fn import(
        &self,
        recs: &[NewRecommendation],
        quotes: &[QuoteUpdate],
    ) -> Result<ImportCounts, ImportError> {
        let mut counts = ImportCounts::default();
        let mut conflicts = Vec::new();
        // Within the batch: identical repeats are already present, differing ones conflict.
        let mut first: HashMap<RecKey, usize> = HashMap::new();
        let mut unique: Vec<usize> = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            let key = (r.expert_id, r.symbol.clone(), r.created_at);
            match first.get(&key) {
                None => {
                    first.insert(key, i);
                    unique.push(i);
                }
                Some(&j) if recs[j] == *r => counts.already_present += 1,
                Some(&j) => conflicts.push((i, format!("recommendation: same expert, symbol and created_at as an earlier line ({}) with different content", j + 1))),
            }
        }
        let mut tx = self.pool.begin().await?;
        let mut inserted: HashSet<RecKey> = HashSet::new();
        let now = Utc::now();
        for chunk in unique.chunks(chunk_rows(12)) {
            let sql = format!(
                "INSERT INTO recommendations (expert_id, symbol, action, confidence, expected_profit_percent, price_at_date, \
                 risk_level, time_horizon, target_price, details, created_at, imported_at) VALUES {} \
                 ON CONFLICT (expert_id, symbol, created_at) DO NOTHING RETURNING expert_id, symbol, created_at",
                values_clause(self.pool.kind(), chunk.len(), 12)
            );
            let mut args: Vec<Val> = Vec::with_capacity(chunk.len() * 12);
            for &i in chunk {
                let r = &recs[i];
                args.extend([
                    r.expert_id.into(),
                    r.symbol.as_str().into(),
                    r.action.as_str().into(),
                    r.confidence.into(),
                    r.expected_profit_percent.into(),
                    r.price_at_date.get().into(),
                    r.risk_level.as_str().into(),
                    r.time_horizon.as_str().into(),
                    r.target_price.map(Price::get).into(),
                    r.details.clone().into(),
                    r.created_at.into(),
                    now.into(),
                ]);
            }
            for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
                inserted.insert((
                    row.i64("expert_id")?,
                    row.text("symbol")?,
                    row.time("created_at")?,
                ));
            }
        }
        for &i in &unique {
            let r = &recs[i];
            let key = (r.expert_id, r.symbol.clone(), r.created_at);
            if inserted.contains(&key) {
                counts.imported += 1;
                continue;
            }
            // Already stored before this batch: identical is fine, different is an error.
            let row = tx
                .fetch_one(
                    "SELECT * FROM recommendations WHERE expert_id = $1 AND symbol = $2 AND created_at = $3",
                    &[r.expert_id.into(), r.symbol.as_str().into(), r.created_at.into()],
                )
                .await
                .map_err(map_err)?
                .ok_or_else(|| StoreError::Database("conflicting recommendation vanished".into()))?;
            let stored = recommendation_from(&row)?;
            if stored.rec == *r {
                counts.already_present += 1;
            } else {
                conflicts.push((
                    i,
                    format!(
                        "recommendation: same expert, symbol and created_at as stored recommendation {} with different content",
                        stored.id
                    ),
                ));
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort();
            return Err(ImportError::Conflicts(conflicts));
        }
        Self::upsert_quotes(&mut tx, quotes).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn record_quotes(&self, quotes: &[QuoteUpdate]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::upsert_quotes(&mut tx, quotes).await?;
        tx.commit().await
    }

    async fn load_enter_market(
        &self,
        expert_id: i64,
        since: DateTime<Utc>,
    ) -> Result<EnterMarketData, StoreError> {
        let recs = self
            .pool
            .fetch(
                "SELECT * FROM recommendations WHERE expert_id = $1 AND created_at >= $2 AND action <> 'HOLD' ORDER BY id",
                &[expert_id.into(), since.into()],
            )
            .await?;
        let positions = self
            .pool
            .fetch(
                "SELECT id, symbol, side, status, quantity, COALESCE(open_price, reference_price) AS price \
                 FROM transactions WHERE expert_id = $1 AND status IN ('WAITING', 'OPENED')",
                &[expert_id.into()],
            )
            .await?;
        Ok(EnterMarketData {
            recommendations: recs
                .iter()
                .map(recommendation_from)
                .collect::<Result<_, _>>()?,
            positions: positions
                .iter()
                .map(|r| {
                    Ok(ActivePosition {
                        transaction_id: r.i64("id")?,
                        symbol: r.text("symbol")?,
                        side: side(&r.text("side")?)?,
                        status: txn_status(&r.text("status")?)?,
                        quantity: r.dec("quantity")?,
                        price: r.opt_dec("price")?.unwrap_or_default(),
                    })
                })
                .collect::<Result<_, StoreError>>()?,
        })
    }

    async fn open_positions(
        &self,
        positions: &[NewPosition],
    ) -> Result<Vec<Result<(Transaction, Order), StoreError>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Transactions first, many rows a statement. B1: the partial unique index refuses a
        // second active transaction; DO NOTHING turns a refusal into "no row returned"
        // instead of aborting the batch (a unique violation aborts a PostgreSQL transaction).
        let mut txn_ids: HashMap<(i64, String), i64> = HashMap::new();
        for chunk in positions.chunks(chunk_rows(7)) {
            let sql = format!(
                "INSERT INTO transactions (expert_id, account, symbol, side, quantity, status, reference_price, created_at) \
                 VALUES {} ON CONFLICT DO NOTHING RETURNING id, expert_id, symbol",
                values_clause_with(
                    self.pool.kind(),
                    chunk.len(),
                    &["", "", "", "", "", "'WAITING'", "", ""]
                )
            );
            let args: Vec<Val> = chunk
                .iter()
                .flat_map(|n| {
                    [
                        n.expert_id.into(),
                        n.account.as_str().into(),
                        n.symbol.as_str().into(),
                        n.side.as_str().into(),
                        n.quantity.into(),
                        n.reference_price.into(),
                        n.created_at.into(),
                    ]
                })
                .collect();
            for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
                txn_ids.insert((row.i64("expert_id")?, row.text("symbol")?), row.i64("id")?);
            }
        }
        // Then one entry order per stored transaction, with its client_order_id.
        let stored: Vec<(usize, i64)> = positions
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                txn_ids
                    .remove(&(n.expert_id, n.symbol.clone()))
                    .map(|id| (i, id))
            })
            .collect();
        let mut order_ids: HashMap<i64, i64> = HashMap::new();
        for chunk in stored.chunks(chunk_rows(12)) {
            let sql = format!(
                "INSERT INTO orders (transaction_id, expert_id, account, symbol, side, order_type, quantity, limit_price, \
                 client_order_id, recommendation_id, created_at, updated_at, role, filled_quantity, status) \
                 VALUES {} RETURNING id, transaction_id",
                values_clause_with(
                    self.pool.kind(),
                    chunk.len(),
                    &[
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "'entry'",
                        "'0'",
                        "'submitting'"
                    ]
                )
            );
            let args: Vec<Val> = chunk
                .iter()
                .flat_map(|(i, txn_id)| {
                    let n = &positions[*i];
                    [
                        (*txn_id).into(),
                        n.expert_id.into(),
                        n.account.as_str().into(),
                        n.symbol.as_str().into(),
                        n.side.as_str().into(),
                        n.order_type.as_str().into(),
                        n.quantity.into(),
                        n.limit_price.into(),
                        client_order_id(*txn_id, OrderRole::Entry).into(),
                        n.recommendation_id.into(),
                        n.created_at.into(),
                        n.created_at.into(),
                    ]
                })
                .collect();
            for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
                order_ids.insert(row.i64("transaction_id")?, row.i64("id")?);
            }
        }
        tx.commit().await?;
        let mut out: Vec<Result<(Transaction, Order), StoreError>> = positions
            .iter()
            .map(|n| {
                Err(StoreError::DuplicatePosition {
                    expert_id: n.expert_id,
                    symbol: n.symbol.clone(),
                    existing: None,
                })
            })
            .collect();
        for (i, txn_id) in stored {
            let order_id = *order_ids.get(&txn_id).ok_or_else(|| {
                StoreError::Database(format!("no entry order stored for transaction {txn_id}"))
            })?;
            out[i] = Ok(new_position_rows(
                &positions[i],
                txn_id,
                order_id,
                client_order_id(txn_id, OrderRole::Entry),
            ));
        }
        // Name the transaction that holds each refused slot (read after commit: the holder
        // may be another process's).
        for (i, n) in positions.iter().enumerate() {
            if out[i].is_err() {
                let existing = self
                    .active_by_symbol(n.expert_id, &n.symbol)
                    .await?
                    .map(|t| (t.id, t.status));
                out[i] = Err(StoreError::DuplicatePosition {
                    expert_id: n.expert_id,
                    symbol: n.symbol.clone(),
                    existing,
                });
            }
        }
        Ok(out)
    }

    async fn apply_broker_orders(
        &self,
        answers: &[(i64, BrokerOrder)],
    ) -> Result<Vec<Order>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut ids = HashSet::new();
        let out = if answers.iter().all(|(id, _)| ids.insert(*id)) {
            Self::apply_answers(&mut tx, answers).await?
        } else {
            // The same order twice: apply the answers one at a time, in order.
            let mut out = Vec::with_capacity(answers.len());
            for a in answers {
                out.extend(Self::apply_answers(&mut tx, std::slice::from_ref(a)).await?);
            }
            out
        };
        tx.commit().await?;
        Ok(out)
    }

    async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in outcomes.chunks(chunk_rows(8)) {
            let sql = format!(
                "INSERT INTO outcomes (recommendation_id, expert_id, symbol, use_case, outcome, detail, order_id, decided_at) VALUES {}",
                values_clause(self.pool.kind(), chunk.len(), 8)
            );
            let args: Vec<Val> = chunk
                .iter()
                .flat_map(|o| {
                    [
                        o.recommendation_id.into(),
                        o.expert_id.into(),
                        o.symbol.as_str().into(),
                        o.use_case.as_str().into(),
                        o.outcome.as_str().into(),
                        o.detail.as_str().into(),
                        o.order_id.into(),
                        o.decided_at.into(),
                    ]
                })
                .collect();
            tx.execute(&sql, &args).await.map_err(map_err)?;
        }
        tx.commit().await
    }

    async fn active_transaction(
        &self,
        expert_id: i64,
        symbol: &str,
    ) -> Result<Option<Transaction>, StoreError> {
        self.active_by_symbol(expert_id, symbol).await
    }

    async fn orders_in_flight(&self, expert_id: Option<i64>) -> Result<Vec<Order>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE status = 'submitting' AND ($1 IS NULL OR expert_id = $1) ORDER BY id"
        );
        self.pool
            .fetch(&sql, &[expert_id.into()])
            .await?
            .iter()
            .map(order_from)
            .collect()
    }

    async fn held_quantities(&self, account: &str) -> Result<HashMap<String, Decimal>, StoreError> {
        let rows = self
            .pool
            .fetch(
                "SELECT symbol, side, quantity FROM transactions WHERE account = $1 AND status IN ('OPENED', 'CLOSING')",
                &[account.into()],
            )
            .await?;
        let mut held: HashMap<String, Decimal> = HashMap::new();
        for r in &rows {
            let q = r.dec("quantity")?;
            let signed = if side(&r.text("side")?)? == Side::Buy {
                q
            } else {
                -q
            };
            *held.entry(r.text("symbol")?).or_default() += signed;
        }
        Ok(held)
    }

    async fn record_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.pool
            .execute(
                "INSERT INTO runs (lock_key, owner, status, started_at, finished_at) VALUES ($1, $2, $3, $4, $5)",
                &[
                    run.lock_key.as_str().into(),
                    run.owner.as_str().into(),
                    run.status.as_str().into(),
                    run.started_at.into(),
                    run.finished_at.into(),
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn record_findings(&self, findings: &[Finding]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for f in findings {
            tx.execute(
                "INSERT INTO reconciliation_findings (account, symbol, broker_quantity, recorded_quantity, detail, found_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    f.account.as_str().into(),
                    f.symbol.as_str().into(),
                    f.broker_quantity.into(),
                    f.recorded_quantity.into(),
                    f.detail.as_str().into(),
                    f.found_at.into(),
                ],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await
    }

    async fn transactions(&self, f: &ListFilter) -> Result<Vec<Transaction>, StoreError> {
        let sql = format!(
            "SELECT {TXN_COLUMNS} FROM transactions WHERE ($1 IS NULL OR expert_id = $1) AND ($2 IS NULL OR status = $2) ORDER BY id"
        );
        let rows = self
            .pool
            .fetch(&sql, &[f.expert_id.into(), f.status.clone().into()])
            .await?;
        rows.iter().map(transaction_from).collect()
    }

    async fn orders(&self, f: &ListFilter) -> Result<Vec<Order>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE ($1 IS NULL OR expert_id = $1) AND ($2 IS NULL OR status = $2) ORDER BY id"
        );
        let rows = self
            .pool
            .fetch(&sql, &[f.expert_id.into(), f.status.clone().into()])
            .await?;
        rows.iter().map(order_from).collect()
    }

    async fn outcomes(&self, f: &ListFilter) -> Result<Vec<Outcome>, StoreError> {
        let rows = self
            .pool
            .fetch(
                "SELECT * FROM outcomes WHERE ($1 IS NULL OR expert_id = $1) AND ($2 IS NULL OR outcome = $2) \
                 AND ($3 IS NULL OR recommendation_id = $3) ORDER BY id",
                &[f.expert_id.into(), f.status.clone().into(), f.recommendation_id.into()],
            )
            .await?;
        rows.iter().map(outcome_from).collect()
    }
}

fn expiry(now: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn try_acquire_lease(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        // One statement: insert, or take over a row that expired or is already ours.
        let n = self
            .pool
            .execute(
                "INSERT INTO leases (key, owner, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
                 WHERE leases.expires_at <= $4 OR leases.owner = excluded.owner",
                &[key.into(), owner.into(), expiry(now, ttl).into(), now.into()],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn renew_lease(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let n = self
            .pool
            .execute(
                "UPDATE leases SET expires_at = $1 WHERE key = $2 AND owner = $3 AND expires_at > $4",
                &[expiry(now, ttl).into(), key.into(), owner.into(), now.into()],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.pool
            .execute(
                "DELETE FROM leases WHERE key = $1 AND owner = $2",
                &[key.into(), owner.into()],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl PaperLedger for SqlStore {
    async fn paper_state(&self, account: &str) -> Result<PaperState, BrokerError> {
        let cash = self
            .pool
            .fetch(
                "SELECT cash FROM paper_accounts WHERE account = $1",
                &[account.into()],
            )
            .await
            .map_err(broker_unavailable)?;
        let cash = match cash.first() {
            Some(r) => r.dec("cash").map_err(broker_unavailable)?,
            None => {
                return Err(BrokerError::Rejected(format!(
                    "unknown paper account {account:?}"
                )));
            }
        };
        let rows = self
            .pool
            .fetch(
                "SELECT p.symbol, p.quantity, q.price FROM paper_positions p \
                 LEFT JOIN quotes q ON q.account = p.account AND q.symbol = p.symbol \
                 WHERE p.account = $1 ORDER BY p.symbol",
                &[account.into()],
            )
            .await
            .map_err(broker_unavailable)?;
        let positions = rows
            .iter()
            .map(|r| Ok((r.text("symbol")?, r.dec("quantity")?, r.opt_dec("price")?)))
            .collect::<Result<_, StoreError>>()
            .map_err(broker_unavailable)?;
        Ok(PaperState { cash, positions })
    }

    async fn paper_quotes(
        &self,
        account: &str,
        symbols: &[String],
    ) -> Result<HashMap<String, Decimal>, BrokerError> {
        // One query for the whole account: cheaper than binding hundreds of symbols.
        let wanted: HashSet<&str> = symbols.iter().map(String::as_str).collect();
        let rows = self
            .pool
            .fetch(
                "SELECT symbol, price FROM quotes WHERE account = $1",
                &[account.into()],
            )
            .await
            .map_err(broker_unavailable)?;
        let mut out = HashMap::with_capacity(wanted.len());
        for r in &rows {
            let symbol = r.text("symbol").map_err(broker_unavailable)?;
            if wanted.contains(symbol.as_str()) {
                out.insert(symbol, r.dec("price").map_err(broker_unavailable)?);
            }
        }
        Ok(out)
    }

    async fn paper_execute(
        &self,
        account: &str,
        orders: &[OrderRequest],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<BrokerOrder, BrokerError>>, BrokerError> {
        let unavailable = |e: sqlx::Error| broker_unavailable(map_err(e));
        let mut tx = self.pool.begin().await.map_err(broker_unavailable)?;
        // The whole book state the batch depends on, read once; on PostgreSQL the account
        // row stays locked until commit so concurrent batches see each other's cash.
        let lock = tx.for_update();
        let Some(cash) = tx
            .fetch_one(
                &format!("SELECT cash FROM paper_accounts WHERE account = $1{lock}"),
                &[account.into()],
            )
            .await
            .map_err(unavailable)?
        else {
            return Err(BrokerError::Rejected(format!(
                "unknown paper account {account:?}"
            )));
        };
        let mut cash = cash.dec("cash").map_err(broker_unavailable)?;
        let mut quotes: HashMap<String, Decimal> = HashMap::new();
        for r in tx
            .fetch(
                "SELECT symbol, price FROM quotes WHERE account = $1",
                &[account.into()],
            )
            .await
            .map_err(unavailable)?
        {
            quotes.insert(
                r.text("symbol").map_err(broker_unavailable)?,
                r.dec("price").map_err(broker_unavailable)?,
            );
        }
        let mut positions: HashMap<String, Decimal> = HashMap::new();
        for r in tx
            .fetch(
                "SELECT symbol, quantity FROM paper_positions WHERE account = $1",
                &[account.into()],
            )
            .await
            .map_err(unavailable)?
        {
            positions.insert(
                r.text("symbol").map_err(broker_unavailable)?,
                r.dec("quantity").map_err(broker_unavailable)?,
            );
        }
        let mut seen: HashSet<String> = HashSet::new();
        for chunk in orders.chunks(chunk_rows(1)) {
            // Positional `?` on SQLite, as in `values_clause`.
            let sql = match tx.kind() {
                Kind::Sqlite => format!(
                    "SELECT client_order_id FROM paper_orders WHERE account = ? AND client_order_id IN ({})",
                    vec!["?"; chunk.len()].join(", ")
                ),
                Kind::Postgres => format!(
                    "SELECT client_order_id FROM paper_orders WHERE account = $1 AND client_order_id IN ({})",
                    (2..chunk.len() + 2)
                        .map(|i| format!("${i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let mut args: Vec<Val> = vec![account.into()];
            args.extend(chunk.iter().map(|o| Val::from(o.client_order_id.as_str())));
            for r in tx.fetch(&sql, &args).await.map_err(unavailable)? {
                seen.insert(r.text("client_order_id").map_err(broker_unavailable)?);
            }
        }

        // Decide every order in turn against the book as the orders before it left it.
        struct Row<'a> {
            order: &'a OrderRequest,
            status: OrderStatus,
            filled: Decimal,
            price: Option<Decimal>,
            reason: Option<String>,
        }
        let mut answers: Vec<Result<BrokerOrder, BrokerError>> = Vec::with_capacity(orders.len());
        let mut rows: Vec<Row> = Vec::with_capacity(orders.len());
        let mut touched: Vec<String> = Vec::new();
        for order in orders {
            if !seen.insert(order.client_order_id.clone()) {
                answers.push(Err(BrokerError::DuplicateClientOrderId(
                    order.client_order_id.clone(),
                )));
                continue;
            }
            let position = positions.get(&order.symbol).copied().unwrap_or_default();
            let row = match paper::fill(order, quotes.get(&order.symbol).copied(), cash, position) {
                Ok(f) => {
                    let filled = f.status == OrderStatus::Filled;
                    if filled {
                        cash = f.cash_after;
                        positions.insert(order.symbol.clone(), f.position_after);
                        if !touched.contains(&order.symbol) {
                            touched.push(order.symbol.clone());
                        }
                    }
                    Row {
                        order,
                        status: f.status,
                        filled: if filled {
                            order.quantity
                        } else {
                            Decimal::ZERO
                        },
                        price: f.price,
                        reason: None,
                    }
                }
                Err(reason) => Row {
                    order,
                    status: OrderStatus::Rejected,
                    filled: Decimal::ZERO,
                    price: None,
                    reason: Some(reason),
                },
            };
            answers.push(Ok(BrokerOrder {
                broker_order_id: String::new(), // set from the stored row below
                client_order_id: order.client_order_id.clone(),
                status: row.status,
                filled_quantity: row.filled,
                avg_fill_price: row.price,
                reason: row.reason.clone(),
                updated_at: now,
            }));
            rows.push(row);
        }

        // Store the orders (a rejected one too: its id stays spent) and their effects.
        let mut broker_ids: HashMap<String, String> = HashMap::new();
        let kind = tx.kind();
        for chunk in rows.chunks(chunk_rows(14)) {
            let sql = format!(
                "INSERT INTO paper_orders (account, client_order_id, symbol, side, order_type, quantity, limit_price, stop_price, \
                 status, filled_quantity, avg_fill_price, reason, created_at, updated_at) VALUES {} RETURNING id, client_order_id",
                values_clause(kind, chunk.len(), 14)
            );
            let args: Vec<Val> = chunk
                .iter()
                .flat_map(|r| {
                    [
                        account.into(),
                        r.order.client_order_id.as_str().into(),
                        r.order.symbol.as_str().into(),
                        r.order.side.as_str().into(),
                        r.order.order_type.as_str().into(),
                        r.order.quantity.into(),
                        r.order.limit_price.into(),
                        r.order.stop_price.into(),
                        r.status.as_str().into(),
                        r.filled.into(),
                        r.price.into(),
                        r.reason.clone().into(),
                        now.into(),
                        now.into(),
                    ]
                })
                .collect();
            let inserted = tx.fetch(&sql, &args).await;
            let inserted = match inserted {
                // Another process took one of the ids between our check and our insert.
                Err(e) if is_unique_violation(&e) => {
                    return Err(BrokerError::Unavailable(
                        "client_order_id raced with another submitter; look it up".into(),
                    ));
                }
                other => other.map_err(unavailable)?,
            };
            for r in inserted {
                broker_ids.insert(
                    r.text("client_order_id").map_err(broker_unavailable)?,
                    format!("paper-{}", r.i64("id").map_err(broker_unavailable)?),
                );
            }
        }
        if !touched.is_empty() {
            tx.execute(
                "UPDATE paper_accounts SET cash = $1 WHERE account = $2",
                &[cash.into(), account.into()],
            )
            .await
            .map_err(unavailable)?;
            let sql = format!(
                "INSERT INTO paper_positions (account, symbol, quantity) VALUES {} \
                 ON CONFLICT (account, symbol) DO UPDATE SET quantity = excluded.quantity",
                values_clause(kind, touched.len(), 3)
            );
            let args: Vec<Val> = touched
                .iter()
                .flat_map(|s| [account.into(), s.as_str().into(), positions[s].into()])
                .collect();
            tx.execute(&sql, &args).await.map_err(unavailable)?;
        }
        tx.commit().await.map_err(broker_unavailable)?;
        Ok(answers
            .into_iter()
            .map(|a| {
                let a = a?;
                match a.reason {
                    Some(reason) if a.status == OrderStatus::Rejected => {
                        Err(BrokerError::Rejected(reason))
                    }
                    _ => Ok(BrokerOrder {
                        broker_order_id: broker_ids
                            .get(&a.client_order_id)
                            .cloned()
                            .unwrap_or_default(),
                        ..a
                    }),
                }
            })
            .collect())
    }

    async fn paper_order(
        &self,
        account: &str,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError> {
        let rows = self
            .pool
            .fetch(
                "SELECT * FROM paper_orders WHERE account = $1 AND client_order_id = $2",
                &[account.into(), client_order_id.into()],
            )
            .await
            .map_err(broker_unavailable)?;
        rows.first()
            .map(paper_order_from)
            .transpose()
            .map_err(broker_unavailable)
    }
}
