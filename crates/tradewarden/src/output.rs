//! Readable output: the `check` description, the `run` summary and the listing tables.

use std::fmt::Write;

use comfy_table::Table;
use rust_decimal::Decimal;
use tradewarden_domain::{Order, Outcome, Transaction};
use tradewarden_engine::{ImportSummary, RunReport, Settings};

use crate::config::{BrokerKind, Config};

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
}

fn dec(d: &Decimal) -> String {
    d.normalize().to_string()
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.set_header(header.to_vec());
    t
}

/// What `check` prints.
pub fn describe_config(cfg: &Config, source: &str) -> String {
    let s = &cfg.settings;
    let mut out = String::new();
    let _ = writeln!(out, "configuration: {source} (valid)");
    let _ = writeln!(out, "database: {}", redact(&cfg.database_url));
    let _ = writeln!(
        out,
        "processing: lock_timeout_ms = {}, lookback_days = {}, lease_seconds = {}",
        s.lock_timeout.as_millis(),
        s.lookback_days,
        cfg.lease.as_secs()
    );
    let mut accounts: Vec<_> = s.accounts.values().collect();
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    let _ = writeln!(out, "accounts: {}", accounts.len());
    for a in accounts {
        let broker = match cfg.brokers.get(&a.name) {
            Some(BrokerKind::Paper { cash }) => format!("broker paper, cash {}", dec(cash)),
            None => "no broker".to_string(),
        };
        let _ = writeln!(
            out,
            "  {} ({broker}, minimum_equity_threshold_percent {})",
            a.name,
            dec(&a.minimum_equity_threshold_percent)
        );
    }
    let _ = writeln!(out, "experts: {}", s.experts.len());
    for e in s.experts.values() {
        let _ = writeln!(
            out,
            "  {} {:?} on {}: {}, virtual equity {}%, buy {}, sell {}, automated opening {}, per-instrument cap {}%, enter_market ruleset {}",
            e.id,
            e.name,
            e.account,
            if e.enabled { "enabled" } else { "disabled" },
            dec(&e.virtual_equity_percent),
            e.enable_buy,
            e.enable_sell,
            e.allow_automated_trade_opening,
            dec(&e.max_virtual_equity_per_instrument_percent),
            opt(&e.enter_market_ruleset)
        );
    }
    let mut rulesets: Vec<_> = s.rulesets.values().collect();
    rulesets.sort_by(|a, b| a.name.cmp(&b.name));
    let _ = writeln!(out, "rulesets: {}", rulesets.len());
    for r in rulesets {
        let names: Vec<&str> = r.rules.iter().map(|r| r.name.as_str()).collect();
        let _ = writeln!(
            out,
            "  {}: {} rule(s): {}",
            r.name,
            r.rules.len(),
            names.join(", ")
        );
    }
    out
}

/// Hides a password in a database URL.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// What `run` prints without `--json`.
pub fn run_summary(import: &ImportSummary, reports: &[RunReport], settings: &Settings) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "imported {} recommendation(s), {} already present",
        import.imported, import.already_present
    );
    let mut total_orders = 0;
    for r in reports {
        let name = settings
            .experts
            .get(&r.expert_id)
            .map(|e| e.name.as_str())
            .unwrap_or("?");
        let c = &r.counts;
        let _ = writeln!(
            out,
            "expert {} ({name}): {} - considered {}, ordered {}, rules_not_met {}, not_permitted {}, duplicate_position {}, insufficient_equity {}, unfunded {}, failed {}",
            r.expert_id,
            r.status.as_str(),
            c.considered,
            c.ordered,
            c.rules_not_met,
            c.not_permitted,
            c.duplicate_position,
            c.insufficient_equity,
            c.unfunded,
            c.failed
        );
        if let Some(e) = &r.error {
            let _ = writeln!(out, "  error: {e}");
        }
        for o in &r.orders {
            total_orders += 1;
            let _ = writeln!(
                out,
                "  {} {} {} @ {}: {} (order {}, {})",
                o.side.as_str(),
                dec(&o.quantity),
                o.symbol,
                opt(&o.avg_fill_price),
                o.status,
                o.id,
                o.client_order_id
            );
        }
    }
    let _ = writeln!(out, "{total_orders} order(s) created");
    out
}

/// The `transactions` table.
pub fn transactions_table(rows: &[Transaction]) -> String {
    let mut t = table(&[
        "id",
        "expert",
        "symbol",
        "side",
        "quantity",
        "status",
        "open_price",
        "opened_at",
        "close_reason",
    ]);
    for r in rows {
        t.add_row(vec![
            r.id.to_string(),
            r.expert_id.to_string(),
            r.symbol.clone(),
            r.side.as_str().into(),
            dec(&r.quantity),
            r.status.to_string(),
            opt(&r.open_price),
            opt(&r
                .opened_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))),
            opt(&r.close_reason),
        ]);
    }
    format!("{t}\n{} transaction(s)\n", rows.len())
}

/// The `orders` table.
pub fn orders_table(rows: &[Order]) -> String {
    let mut t = table(&[
        "id",
        "txn",
        "expert",
        "symbol",
        "side",
        "role",
        "type",
        "quantity",
        "filled",
        "avg_fill",
        "status",
        "client_order_id",
    ]);
    for r in rows {
        t.add_row(vec![
            r.id.to_string(),
            r.transaction_id.to_string(),
            r.expert_id.to_string(),
            r.symbol.clone(),
            r.side.as_str().into(),
            r.role.as_str().into(),
            r.order_type.as_str().into(),
            dec(&r.quantity),
            dec(&r.filled_quantity),
            opt(&r.avg_fill_price),
            r.status.to_string(),
            r.client_order_id.clone(),
        ]);
    }
    format!("{t}\n{} order(s)\n", rows.len())
}

/// The `outcomes` table.
pub fn outcomes_table(rows: &[Outcome]) -> String {
    let mut t = table(&[
        "recommendation",
        "expert",
        "symbol",
        "use_case",
        "outcome",
        "order",
        "detail",
    ]);
    for r in rows {
        t.add_row(vec![
            r.recommendation_id.to_string(),
            r.expert_id.to_string(),
            r.symbol.clone(),
            r.use_case.to_string(),
            r.outcome.to_string(),
            opt(&r.order_id),
            r.detail.clone(),
        ]);
    }
    format!("{t}\n{} outcome(s)\n", rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
