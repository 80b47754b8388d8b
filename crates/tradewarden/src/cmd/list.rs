//! `tradewarden transactions|orders|outcomes`: listings, as a table or JSON, with typed
//! filters (a `--status` that can never match is refused by the parser, exit 2).

use tradewarden_domain::{OrderStatus, OutcomeKind, TransactionStatus};
use tradewarden_engine::ports::ListFilter;

use crate::app::{App, print_json};
use crate::failure::{Failure, store_failed};
use crate::{out, output};

/// What every listing takes.
pub use crate::cli::ListArgs as Common;
pub use crate::cli::{OrdersArgs, OutcomesArgs, TransactionsArgs};

fn filter(
    common: &Common,
    status: Option<&'static str>,
    recommendation_id: Option<i64>,
) -> ListFilter {
    ListFilter {
        expert_id: common.expert,
        status: status.map(str::to_string),
        recommendation_id,
        ..ListFilter::default()
    }
}

/// Lists transactions.
pub async fn transactions(args: TransactionsArgs, app: &App) -> Result<(), Failure> {
    let f = filter(
        &args.common,
        args.status.map(TransactionStatus::as_str),
        None,
    );
    let rows = app
        .queries()
        .transactions(&f)
        .await
        .map_err(|e| store_failed("listing transactions", e))?;
    if args.common.json {
        print_json(&rows)
    } else {
        out::stdout(&output::transactions_table(
            &rows,
            &output::TableOpts::for_stdout(args.common.wide),
        ));
        Ok(())
    }
}

/// Lists orders.
pub async fn orders(args: OrdersArgs, app: &App) -> Result<(), Failure> {
    let f = filter(&args.common, args.status.map(OrderStatus::as_str), None);
    let rows = app
        .queries()
        .orders(&f)
        .await
        .map_err(|e| store_failed("listing orders", e))?;
    if args.common.json {
        print_json(&rows)
    } else {
        out::stdout(&output::orders_table(
            &rows,
            &output::TableOpts::for_stdout(args.common.wide),
        ));
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
    let rows = app
        .queries()
        .outcomes(&f)
        .await
        .map_err(|e| store_failed("listing outcomes", e))?;
    if args.common.json {
        print_json(&rows)
    } else {
        out::stdout(&output::outcomes_table(
            &rows,
            &output::TableOpts::for_stdout(args.common.wide),
        ));
        Ok(())
    }
}
