//! Stored rows to domain values, and the multi-row statement helpers every file shares.

use tradewarden_domain::outcome::OutcomeKind;
use tradewarden_domain::{
    Action, NewRecommendation, Order, OrderRole, OrderStatus, OrderType, Outcome, Price,
    Recommendation, RiskLevel, Side, TimeHorizon, Transaction, TransactionStatus, UseCase,
};
use tradewarden_engine::ports::*;

use crate::db::{Kind, Row};

pub(crate) fn bad_value(what: &str, v: &str) -> StoreError {
    StoreError::database(format!("stored {what} is not valid: {v:?}"))
}

pub(crate) fn side(s: &str) -> Result<Side, StoreError> {
    Side::parse(s).ok_or_else(|| bad_value("side", s))
}

/// Converts a stored row into an [`Order`].
pub(crate) fn order_from(r: &Row) -> Result<Order, StoreError> {
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

pub(crate) fn txn_status(s: &str) -> Result<TransactionStatus, StoreError> {
    TransactionStatus::parse(s).ok_or_else(|| bad_value("transaction status", s))
}

/// Converts a stored row into a [`Transaction`].
pub(crate) fn transaction_from(r: &Row) -> Result<Transaction, StoreError> {
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

pub(crate) fn recommendation_from(r: &Row) -> Result<Recommendation, StoreError> {
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

pub(crate) fn outcome_from(r: &Row) -> Result<Outcome, StoreError> {
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
pub(crate) fn values_clause(kind: Kind, rows: usize, cols: usize) -> String {
    values_clause_with(kind, rows, &vec![""; cols])
}

/// Like [`values_clause`], where a non-empty entry of `fixed` is a SQL literal written in
/// place of that column's parameter.
pub(crate) fn values_clause_with(kind: Kind, rows: usize, fixed: &[&str]) -> String {
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

/// `n` parameters for an `IN (…)` list whose first is the statement's parameter number
/// `first` (1-based): `$first, …` on PostgreSQL; `?, …` on SQLite, which binds anonymous
/// parameters by position (see [`PARAMS_PER_STATEMENT`]), so there the list's parameters
/// must be the next ones in the statement's text.
pub(crate) fn param_list(kind: Kind, first: usize, n: usize) -> String {
    let one = |i: usize| match kind {
        Kind::Sqlite => "?".to_string(),
        Kind::Postgres => format!("${i}"),
    };
    (first..first + n).map(one).collect::<Vec<_>>().join(", ")
}

/// Bound parameters per multi-row statement (SQLite allows 32,766). SQLite treats `$n` as a
/// name, looked up among the statement's earlier names by a linear scan when it prepares it,
/// so costs grow with the square of a statement's parameters; multi-row statements
/// therefore use anonymous `?` on SQLite, which binds by position.
pub(crate) const PARAMS_PER_STATEMENT: usize = 2400;

/// Rows per multi-row statement of `cols` columns.
pub(crate) fn chunk_rows(cols: usize) -> usize {
    (PARAMS_PER_STATEMENT / cols).max(1)
}

pub(crate) const ORDER_COLUMNS: &str = "id, transaction_id, expert_id, account, symbol, side, role, order_type, quantity, \
    filled_quantity, limit_price, stop_price, avg_fill_price, status, client_order_id, broker_order_id, \
    parent_order_id, trigger_status, recommendation_id, created_at";

/// The columns [`recommendation_from`] reads.
pub(crate) const REC_COLUMNS: &str = "id, expert_id, symbol, action, confidence, expected_profit_percent, \
    price_at_date, risk_level, time_horizon, target_price, details, created_at";

/// The columns [`outcome_from`] reads.
pub(crate) const OUTCOME_COLUMNS: &str =
    "recommendation_id, expert_id, symbol, use_case, outcome, detail, order_id, decided_at";

pub(crate) const TXN_COLUMNS: &str = "id, expert_id, account, symbol, side, quantity, status, open_price, close_price, \
    take_profit, stop_loss, opened_at, closed_at, close_reason, created_at";

/// The SQL list of statuses from which an entry order's answer may move its transaction to
/// `to`: the transaction transition table's legal predecessors of `to` that are active (an
/// entry's answer concerns only a WAITING or OPENED transaction; it never reopens a close).
pub(crate) fn entry_event_predecessors(to: TransactionStatus) -> String {
    TransactionStatus::predecessors(to)
        .into_iter()
        .filter(|from| from.is_active())
        .map(|from| format!("'{}'", from.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
