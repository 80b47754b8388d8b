//! `increase_instrument_share` / `decrease_instrument_share` (reference §4.4): the order
//! that brings a position to a target share of the expert's virtual equity, in whole units.
//!
//! - Increase: the target is capped at `max_virtual_equity_per_instrument_percent`; the
//!   order is floor((target − held) / price) whole units, at most what the available
//!   balance buys, on the position's side.
//! - Decrease: floor((held − target) / price) whole units on the closing side, keeping at
//!   least one unit unless the target is 0 (then all of it: a close).
//!
//! Unlike the original (max(1, round(…))), a difference worth less than one unit is no
//! order: the position never overshoots its target. Nothing to do (already at or beyond the
//! target, less than one unit of difference, or not one unit affordable) is [`Unchanged`]
//! with the reason.

use rust_decimal::Decimal;

use crate::exits::Unchanged;
use crate::money::{Price, checked_div, checked_mul, checked_sub, try_percent_of};
use crate::order::Side;

/// What the share computation needs about the position and the expert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareInputs {
    /// The position's side.
    pub side: Side,
    /// Units held.
    pub quantity: Decimal,
    /// The latest quote.
    pub price: Price,
    /// The expert's virtual equity.
    pub virtual_equity: Decimal,
    /// `max_virtual_equity_per_instrument_percent`.
    pub max_instrument_percent: Decimal,
    /// The expert's available balance (what an increase may spend).
    pub available: Decimal,
}

/// The order a share action asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareOrder {
    pub side: Side,
    /// Whole units, at least 1.
    pub quantity: Decimal,
}

fn unchanged(reason: String) -> Unchanged {
    Unchanged { reason }
}

fn checked(e: crate::money::ArithmeticError) -> Unchanged {
    unchanged(e.to_string())
}

/// The held value and the target value (in account currency).
fn values(inp: &ShareInputs, target_percent: Decimal) -> Result<(Decimal, Decimal), Unchanged> {
    let held = checked_mul(inp.quantity, inp.price.get()).map_err(checked)?;
    let target = try_percent_of(inp.virtual_equity, target_percent).map_err(checked)?;
    Ok((held, target))
}

/// The whole units `amount` buys at the price (rounded down).
fn units(amount: Decimal, price: Price) -> Result<Decimal, Unchanged> {
    Ok(checked_div(amount, price.get()).map_err(checked)?.floor())
}

/// The order that grows the position toward `target_percent` of virtual equity.
pub fn increase_share(inp: &ShareInputs, target_percent: Decimal) -> Result<ShareOrder, Unchanged> {
    let percent = target_percent.min(inp.max_instrument_percent);
    let (held, target) = values(inp, percent)?;
    if target <= held {
        return Err(unchanged(format!(
            "the position ({}) is already at or above {}% of virtual equity ({})",
            held.round_dp(2),
            percent.normalize(),
            target.round_dp(2)
        )));
    }
    let wanted = units(checked_sub(target, held).map_err(checked)?, inp.price)?;
    if wanted < Decimal::ONE {
        return Err(unchanged(format!(
            "less than one unit at {} to reach {}% of virtual equity",
            inp.price,
            percent.normalize()
        )));
    }
    let affordable = checked_div(inp.available.max(Decimal::ZERO), inp.price.get())
        .map_err(checked)?
        .floor();
    let quantity = wanted.min(affordable);
    if quantity < Decimal::ONE {
        return Err(unchanged(format!(
            "not one unit affordable at {} with {} available",
            inp.price,
            inp.available.round_dp(2)
        )));
    }
    Ok(ShareOrder {
        side: inp.side,
        quantity,
    })
}

/// The order that shrinks the position toward `target_percent` of virtual equity.
pub fn decrease_share(inp: &ShareInputs, target_percent: Decimal) -> Result<ShareOrder, Unchanged> {
    let (held, target) = values(inp, target_percent)?;
    if held <= target {
        return Err(unchanged(format!(
            "the position ({}) is already at or below {}% of virtual equity ({})",
            held.round_dp(2),
            target_percent.normalize(),
            target.round_dp(2)
        )));
    }
    let quantity = if target_percent.is_zero() {
        inp.quantity
    } else {
        let keep_one = checked_sub(inp.quantity, Decimal::ONE).map_err(checked)?;
        units(checked_sub(held, target).map_err(checked)?, inp.price)?.min(keep_one)
    };
    if quantity < Decimal::ONE && !target_percent.is_zero() {
        return Err(unchanged(format!(
            "less than one unit ({}) to sell while keeping one",
            quantity.max(Decimal::ZERO)
        )));
    }
    let side = match inp.side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    };
    Ok(ShareOrder { side, quantity })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn inputs(side: Side, quantity: Decimal) -> ShareInputs {
        ShareInputs {
            side,
            quantity,
            price: Price::new(dec!(100)).unwrap(),
            virtual_equity: dec!(100000),
            max_instrument_percent: dec!(10),
            available: dec!(50000),
        }
    }

    /// `Ok((side, quantity))` or `Err(start of the reason)`.
    type Want = Result<(Side, Decimal), &'static str>;

    fn check(got: Result<ShareOrder, Unchanged>, want: Want, what: &str) {
        match (got, want) {
            (Ok(o), Ok((side, q))) => assert_eq!((o.side, o.quantity), (side, q), "{what}"),
            (Err(e), Err(start)) => assert!(e.reason.starts_with(start), "{what}: {e}"),
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn increase_table() {
        use Side::*;
        let poor = ShareInputs {
            available: dec!(250),
            ..inputs(Buy, dec!(10))
        };
        let broke = ShareInputs {
            available: dec!(50),
            ..inputs(Buy, dec!(10))
        };
        // (inputs, target %, expected)
        let cases: Vec<(ShareInputs, Decimal, Want)> = vec![
            // 10 units = 1000 = 1 %; 8 % = 8000 → 70 more, on the position's side
            (inputs(Buy, dec!(10)), dec!(8), Ok((Buy, dec!(70)))),
            (inputs(Sell, dec!(10)), dec!(8), Ok((Sell, dec!(70)))),
            // capped at the per-instrument maximum: 50 % → 10 % = 10000 → 90 more
            (inputs(Buy, dec!(10)), dec!(50), Ok((Buy, dec!(90)))),
            // whole units, rounded down: 1.0996 % = 1099.6 → 0.996 units → none
            (
                inputs(Buy, dec!(10)),
                dec!(1.0996),
                Err("less than one unit"),
            ),
            // 8.0999 % = 8099.9 → 70.999 more → 70
            (inputs(Buy, dec!(10)), dec!(8.0999), Ok((Buy, dec!(70)))),
            // limited by what the available balance buys
            (poor, dec!(8), Ok((Buy, dec!(2)))),
            (broke, dec!(8), Err("not one unit affordable")),
            // no equity: every holding is at or above its target
            (
                ShareInputs {
                    virtual_equity: dec!(0),
                    ..inputs(Buy, dec!(10))
                },
                dec!(8),
                Err("the position (1000) is already at or above 8%"),
            ),
            // a tiny equity: 8 % of 1000 = 80, less than one unit at 100
            (
                ShareInputs {
                    virtual_equity: dec!(1000),
                    ..inputs(Buy, dec!(0))
                },
                dec!(8),
                Err("less than one unit"),
            ),
            // a huge equity: bounded by what the available balance buys
            (
                ShareInputs {
                    virtual_equity: dec!(1000000000000),
                    ..inputs(Buy, dec!(10))
                },
                dec!(8),
                Ok((Buy, dec!(500))),
            ),
            // already there
            (
                inputs(Buy, dec!(80)),
                dec!(8),
                Err("the position (8000) is already at or above 8%"),
            ),
        ];
        for (inp, target, want) in cases {
            check(
                increase_share(&inp, target),
                want,
                &format!("{inp:?} {target}"),
            );
        }
    }

    #[test]
    fn decrease_table() {
        use Side::*;
        let cases: Vec<(ShareInputs, Decimal, Want)> = vec![
            // 80 units = 8 %; to 3 % = 3000 → sell 50 (buy back 50 on a short)
            (inputs(Buy, dec!(80)), dec!(3), Ok((Sell, dec!(50)))),
            (inputs(Sell, dec!(80)), dec!(3), Ok((Buy, dec!(50)))),
            // keeps one unit unless the target is 0
            (inputs(Buy, dec!(80)), dec!(0.001), Ok((Sell, dec!(79)))),
            (inputs(Buy, dec!(80)), dec!(0), Ok((Sell, dec!(80)))),
            (inputs(Buy, dec!(1)), dec!(0.01), Err("less than one unit")),
            // rounded down: 8 % → 2.95 % = 2950 → 50.5 → 50
            (inputs(Buy, dec!(80)), dec!(2.95), Ok((Sell, dec!(50)))),
            (
                inputs(Buy, dec!(10)),
                dec!(8),
                Err("the position (1000) is already at or below 8%"),
            ),
        ];
        for (inp, target, want) in cases {
            check(
                decrease_share(&inp, target),
                want,
                &format!("{inp:?} {target}"),
            );
        }
    }

    #[test]
    fn extreme_figures_never_panic() {
        let mut inp = inputs(Side::Buy, dec!(1000000000));
        inp.price = Price::new(dec!(1000000000)).unwrap();
        inp.virtual_equity = Decimal::MAX;
        inp.available = Decimal::MAX;
        for target in [dec!(0), dec!(100), Decimal::MAX] {
            let _ = increase_share(&inp, target);
            let _ = decrease_share(&inp, target);
        }
    }
}
