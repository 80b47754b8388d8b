//! The classic risk manager in notional mode (reference §5), as one pure function.
//!
//! Candidates are funded in priority order from the expert's available balance; no symbol may
//! take more than the per-instrument cap (available × max_instrument_percent / 100, the cap
//! computed once at the start) minus what the expert already holds in it. Whole shares, floor,
//! at most [`MAX_QUANTITY`] per order.
//!
//! Every figure here comes from input (balances, quotes, settings), so all arithmetic is
//! checked: a quote outside the price bounds or a figure that would overflow leaves that
//! candidate unfunded with the reason in [`Sized::refused`], never a panic.

use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::money::{
    ArithmeticError, MAX_QUANTITY, NotPositive, Price, checked_div, checked_mul, checked_sub,
    try_percent_of,
};

/// One order to be sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizingCandidate {
    pub symbol: String,
    /// The quote the order will fill at.
    pub price: Decimal,
    /// Higher is funded first; ties keep their input order.
    pub priority: Decimal,
}

/// The sizing result for one candidate, in the candidates' input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sized {
    pub quantity: Decimal,
    /// The per-instrument cap left for the symbol when the candidate was reached.
    pub instrument_room: Decimal,
    /// The budget left when the candidate was reached.
    pub remaining: Decimal,
    /// Why the candidate could not be sized at all (quantity 0); `None` when it was sized,
    /// even to 0 because not one share was affordable.
    pub refused: Option<SizingError>,
}

/// Why a candidate could not be sized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizingError {
    /// The quote is not a usable price.
    #[error("quote for {symbol}: {source}")]
    QuoteOutOfRange {
        /// The candidate's symbol.
        symbol: String,
        /// Which bound the quote broke.
        #[source]
        source: NotPositive,
    },
    /// A figure derived from the inputs overflowed.
    #[error("sizing {symbol}: {source}")]
    Overflow {
        /// The candidate's symbol.
        symbol: String,
        /// The operation that overflowed, with its operands.
        #[source]
        source: ArithmeticError,
    },
}

/// What one candidate gets: its quantity and what that costs.
struct Allocation {
    quantity: Decimal,
    cost: Decimal,
}

/// Whole shares of `price` that fit both `room` and `remaining`, at most [`MAX_QUANTITY`].
fn allocate(
    room: Decimal,
    remaining: Decimal,
    price: Price,
) -> Result<Allocation, ArithmeticError> {
    let price = price.get();
    let budget = room.min(remaining);
    if budget < price {
        return Ok(Allocation {
            quantity: Decimal::ZERO,
            cost: Decimal::ZERO,
        });
    }
    // MAX_QUANTITY × price ≤ 10^18: a budget beyond it buys the cap without dividing (the
    // quotient of a huge budget by a small price would not fit in a Decimal).
    let most = checked_mul(MAX_QUANTITY, price)?;
    if budget >= most {
        return Ok(Allocation {
            quantity: MAX_QUANTITY,
            cost: most,
        });
    }
    let mut quantity = checked_div(budget, price)?.floor();
    let mut cost = checked_mul(quantity, price)?;
    // Division rounds to 28 digits; a quotient rounded up to a whole number must not buy a
    // share the budget cannot pay for.
    if cost > budget {
        quantity -= Decimal::ONE;
        cost = checked_mul(quantity, price)?;
    }
    Ok(Allocation { quantity, cost })
}

/// Sizes one candidate: the room its symbol has left under the cap, and what it gets.
fn size_one(
    c: &SizingCandidate,
    cap: &Result<Decimal, ArithmeticError>,
    held: Decimal,
    remaining: Decimal,
) -> Result<(Decimal, Allocation), SizingError> {
    let price = Price::new(c.price).map_err(|source| SizingError::QuoteOutOfRange {
        symbol: c.symbol.clone(),
        source,
    })?;
    let overflow = |source| SizingError::Overflow {
        symbol: c.symbol.clone(),
        source,
    };
    let cap = cap.clone().map_err(overflow)?;
    let room = checked_sub(cap, held).map_err(overflow)?;
    let allocation = allocate(room, remaining, price).map_err(overflow)?;
    Ok((room, allocation))
}

/// Sizes every candidate in one pass. `existing` is what the expert already holds per symbol.
pub fn size_candidates(
    available: Decimal,
    max_instrument_percent: Decimal,
    existing: &HashMap<String, Decimal>,
    candidates: &[SizingCandidate],
) -> Vec<Sized> {
    let cap = try_percent_of(available, max_instrument_percent);
    let mut allocated: HashMap<&str, Decimal> =
        existing.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let mut remaining = available;
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    // Stable: equal priorities keep the caller's order (expected profit, highest first).
    order.sort_by(|a, b| candidates[*b].priority.cmp(&candidates[*a].priority));
    let mut out = vec![
        Sized {
            quantity: Decimal::ZERO,
            instrument_room: Decimal::ZERO,
            remaining: Decimal::ZERO,
            refused: None,
        };
        candidates.len()
    ];
    for i in order {
        let c = &candidates[i];
        let held = allocated
            .get(c.symbol.as_str())
            .copied()
            .unwrap_or_default();
        out[i] = match size_one(c, &cap, held, remaining) {
            Ok((room, a)) => {
                let sized = Sized {
                    quantity: a.quantity,
                    instrument_room: room,
                    remaining,
                    refused: None,
                };
                if a.quantity > Decimal::ZERO {
                    // cost ≤ min(room, remaining) with room = cap − held (see `allocate`), so
                    // neither line below can overflow.
                    remaining -= a.cost;
                    allocated.insert(c.symbol.as_str(), held + a.cost);
                }
                sized
            }
            Err(e) => Sized {
                quantity: Decimal::ZERO,
                instrument_room: Decimal::ZERO,
                remaining,
                refused: Some(e),
            },
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn cand(symbol: &str, price: Decimal, priority: Decimal) -> SizingCandidate {
        SizingCandidate {
            symbol: symbol.into(),
            price,
            priority,
        }
    }

    #[test]
    fn worked_example_400_400_200() {
        // Balance 100000, cap 40 %, all prices 100, priorities AAPL > MSFT > GOOGL.
        let c = [
            cand("GOOGL", dec!(100), dec!(1)),
            cand("AAPL", dec!(100), dec!(3)),
            cand("MSFT", dec!(100), dec!(2)),
        ];
        let q: Vec<Decimal> = size_candidates(dec!(100000), dec!(40), &HashMap::new(), &c)
            .iter()
            .map(|s| s.quantity)
            .collect();
        assert_eq!(q, [dec!(200), dec!(400), dec!(400)]);
    }

    #[test]
    fn table() {
        // (available, cap %, existing, candidates, expected quantities)
        let cases: Vec<(
            Decimal,
            Decimal,
            Vec<(&str, Decimal)>,
            Vec<SizingCandidate>,
            Vec<Decimal>,
        )> = vec![
            // whole shares, floor
            (
                dec!(1000),
                dec!(10),
                vec![],
                vec![cand("A", dec!(33), dec!(1))],
                vec![dec!(3)],
            ),
            // a price above the cap is unfunded
            (
                dec!(1000),
                dec!(10),
                vec![],
                vec![cand("A", dec!(101), dec!(1))],
                vec![dec!(0)],
            ),
            // existing allocation lowers the room
            (
                dec!(1000),
                dec!(50),
                vec![("A", dec!(400))],
                vec![cand("A", dec!(10), dec!(1))],
                vec![dec!(10)],
            ),
            // the budget runs out: the lower priority gets the rest, then nothing
            (
                dec!(250),
                dec!(100),
                vec![],
                vec![
                    cand("A", dec!(100), dec!(2)),
                    cand("B", dec!(100), dec!(1)),
                    cand("C", dec!(10), dec!(0)),
                ],
                vec![dec!(2), dec!(0), dec!(5)],
            ),
            // nothing available
            (
                dec!(0),
                dec!(10),
                vec![],
                vec![cand("A", dec!(1), dec!(1))],
                vec![dec!(0)],
            ),
            // fractional prices
            (
                dec!(100),
                dec!(100),
                vec![],
                vec![cand("A", dec!(0.3), dec!(1))],
                vec![dec!(333)],
            ),
        ];
        for (avail, pct, existing, cands, want) in cases {
            let existing: HashMap<String, Decimal> = existing
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let got: Vec<Decimal> = size_candidates(avail, pct, &existing, &cands)
                .iter()
                .map(|s| s.quantity)
                .collect();
            assert_eq!(got, want, "{avail} {pct} {cands:?}");
        }
    }

    #[test]
    fn tiny_price_is_refused_not_a_panic() {
        // The case: a quote of 1e-28 divided into the budget overflowed Decimal.
        // Catches: removing the quote's price bounds or the checked division.
        let got = size_candidates(
            dec!(100000),
            dec!(10),
            &HashMap::new(),
            &[cand("A", dec!(0.0000000000000000000000000001), dec!(1))],
        );
        assert_eq!(got[0].quantity, dec!(0));
        assert!(
            matches!(got[0].refused, Some(SizingError::QuoteOutOfRange { .. })),
            "{got:?}"
        );
        assert_eq!(
            got[0].refused.as_ref().unwrap().to_string(),
            "quote for A: 0.0000000000000000000000000001 is out of range \
             (min 0.0001, max 1000000000)"
        );
    }

    #[test]
    fn extremes_never_panic_and_stay_bounded() {
        // Every combination of extreme inputs. Catches: any unchecked operation on them, and
        // a quantity above MAX_QUANTITY.
        let extremes = [
            Decimal::ZERO,
            dec!(0.0000000000000000000000000001),
            dec!(0.0001),
            dec!(1),
            dec!(100),
            dec!(1000000000),
            Decimal::MAX,
            Decimal::MIN,
        ];
        for available in extremes {
            for pct in extremes {
                for price in extremes {
                    for held in extremes {
                        let existing: HashMap<String, Decimal> = [("A".to_string(), held)].into();
                        let cands = [cand("A", price, dec!(1)), cand("B", price, held)];
                        for s in size_candidates(available, pct, &existing, &cands) {
                            assert!(s.quantity >= Decimal::ZERO && s.quantity <= MAX_QUANTITY);
                            assert!(s.quantity.is_zero() || s.refused.is_none());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn quantity_is_capped() {
        // A budget that buys more than a billion shares buys exactly MAX_QUANTITY.
        let got = size_candidates(
            Decimal::MAX,
            dec!(100),
            &HashMap::new(),
            &[cand("A", dec!(0.0001), dec!(1))],
        );
        assert_eq!(got[0].quantity, MAX_QUANTITY);
        assert_eq!(got[0].refused, None);
    }
}
