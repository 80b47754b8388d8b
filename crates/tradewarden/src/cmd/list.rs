//! `tradewarden transactions|orders|outcomes`: listings, as a table or JSON, with typed
//! filters (a `--status` that can never match is refused by the parser, exit 2).

use clap::builder::{PossibleValuesParser, TypedValueParser};
use tradewarden_domain::{OrderStatus, OutcomeKind, TransactionStatus};
use tradewarden_engine::ports::ListFilter;

use crate::app::{App, print_json};
use crate::config;
use crate::failure::{Failure, runtime};
use crate::{out, output};

/// A `--status` parser over a status enum's wire names, any case.
fn status_parser<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(all.iter().map(|s| name(*s))).try_map(move |s: String| {
        all.iter()
            .copied()
            .find(|v| name(*v).eq_ignore_ascii_case(&s))
            .ok_or_else(|| format!("unknown status {s:?}"))
    })
}

fn transaction_status() -> impl TypedValueParser<Value = TransactionStatus> {
    status_parser(&TransactionStatus::ALL, TransactionStatus::as_str)
}

fn order_status() -> impl TypedValueParser<Value = OrderStatus> {
    status_parser(&OrderStatus::ALL, OrderStatus::as_str)
}

fn outcome_kind() -> impl TypedValueParser<Value = OutcomeKind> {
    status_parser(&OutcomeKind::ALL, OutcomeKind::as_str)
}

/// What every listing takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Only this expert's rows.
    #[arg(long, value_parser = clap::value_parser!(i64).range(config::EXPERT_ID))]
    pub expert: Option<i64>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `transactions`.
#[derive(Debug, clap::Args)]
pub struct TransactionsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only rows in this status.
    #[arg(long, ignore_case = true, value_parser = transaction_status())]
    pub status: Option<TransactionStatus>,
}

/// Arguments of `orders`.
#[derive(Debug, clap::Args)]
pub struct OrdersArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only rows in this status.
    #[arg(long, ignore_case = true, value_parser = order_status())]
    pub status: Option<OrderStatus>,
}

/// Arguments of `outcomes`.
#[derive(Debug, clap::Args)]
pub struct OutcomesArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only records of this outcome.
    #[arg(long, ignore_case = true, value_parser = outcome_kind())]
    pub status: Option<OutcomeKind>,
    /// Only the records of this recommendation.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub recommendation: Option<i64>,
}

fn filter(
    common: &Common,
    status: Option<&'static str>,
    recommendation_id: Option<i64>,
) -> ListFilter {
    ListFilter {
        expert_id: common.expert,
        status: status.map(str::to_string),
        recommendation_id,
    }
}

/// Lists transactions.
pub async fn transactions(args: TransactionsArgs, app: &App) -> Result<(), Failure> {
    let f = filter(
        &args.common,
        args.status.map(TransactionStatus::as_str),
        None,
    );
    let rows = app.queries().transactions(&f).await.map_err(runtime)?;
    if args.common.json {
        print_json(&rows)
    } else {
        out::stdout(&output::transactions_table(&rows));
        Ok(())
    }
}

/// Lists orders.
pub async fn orders(args: OrdersArgs, app: &App) -> Result<(), Failure> {
    let f = filter(&args.common, args.status.map(OrderStatus::as_str), None);
    let rows = app.queries().orders(&f).await.map_err(runtime)?;
    if args.common.json {
        print_json(&rows)
    } else {
        out::stdout(&output::orders_table(&rows));
        Ok(())
    }
}

/// Lists decision records.
pub async fn outcomes(args: OutcomesArgs, app: &App) -> Result<(), Failure> {
    let f = filter(
        &args.common,
        args.status.map(OutcomeKind::as_str),
        args.recommendation,
    );
    let rows = app.queries().outcomes(&f).await.map_err(runtime)?;
    if args.common.json {
        print_json(&rows)
    } else {
        out::stdout(&output::outcomes_table(&rows));
        Ok(())
    }
}
