//! `tradewarden prices set|import`: quotes for every broker that takes them.

use crate::app::{App, read_input};
use crate::failure::{Failure, runtime};
use crate::out;
use crate::quotes::{parse_prices_csv, parse_quote};

/// The `prices` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Quote one symbol now.
    Set {
        /// The symbol.
        symbol: String,
        /// The price (a decimal greater than 0).
        price: String,
    },
    /// Quote from a CSV file: `symbol,price[,time]`, header optional.
    Import {
        /// The CSV file, or `-`.
        file: String,
    },
}

/// Records the quotes and says how many accounts or rows it took, and how many stored
/// quotes that changed (a quote older than the stored one changes nothing).
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    match args {
        Args::Set { symbol, price } => {
            let quote =
                parse_quote(&symbol, &price, None, app.clock.now()).map_err(Failure::Input)?;
            let accounts = app
                .manager
                .record_quotes(std::slice::from_ref(&quote))
                .await
                .map_err(runtime)?;
            let changed = accounts.iter().filter(|(_, n)| *n > 0).count();
            out::stdout(&format!(
                "{} {} {}\n",
                quote.symbol,
                price.trim(),
                quoted_for(accounts.len(), changed)
            ));
        }
        Args::Import { file } => {
            let text = read_input(&file)?;
            let quotes = parse_prices_csv(&text, app.clock.now())?;
            let accounts = app.manager.record_quotes(&quotes).await.map_err(runtime)?;
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
