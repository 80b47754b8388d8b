//! `tradewarden prices set|import`: quotes for every broker that takes them.

use crate::app::{App, read_input_tracked};
use crate::failure::{Failure, store_failed};
use crate::out;
use crate::progress::{Progress, Unit};
use crate::quotes::{parse_prices_csv, parse_quote};

/// The `prices` subcommands.
pub use crate::cli::PricesArgs as Args;

/// Records the quotes and says how many accounts or rows it took.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    match args {
        Args::Set { symbol, price } => {
            let quote =
                parse_quote(&symbol, &price, None, app.clock.now()).map_err(|e| {
                    Failure::Input(format!(
                        "bad quote: {e} — give a symbol and a decimal price greater than 0, e.g. \"prices set AAPL 190.10\""
                    ))
                })?;
            let accounts = app
                .manager
                .record_quotes(std::slice::from_ref(&quote))
                .await
                .map_err(|e| store_failed("storing the quote", e))?;
            out::stdout(&format!(
                "{} {} quoted for {} paper account(s)\n",
                quote.symbol,
                price.trim(),
                accounts.len()
            ));
        }
        Args::Import { file } => {
            let progress = Progress::start("prices import", Unit::Spinner, 0);
            let text = read_input_tracked(&file, Some(&progress))?;
            let quotes = parse_prices_csv(&text, app.clock.now())?;
            progress.phase(
                Unit::Spinner,
                0,
                &format!("storing {} quotes", quotes.len()),
            );
            let stored = app.manager.record_quotes(&quotes).await;
            progress.finish();
            stored.map_err(|e| store_failed("storing the quotes", e))?;
            out::stdout(&format!("{{\"imported\": {}}}\n", quotes.len()));
        }
    }
    Ok(())
}
