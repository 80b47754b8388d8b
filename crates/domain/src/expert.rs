//! Experts: their settings and their share of the account (balance maths, reference §1.3).

use std::collections::HashMap;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::Serialize;

use crate::exits::ExitSettings;
use crate::money::{
    ArithmeticError, checked_add, checked_mul, checked_sub, percent_of, try_percent_of,
};
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
    /// The floors of its take profits and stops, and its safeguard stop.
    pub exits: ExitSettings,
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
            exits: ExitSettings::default(),
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
    /// unrealised loss counts as used. Every step is checked: balances, quantities and
    /// quotes come from outside.
    pub fn try_compute(
        account_balance: Decimal,
        account_cash: Decimal,
        virtual_equity_percent: Decimal,
        positions: &[ActivePosition],
        quotes: &HashMap<String, Decimal>,
    ) -> Result<Self, ArithmeticError> {
        let virtual_balance = try_percent_of(account_balance, virtual_equity_percent)?;
        let mut used = Decimal::ZERO;
        for p in positions {
            let loss = match quotes.get(&p.symbol) {
                Some(q) => unrealised_loss(p, *q)?,
                None => Decimal::ZERO,
            };
            used = checked_add(used, checked_add(p.try_notional()?, loss)?)?;
        }
        let available = checked_sub(virtual_balance, used)?
            .min(account_cash)
            .max(Decimal::ZERO);
        Ok(ExpertBalance {
            virtual_balance,
            used,
            available,
        })
    }

    /// [`ExpertBalance::try_compute`], failing closed: when a figure overflows, the expert
    /// counts as having used everything and has nothing available, so nothing is sized
    /// from a balance that could not be computed.
    pub fn compute(
        account_balance: Decimal,
        account_cash: Decimal,
        virtual_equity_percent: Decimal,
        positions: &[ActivePosition],
        quotes: &HashMap<String, Decimal>,
    ) -> Self {
        Self::try_compute(
            account_balance,
            account_cash,
            virtual_equity_percent,
            positions,
            quotes,
        )
        .unwrap_or(ExpertBalance {
            virtual_balance: percent_of(account_balance, virtual_equity_percent),
            used: Decimal::MAX,
            available: Decimal::ZERO,
        })
    }

    /// The equity gate: available must be at least `threshold_percent` of the virtual balance.
    /// A threshold that cannot be computed is not met (fail closed).
    pub fn has_sufficient_equity(&self, threshold_percent: Decimal) -> bool {
        try_percent_of(self.virtual_balance, threshold_percent)
            .is_ok_and(|needed| self.available >= needed)
    }
}

/// What a position has lost at quote `q` (never negative).
fn unrealised_loss(p: &ActivePosition, q: Decimal) -> Result<Decimal, ArithmeticError> {
    let pnl = match p.side {
        crate::Side::Buy => checked_mul(checked_sub(q, p.price)?, p.quantity)?,
        crate::Side::Sell => checked_mul(checked_sub(p.price, q)?, p.quantity)?,
    };
    Ok((-pnl).max(Decimal::ZERO))
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

    #[test]
    fn extreme_balances_fail_closed() {
        // (balance, vep, position quantity, position price, quote, overflows). Catches: an
        // unchecked multiplication or sum in the balance maths.
        let m = Decimal::MAX;
        let cases = [
            (m, dec!(100), dec!(1), dec!(1), dec!(1), false),
            (m, dec!(101), dec!(1), dec!(1), dec!(1), true),
            (dec!(1000), dec!(100), m, dec!(2), dec!(2), true),
            (dec!(1000), dec!(100), m, dec!(1), dec!(0), true),
            (dec!(1000), dec!(100), dec!(1), m, Decimal::MIN, true),
            (dec!(1000), m, dec!(1), dec!(1), dec!(1), true),
        ];
        for (bal, vep, qty, price, quote, overflows) in cases {
            let positions = [pos("A", qty, price)];
            let quotes: HashMap<String, Decimal> = [("A".to_string(), quote)].into();
            let tried = ExpertBalance::try_compute(bal, bal, vep, &positions, &quotes);
            assert_eq!(
                tried.is_err(),
                overflows,
                "{bal} {vep} {qty} {price} {quote}"
            );
            let b = ExpertBalance::compute(bal, bal, vep, &positions, &quotes);
            if overflows {
                assert_eq!(b.available, Decimal::ZERO);
            }
        }
        let b = ExpertBalance {
            virtual_balance: m,
            used: dec!(0),
            available: m,
        };
        assert!(!b.has_sufficient_equity(m));
    }
}
