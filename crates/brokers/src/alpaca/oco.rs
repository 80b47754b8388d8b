//! Exit legs as Alpaca's native `oco` order class: a take-profit and a stop-loss leg of one
//! exit structure (one [`OrderRequest::oco_group`]) go as ONE order, so Alpaca itself
//! cancels the other leg when one fills.
//!
//! Alpaca keeps our `client_order_id` on the parent (the take-profit limit order) only; the
//! stop leg gets an id of Alpaca's. The stop leg is therefore found through its parent: our
//! leg ids differ only in their role tag (`tw-x-7-tp-2` / `tw-x-7-sl-2`, see
//! [`tradewarden_engine::ports::exit_group`]), so the stop's id names the parent's, and no
//! mapping has to be stored.

use tradewarden_domain::OrderType;
use tradewarden_engine::OrderRequest;

use super::wire;

/// How a batch goes to Alpaca: orders alone, or a take-profit and stop-loss pair as one OCO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Send {
    /// `orders[i]` as a simple order.
    Single(usize),
    /// `orders[take_profit]` and `orders[stop_loss]` as one `oco` order.
    Oco {
        take_profit: usize,
        stop_loss: usize,
    },
}

/// The sends for a batch, in the batch's order: each one-cancels-other group of exactly a
/// limit (take profit) and a stop (stop loss) of one symbol, side and quantity becomes one
/// OCO; everything else goes alone.
pub fn plan(orders: &[OrderRequest]) -> Vec<Send> {
    let mut sends = Vec::with_capacity(orders.len());
    let mut paired = vec![false; orders.len()];
    for (i, o) in orders.iter().enumerate() {
        if paired[i] {
            continue;
        }
        let partner = o.oco_group.as_ref().and_then(|g| {
            let group: Vec<usize> = (0..orders.len())
                .filter(|j| orders[*j].oco_group.as_ref() == Some(g))
                .collect();
            match group[..] {
                [a, b] => Some(if a == i { b } else { a }),
                _ => None,
            }
        });
        match partner.and_then(|j| take_profit_first(o, &orders[j]).map(|f| (f, j))) {
            Some((tp_first, j)) => {
                paired[i] = true;
                paired[j] = true;
                let (take_profit, stop_loss) = if tp_first { (i, j) } else { (j, i) };
                sends.push(Send::Oco {
                    take_profit,
                    stop_loss,
                });
            }
            None => sends.push(Send::Single(i)),
        }
    }
    sends
}

/// `Some(true)` when `a` is the take profit and `b` the stop loss of one OCO pair,
/// `Some(false)` the other way round, `None` when they are not such a pair.
fn take_profit_first(a: &OrderRequest, b: &OrderRequest) -> Option<bool> {
    let same = a.symbol == b.symbol && a.side == b.side && a.quantity == b.quantity;
    let is_tp = |o: &OrderRequest| o.order_type == OrderType::Limit && o.limit_price.is_some();
    let is_sl = |o: &OrderRequest| o.order_type == OrderType::Stop && o.stop_price.is_some();
    match (same, is_tp(a) && is_sl(b), is_sl(a) && is_tp(b)) {
        (true, true, _) => Some(true),
        (true, _, true) => Some(false),
        _ => None,
    }
}

/// The one `oco` order for a take profit and its stop loss: a `gtc` limit order carrying
/// both legs, under the take profit's client_order_id.
pub fn order(tp: &OrderRequest, sl: &OrderRequest, side: &'static str) -> wire::NewOrder {
    let tp_price = tp.limit_price.unwrap_or_default();
    wire::NewOrder {
        symbol: tp.symbol.clone(),
        qty: tp.quantity,
        side,
        order_type: "limit",
        time_in_force: "gtc",
        limit_price: Some(tp_price),
        stop_price: None,
        client_order_id: tp.client_order_id.clone(),
        extended_hours: false,
        order_class: Some("oco"),
        take_profit: Some(wire::TakeProfit {
            limit_price: tp_price,
        }),
        stop_loss: Some(wire::StopLoss {
            stop_price: sl.stop_price.unwrap_or_default(),
            limit_price: sl.limit_price,
        }),
    }
}

/// The parent's client_order_id of a stop-loss leg id (`…-sl-N` → `…-tp-N`); `None` for an
/// id that is not a stop-loss leg's.
pub fn parent_of(stop_loss_id: &str) -> Option<String> {
    swap_tag(stop_loss_id, "sl", "tp")
}

/// The stop-loss leg id whose parent has this client_order_id (`…-tp-N` → `…-sl-N`).
pub fn stop_leg_of(take_profit_id: &str) -> Option<String> {
    swap_tag(take_profit_id, "tp", "sl")
}

fn swap_tag(id: &str, from: &str, to: &str) -> Option<String> {
    let (rest, generation) = id.rsplit_once('-')?;
    let (structure, tag) = rest.rsplit_once('-')?;
    (tag == from).then(|| format!("{structure}-{to}-{generation}"))
}

/// The stop leg of an OCO parent, under our stop-loss id. A stop leg that carries an id of
/// ours already (it replaced Alpaca's leg: the replace gave it our next leg's id) is found
/// under that id, never under the parent's: the stop it replaced is not this one.
pub fn stop_leg(parent: &wire::Order) -> Option<wire::Order> {
    let id = stop_leg_of(&parent.client_order_id)?;
    let leg = parent
        .legs
        .as_ref()?
        .iter()
        .find(|l| is_stop(l) && !is_ours(&l.client_order_id))?;
    Some(wire::Order {
        client_order_id: id,
        ..leg.clone()
    })
}

fn is_stop(o: &wire::Order) -> bool {
    o.order_type == "stop" || o.order_type == "stop_limit"
}

/// Whether `id` is one of our exit legs' ids (`…-tp-N`, `…-sl-N`), not Alpaca's.
fn is_ours(id: &str) -> bool {
    swap_tag(id, "tp", "tp").is_some() || swap_tag(id, "sl", "sl").is_some()
}

/// The entry's client_order_id of a first-generation leg id (`…-tp-1` / `…-sl-1` →
/// `…-entry`): the order a bracket or oto entry carries its legs in.
pub fn entry_of(leg_id: &str) -> Option<String> {
    let (rest, generation) = leg_id.rsplit_once('-')?;
    let (structure, tag) = rest.rsplit_once('-')?;
    (generation == "1" && matches!(tag, "tp" | "sl")).then(|| format!("{structure}-entry"))
}

/// The orders that may hold our leg `leg_id` as one of their legs, by client_order_id: its
/// oco parent (a stop), and the entry it was attached to (a first generation).
pub fn holders_of(leg_id: &str) -> Vec<String> {
    parent_of(leg_id)
        .into_iter()
        .chain(entry_of(leg_id))
        .collect()
}

/// The legs of `parent` that are ours under ids Alpaca does not know: an oco parent's stop
/// ([`stop_leg`]); a bracket or oto entry's take profit (its limit leg) and stop as our
/// first-generation `…-tp-1` / `…-sl-1`. Legs that carry our ids already are left out.
pub fn legs_under_our_ids(parent: &wire::Order) -> Vec<wire::Order> {
    let Some(structure) = parent.client_order_id.strip_suffix("-entry") else {
        return stop_leg(parent).into_iter().collect();
    };
    let legs = parent.legs.as_deref().unwrap_or_default();
    legs.iter()
        .filter(|l| !is_ours(&l.client_order_id))
        .filter_map(|l| {
            let tag = match l.order_type.as_str() {
                "limit" => "tp",
                _ if is_stop(l) => "sl",
                _ => return None,
            };
            Some(wire::Order {
                client_order_id: format!("{structure}-{tag}-1"),
                ..l.clone()
            })
        })
        .collect()
}

/// The `bracket` (both legs) or `oto` (one) class and legs of an entry, when it has exits
/// and Alpaca takes them: Alpaca refuses advanced orders for a fractional quantity, whose
/// legs tradewarden then places itself once the entry fills.
pub fn attached(
    o: &OrderRequest,
) -> Option<(
    &'static str,
    Option<wire::TakeProfit>,
    Option<wire::StopLoss>,
)> {
    let exits = o.attached_exits?;
    if !o.quantity.fract().is_zero() {
        return None;
    }
    let take_profit = exits
        .take_profit
        .map(|limit_price| wire::TakeProfit { limit_price });
    let stop_loss = exits.stop_loss.map(|stop_price| wire::StopLoss {
        stop_price,
        limit_price: None,
    });
    let class = match (&take_profit, &stop_loss) {
        (Some(_), Some(_)) => "bracket",
        (None, None) => return None,
        _ => "oto",
    };
    Some((class, take_profit, stop_loss))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use tradewarden_domain::Side;

    fn leg(id: &str, order_type: OrderType, group: Option<&str>) -> OrderRequest {
        OrderRequest {
            client_order_id: id.into(),
            symbol: "AAPL".into(),
            side: Side::Sell,
            order_type,
            quantity: dec!(10),
            limit_price: (order_type == OrderType::Limit).then_some(dec!(110)),
            stop_price: (order_type == OrderType::Stop).then_some(dec!(93)),
            oco_group: group.map(Into::into),
            attached_exits: None,
        }
    }

    #[test]
    fn a_take_profit_and_its_stop_go_as_one_oco_and_nothing_else_does() {
        // Catches: legs of one exit sent apart (no one-cancels-other at Alpaca), or orders
        // of different exits, or an entry, folded into one OCO.
        use OrderType::*;
        let g = Some("tw-x-7-exit-1");
        let cases: Vec<(Vec<OrderRequest>, Vec<Send>)> = vec![
            (
                vec![leg("tw-x-7-tp-1", Limit, g), leg("tw-x-7-sl-1", Stop, g)],
                vec![Send::Oco {
                    take_profit: 0,
                    stop_loss: 1,
                }],
            ),
            (
                vec![
                    leg("e", Market, None),
                    leg("sl", Stop, g),
                    leg("tp", Limit, g),
                ],
                vec![
                    Send::Single(0),
                    Send::Oco {
                        take_profit: 2,
                        stop_loss: 1,
                    },
                ],
            ),
            (vec![leg("sl", Stop, g)], vec![Send::Single(0)]),
            (
                vec![leg("a", Limit, g), leg("b", Limit, g)],
                vec![Send::Single(0), Send::Single(1)],
            ),
            (
                vec![leg("tp", Limit, g), leg("sl", Stop, Some("other"))],
                vec![Send::Single(0), Send::Single(1)],
            ),
            (
                vec![leg("tp", Limit, g), leg("sl", Stop, g), leg("x", Stop, g)],
                vec![Send::Single(0), Send::Single(1), Send::Single(2)],
            ),
            (
                vec![
                    leg("tp", Limit, g),
                    OrderRequest {
                        quantity: dec!(5),
                        ..leg("sl", Stop, g)
                    },
                ],
                vec![Send::Single(0), Send::Single(1)],
            ),
        ];
        for (batch, want) in cases {
            assert_eq!(plan(&batch), want, "{batch:?}");
        }
    }

    #[test]
    fn an_entry_with_exits_goes_as_bracket_or_oto_whole_quantities_only() {
        // Catches: legs attached to a fractional entry (Alpaca refuses it), one leg sent as
        // a bracket, or an entry without exits sent as an advanced order.
        use tradewarden_engine::ports::AttachedExits;
        let entry = |quantity, tp, sl| OrderRequest {
            quantity,
            attached_exits: AttachedExits::of(tp, sl),
            ..leg("tw-x-7-entry", OrderType::Market, None)
        };
        let cases = [
            (
                entry(dec!(10), Some(dec!(110)), Some(dec!(93))),
                Some("bracket"),
            ),
            (entry(dec!(10), Some(dec!(110)), None), Some("oto")),
            (entry(dec!(10), None, Some(dec!(93))), Some("oto")),
            (entry(dec!(10), None, None), None),
            (entry(dec!(2.5), Some(dec!(110)), Some(dec!(93))), None),
        ];
        for (o, want) in cases {
            assert_eq!(attached(&o).map(|a| a.0), want, "{o:?}");
        }
    }

    #[test]
    fn legs_alpaca_holds_under_its_own_ids_are_found_under_ours() {
        // Catches: a bracket's legs not found under our first-generation ids, or a leg
        // that a replace gave our next id found under the id of the leg it replaced.
        let order = |id: &str, order_type: &str, legs: Option<Vec<wire::Order>>| wire::Order {
            id: format!("a-{id}"),
            client_order_id: id.into(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: None,
            symbol: "AAPL".into(),
            qty: Some(dec!(10)),
            filled_qty: dec!(0),
            filled_avg_price: None,
            order_class: "bracket".into(),
            order_type: order_type.into(),
            side: "sell".into(),
            time_in_force: "gtc".into(),
            limit_price: None,
            stop_price: None,
            status: "new".into(),
            replaced_by: None,
            legs,
        };
        let ids = |parent: &wire::Order| -> Vec<(String, String)> {
            legs_under_our_ids(parent)
                .into_iter()
                .map(|l| (l.client_order_id, l.id))
                .collect()
        };
        let bracket = order(
            "tw-x-7-entry",
            "market",
            Some(vec![
                order("uuid-1", "limit", None),
                order("uuid-2", "stop", None),
            ]),
        );
        assert_eq!(
            ids(&bracket),
            vec![
                ("tw-x-7-tp-1".into(), "a-uuid-1".into()),
                ("tw-x-7-sl-1".into(), "a-uuid-2".into())
            ]
        );
        let moved = order(
            "tw-x-7-entry",
            "market",
            Some(vec![
                order("uuid-1", "limit", None),
                order("tw-x-7-sl-2", "stop", None),
            ]),
        );
        assert_eq!(ids(&moved), vec![("tw-x-7-tp-1".into(), "a-uuid-1".into())]);
        let oco = order(
            "tw-x-7-tp-2",
            "limit",
            Some(vec![order("uuid-3", "stop", None)]),
        );
        assert_eq!(ids(&oco), vec![("tw-x-7-sl-2".into(), "a-uuid-3".into())]);
        assert_eq!(
            holders_of("tw-x-7-sl-1"),
            vec!["tw-x-7-tp-1".to_string(), "tw-x-7-entry".into()]
        );
        assert_eq!(holders_of("tw-x-7-tp-2"), Vec::<String>::new());
    }

    #[test]
    fn a_stop_leg_id_names_its_parent_and_back() {
        let cases = [
            ("tw-ab12-7-sl-2", Some("tw-ab12-7-tp-2")),
            ("tw-ab12-7-tp-2", None),
            ("tw-ab12-7-entry", None),
            ("sl", None),
        ];
        for (id, want) in cases {
            assert_eq!(parent_of(id).as_deref(), want, "{id}");
        }
        assert_eq!(
            stop_leg_of("tw-ab12-7-tp-2").as_deref(),
            Some("tw-ab12-7-sl-2")
        );
    }

    #[test]
    fn the_oco_order_carries_both_legs_good_till_canceled() {
        let g = Some("tw-x-7-exit-1");
        let o = order(
            &leg("tw-x-7-tp-1", OrderType::Limit, g),
            &leg("tw-x-7-sl-1", OrderType::Stop, g),
            "sell",
        );
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({
                "symbol": "AAPL", "qty": "10", "side": "sell", "type": "limit",
                "time_in_force": "gtc", "limit_price": "110", "client_order_id": "tw-x-7-tp-1",
                "extended_hours": false, "order_class": "oco",
                "take_profit": {"limit_price": "110"}, "stop_loss": {"stop_price": "93"}
            })
        );
    }
}
