//! Readable output: the `check` description, the `run` summary and the listing tables.

use std::fmt::Write;

use comfy_table::{
    Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, LineStyle, Row, Table,
    TableStyle, Width,
};
use rust_decimal::Decimal;
use tradewarden_domain::{
    Order, OrderStatus, Outcome, OutcomeKind, Transaction, TransactionStatus, UseCase,
};
use tradewarden_engine::ports::StoredRun;
use tradewarden_engine::{Counts, ImportSummary, RunReport, RunStatus, Settings};

use crate::cmd::accounts::AccountView;
use crate::config::{BrokerKind, Config};
use crate::redact;

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
}

fn dec(d: &Decimal) -> String {
    d.normalize().to_string()
}

/// What `check` prints.
pub fn describe_config(cfg: &Config, source: &str) -> String {
    let s = &cfg.settings;
    let mut out = String::new();
    let _ = writeln!(out, "configuration: {source} (valid)");
    // Every password form of the URL is hidden, not only the userinfo one.
    let _ = writeln!(
        out,
        "database: {} (connect_timeout_seconds = {})",
        redact::url(&cfg.database_url),
        cfg.connect_timeout.as_secs()
    );
    let _ = writeln!(
        out,
        "processing: lock_timeout_ms = {}, lookback_days = {}, lease_seconds = {}, max_clock_skew_seconds = {}, max_intent_age_seconds = {}, job_timeout_seconds = {}",
        s.lock_timeout.as_millis(),
        s.lookback_days,
        cfg.lease.as_secs(),
        cfg.max_clock_skew.as_secs(),
        cfg.max_intent_age.as_secs(),
        s.job_timeout.as_secs()
    );
    let _ = writeln!(
        out,
        "background (serve): refresh_interval_seconds = {}, process_interval_seconds = {}",
        cfg.background.refresh_interval.as_secs(),
        cfg.background
            .process_interval
            .map_or_else(|| "off".to_string(), |d| d.as_secs().to_string())
    );
    let srv = &cfg.server;
    let _ = writeln!(
        out,
        "server: bind = {}, shutdown_grace_seconds = {}, max_body_bytes = {}, metrics_require_token = {}",
        srv.bind,
        srv.shutdown_grace.as_secs(),
        srv.max_body_bytes,
        srv.metrics_require_token
    );
    // Names and roles only: a token's hash is no one's business either.
    let _ = writeln!(out, "api_tokens: {}", cfg.api_tokens.len());
    for t in &cfg.api_tokens {
        let expert = t
            .expert_id
            .map(|id| format!(" for expert {id}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {} ({}{expert})", t.name, t.role.as_str());
    }
    let b = &cfg.broker_settings;
    let _ = writeln!(
        out,
        "brokers: max_retries = {}, extended_hours = {}, request_timeout_seconds = {}",
        b.max_retries,
        b.extended_hours,
        b.request_timeout.as_secs()
    );
    let mut accounts: Vec<_> = s.accounts.values().collect();
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    let _ = writeln!(out, "accounts: {}", accounts.len());
    for a in accounts {
        let broker = match cfg.brokers.get(&a.name) {
            Some(BrokerKind::Paper { cash }) => format!("broker paper, cash {}", dec(cash)),
            Some(BrokerKind::Alpaca(x)) => format!(
                "broker alpaca, {} {}, data {}, key id from ${} ({}), secret key from ${} ({})",
                if x.live { "LIVE (real money)" } else { "paper" },
                x.base_url,
                x.data_url,
                x.key_id_env,
                env_state(&x.key_id_env),
                x.secret_key_env,
                env_state(&x.secret_key_env)
            ),
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
            "  {} {:?} on {}: {}, virtual equity {}%, buy {}, sell {}, automated opening {}, per-instrument cap {}%, enter_market ruleset {}, open_positions ruleset {}, min_take_profit_percent {}, min_tp_sl_percent {}, min_stop_loss_percent {}",
            e.id,
            e.name,
            e.account,
            if e.enabled { "enabled" } else { "disabled" },
            dec(&e.virtual_equity_percent),
            e.enable_buy,
            e.enable_sell,
            e.allow_automated_trade_opening,
            dec(&e.max_virtual_equity_per_instrument_percent),
            opt(&e.enter_market_ruleset),
            opt(&e.open_positions_ruleset),
            dec(&e.exits.min_take_profit_percent),
            dec(&e.exits.min_tp_sl_percent),
            dec(&e.exits.min_stop_loss_percent)
        );
    }
    out.push_str(&crate::cmd::rules::describe_rulesets(cfg));
    out
}

/// Whether an environment variable is set, never its value.
fn env_state(name: &str) -> &'static str {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => "set",
        _ => "NOT SET",
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
        if let Some(p) = &c.positions {
            let _ = writeln!(
                out,
                "expert {} ({name}) open_positions: {} - considered {}, closed {}, adjusted {}, no_action {}, no_position {}, close_working {}, failed {}",
                r.expert_id,
                r.status.as_str(),
                c.considered,
                p.closed,
                p.adjusted,
                p.no_action,
                p.no_position,
                p.close_working,
                c.failed
            );
        } else if r.use_case == UseCase::OpenPositions {
            let _ = writeln!(
                out,
                "expert {} ({name}) open_positions: {}",
                r.expert_id,
                r.status.as_str()
            );
        } else {
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
        }
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

/// How a listing's table is laid out: its width and whether status words are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableOpts {
    /// Cut the table to this many columns (long text cells end in `…`); `None` shows every
    /// cell whole.
    pub width: Option<u16>,
    /// Colour the status words (ANSI).
    pub color: bool,
}

impl TableOpts {
    /// For a table printed on stdout: cut to `$COLUMNS`, else to the terminal's width when
    /// stdout is one, else (a pipe) whole; `wide` shows every cell whole anyway. Colour only
    /// on a terminal, without `$NO_COLOR` and with a `$TERM` other than `dumb`.
    pub fn for_stdout(wide: bool) -> TableOpts {
        use std::io::IsTerminal;
        let tty = std::io::stdout().is_terminal();
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|c| *c > 0);
        let terminal = || {
            tty.then(|| console::Term::stdout().size_checked().map(|(_, c)| c))
                .flatten()
        };
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        TableOpts {
            width: if wide {
                None
            } else {
                columns.or_else(terminal)
            },
            color: tty && !no_color && !dumb,
        }
    }
}

/// What a column holds, which decides its alignment, whether it may be cut and its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Left-aligned, never cut.
    Text,
    /// Long text, left-aligned: the column cut to the width, one line a row, ending in `…`.
    Long,
    /// Right-aligned with the decimal points in one column; never cut.
    Number,
    /// A status word: coloured, never cut.
    Status,
}

/// The table style: a dashed line under the header, no borders, nothing between rows.
const STYLE: TableStyle =
    TableStyle::new().header_separator(LineStyle::none().fill('-').junction('-'));

/// The colour of a status word (of any of the three listings), if it has one: green for
/// what went through, yellow for what waits or was held back for safety, red for failures,
/// grey for what is over or was never meant to trade.
fn status_color(word: &str) -> Option<Color> {
    match word.to_ascii_lowercase().as_str() {
        "opened" | "filled" | "ordered" => Some(Color::Green),
        "waiting"
        | "closing"
        | "pending"
        | "waiting_trigger"
        | "submitting"
        | "accepted"
        | "partially_filled"
        | "duplicate_position"
        | "insufficient_equity"
        | "unfunded" => Some(Color::Yellow),
        "failed" | "rejected" | "error" => Some(Color::Red),
        "closed" | "canceled" | "expired" | "rules_not_met" | "not_permitted" => {
            Some(Color::DarkGrey)
        }
        _ => None,
    }
}

/// Pads a column of decimal strings so their points line up once right-aligned:
/// `["187.25", "1.5", "40", "-"]` → `["187.25", "1.5 ", "40   ", "-   "]`.
fn align_decimals(cells: &mut [String]) {
    let frac = |s: &str| s.find('.').map(|i| s.len() - i);
    let width = cells.iter().filter_map(|c| frac(c)).max().unwrap_or(0);
    for c in cells.iter_mut() {
        let pad = width - frac(c).unwrap_or(0);
        c.push_str(&" ".repeat(pad));
    }
}

/// Renders rows (cells as text) under `columns`, laid out by `opts`.
fn render(columns: &[(&str, Kind)], mut rows: Vec<Vec<String>>, opts: &TableOpts) -> String {
    for (i, (_, kind)) in columns.iter().enumerate() {
        if *kind == Kind::Number {
            let mut cells: Vec<String> =
                rows.iter_mut().map(|r| std::mem::take(&mut r[i])).collect();
            align_decimals(&mut cells);
            for (r, c) in rows.iter_mut().zip(cells) {
                r[i] = c;
            }
        }
    }
    let mut t = Table::new();
    t.load_style(STYLE)
        .force_no_tty()
        .set_truncation_indicator("…");
    if opts.color {
        t.enforce_styling();
    }
    let mut header = Row::from(
        columns
            .iter()
            .map(|(name, _)| Cell::new(name))
            .collect::<Vec<_>>(),
    );
    header.max_height(1);
    t.set_header(header);
    for r in rows {
        let mut row = Row::new();
        for (text, (_, kind)) in r.into_iter().zip(columns) {
            let color = (*kind == Kind::Status)
                .then(|| status_color(&text))
                .flatten();
            let cell = Cell::new(text);
            row.add_cell(match color {
                Some(c) => cell.fg(c),
                None => cell,
            });
        }
        if opts.width.is_some() {
            row.max_height(1);
        }
        t.add_row(row);
    }
    layout(&mut t, columns, opts);
    t.trim_fmt()
}

/// Widths and alignment: numbers right-aligned; only the long text columns shrink (then are
/// cut to one line) when the table is wider than `opts.width`. Two spaces between columns.
fn layout(t: &mut Table, columns: &[(&str, Kind)], opts: &TableOpts) {
    if let Some(w) = opts.width {
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(w);
    }
    for (i, (_, kind)) in columns.iter().enumerate() {
        let Some(col) = t.column_mut(i) else { continue };
        col.set_padding((0, 1));
        if *kind == Kind::Number {
            col.set_cell_alignment(CellAlignment::Right);
        }
        col.set_constraint(if *kind == Kind::Long {
            ColumnConstraint::LowerBoundary(Width::Fixed(5))
        } else {
            ColumnConstraint::ContentWidth
        });
    }
}

/// `N noun(s): 2 OPENED, 1 CLOSED` — the line under a table: the count, then the count per
/// status in the order of `all`, those present only.
fn summary_line<T: PartialEq + Copy>(
    noun: &str,
    statuses: &[T],
    all: &[T],
    name: fn(T) -> &'static str,
) -> String {
    let per: Vec<String> = all
        .iter()
        .filter_map(|s| {
            let n = statuses.iter().filter(|x| *x == s).count();
            (n > 0).then(|| format!("{n} {}", name(*s)))
        })
        .collect();
    if per.is_empty() {
        format!("{} {noun}(s)\n", statuses.len())
    } else {
        format!("{} {noun}(s): {}\n", statuses.len(), per.join(", "))
    }
}

fn time(t: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    opt(&t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

fn opt_dec(d: &Option<Decimal>) -> String {
    d.as_ref().map_or_else(|| "-".into(), dec)
}

/// The `transactions` table, with its summary line.
pub fn transactions_table(rows: &[Transaction], opts: &TableOpts) -> String {
    use Kind::*;
    let columns = [
        ("id", Number),
        ("expert", Number),
        ("symbol", Text),
        ("side", Text),
        ("quantity", Number),
        ("status", Status),
        ("open_price", Number),
        ("take_profit", Number),
        ("stop_loss", Number),
        ("close_price", Number),
        ("opened_at", Text),
        ("close_reason", Long),
    ];
    let cells = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.expert_id.to_string(),
                r.symbol.clone(),
                r.side.as_str().into(),
                dec(&r.quantity),
                r.status.to_string(),
                opt_dec(&r.open_price),
                opt_dec(&r.take_profit),
                opt_dec(&r.stop_loss),
                opt_dec(&r.close_price),
                time(&r.opened_at),
                opt(&r.close_reason),
            ]
        })
        .collect();
    let statuses: Vec<TransactionStatus> = rows.iter().map(|r| r.status).collect();
    format!(
        "{}\n{}",
        render(&columns, cells, opts),
        summary_line(
            "transaction",
            &statuses,
            &TransactionStatus::ALL,
            TransactionStatus::as_str
        )
    )
}

/// The `orders` table, with its summary line.
pub fn orders_table(rows: &[Order], opts: &TableOpts) -> String {
    use Kind::*;
    let columns = [
        ("id", Number),
        ("txn", Number),
        ("expert", Number),
        ("symbol", Text),
        ("side", Text),
        ("role", Text),
        ("type", Text),
        ("quantity", Number),
        ("price", Number),
        ("filled", Number),
        ("avg_fill", Number),
        ("status", Status),
        ("client_order_id", Long),
    ];
    let cells = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.transaction_id.to_string(),
                r.expert_id.to_string(),
                r.symbol.clone(),
                r.side.as_str().into(),
                r.role.as_str().into(),
                r.order_type.as_str().into(),
                dec(&r.quantity),
                opt_dec(&r.limit_price.or(r.stop_price)),
                dec(&r.filled_quantity),
                opt_dec(&r.avg_fill_price),
                r.status.to_string(),
                r.client_order_id.clone(),
            ]
        })
        .collect();
    let statuses: Vec<OrderStatus> = rows.iter().map(|r| r.status).collect();
    format!(
        "{}\n{}",
        render(&columns, cells, opts),
        summary_line("order", &statuses, &OrderStatus::ALL, OrderStatus::as_str)
    )
}

/// The `accounts` tables: one row per account, then (when there are any) one per position,
/// and a summary line.
pub fn accounts_tables(rows: &[AccountView], opts: &TableOpts) -> String {
    use Kind::*;
    let accounts = [
        ("account", Text),
        ("broker", Text),
        ("cash", Number),
        ("equity", Number),
        ("positions", Number),
    ];
    let cells = rows
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.broker.clone(),
                dec(&a.cash),
                dec(&a.equity),
                a.positions.len().to_string(),
            ]
        })
        .collect();
    let mut out = format!("{}\n", render(&accounts, cells, opts));
    let positions = [
        ("account", Text),
        ("symbol", Text),
        ("quantity", Number),
        ("avg_price", Number),
        ("last_price", Number),
        ("unrealized_pnl", Number),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .flat_map(|a| {
            a.positions.iter().map(|p| {
                vec![
                    a.name.clone(),
                    p.symbol.clone(),
                    dec(&p.quantity),
                    opt_dec(&p.avg_price),
                    opt_dec(&p.last_price),
                    opt_dec(&p.unrealized_pnl),
                ]
            })
        })
        .collect();
    let held = cells.len();
    if held > 0 {
        let _ = writeln!(out, "\n{}", render(&positions, cells, opts));
    }
    let _ = writeln!(out, "{} account(s), {held} position(s)", rows.len());
    out
}

/// The `outcomes` table, with its summary line; `detail` is the column cut to the width.
pub fn outcomes_table(rows: &[Outcome], opts: &TableOpts) -> String {
    use Kind::*;
    let columns = [
        ("recommendation", Number),
        ("expert", Number),
        ("symbol", Text),
        ("use_case", Text),
        ("outcome", Status),
        ("order", Number),
        ("detail", Long),
    ];
    let cells = rows
        .iter()
        .map(|r| {
            vec![
                r.recommendation_id.to_string(),
                r.expert_id.to_string(),
                r.symbol.clone(),
                r.use_case.to_string(),
                r.outcome.to_string(),
                opt(&r.order_id),
                r.detail.clone(),
            ]
        })
        .collect();
    let kinds: Vec<OutcomeKind> = rows.iter().map(|r| r.outcome).collect();
    format!(
        "{}\n{}",
        render(&columns, cells, opts),
        summary_line("outcome", &kinds, &OutcomeKind::ALL, OutcomeKind::as_str)
    )
}

/// The `runs` table: one line per run record, newest first, and a count per status. A
/// refresh's record (no expert, no use case) shows its lock key as its use case.
pub fn runs_table(rows: &[StoredRun], opts: &TableOpts) -> String {
    use Kind::*;
    let columns = [
        ("id", Number),
        ("expert", Number),
        ("use_case", Text),
        ("trigger", Text),
        ("status", Status),
        ("considered", Number),
        ("ordered", Number),
        ("failed", Number),
        ("started_at", Text),
        ("error", Long),
    ];
    let cells = rows
        .iter()
        .map(|r| {
            let count = |f: fn(&Counts) -> usize| opt(&r.counts.as_ref().map(f));
            vec![
                r.id.to_string(),
                opt(&r.expert_id),
                r.use_case
                    .map_or_else(|| r.lock_key.clone(), |u| u.to_string()),
                opt(&r.trigger),
                r.status.to_string(),
                count(|c| c.considered),
                count(|c| c.ordered),
                count(|c| c.failed),
                time(&Some(r.started_at)),
                opt(&r.error),
            ]
        })
        .collect();
    let statuses: Vec<RunStatus> = rows.iter().map(|r| r.status).collect();
    format!(
        "{}\n{}",
        render(&columns, cells, opts),
        summary_line("run", &statuses, &RunStatus::ALL, RunStatus::as_str)
    )
}
