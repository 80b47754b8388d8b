//! Configuration: TOML in, validated [`Config`] out, every problem reported at once with its
//! key path (`experts[1].account: unknown account "papr"`). Unknown keys are errors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use toml::{Table, Value};
use tradewarden_domain::expert::Expert;
use tradewarden_domain::rules::{ActionSpec, Rule, RuleSpec, Ruleset, TriggerSpec};
use tradewarden_engine::{AccountSettings, Settings};

/// The commented default configuration; also what runs when there is no config file.
pub const DEFAULT_CONFIG: &str = include_str!("default_config.toml");

/// Brokers this version can wire.
const BROKERS: &[&str] = &["paper"];

/// Which broker serves an account, parsed once from the configuration; only the app's
/// wiring looks at it (the engine never knows a broker's kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerKind {
    /// The built-in paper broker, with its starting cash (applied once, when the account is
    /// first created).
    Paper { cash: Decimal },
}

impl BrokerKind {
    /// The `broker` word of the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            BrokerKind::Paper { .. } => "paper",
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// How long a processing lease lasts without renewal (`[processing] lease_seconds`).
    pub lease: Duration,
    pub settings: Settings,
    /// The broker of each account, by account name.
    pub brokers: BTreeMap<String, BrokerKind>,
}

/// Every problem found, each `path: problem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One table being read: remembers which keys were used so the rest can be reported.
struct Section<'a> {
    path: String,
    table: &'a Table,
    used: HashSet<&'static str>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Reads a decimal from a TOML integer, float (through its shortest text) or string.
fn decimal_of(v: &Value) -> Result<Decimal, String> {
    match v {
        Value::Integer(i) => Ok(Decimal::from(*i)),
        Value::Float(f) => {
            Decimal::from_str(&f.to_string()).map_err(|_| format!("not a decimal number: {f}"))
        }
        Value::String(s) => {
            Decimal::from_str(s.trim()).map_err(|_| format!("not a decimal number: {s:?}"))
        }
        other => Err(format!(
            "expected a number or a decimal string, got {}",
            type_name(other)
        )),
    }
}

impl<'a> Section<'a> {
    fn new(path: String, table: &'a Table) -> Self {
        Section {
            path,
            table,
            used: HashSet::new(),
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.insert(key);
        self.table.get(key)
    }

    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn string(&mut self, key: &'static str, errs: &mut Vec<String>) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            v => {
                errs.push(format!(
                    "{}: expected a string, got {}",
                    self.at(key),
                    type_name(v)
                ));
                None
            }
        }
    }

    fn required_string(&mut self, key: &'static str, errs: &mut Vec<String>) -> Option<String> {
        if self.table.contains_key(key) {
            let s = self.string(key, errs)?;
            if s.trim().is_empty() {
                errs.push(format!("{}: must not be empty", self.at(key)));
                return None;
            }
            Some(s)
        } else {
            self.used.insert(key);
            errs.push(format!("{}: missing", self.at(key)));
            None
        }
    }

    fn boolean(&mut self, key: &'static str, default: bool, errs: &mut Vec<String>) -> bool {
        match self.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                errs.push(format!(
                    "{}: expected true or false, got {}",
                    self.at(key),
                    type_name(v)
                ));
                default
            }
        }
    }

    fn integer(
        &mut self,
        key: &'static str,
        default: i64,
        min: i64,
        errs: &mut Vec<String>,
    ) -> i64 {
        match self.get(key) {
            None => default,
            Some(Value::Integer(i)) if *i >= min => *i,
            Some(Value::Integer(i)) => {
                errs.push(format!("{}: must be at least {min}, got {i}", self.at(key)));
                default
            }
            Some(Value::String(s)) => match s.trim().parse::<i64>() {
                Ok(i) if i >= min => i,
                _ => {
                    errs.push(format!(
                        "{}: expected an integer of at least {min}, got {s:?}",
                        self.at(key)
                    ));
                    default
                }
            },
            Some(v) => {
                errs.push(format!(
                    "{}: expected an integer, got {}",
                    self.at(key),
                    type_name(v)
                ));
                default
            }
        }
    }

    /// A decimal within `[min, max]` (`min_exclusive` makes the lower bound strict).
    fn decimal(
        &mut self,
        key: &'static str,
        default: Decimal,
        min: Decimal,
        min_exclusive: bool,
        max: Option<Decimal>,
        errs: &mut Vec<String>,
    ) -> Decimal {
        let Some(v) = self.get(key) else {
            return default;
        };
        match decimal_of(v) {
            Ok(d) => {
                let low = if min_exclusive { d <= min } else { d < min };
                let high = max.is_some_and(|m| d > m);
                if low || high {
                    let lower = if min_exclusive {
                        format!("greater than {min}")
                    } else {
                        format!("at least {min}")
                    };
                    let range = match max {
                        Some(m) => format!("{lower} and at most {m}"),
                        None => lower,
                    };
                    errs.push(format!("{}: must be {range}, got {d}", self.at(key)));
                    default
                } else {
                    d.normalize()
                }
            }
            Err(e) => {
                errs.push(format!("{}: {e}", self.at(key)));
                default
            }
        }
    }

    fn array_of_tables(
        &mut self,
        key: &'static str,
        errs: &mut Vec<String>,
    ) -> Vec<(String, &'a Table)> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let p = format!("{}[{i}]", self.at(key));
                    match v {
                        Value::Table(t) => Some((p, t)),
                        other => {
                            errs.push(format!("{p}: expected a table, got {}", type_name(other)));
                            None
                        }
                    }
                })
                .collect(),
            Some(v) => {
                errs.push(format!(
                    "{}: expected an array of tables, got {}",
                    self.at(key),
                    type_name(v)
                ));
                Vec::new()
            }
        }
    }

    fn table(&mut self, key: &'static str, errs: &mut Vec<String>) -> Option<Section<'a>> {
        match self.get(key)? {
            Value::Table(t) => Some(Section::new(self.at(key), t)),
            v => {
                errs.push(format!(
                    "{}: expected a table, got {}",
                    self.at(key),
                    type_name(v)
                ));
                None
            }
        }
    }

    /// Reports every key that was never asked for.
    fn finish(self, errs: &mut Vec<String>) {
        let mut unknown: Vec<&String> = self
            .table
            .keys()
            .filter(|k| !self.used.contains(k.as_str()))
            .collect();
        unknown.sort();
        for k in unknown {
            errs.push(format!("{}: unknown key", join(&self.path, k)));
        }
    }
}

fn trigger_spec(path: &str, v: &Value, errs: &mut Vec<String>) -> Option<TriggerSpec> {
    let Value::Table(t) = v else {
        errs.push(format!(
            "{path}: expected a table like {{ event = \"bullish\" }}, got {}",
            type_name(v)
        ));
        return None;
    };
    let mut s = Section::new(path.to_string(), t);
    let event = s.required_string("event", errs);
    let op = s.string("op", errs);
    let value = match s.get("value") {
        None => None,
        Some(v) => match decimal_of(v) {
            Ok(d) => Some(d),
            Err(e) => {
                errs.push(format!("{path}.value: {e}"));
                None
            }
        },
    };
    s.finish(errs);
    Some(TriggerSpec {
        event: event?,
        op,
        value,
    })
}

fn action_spec(path: &str, v: &Value, errs: &mut Vec<String>) -> Option<ActionSpec> {
    let Value::Table(t) = v else {
        errs.push(format!(
            "{path}: expected a table like {{ action = \"buy\" }}, got {}",
            type_name(v)
        ));
        return None;
    };
    let mut s = Section::new(path.to_string(), t);
    let action = s.required_string("action", errs);
    s.finish(errs);
    Some(ActionSpec { action: action? })
}

fn list<'a>(
    s: &mut Section<'a>,
    key: &'static str,
    errs: &mut Vec<String>,
) -> Vec<(String, &'a Value)> {
    match s.get(key) {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{}[{i}]", s.at(key)), v))
            .collect(),
        Some(v) => {
            errs.push(format!(
                "{}: expected an array, got {}",
                s.at(key),
                type_name(v)
            ));
            Vec::new()
        }
    }
}

fn ruleset(path: String, t: &Table, errs: &mut Vec<String>) -> Option<Ruleset> {
    let mut s = Section::new(path, t);
    let name = s.required_string("name", errs);
    let mut rules = Vec::new();
    let mut rule_names = HashSet::new();
    for (rpath, rt) in s.array_of_tables("rules", errs) {
        let mut r = Section::new(rpath.clone(), rt);
        let rname = r.required_string("name", errs);
        let continue_processing = r.boolean("continue_processing", false, errs);
        let triggers: Vec<Option<TriggerSpec>> = list(&mut r, "triggers", errs)
            .into_iter()
            .map(|(p, v)| trigger_spec(&p, v, errs))
            .collect();
        let actions: Vec<Option<ActionSpec>> = list(&mut r, "actions", errs)
            .into_iter()
            .map(|(p, v)| action_spec(&p, v, errs))
            .collect();
        r.finish(errs);
        let Some(rname) = rname else { continue };
        if !rule_names.insert(rname.clone()) {
            errs.push(format!(
                "{rpath}.name: duplicate rule name \"{rname}\" in this ruleset"
            ));
        }
        if triggers.iter().any(Option::is_none) || actions.iter().any(Option::is_none) {
            continue;
        }
        let spec = RuleSpec {
            name: rname,
            continue_processing,
            triggers: triggers.into_iter().flatten().collect(),
            actions: actions.into_iter().flatten().collect(),
        };
        match Rule::from_spec(&spec) {
            Ok(rule) => rules.push(rule),
            Err(es) => errs.extend(
                es.into_iter()
                    .map(|e| format!("{rpath}.{}: {}", e.field, e.problem)),
            ),
        }
    }
    s.finish(errs);
    Some(Ruleset { name: name?, rules })
}

/// Parses and validates a configuration text.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let root: Table = text
        .parse::<Table>()
        .map_err(|e| ConfigErrors(vec![format!("TOML: {}", e.to_string().trim())]))?;
    let mut errs = Vec::new();
    let mut top = Section::new(String::new(), &root);

    let mut database_url = "sqlite://tradewarden.db".to_string();
    if let Some(mut db) = top.table("database", &mut errs) {
        if let Some(url) = db.string("url", &mut errs) {
            if url.starts_with("sqlite:")
                || url.starts_with("postgres:")
                || url.starts_with("postgresql:")
            {
                database_url = url;
            } else {
                errs.push(format!(
                    "database.url: expected sqlite://PATH or postgres://…, got {url:?}"
                ));
            }
        }
        db.finish(&mut errs);
    }

    let (mut lock_timeout_ms, mut lookback_days, mut lease_seconds) = (500, 1, 30);
    if let Some(mut p) = top.table("processing", &mut errs) {
        lock_timeout_ms = p.integer("lock_timeout_ms", 500, 0, &mut errs);
        lookback_days = p.integer("lookback_days", 1, 1, &mut errs);
        lease_seconds = p.integer("lease_seconds", 30, 1, &mut errs);
        p.finish(&mut errs);
    }

    let mut accounts = HashMap::new();
    let mut brokers = BTreeMap::new();
    for (path, t) in top.array_of_tables("accounts", &mut errs) {
        let mut a = Section::new(path.clone(), t);
        let name = a.required_string("name", &mut errs);
        let broker = a.required_string("broker", &mut errs);
        // Bounded so that no sum of money can overflow a decimal.
        let cash = a.decimal(
            "cash",
            Decimal::from(100_000),
            Decimal::ZERO,
            false,
            Some(Decimal::from(1_000_000_000_000_000i64)),
            &mut errs,
        );
        let threshold = a.decimal(
            "minimum_equity_threshold_percent",
            Decimal::from(5),
            Decimal::ZERO,
            false,
            Some(Decimal::ONE_HUNDRED),
            &mut errs,
        );
        a.finish(&mut errs);
        if let Some(b) = &broker
            && !BROKERS.contains(&b.as_str())
        {
            errs.push(format!(
                "{path}.broker: unknown broker \"{b}\" (this version supports: {})",
                BROKERS.join(", ")
            ));
        }
        if let (Some(name), Some(broker)) = (name, broker) {
            if accounts.contains_key(&name) {
                errs.push(format!("{path}.name: duplicate account name \"{name}\""));
            }
            if broker == "paper" {
                brokers.insert(name.clone(), BrokerKind::Paper { cash });
            }
            accounts.insert(
                name.clone(),
                AccountSettings {
                    name,
                    minimum_equity_threshold_percent: threshold,
                },
            );
        }
    }
    if accounts.is_empty() && !errs.iter().any(|e| e.starts_with("accounts")) {
        errs.push("accounts: at least one account is needed".into());
    }

    let mut rulesets = HashMap::new();
    for (path, t) in top.array_of_tables("rulesets", &mut errs) {
        if let Some(rs) = ruleset(path.clone(), t, &mut errs) {
            if rulesets.contains_key(&rs.name) {
                errs.push(format!(
                    "{path}.name: duplicate ruleset name \"{}\"",
                    rs.name
                ));
            }
            rulesets.insert(rs.name.clone(), rs);
        }
    }

    let mut experts = BTreeMap::new();
    let hundred = Decimal::ONE_HUNDRED;
    for (path, t) in top.array_of_tables("experts", &mut errs) {
        let mut e = Section::new(path.clone(), t);
        let id = match e.get("id") {
            Some(Value::Integer(i)) if *i > 0 => Some(*i),
            Some(v) => {
                errs.push(format!("{path}.id: expected a positive integer, got {v}"));
                None
            }
            None => {
                errs.push(format!("{path}.id: missing"));
                None
            }
        };
        let name = e.string("name", &mut errs);
        let account = e.required_string("account", &mut errs);
        let defaults = Expert::with_defaults(0, "", "");
        let enabled = e.boolean("enabled", defaults.enabled, &mut errs);
        let vep = e.decimal(
            "virtual_equity_percent",
            defaults.virtual_equity_percent,
            Decimal::ZERO,
            true,
            Some(hundred),
            &mut errs,
        );
        let enable_buy = e.boolean("enable_buy", defaults.enable_buy, &mut errs);
        let enable_sell = e.boolean("enable_sell", defaults.enable_sell, &mut errs);
        let opening = e.boolean(
            "allow_automated_trade_opening",
            defaults.allow_automated_trade_opening,
            &mut errs,
        );
        let modification = e.boolean(
            "allow_automated_trade_modification",
            defaults.allow_automated_trade_modification,
            &mut errs,
        );
        let max_pct = e.decimal(
            "max_virtual_equity_per_instrument_percent",
            defaults.max_virtual_equity_per_instrument_percent,
            Decimal::ZERO,
            true,
            Some(hundred),
            &mut errs,
        );
        let em = e.string("enter_market_ruleset", &mut errs);
        let op = e.string("open_positions_ruleset", &mut errs);
        e.finish(&mut errs);
        if let Some(a) = &account
            && !accounts.contains_key(a)
        {
            errs.push(format!("{path}.account: unknown account \"{a}\""));
        }
        for (key, rs) in [
            ("enter_market_ruleset", &em),
            ("open_positions_ruleset", &op),
        ] {
            if let Some(rs) = rs
                && !rulesets.contains_key(rs)
            {
                errs.push(format!("{path}.{key}: unknown ruleset \"{rs}\""));
            }
        }
        let (Some(id), Some(account)) = (id, account) else {
            continue;
        };
        if experts.contains_key(&id) {
            errs.push(format!("{path}.id: duplicate expert id {id}"));
        }
        experts.insert(
            id,
            Expert {
                id,
                name: name.unwrap_or_else(|| format!("expert {id}")),
                account,
                enabled,
                virtual_equity_percent: vep,
                enable_buy,
                enable_sell,
                allow_automated_trade_opening: opening,
                allow_automated_trade_modification: modification,
                max_virtual_equity_per_instrument_percent: max_pct,
                enter_market_ruleset: em,
                open_positions_ruleset: op,
            },
        );
    }
    top.finish(&mut errs);
    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    Ok(Config {
        database_url,
        lease: Duration::from_secs(lease_seconds as u64),
        settings: Settings {
            experts,
            rulesets,
            accounts,
            lock_timeout: Duration::from_millis(lock_timeout_ms as u64),
            lookback_days: lookback_days as u32,
            max_clock_skew_seconds: 300,
        },
        brokers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_valid() {
        let c = parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.database_url, "sqlite://tradewarden.db");
        assert_eq!(c.settings.lock_timeout, Duration::from_millis(500));
        let e = &c.settings.experts[&1];
        assert_eq!(e.name, "demo");
        assert!(e.allow_automated_trade_opening);
        assert_eq!(
            c.brokers["paper"],
            BrokerKind::Paper {
                cash: Decimal::from(100_000)
            }
        );
        assert_eq!(c.settings.rulesets["confident-buy"].rules.len(), 1);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
            bogus = 1
            [processing]
            lock_timeout_ms = -1
            [[accounts]]
            name = "paper"
            broker = "paper"
            cash = "lots"
            [[experts]]
            id = 1
            account = "paper"
            [[experts]]
            id = 2
            account = "papr"
            virtual_equity_percent = 150
            enter_market_ruleset = "nope"
            colour = "blue"
            [[rulesets]]
            name = "r"
            [[rulesets.rules]]
            name = "x"
            triggers = [{ event = "bulish" }, { event = "confidence", op = "gte", value = "60" }]
            actions = [{ action = "close" }]
        "#;
        let errs = parse(text).unwrap_err().0;
        let want = [
            "bogus: unknown key",
            "processing.lock_timeout_ms: must be at least 0",
            "accounts[0].cash: not a decimal number",
            "experts[1].account: unknown account \"papr\"",
            "experts[1].virtual_equity_percent: must be greater than 0 and at most 100, got 150",
            "experts[1].enter_market_ruleset: unknown ruleset \"nope\"",
            "experts[1].colour: unknown key",
            "rulesets[0].rules[0].triggers[0].event: unknown trigger \"bulish\"",
            "rulesets[0].rules[0].triggers[1].op: unknown operator \"gte\"",
            "rulesets[0].rules[0].actions[0].action: unknown action \"close\"",
        ];
        for w in want {
            assert!(
                errs.iter().any(|e| e.starts_with(w)),
                "missing {w:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn numbers_may_be_decimal_strings() {
        let text = DEFAULT_CONFIG.replace(
            "virtual_equity_percent = 100",
            "virtual_equity_percent = \"33.3\"",
        );
        assert_eq!(
            parse(&text).unwrap().settings.experts[&1].virtual_equity_percent,
            Decimal::from_str("33.3").unwrap()
        );
    }

    #[test]
    fn broken_toml_is_one_clear_error() {
        let errs = parse("[database\nurl=").unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("TOML:"), "{errs:?}");
    }
}
