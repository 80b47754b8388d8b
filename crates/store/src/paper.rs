//! The paper broker's persistence: its books, orders and quotes, loaded and saved. Every
//! decision about a fill is the broker's (`tradewarden-brokers`); this file only stores.

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use rust_decimal::Decimal;
use tradewarden_domain::{OrderStatus, OrderType};
use tradewarden_engine::StoreError;
use tradewarden_engine::ports::{
    BookScope, OrderRequest, PaperBook, PaperLedger, PaperOrderRecord, PaperPosition, PaperSave,
    Quote, StoredPaperOrder,
};

use crate::SqlStore;
use crate::db::{Pool, Row, Tx, Val, map_err};
use crate::rows::{bad_value, chunk_rows, param_list, side, values_clause};

/// The columns a stored paper order is read from.
const PAPER_ORDER_COLUMNS: &str = "id, client_order_id, symbol, side, order_type, quantity, limit_price, \
    stop_price, oco_group, status, filled_quantity, avg_fill_price, reason, updated_at";

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
        scope: BookScope<'_>,
    ) -> Result<Option<PaperBook>, StoreError> {
        load_book_from(&self.pool, account, scope).await
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
        let Some(broker_ids) = insert_orders(&mut tx, account, &save.orders).await? else {
            return Ok(None);
        };
        if !update_orders(&mut tx, account, &save.updates).await? {
            return Ok(None);
        }
        upsert_positions(&mut tx, account, &save.positions).await?;
        upsert_quotes(&mut tx, account, &save.quotes).await?;
        tx.commit().await?;
        Ok(Some(broker_ids))
    }

    async fn load_paper_orders(
        &self,
        account: &str,
        client_order_ids: &[String],
    ) -> Result<Vec<StoredPaperOrder>, StoreError> {
        orders_by_client_ids(&self.pool, account, client_order_ids).await
    }

    async fn save_quotes(&self, account: &str, quotes: &[Quote]) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = upsert_quotes(&mut tx, account, quotes).await?;
        tx.commit().await?;
        Ok(changed)
    }
}

/// The account's cash and version, and the part of its book `scope` asks for; `None` for an
/// account never opened. No transaction is needed: the version is read first, and a save
/// made on anything that moved after it is refused.
async fn load_book_from(
    pool: &Pool,
    account: &str,
    scope: BookScope<'_>,
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
    match scope {
        BookScope::Holdings => load_holdings(pool, account, &mut book).await?,
        BookScope::Quotes => book.quotes = every_quote(pool, account).await?,
        BookScope::Trading(orders) => load_trading(pool, account, orders, &mut book).await?,
        BookScope::Quoting(symbols) => load_quoting(pool, account, symbols, &mut book).await?,
        BookScope::Canceling(ids) => book.orders = orders_by_client_ids(pool, account, ids).await?,
    }
    Ok(Some(book))
}

/// Every position with its latest quote, in one query (the quotes of symbols not held are
/// not read).
async fn load_holdings(pool: &Pool, account: &str, book: &mut PaperBook) -> Result<(), StoreError> {
    let rows = pool
        .fetch(
            "SELECT p.symbol, p.quantity, p.avg_price, q.price, q.at FROM paper_positions p \
             LEFT JOIN quotes q ON q.account = p.account AND q.symbol = p.symbol \
             WHERE p.account = $1",
            &[account.into()],
        )
        .await?;
    for r in &rows {
        let symbol = r.text("symbol")?;
        if let Some(price) = r.opt_dec("price")? {
            let quote = Quote {
                symbol: symbol.clone(),
                price,
                at: r.time("at")?,
            };
            book.quotes.insert(symbol.clone(), quote);
        }
        book.positions.insert(symbol, position_from(r)?);
    }
    Ok(())
}

/// For a batch of new orders: the quotes and positions of its symbols, which of its ids are
/// taken, and the stored orders of its one-cancels-other groups.
async fn load_trading(
    pool: &Pool,
    account: &str,
    orders: &[OrderRequest],
    book: &mut PaperBook,
) -> Result<(), StoreError> {
    let symbols: BTreeSet<String> = orders.iter().map(|o| o.symbol.clone()).collect();
    let symbols: Vec<String> = symbols.into_iter().collect();
    for r in fetch_in(
        pool,
        "SELECT symbol, price, at FROM quotes WHERE account = {account} AND symbol IN ({list})",
        account,
        &symbols,
    )
    .await?
    {
        let q = quote_from(&r)?;
        book.quotes.insert(q.symbol.clone(), q);
    }
    for r in fetch_in(
        pool,
        "SELECT symbol, quantity, avg_price FROM paper_positions WHERE account = {account} AND symbol IN ({list})",
        account,
        &symbols,
    )
    .await?
    {
        book.positions.insert(r.text("symbol")?, position_from(&r)?);
    }
    let ids: Vec<String> = orders.iter().map(|o| o.client_order_id.clone()).collect();
    for r in fetch_in(
        pool,
        "SELECT client_order_id FROM paper_orders WHERE account = {account} AND client_order_id IN ({list})",
        account,
        &ids,
    )
    .await?
    {
        book.known_client_order_ids
            .insert(r.text("client_order_id")?);
    }
    let groups: HashSet<String> = orders.iter().filter_map(|o| o.oco_group.clone()).collect();
    let groups: Vec<String> = groups.into_iter().collect();
    let sql = format!(
        "SELECT {PAPER_ORDER_COLUMNS} FROM paper_orders WHERE account = {{account}} AND oco_group IN ({{list}})"
    );
    book.orders = stored_orders(pool, &sql, account, &groups).await?;
    Ok(())
}

/// For new quotes of `symbols`: their stored quotes, their resting orders, and the
/// positions those orders would move.
async fn load_quoting(
    pool: &Pool,
    account: &str,
    symbols: &[String],
    book: &mut PaperBook,
) -> Result<(), StoreError> {
    for r in fetch_in(
        pool,
        "SELECT symbol, price, at FROM quotes WHERE account = {account} AND symbol IN ({list})",
        account,
        symbols,
    )
    .await?
    {
        let q = quote_from(&r)?;
        book.quotes.insert(q.symbol.clone(), q);
    }
    let sql = format!(
        "SELECT {PAPER_ORDER_COLUMNS} FROM paper_orders WHERE account = {{account}} AND status = 'accepted' AND symbol IN ({{list}})"
    );
    book.orders = stored_orders(pool, &sql, account, symbols).await?;
    let mut held: Vec<String> = book
        .orders
        .iter()
        .map(|o| o.record.request.symbol.clone())
        .collect();
    held.sort();
    held.dedup();
    for r in fetch_in(
        pool,
        "SELECT symbol, quantity, avg_price FROM paper_positions WHERE account = {account} AND symbol IN ({list})",
        account,
        &held,
    )
    .await?
    {
        book.positions.insert(r.text("symbol")?, position_from(&r)?);
    }
    Ok(())
}

/// Every quote of the account.
async fn every_quote(pool: &Pool, account: &str) -> Result<HashMap<String, Quote>, StoreError> {
    let mut out = HashMap::new();
    for r in pool
        .fetch(
            "SELECT symbol, price, at FROM quotes WHERE account = $1",
            &[account.into()],
        )
        .await?
    {
        let q = quote_from(&r)?;
        out.insert(q.symbol.clone(), q);
    }
    Ok(out)
}

/// The rows of `select` over `values`, in chunks: `select` says where the account's
/// parameter goes (`{account}`) and where the list of values goes (`{list}`).
async fn fetch_in(
    pool: &Pool,
    select: &str,
    account: &str,
    values: &[String],
) -> Result<Vec<Row>, StoreError> {
    let mut out = Vec::new();
    for chunk in values.chunks(chunk_rows(1)) {
        let sql = select
            .replace("{account}", &param_list(pool.kind(), 1, 1))
            .replace("{list}", &param_list(pool.kind(), 2, chunk.len()));
        let mut args: Vec<Val> = vec![account.into()];
        args.extend(chunk.iter().map(|v| Val::from(v.as_str())));
        out.extend(pool.fetch(&sql, &args).await?);
    }
    Ok(out)
}

/// The stored orders `select` (see [`fetch_in`]) finds over `values`, oldest first (in the
/// order they were sent: their row ids grow), whatever the chunks' order.
async fn stored_orders(
    pool: &Pool,
    select: &str,
    account: &str,
    values: &[String],
) -> Result<Vec<StoredPaperOrder>, StoreError> {
    let mut found = fetch_in(pool, select, account, values)
        .await?
        .iter()
        .map(|r| Ok((r.i64("id")?, stored_order_from(r)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    found.sort_by_key(|(id, _)| *id);
    Ok(found.into_iter().map(|(_, o)| o).collect())
}

/// The stored orders of these client_order_ids, oldest first.
async fn orders_by_client_ids(
    pool: &Pool,
    account: &str,
    client_order_ids: &[String],
) -> Result<Vec<StoredPaperOrder>, StoreError> {
    let sql = format!(
        "SELECT {PAPER_ORDER_COLUMNS} FROM paper_orders WHERE account = {{account}} AND client_order_id IN ({{list}})"
    );
    stored_orders(pool, &sql, account, client_order_ids).await
}

/// Stores new orders (a rejected one too: its id stays spent); returns their broker ids in
/// order, or `None` when another submitter took one of the ids meanwhile.
async fn insert_orders(
    tx: &mut Tx,
    account: &str,
    orders: &[PaperOrderRecord],
) -> Result<Option<Vec<String>>, StoreError> {
    let mut ids: HashMap<String, String> = HashMap::with_capacity(orders.len());
    let kind = tx.kind();
    for chunk in orders.chunks(chunk_rows(15)) {
        let sql = format!(
            "INSERT INTO paper_orders (account, client_order_id, symbol, side, order_type, quantity, limit_price, stop_price, \
             oco_group, status, filled_quantity, avg_fill_price, reason, created_at, updated_at) VALUES {} \
             RETURNING id, client_order_id",
            values_clause(kind, chunk.len(), 15)
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
                    o.oco_group.clone().into(),
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
    orders
        .iter()
        .map(|r| {
            ids.remove(&r.request.client_order_id).ok_or_else(|| {
                StoreError::database("a stored paper order came back without its id")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Writes the new state of stored orders that moved; `false` when one of them is missing
/// (the save is then abandoned).
async fn update_orders(
    tx: &mut Tx,
    account: &str,
    updates: &[PaperOrderRecord],
) -> Result<bool, StoreError> {
    let kind = tx.kind();
    let mut changed = 0;
    for chunk in updates.chunks(chunk_rows(7)) {
        let sql = format!(
            "UPDATE paper_orders SET status = v.column3, filled_quantity = v.column4, \
             avg_fill_price = v.column5, reason = v.column6, updated_at = v.column7 \
             FROM (VALUES {}) AS v \
             WHERE paper_orders.account = v.column1 AND paper_orders.client_order_id = v.column2",
            values_clause(kind, chunk.len(), 7)
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|r| {
                [
                    account.into(),
                    r.request.client_order_id.as_str().into(),
                    r.status.as_str().into(),
                    r.filled_quantity.into(),
                    r.avg_fill_price.into(),
                    r.reason.clone().into(),
                    r.at.into(),
                ]
            })
            .collect();
        changed += tx.execute(&sql, &args).await.map_err(map_err)?;
    }
    Ok(changed == updates.len() as u64)
}

/// Writes the positions a decision changed.
async fn upsert_positions(
    tx: &mut Tx,
    account: &str,
    positions: &[(String, PaperPosition)],
) -> Result<(), StoreError> {
    let kind = tx.kind();
    for chunk in positions.chunks(chunk_rows(4)) {
        let sql = format!(
            "INSERT INTO paper_positions (account, symbol, quantity, avg_price) VALUES {} \
             ON CONFLICT (account, symbol) DO UPDATE SET quantity = excluded.quantity, avg_price = excluded.avg_price",
            values_clause(kind, chunk.len(), 4)
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|(s, p)| {
                [
                    account.into(),
                    s.as_str().into(),
                    p.quantity.into(),
                    p.avg_price.into(),
                ]
            })
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

fn position_from(r: &Row) -> Result<PaperPosition, StoreError> {
    Ok(PaperPosition {
        quantity: r.dec("quantity")?,
        avg_price: r.dec("avg_price")?,
    })
}

fn quote_from(r: &Row) -> Result<Quote, StoreError> {
    Ok(Quote {
        symbol: r.text("symbol")?,
        price: r.dec("price")?,
        at: r.time("at")?,
    })
}

fn stored_order_from(r: &Row) -> Result<StoredPaperOrder, StoreError> {
    let status = r.text("status")?;
    let order_type = r.text("order_type")?;
    Ok(StoredPaperOrder {
        broker_order_id: format!("paper-{}", r.i64("id")?),
        record: PaperOrderRecord {
            request: OrderRequest {
                client_order_id: r.text("client_order_id")?,
                symbol: r.text("symbol")?,
                side: side(&r.text("side")?)?,
                order_type: OrderType::parse(&order_type)
                    .ok_or_else(|| bad_value("paper order type", &order_type))?,
                quantity: r.dec("quantity")?,
                limit_price: r.opt_dec("limit_price")?,
                stop_price: r.opt_dec("stop_price")?,
                oco_group: r.opt_text("oco_group")?,
                attached_exits: None,
            },
            status: OrderStatus::parse(&status)
                .ok_or_else(|| bad_value("paper order status", &status))?,
            filled_quantity: r.dec("filled_quantity")?,
            avg_fill_price: r.opt_dec("avg_fill_price")?,
            reason: r.opt_text("reason")?,
            at: r.time("updated_at")?,
        },
    })
}
