//! `tradewarden accounts`: each configured account as its broker holds it — cash, equity and
//! positions — as tables or JSON.

use rust_decimal::Decimal;
use serde::Serialize;
use tradewarden_engine::ports::{HeldPosition, Holdings};

use crate::app::{App, print_json};
use crate::failure::{Failure, runtime};
use crate::{out, output};

/// Arguments of `accounts`.
pub use crate::cli::AccountsArgs as Args;

/// One account as `accounts` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountView {
    pub name: String,
    /// The broker's kind, as configured (`paper`).
    pub broker: String,
    pub cash: Decimal,
    /// Cash plus the positions at their latest quote.
    pub equity: Decimal,
    pub positions: Vec<PositionView>,
}

/// One position of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PositionView {
    pub symbol: String,
    /// Signed: negative is short.
    pub quantity: Decimal,
    /// `null` when the broker does not report it.
    pub avg_price: Option<Decimal>,
    /// `null` while the symbol has no quote.
    pub last_price: Option<Decimal>,
    /// `(last_price − avg_price) × quantity`; `null` when either is unknown.
    pub unrealized_pnl: Option<Decimal>,
}

impl AccountView {
    /// The view of account `name` on a `broker` holding `holdings`; amounts without trailing
    /// zeros.
    pub fn new(name: &str, broker: &str, holdings: &Holdings) -> AccountView {
        AccountView {
            name: name.to_string(),
            broker: broker.to_string(),
            cash: holdings.cash.normalize(),
            equity: holdings.equity().normalize(),
            positions: holdings.positions.iter().map(PositionView::new).collect(),
        }
    }
}

impl PositionView {
    fn new(p: &HeldPosition) -> PositionView {
        PositionView {
            symbol: p.symbol.clone(),
            quantity: p.quantity.normalize(),
            avg_price: p.avg_price.map(|d| d.normalize()),
            last_price: p.last_price.map(|d| d.normalize()),
            unrealized_pnl: p.unrealized_pnl().map(|d| d.normalize()),
        }
    }
}

/// Asks every account's broker (or only account `only`'s) for its holdings, accounts by
/// name.
pub async fn views(app: &App, only: Option<&str>) -> Result<Vec<AccountView>, Failure> {
    let mut views = Vec::with_capacity(app.brokers.len());
    for (name, wired) in &app.brokers {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let holdings = wired
            .broker
            .holdings()
            .await
            .map_err(|e| runtime(format!("reading account {name} from its broker: {e}")))?;
        views.push(AccountView::new(name, wired.kind, &holdings));
    }
    Ok(views)
}

/// Asks every account's broker for its holdings and prints them, accounts by name.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let views = views(app, None).await?;
    if args.json {
        return print_json(&views);
    }
    out::stdout(&output::accounts_tables(
        &views,
        &output::TableOpts::for_stdout(false),
    ));
    Ok(())
}
