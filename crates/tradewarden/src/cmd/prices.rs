//! `tradewarden prices set|import`: quotes for every broker that takes them.

use crate::app::{App, read_input_tracked};
use crate::failure::{Failure, store_failed};
use crate::out;
use crate::progress::{Progress, Unit};
use crate::quotes::{parse_prices_csv, parse_quote};

/// The `prices` subcommands.
pub use crate::cli::PricesArgs as Args;

/// Records the quotes and says how many accounts or rows it took, and how many stored
/// quotes that changed (a quote older than the stored one changes nothing).
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
            let changed = accounts.iter().filter(|(_, n)| *n > 0).count();
            out::stdout(&format!(
                "{} {} {}\n",
                quote.symbol,
                price.trim(),
                quoted_for(accounts.len(), changed)
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
            let accounts = stored.map_err(|e| store_failed("storing the quotes", e))?;
            let changed: usize = accounts.iter().map(|(_, n)| n).sum();
            out::stdout(&format!(
                "{{\"imported\": {}, \"changed\": {changed}}}\n",
                quotes.len()
            ));
        }
    }
    Ok(())
}

/// `quoted for N paper account(s)`, saying how many changed when some did not.
fn quoted_for(accounts: usize, changed: usize) -> String {
    let mut s = format!("quoted for {accounts} paper account(s)");
    if changed < accounts {
        s.push_str(&format!(
            " ({changed} changed; a newer quote is already stored for the others)"
        ));
    }
    s
}
