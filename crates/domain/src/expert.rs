//! Experts: their settings and their share of the account (balance maths, reference §1.3).

use std::collections::HashMap;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::Serialize;

use crate::money::percent_of;
use crate::transaction::ActivePosition;

/// An expert's settings. Defaults are the original's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expert {
    pub id: i64,
    pub name: String,
    /// The account name its orders go to.
    pub account: String,
    pub enabled: bool,
    /// Its share of the account balance, in percent.
    pub virtual_equity_percent: Decimal,
    pub enable_buy: bool,
    pub enable_sell: bool,
    pub allow_automated_trade_opening: bool,
    pub allow_automated_trade_modification: bool,
    /// Per-symbol notional ceiling, in percent of the available balance.
    pub max_virtual_equity_per_instrument_percent: Decimal,
    pub enter_market_ruleset: Option<String>,
    pub open_positions_ruleset: Option<String>,
}

impl Expert {
    /// An expert with the original's defaults.
    pub fn with_defaults(id: i64, name: &str, account: &str) -> Self {
        Expert {
            id,
            name: name.to_string(),
            account: account.to_string(),
            enabled: true,
            virtual_equity_percent: dec!(100),
            enable_buy: true,
            enable_sell: false,
            allow_automated_trade_opening: false,
            allow_automated_trade_modification: false,
            max_virtual_equity_per_instrument_percent: dec!(10),
            enter_market_ruleset: None,
            open_positions_ruleset: None,
        }
    }
}

/// An expert's balances at the start of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExpertBalance {
    /// account balance × virtual_equity_percent / 100.
    pub virtual_balance: Decimal,
    /// What the expert's WAITING/OPENED transactions hold, plus their unrealised losses.
    pub used: Decimal,
    /// virtual − used, clamped to [0, account cash].
    pub available: Decimal,
}

impl ExpertBalance {
    /// The balance maths of reference §1.3. `quotes` marks open positions to market so an
    /// unrealised loss counts as used.
    pub fn compute(
        account_balance: Decimal,
        account_cash: Decimal,
        virtual_equity_percent: Decimal,
        positions: &[ActivePosition],
        quotes: &HashMap<String, Decimal>,
    ) -> Self {
        let virtual_balance = percent_of(account_balance, virtual_equity_percent);
        let used: Decimal = positions
            .iter()
            .map(|p| {
                let held = p.notional();
                let loss = quotes
                    .get(&p.symbol)
                    .map(|q| {
                        let pnl = match p.side {
                            crate::Side::Buy => (*q - p.price) * p.quantity,
                            crate::Side::Sell => (p.price - *q) * p.quantity,
                        };
                        (-pnl).max(Decimal::ZERO)
                    })
                    .unwrap_or_default();
                held + loss
            })
            .sum();
        let available = (virtual_balance - used)
            .min(account_cash)
            .max(Decimal::ZERO);
        ExpertBalance {
            virtual_balance,
            used,
            available,
        }
    }

    /// The equity gate: available must be at least `threshold_percent` of the virtual balance.
    pub fn has_sufficient_equity(&self, threshold_percent: Decimal) -> bool {
        self.available >= percent_of(self.virtual_balance, threshold_percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Side, TransactionStatus};

    fn pos(symbol: &str, qty: Decimal, price: Decimal) -> ActivePosition {
        ActivePosition {
            transaction_id: 1,
            symbol: symbol.into(),
            side: Side::Buy,
            status: TransactionStatus::Opened,
            quantity: qty,
            price,
        }
    }

    #[test]
    fn balance_table() {
        let q: HashMap<String, Decimal> = [("A".to_string(), dec!(90))].into();
        // (balance, cash, vep, positions, available)
        let cases = [
            (dec!(100000), dec!(100000), dec!(100), vec![], dec!(100000)),
            (dec!(100000), dec!(100000), dec!(50), vec![], dec!(50000)),
            // 10 × 100 held, marked at 90: 100 unrealised loss counts too.
            (
                dec!(100000),
                dec!(100000),
                dec!(10),
                vec![pos("A", dec!(10), dec!(100))],
                dec!(8900),
            ),
            // clamped to cash
            (dec!(100000), dec!(3000), dec!(100), vec![], dec!(3000)),
            // never negative
            (
                dec!(1000),
                dec!(1000),
                dec!(100),
                vec![pos("B", dec!(20), dec!(100))],
                dec!(0),
            ),
        ];
        for (bal, cash, vep, positions, want) in cases {
            let b = ExpertBalance::compute(bal, cash, vep, &positions, &q);
            assert_eq!(b.available, want, "{bal} {cash} {vep} {positions:?}");
        }
    }

    #[test]
    fn equity_gate() {
        let b = ExpertBalance {
            virtual_balance: dec!(1000),
            used: dec!(960),
            available: dec!(40),
        };
        assert!(!b.has_sufficient_equity(dec!(5)));
        let b = ExpertBalance {
            available: dec!(50),
            ..b
        };
        assert!(b.has_sufficient_equity(dec!(5)));
    }
}
