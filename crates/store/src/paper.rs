//! The paper broker's persistence: its books and quotes, loaded and saved. Every decision
//! about a fill is the broker's (`tradewarden-brokers`); this file only stores.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use rust_decimal::Decimal;
use tradewarden_domain::OrderStatus;
use tradewarden_engine::ports::{BookScope, PaperBook, PaperLedger, PaperSave, Quote};
use tradewarden_engine::{BrokerOrder, StoreError};

use crate::SqlStore;
use crate::db::{Kind, Pool, Row, Tx, Val, map_err};
use crate::rows::{bad_value, chunk_rows, side, values_clause};

#[async_trait]
impl PaperLedger for SqlStore {
    async fn open_paper_accounts(&self, accounts: &[(String, Decimal)]) -> Result<(), StoreError> {
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

    async fn load_book(
        &self,
        account: &str,
        scope: BookScope,
        client_order_ids: &[String],
    ) -> Result<Option<PaperBook>, StoreError> {
        load_book_from(&self.pool, account, scope, client_order_ids).await
    }

    async fn save_book(
        &self,
        account: &str,
        save: &PaperSave,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let moved = tx
            .execute(
                "UPDATE paper_accounts SET cash = $1, version = version + 1 WHERE account = $2 AND version = $3",
                &[save.cash.into(), account.into(), save.expected_version.into()],
            )
            .await
            .map_err(map_err)?
            == 0;
        if moved {
            return Ok(None);
        }
        let Some(broker_ids) = insert_orders(&mut tx, account, save).await? else {
            return Ok(None);
        };
        upsert_positions(&mut tx, account, &save.positions).await?;
        tx.commit().await?;
        Ok(Some(broker_ids))
    }

    async fn load_paper_order(
        &self,
        account: &str,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, StoreError> {
        let rows = self
            .pool
            .fetch(
                "SELECT id, client_order_id, status, filled_quantity, avg_fill_price, reason, updated_at, \
                 symbol, side, quantity FROM paper_orders WHERE account = $1 AND client_order_id = $2",
                &[account.into(), client_order_id.into()],
            )
            .await?;
        rows.first().map(paper_order_from).transpose()
    }

    async fn save_quotes(&self, account: &str, quotes: &[Quote]) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = upsert_quotes(&mut tx, account, quotes).await?;
        tx.commit().await?;
        Ok(changed)
    }
}

/// The account's cash and version, positions, quotes, and which of `client_order_ids` it
/// has seen; `None` for an account never opened. No transaction is needed: the version is
/// read first, and a save made on anything that moved after it is refused.
async fn load_book_from(
    pool: &Pool,
    account: &str,
    scope: BookScope,
    client_order_ids: &[String],
) -> Result<Option<PaperBook>, StoreError> {
    let rows = pool
        .fetch(
            "SELECT cash, version FROM paper_accounts WHERE account = $1",
            &[account.into()],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut book = PaperBook {
        version: row.i64("version")?,
        cash: row.dec("cash")?,
        ..PaperBook::default()
    };
    if scope == BookScope::Holdings {
        load_holdings(pool, account, &mut book).await?;
        return Ok(Some(book));
    }
    book.quotes = symbol_decimals(
        pool,
        "SELECT symbol, price AS v FROM quotes WHERE account = $1",
        account,
    )
    .await?;
    if scope == BookScope::Trading {
        book.positions = symbol_decimals(
            pool,
            "SELECT symbol, quantity AS v FROM paper_positions WHERE account = $1",
            account,
        )
        .await?;
        book.known_client_order_ids = known_ids(pool, account, client_order_ids).await?;
    }
    Ok(Some(book))
}

/// Every position with its latest quote, in one query (the quotes of symbols not held are
/// not read).
async fn load_holdings(pool: &Pool, account: &str, book: &mut PaperBook) -> Result<(), StoreError> {
    let rows = pool
        .fetch(
            "SELECT p.symbol, p.quantity, q.price FROM paper_positions p \
             LEFT JOIN quotes q ON q.account = p.account AND q.symbol = p.symbol \
             WHERE p.account = $1",
            &[account.into()],
        )
        .await?;
    for r in &rows {
        let symbol = r.text("symbol")?;
        if let Some(price) = r.opt_dec("price")? {
            book.quotes.insert(symbol.clone(), price);
        }
        book.positions.insert(symbol, r.dec("quantity")?);
    }
    Ok(())
}

/// `symbol → decimal` from a two-column query over one account.
async fn symbol_decimals(
    pool: &Pool,
    sql: &str,
    account: &str,
) -> Result<HashMap<String, Decimal>, StoreError> {
    let mut out = HashMap::new();
    for r in pool.fetch(sql, &[account.into()]).await? {
        out.insert(r.text("symbol")?, r.dec("v")?);
    }
    Ok(out)
}

/// Which of `ids` the account's orders already use.
async fn known_ids(
    pool: &Pool,
    account: &str,
    ids: &[String],
) -> Result<HashSet<String>, StoreError> {
    let mut seen = HashSet::new();
    for chunk in ids.chunks(chunk_rows(1)) {
        // Positional `?` on SQLite, as in `values_clause`.
        let list = match pool.kind() {
            Kind::Sqlite => vec!["?".to_string(); chunk.len() + 1],
            Kind::Postgres => (1..chunk.len() + 2).map(|i| format!("${i}")).collect(),
        };
        let sql = format!(
            "SELECT client_order_id FROM paper_orders WHERE account = {} AND client_order_id IN ({})",
            list[0],
            list[1..].join(", ")
        );
        let mut args: Vec<Val> = vec![account.into()];
        args.extend(chunk.iter().map(|id| Val::from(id.as_str())));
        for r in pool.fetch(&sql, &args).await? {
            seen.insert(r.text("client_order_id")?);
        }
    }
    Ok(seen)
}

/// Stores the batch's orders (a rejected one too: its id stays spent); returns their broker
/// ids in order, or `None` when another submitter took one of the ids meanwhile.
async fn insert_orders(
    tx: &mut Tx,
    account: &str,
    save: &PaperSave,
) -> Result<Option<Vec<String>>, StoreError> {
    let mut ids: HashMap<String, String> = HashMap::with_capacity(save.orders.len());
    let kind = tx.kind();
    for chunk in save.orders.chunks(chunk_rows(14)) {
        let sql = format!(
            "INSERT INTO paper_orders (account, client_order_id, symbol, side, order_type, quantity, limit_price, stop_price, \
             status, filled_quantity, avg_fill_price, reason, created_at, updated_at) VALUES {} RETURNING id, client_order_id",
            values_clause(kind, chunk.len(), 14)
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|r| {
                let o = &r.request;
                [
                    account.into(),
                    o.client_order_id.as_str().into(),
                    o.symbol.as_str().into(),
                    o.side.as_str().into(),
                    o.order_type.as_str().into(),
                    o.quantity.into(),
                    o.limit_price.into(),
                    o.stop_price.into(),
                    r.status.as_str().into(),
                    r.filled_quantity.into(),
                    r.avg_fill_price.into(),
                    r.reason.clone().into(),
                    r.at.into(),
                    r.at.into(),
                ]
            })
            .collect();
        let rows = match tx.fetch(&sql, &args).await {
            Err(e) if e.is_unique_violation() => return Ok(None),
            other => other.map_err(map_err)?,
        };
        for r in rows {
            ids.insert(
                r.text("client_order_id")?,
                format!("paper-{}", r.i64("id")?),
            );
        }
    }
    save.orders
        .iter()
        .map(|r| {
            ids.remove(&r.request.client_order_id).ok_or_else(|| {
                StoreError::database("a stored paper order came back without its id")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Writes the positions a batch changed.
async fn upsert_positions(
    tx: &mut Tx,
    account: &str,
    positions: &[(String, Decimal)],
) -> Result<(), StoreError> {
    let kind = tx.kind();
    for chunk in positions.chunks(chunk_rows(3)) {
        let sql = format!(
            "INSERT INTO paper_positions (account, symbol, quantity) VALUES {} \
             ON CONFLICT (account, symbol) DO UPDATE SET quantity = excluded.quantity",
            values_clause(kind, chunk.len(), 3)
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|(s, q)| [account.into(), s.as_str().into(), (*q).into()])
            .collect();
        tx.execute(&sql, &args).await.map_err(map_err)?;
    }
    Ok(())
}

/// Records quotes, the newest per symbol winning over the batch and over what is stored;
/// returns how many stored quotes changed.
async fn upsert_quotes(tx: &mut Tx, account: &str, quotes: &[Quote]) -> Result<usize, StoreError> {
    // Newest per symbol first: one statement may not touch a row twice.
    let mut newest: HashMap<&str, &Quote> = HashMap::new();
    for q in quotes {
        newest
            .entry(q.symbol.as_str())
            .and_modify(|cur| {
                if q.at >= cur.at {
                    *cur = q;
                }
            })
            .or_insert(q);
    }
    let mut list: Vec<&Quote> = newest.into_values().collect();
    list.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    let mut changed = 0;
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
                    account.into(),
                    q.symbol.as_str().into(),
                    q.price.into(),
                    q.at.into(),
                ]
            })
            .collect();
        changed += tx.execute(&sql, &args).await.map_err(map_err)? as usize;
    }
    Ok(changed)
}

fn paper_order_from(r: &Row) -> Result<BrokerOrder, StoreError> {
    let status = r.text("status")?;
    Ok(BrokerOrder {
        broker_order_id: Some(format!("paper-{}", r.i64("id")?)),
        client_order_id: r.text("client_order_id")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| bad_value("paper order status", &status))?,
        filled_quantity: r.dec("filled_quantity")?,
        avg_fill_price: r.opt_dec("avg_fill_price")?,
        reason: r.opt_text("reason")?,
        updated_at: r.time("updated_at")?,
        symbol: Some(r.text("symbol")?),
        side: Some(side(&r.text("side")?)?),
        quantity: Some(r.dec("quantity")?),
    })
}
