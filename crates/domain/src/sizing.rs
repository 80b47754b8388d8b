//! The classic risk manager in notional mode (reference §5), as one pure function.
//!
//! Candidates are funded in priority order from the expert's available balance; no symbol may
//! take more than the per-instrument cap (available × max_instrument_percent / 100, the cap
//! computed once at the start) minus what the expert already holds in it. Whole shares, floor.

use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::money::percent_of;

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
}

/// Sizes every candidate in one pass. `existing` is what the expert already holds per symbol.
pub fn size_candidates(
    available: Decimal,
    max_instrument_percent: Decimal,
    existing: &HashMap<String, Decimal>,
    candidates: &[SizingCandidate],
) -> Vec<Sized> {
    let cap = percent_of(available, max_instrument_percent);
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
            remaining: Decimal::ZERO
        };
        candidates.len()
    ];
    for i in order {
        let c = &candidates[i];
        let held = allocated
            .get(c.symbol.as_str())
            .copied()
            .unwrap_or_default();
        let room = cap - held;
        let mut quantity = Decimal::ZERO;
        if c.price > Decimal::ZERO && room >= c.price && remaining >= c.price {
            quantity = (room.min(remaining) / c.price).floor();
        }
        out[i] = Sized {
            quantity,
            instrument_room: room,
            remaining,
        };
        if quantity > Decimal::ZERO {
            let cost = quantity * c.price;
            remaining -= cost;
            *allocated.entry(c.symbol.as_str()).or_default() += cost;
        }
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
}
