//! Exit prices: where a rule's `adjust_take_profit` or `adjust_stop_loss` puts a position's
//! exit, with the original's floors and ratchet, and the safeguard stop every entry without
//! one gets (reference §4.4, §5 item 8).
//!
//! - **Direction** comes from the position's side: on a long a take profit is above and a
//!   stop below; mirrored on a short.
//! - **Take-profit floor**: a take profit closer than `min_take_profit_percent` to the entry
//!   is pushed out to exactly that distance.
//! - **Stop floor**: a stop closer than `min_tp_sl_percent` to the current price on the
//!   losing side (or beyond it) is pushed out to exactly that distance.
//! - **Ratchet**: a rule never loosens a stop; a long stop only moves up, a short stop only
//!   down. Such a request is [`Unchanged`], with the reason for the outcome's detail.
//! - **Ticks**: computed prices are rounded to the cent, or to 0.0001 below one unit of
//!   currency (the sub-penny tick exchanges quote there), always away from the position's
//!   price, so rounding never brings an exit closer.
//!
//! Every step is checked arithmetic on validated [`Price`]s: a price that cannot be computed,
//! or comes out at or below zero, is [`Unchanged`] with a reason, never a panic.

use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;
use serde::Serialize;

use crate::money::{MAX_PRICE, MIN_PRICE, Price, checked_add, checked_sub, try_percent_of};
use crate::order::Side;
use crate::rules::{ExitReference, ExitTarget};

/// The expert settings that bound exits (`[[experts]]` keys of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExitSettings {
    /// A take profit is at least this far from the entry, in percent (default 2).
    pub min_take_profit_percent: Decimal,
    /// A stop is at least this far from the current price on the losing side, in percent
    /// (default 3).
    pub min_tp_sl_percent: Decimal,
    /// The safeguard stop's distance from the entry, in percent (default 7; 0 turns it off).
    pub min_stop_loss_percent: Decimal,
}

impl Default for ExitSettings {
    /// The original's defaults: 2, 3 and 7 percent.
    fn default() -> Self {
        ExitSettings {
            min_take_profit_percent: dec!(2),
            min_tp_sl_percent: dec!(3),
            min_stop_loss_percent: dec!(7),
        }
    }
}

/// What an exit computation knows about the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitPosition {
    /// BUY is long, SELL short.
    pub side: Side,
    /// The entry's price: its limit, else its fill; `None` while neither is known.
    pub entry_price: Option<Price>,
    /// The latest quote.
    pub current_price: Option<Price>,
    /// The recommendation's target price.
    pub expert_target: Option<Price>,
    /// The take profit in force, if any.
    pub take_profit: Option<Price>,
    /// The stop loss in force, if any.
    pub stop_loss: Option<Price>,
}

/// A computed exit price, with the floor that moved it, if one did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitPrice {
    pub price: Price,
    /// `pushed out to the 2% take-profit floor (asked 100.5)`.
    pub note: Option<String>,
}

/// Why a request changes nothing: a sentence for the outcome's detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unchanged {
    pub reason: String,
}

fn unchanged(reason: String) -> Unchanged {
    Unchanged { reason }
}

/// Which way a computed price is rounded: up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Away {
    Up,
    Down,
}

impl Away {
    /// Away from the position's price: a long's take profit and a short's stop are above.
    fn of(side: Side, is_take_profit: bool) -> Away {
        match (side, is_take_profit) {
            (Side::Buy, true) | (Side::Sell, false) => Away::Up,
            (Side::Buy, false) | (Side::Sell, true) => Away::Down,
        }
    }
}

/// `value` on the tick grid (0.01, or 0.0001 below 1), rounded `away`.
fn to_tick(value: Decimal, away: Away) -> Decimal {
    let dp = if value.abs() >= Decimal::ONE { 2 } else { 4 };
    let strategy = match away {
        Away::Up => RoundingStrategy::ToPositiveInfinity,
        Away::Down => RoundingStrategy::ToNegativeInfinity,
    };
    value.round_dp_with_strategy(dp, strategy)
}

/// `base` moved `percent` in the position's profit direction (negative: against it), on the
/// tick grid.
fn moved(side: Side, base: Price, percent: Decimal, away: Away) -> Result<Decimal, Unchanged> {
    let step = try_percent_of(base.get(), percent).map_err(|e| unchanged(e.to_string()))?;
    let raw = match side {
        Side::Buy => checked_add(base.get(), step),
        Side::Sell => checked_sub(base.get(), step),
    }
    .map_err(|e| unchanged(e.to_string()))?;
    Ok(to_tick(raw, away))
}

/// A computed figure as a price, or why it is none.
fn as_price(what: &str, value: Decimal) -> Result<Price, Unchanged> {
    Price::new(value).map_err(|_| {
        unchanged(format!(
            "the {what} would be {}, outside the prices accepted ({MIN_PRICE} to {MAX_PRICE})",
            value.normalize()
        ))
    })
}

/// The price a [`ExitReference`] names.
fn reference_price(pos: &ExitPosition, reference: ExitReference) -> Result<Price, Unchanged> {
    let price = match reference {
        ExitReference::OrderOpenPrice => pos.entry_price.or(pos.current_price),
        ExitReference::CurrentPrice => pos.current_price,
        ExitReference::ExpertTargetPrice => pos.expert_target,
    };
    price.ok_or_else(|| unchanged(format!("no {reference} is known")))
}

/// What the target asks for, before floors: a price, on the tick grid when computed.
fn requested(
    pos: &ExitPosition,
    target: &ExitTarget,
    is_take_profit: bool,
) -> Result<Decimal, Unchanged> {
    match target {
        ExitTarget::Price(p) => Ok(p.get()),
        ExitTarget::Percent { reference, percent } => {
            let base = reference_price(pos, *reference)?;
            moved(pos.side, base, *percent, Away::of(pos.side, is_take_profit))
        }
    }
}

/// Where `adjust_take_profit` puts the take profit: the request, pushed out to
/// `min_take_profit_percent` from the entry (else the current price) when closer.
pub fn take_profit_price(
    pos: &ExitPosition,
    target: &ExitTarget,
    settings: &ExitSettings,
) -> Result<ExitPrice, Unchanged> {
    let asked = requested(pos, target, true)?;
    let mut note = None;
    let mut price = asked;
    if let Some(entry) = pos.entry_price.or(pos.current_price) {
        let m = settings.min_take_profit_percent;
        let floor = moved(pos.side, entry, m, Away::of(pos.side, true))?;
        let too_close = match pos.side {
            Side::Buy => asked < floor,
            Side::Sell => asked > floor,
        };
        if too_close {
            price = floor;
            note = Some(format!(
                "pushed out to the {}% take-profit floor from {entry} (asked {asked})",
                m.normalize()
            ));
        }
    }
    let price = as_price("take profit", price)?;
    if pos.take_profit == Some(price) {
        return Err(unchanged(format!("the take profit is already {price}")));
    }
    Ok(ExitPrice { price, note })
}

/// Where `adjust_stop_loss` puts the stop: the request, pushed out to `min_tp_sl_percent`
/// from the current price (else the entry) when closer on the losing side or beyond it,
/// and refused when it would loosen the stop in force (the ratchet).
pub fn stop_loss_price(
    pos: &ExitPosition,
    target: &ExitTarget,
    settings: &ExitSettings,
) -> Result<ExitPrice, Unchanged> {
    let asked = requested(pos, target, false)?;
    let mut note = None;
    let mut price = asked;
    if let Some(base) = pos.current_price.or(pos.entry_price) {
        let m = settings.min_tp_sl_percent;
        let limit = moved(pos.side, base, -m, Away::of(pos.side, false))?;
        let too_close = match pos.side {
            Side::Buy => asked > limit,
            Side::Sell => asked < limit,
        };
        if too_close {
            price = limit;
            note = Some(format!(
                "pushed out to the {}% stop floor from {base} (asked {asked})",
                m.normalize()
            ));
        }
    }
    let price = as_price("stop loss", price)?;
    ratchet(pos, price)?;
    Ok(ExitPrice { price, note })
}

/// Refuses a stop that would loosen the one in force, or repeats it.
fn ratchet(pos: &ExitPosition, new: Price) -> Result<(), Unchanged> {
    let Some(old) = pos.stop_loss else {
        return Ok(());
    };
    let (loosens, way) = match pos.side {
        Side::Buy => (new < old, "up"),
        Side::Sell => (new > old, "down"),
    };
    if loosens {
        return Err(unchanged(format!(
            "a stop is never loosened: a {} stop only moves {way}, so it stays {old} (asked {new})",
            if pos.side == Side::Buy {
                "long's"
            } else {
                "short's"
            }
        )));
    }
    if new == old {
        return Err(unchanged(format!("the stop loss is already {old}")));
    }
    Ok(())
}

/// The safeguard stop of an entry whose ruleset gives none: `percent` below a long's entry
/// (above a short's), on the tick grid away from the entry. `Ok(None)` when `percent` is 0
/// (turned off); [`Unchanged`] when no positive price results.
pub fn safeguard_stop(
    side: Side,
    entry_price: Price,
    percent: Decimal,
) -> Result<Option<Price>, Unchanged> {
    if percent.is_zero() {
        return Ok(None);
    }
    let stop = moved(side, entry_price, -percent, Away::of(side, false))?;
    as_price("safeguard stop", stop).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(d: Decimal) -> Price {
        Price::new(d).unwrap()
    }

    fn position(side: Side) -> ExitPosition {
        ExitPosition {
            side,
            entry_price: Some(p(dec!(100))),
            current_price: Some(p(dec!(100))),
            expert_target: Some(p(dec!(120))),
            take_profit: None,
            stop_loss: None,
        }
    }

    fn pct(reference: ExitReference, percent: Decimal) -> ExitTarget {
        ExitTarget::Percent { reference, percent }
    }

    /// `Ok(price)`, `Ok(price)` with a floor's note (`true`), or `Err(start of the reason)`.
    type Want = Result<(Decimal, bool), &'static str>;

    fn check(got: Result<ExitPrice, Unchanged>, want: Want, what: &str) {
        match (got, want) {
            (Ok(e), Ok((price, floored))) => {
                assert_eq!(e.price.get(), price, "{what}");
                assert_eq!(e.note.is_some(), floored, "{what}: {:?}", e.note);
            }
            (Err(e), Err(start)) => assert!(e.reason.starts_with(start), "{what}: {e}"),
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn take_profit_on_a_long_and_a_short() {
        use ExitReference::*;
        let s = ExitSettings::default();
        let long = position(Side::Buy);
        let short = position(Side::Sell);
        let at = |mut pos: ExitPosition, current: Decimal| {
            pos.current_price = Some(p(current));
            pos
        };
        let with_tp = |mut pos: ExitPosition, tp: Decimal| {
            pos.take_profit = Some(p(tp));
            pos
        };
        let no_entry = |mut pos: ExitPosition| {
            pos.entry_price = None;
            pos
        };
        // (position, target, expected)
        let cases: Vec<(ExitPosition, ExitTarget, Want)> = vec![
            // +10 % from the entry: above a long, below a short
            (long, pct(OrderOpenPrice, dec!(10)), Ok((dec!(110), false))),
            (short, pct(OrderOpenPrice, dec!(10)), Ok((dec!(90), false))),
            // from the current price
            (
                at(long, dec!(105)),
                pct(CurrentPrice, dec!(10)),
                Ok((dec!(115.5), false)),
            ),
            (
                at(short, dec!(95)),
                pct(CurrentPrice, dec!(10)),
                Ok((dec!(85.5), false)),
            ),
            // from the expert's target, −10 % (toward the entry)
            (
                long,
                pct(ExpertTargetPrice, dec!(-10)),
                Ok((dec!(108), false)),
            ),
            // order_open_price falls back to the current price before the entry is known
            (
                no_entry(at(long, dec!(50))),
                pct(OrderOpenPrice, dec!(10)),
                Ok((dec!(55), false)),
            ),
            // the floor: +1 % is closer than 2 % to the entry → 102 / 98
            (long, pct(OrderOpenPrice, dec!(1)), Ok((dec!(102), true))),
            (short, pct(OrderOpenPrice, dec!(1)), Ok((dec!(98), true))),
            // an absolute price on the wrong side of the entry is floored too
            (long, ExitTarget::Price(p(dec!(95))), Ok((dec!(102), true))),
            (short, ExitTarget::Price(p(dec!(105))), Ok((dec!(98), true))),
            (
                long,
                ExitTarget::Price(p(dec!(130.25))),
                Ok((dec!(130.25), false)),
            ),
            // rounding goes away from the entry: 100 × 1.10123 = 110.123 → 110.13 / 89.877 → 89.87
            (
                long,
                pct(OrderOpenPrice, dec!(10.123)),
                Ok((dec!(110.13), false)),
            ),
            (
                short,
                pct(OrderOpenPrice, dec!(10.123)),
                Ok((dec!(89.87), false)),
            ),
            // a short's take profit at or below zero is no price
            (
                short,
                pct(OrderOpenPrice, dec!(100)),
                Err("the take profit would be 0,"),
            ),
            (
                short,
                pct(OrderOpenPrice, dec!(250)),
                Err("the take profit would be -150"),
            ),
            // the same price again changes nothing
            (
                with_tp(long, dec!(110)),
                pct(OrderOpenPrice, dec!(10)),
                Err("the take profit is already 110"),
            ),
            // a missing reference changes nothing
            (
                ExitPosition {
                    expert_target: None,
                    ..long
                },
                pct(ExpertTargetPrice, dec!(1)),
                Err("no expert_target_price is known"),
            ),
            (
                ExitPosition {
                    current_price: None,
                    ..long
                },
                pct(CurrentPrice, dec!(1)),
                Err("no current_price is known"),
            ),
        ];
        for (pos, target, want) in cases {
            let what = format!("{:?} {target:?}", pos.side);
            check(take_profit_price(&pos, &target, &s), want, &what);
        }
    }

    #[test]
    fn stop_loss_floor_and_ratchet_on_a_long_and_a_short() {
        use ExitReference::*;
        let s = ExitSettings::default();
        let long = position(Side::Buy);
        let short = position(Side::Sell);
        let with = |mut pos: ExitPosition, current: Decimal, stop: Option<Decimal>| {
            pos.current_price = Some(p(current));
            pos.stop_loss = stop.map(p);
            pos
        };
        let cases: Vec<(ExitPosition, ExitTarget, Want)> = vec![
            // −5 % from the entry: below a long, above a short
            (long, pct(OrderOpenPrice, dec!(-5)), Ok((dec!(95), false))),
            (short, pct(OrderOpenPrice, dec!(-5)), Ok((dec!(105), false))),
            (
                long,
                ExitTarget::Price(p(dec!(95.5))),
                Ok((dec!(95.5), false)),
            ),
            // floor: −1 % is closer than 3 % to the current price → 97 / 103
            (long, pct(CurrentPrice, dec!(-1)), Ok((dec!(97), true))),
            (short, pct(CurrentPrice, dec!(-1)), Ok((dec!(103), true))),
            // a stop beyond the market (above a long's price) is pushed out below it
            (long, ExitTarget::Price(p(dec!(101))), Ok((dec!(97), true))),
            (short, ExitTarget::Price(p(dec!(99))), Ok((dec!(103), true))),
            // the floor follows the current price, not the entry: price rose to 120
            (
                with(long, dec!(120), None),
                pct(OrderOpenPrice, dec!(-5)),
                Ok((dec!(95), false)),
            ),
            (
                with(long, dec!(120), None),
                pct(CurrentPrice, dec!(-2)),
                Ok((dec!(116.4), true)),
            ),
            // ratchet: a long's stop moves up …
            (
                with(long, dec!(120), Some(dec!(95))),
                pct(CurrentPrice, dec!(-5)),
                Ok((dec!(114), false)),
            ),
            // … never down
            (
                with(long, dec!(120), Some(dec!(114))),
                pct(OrderOpenPrice, dec!(-5)),
                Err(
                    "a stop is never loosened: a long's stop only moves up, so it stays 114 (asked 95)",
                ),
            ),
            // a short's stop moves down, never up
            (
                with(short, dec!(80), Some(dec!(105))),
                pct(CurrentPrice, dec!(-5)),
                Ok((dec!(84), false)),
            ),
            (
                with(short, dec!(80), Some(dec!(84))),
                pct(OrderOpenPrice, dec!(-5)),
                Err(
                    "a stop is never loosened: a short's stop only moves down, so it stays 84 (asked 105)",
                ),
            ),
            // the floor can make a request loosen the stop: refused all the same
            (
                with(long, dec!(100), Some(dec!(98))),
                pct(CurrentPrice, dec!(-1)),
                Err("a stop is never loosened"),
            ),
            // the same stop again changes nothing
            (
                with(long, dec!(100), Some(dec!(95))),
                ExitTarget::Price(p(dec!(95))),
                Err("the stop loss is already 95"),
            ),
            // rounding goes away from the price: 100 × 0.94877 = 94.877 → 94.87; short 105.123 → 105.13
            (
                long,
                pct(OrderOpenPrice, dec!(-5.123)),
                Ok((dec!(94.87), false)),
            ),
            (
                short,
                pct(OrderOpenPrice, dec!(-5.123)),
                Ok((dec!(105.13), false)),
            ),
            // a long's stop at or below zero is no price
            (
                long,
                pct(OrderOpenPrice, dec!(-100)),
                Err("the stop loss would be 0,"),
            ),
        ];
        for (pos, target, want) in cases {
            let what = format!("{:?} {target:?} stop {:?}", pos.side, pos.stop_loss);
            check(stop_loss_price(&pos, &target, &s), want, &what);
        }
    }

    #[test]
    fn floors_follow_the_expert_settings() {
        use ExitReference::*;
        let long = position(Side::Buy);
        let off = ExitSettings {
            min_take_profit_percent: dec!(0),
            min_tp_sl_percent: dec!(0),
            min_stop_loss_percent: dec!(0),
        };
        let wide = ExitSettings {
            min_take_profit_percent: dec!(15),
            min_tp_sl_percent: dec!(10),
            min_stop_loss_percent: dec!(7),
        };
        let tp = pct(OrderOpenPrice, dec!(1));
        let sl = pct(CurrentPrice, dec!(-1));
        check(
            take_profit_price(&long, &tp, &off),
            Ok((dec!(101), false)),
            "tp off",
        );
        check(
            stop_loss_price(&long, &sl, &off),
            Ok((dec!(99), false)),
            "sl off",
        );
        check(
            take_profit_price(&long, &tp, &wide),
            Ok((dec!(115), true)),
            "tp 15",
        );
        check(
            stop_loss_price(&long, &sl, &wide),
            Ok((dec!(90), true)),
            "sl 10",
        );
    }

    #[test]
    fn safeguard_stop_table() {
        // (side, entry, percent, expected). Catches: the stop on the wrong side, a missing
        // rounding to the tick, 0 not turning it off.
        let cases: Vec<(Side, Decimal, Decimal, Result<Option<Decimal>, &str>)> = vec![
            (Side::Buy, dec!(100), dec!(7), Ok(Some(dec!(93)))),
            (Side::Sell, dec!(100), dec!(7), Ok(Some(dec!(107)))),
            // 187.25 × 0.93 = 174.1425 → 174.14 (down, away from a long's entry)
            (Side::Buy, dec!(187.25), dec!(7), Ok(Some(dec!(174.14)))),
            // 187.25 × 1.07 = 200.3575 → 200.36 (up, away from a short's entry)
            (Side::Sell, dec!(187.25), dec!(7), Ok(Some(dec!(200.36)))),
            // below one unit the tick is 0.0001: 0.5 × 0.93 = 0.465
            (Side::Buy, dec!(0.5), dec!(7), Ok(Some(dec!(0.465)))),
            (Side::Buy, dec!(100), dec!(0), Ok(None)),
            (Side::Sell, dec!(100), dec!(0), Ok(None)),
            // the smallest price has no stop below it
            (
                Side::Buy,
                dec!(0.0001),
                dec!(7),
                Err("the safeguard stop would be 0,"),
            ),
            (
                Side::Buy,
                dec!(100),
                dec!(100),
                Err("the safeguard stop would be 0,"),
            ),
            (
                Side::Sell,
                dec!(1000000000),
                dec!(7),
                Err("the safeguard stop would be 1070000000,"),
            ),
        ];
        for (side, entry, percent, want) in cases {
            let got = safeguard_stop(side, p(entry), percent);
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got.map(Price::get), want, "{side:?} {entry} {percent}")
                }
                (Err(e), Err(start)) => assert!(e.reason.starts_with(start), "{e}"),
                (got, want) => panic!("{side:?} {entry} {percent}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn extreme_figures_never_panic() {
        // Catches: unchecked arithmetic on the largest price and percentages.
        let huge = ExitPosition {
            side: Side::Sell,
            entry_price: Some(p(dec!(1000000000))),
            current_price: Some(p(dec!(0.0001))),
            expert_target: Some(p(dec!(1000000000))),
            take_profit: None,
            stop_loss: None,
        };
        for side in [Side::Buy, Side::Sell] {
            let pos = ExitPosition { side, ..huge };
            for percent in [dec!(-1000), dec!(1000), Decimal::MAX, Decimal::MIN] {
                for reference in [ExitReference::OrderOpenPrice, ExitReference::CurrentPrice] {
                    let t = pct(reference, percent);
                    let s = ExitSettings {
                        min_take_profit_percent: Decimal::MAX,
                        ..ExitSettings::default()
                    };
                    let _ = take_profit_price(&pos, &t, &s);
                    let _ = stop_loss_price(&pos, &t, &s);
                }
            }
            let _ = safeguard_stop(side, p(dec!(1000000000)), Decimal::MAX);
        }
    }
}
