//! Configuration: TOML in, validated [`Config`] out, every problem reported at once with its
//! key path (`experts[1].account: unknown account "papr"`). Unknown keys are errors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use toml::{Table, Value};
use tradewarden_domain::UseCase;
use tradewarden_domain::exits::ExitSettings;
use tradewarden_domain::expert::Expert;
use tradewarden_domain::rules::file::RulesFile;
use tradewarden_domain::rules::{ActionSpec, Rule, RuleSpec, Ruleset, TriggerSpec};
use tradewarden_engine::{AccountSettings, Settings};
use tradewarden_store::db::{self, UrlError};

use crate::redact;

mod server;
pub use server::{ApiToken, Role, ServerSettings, parse_sha256, to_hex};

/// The commented default configuration; also what runs when there is no config file.
pub const DEFAULT_CONFIG: &str = include_str!("default_config.toml");

/// Brokers this version can wire.
const BROKERS: &[&str] = &["paper", "alpaca"];

/// Which broker serves an account, parsed once from the configuration; only the app's
/// wiring looks at it (the engine never knows a broker's kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerKind {
    /// The built-in paper broker, with its starting cash (applied once, when the account is
    /// first created).
    Paper { cash: Decimal },
    /// An Alpaca account (paper or live), reached over HTTP.
    Alpaca(AlpacaAccount),
}

impl BrokerKind {
    /// The `broker` word of the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            BrokerKind::Paper { .. } => "paper",
            BrokerKind::Alpaca(_) => "alpaca",
        }
    }
}

/// An `[[accounts]]` entry with `broker = "alpaca"`. It holds the *names* of the environment
/// variables with the keys, never the keys: they are read when the broker is wired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlpacaAccount {
    /// The trading API (default: Alpaca's paper API). Alpaca's live API needs `live`.
    pub base_url: String,
    /// The market data API (default: Alpaca's), for quotes.
    pub data_url: String,
    /// The environment variable holding the API key id.
    pub key_id_env: String,
    /// The environment variable holding the API secret key.
    pub secret_key_env: String,
    /// `live = true`: the account trades real money (required for the live URL).
    pub live: bool,
}

impl AlpacaAccount {
    /// The environment variables this account needs that are unset or empty, by name.
    pub fn missing_variables(&self) -> Vec<&str> {
        [&self.key_id_env, &self.secret_key_env]
            .into_iter()
            .filter(|v| std::env::var(v).map_or(true, |t| t.trim().is_empty()))
            .map(String::as_str)
            .collect()
    }
}

/// `[brokers]`: how tradewarden talks to real brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerSettings {
    /// `max_retries` (default 3): repetitions of a retryable call (timeout, connection
    /// failure, 429, 5xx) after the first attempt.
    pub max_retries: u32,
    /// `extended_hours` (default false): limit orders may fill outside regular hours.
    pub extended_hours: bool,
    /// `request_timeout_seconds` (default 10): how long one HTTP call may take.
    pub request_timeout: Duration,
}

/// `[brokers] max_retries`: accepted values.
pub const MAX_RETRIES: RangeInclusive<i64> = 0..=10;
/// `[brokers] request_timeout_seconds`: accepted values.
pub const REQUEST_TIMEOUT_SECONDS: RangeInclusive<i64> = 1..=120;

/// `[processing] lock_timeout_ms`: accepted values.
pub const LOCK_TIMEOUT_MS: RangeInclusive<i64> = 0..=600_000;
/// `[processing] lookback_days` and `process --lookback-days`: accepted values.
pub const LOOKBACK_DAYS: RangeInclusive<i64> = 1..=3650;
/// `[processing] lease_seconds`: accepted values.
pub const LEASE_SECONDS: RangeInclusive<i64> = 1..=86_400;
/// `[processing] max_clock_skew_seconds`: accepted values.
pub const MAX_CLOCK_SKEW_SECONDS: RangeInclusive<i64> = 0..=86_400;
/// `[processing] max_intent_age_seconds`: accepted values (up to a week).
pub const MAX_INTENT_AGE_SECONDS: RangeInclusive<i64> = 1..=604_800;
/// `[processing] job_timeout_seconds`: accepted values (up to a week).
pub const JOB_TIMEOUT_SECONDS: RangeInclusive<i64> = 1..=604_800;

/// The longest wait between two sweeps of timed-out jobs in `serve`.
pub const JOB_SWEEP_MAX: Duration = Duration::from_secs(60);
/// `[processing] refresh_interval_seconds` and `process_interval_seconds`: accepted values
/// (a second to a day).
pub const BACKGROUND_INTERVAL_SECONDS: RangeInclusive<i64> = 1..=86_400;
/// `[database] connect_timeout_seconds`: accepted values.
pub const CONNECT_TIMEOUT_SECONDS: RangeInclusive<i64> = 1..=300;
/// `experts[].id`: accepted values (every positive id a recommendation may carry).
pub const EXPERT_ID: RangeInclusive<i64> = 1..=i64::MAX;
/// `experts[]` `min_take_profit_percent`, `min_tp_sl_percent`, `min_stop_loss_percent`: the
/// largest accepted value; a stop 100 % below a long's price would be no price at all.
pub const MAX_EXIT_PERCENT: i64 = 99;
/// `accounts[].cash`: the largest starting cash; no sum of money can then overflow a decimal.
const MAX_CASH: i64 = 1_000_000_000_000_000;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[database] url`, as written (print it only through [`redact::url`]).
    pub database_url: String,
    /// `[database] connect_timeout_seconds` (default 5 s): how long connecting to PostgreSQL,
    /// and waiting for a pooled connection, may take.
    pub connect_timeout: Duration,
    /// How long a processing lease lasts without renewal (`[processing] lease_seconds`).
    pub lease: Duration,
    /// `[processing] max_clock_skew_seconds` (default 300 s): the largest difference between
    /// the clocks of hosts sharing a database that the lease and intent logic must tolerate.
    pub max_clock_skew: Duration,
    /// `[processing] max_intent_age_seconds` (default 300 s): an order intent older than this
    /// is never sent to a broker (the engine has it as `Settings::max_intent_age`).
    pub max_intent_age: Duration,
    /// What the engine runs on.
    pub settings: Settings,
    /// The broker of each account, by account name.
    pub brokers: BTreeMap<String, BrokerKind>,
    /// `[brokers]`: retries, extended hours and timeouts of real brokers.
    pub broker_settings: BrokerSettings,
    /// Where each ruleset came from, by ruleset name.
    pub ruleset_info: BTreeMap<String, RulesetInfo>,
    /// `[server]`: what `serve` binds and how it stops.
    pub server: ServerSettings,
    /// `[[api_tokens]]`: who may call the HTTP API (hashes only).
    pub api_tokens: Vec<ApiToken>,
    /// `serve`'s background work (`[processing]` intervals).
    pub background: Background,
}

/// `serve`'s periodic work, from `[processing]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Background {
    /// `refresh_interval_seconds` (default 60): every account refreshed this often.
    pub refresh_interval: Duration,
    /// `process_interval_seconds` (off by default): `process --all` this often.
    pub process_interval: Option<Duration>,
    /// How often pending jobs are checked against `job_timeout_seconds`: the timeout, at
    /// most a minute, so a timed-out job is failed within a minute of its deadline.
    pub job_sweep_interval: Duration,
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

/// `LO..=HI`, the way ranges are written in errors and the README.
fn show_range(range: &RangeInclusive<i64>) -> String {
    format!("{}..={}", range.start(), range.end())
}

/// Reads an integer in `range` from a TOML integer or an integer string.
fn integer_in(
    path: &str,
    v: &Value,
    range: &RangeInclusive<i64>,
    errs: &mut Vec<String>,
) -> Option<i64> {
    let n = match v {
        Value::Integer(i) => Some(*i),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if range.contains(&n) => Some(n),
        Some(n) => {
            errs.push(format!(
                "{path}: out of range ({}), got {n}",
                show_range(range)
            ));
            None
        }
        None => {
            let got = match v {
                Value::String(s) => format!("{s:?}"),
                Value::Float(f) => f.to_string(),
                other => type_name(other).to_string(),
            };
            errs.push(format!(
                "{path}: expected an integer in {}, got {got}",
                show_range(range)
            ));
            None
        }
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

    /// An integer in `range`, written as an integer or an integer string; `default` when
    /// absent. Out of range: `path: out of range (LO..=HI), got N`.
    fn integer(
        &mut self,
        key: &'static str,
        default: i64,
        range: RangeInclusive<i64>,
        errs: &mut Vec<String>,
    ) -> i64 {
        match self.get(key) {
            None => default,
            Some(v) => integer_in(&self.at(key), v, &range, errs).unwrap_or(default),
        }
    }

    /// A required integer in `range`.
    fn required_integer(
        &mut self,
        key: &'static str,
        range: RangeInclusive<i64>,
        errs: &mut Vec<String>,
    ) -> Option<i64> {
        match self.get(key) {
            None => {
                errs.push(format!("{}: missing", self.at(key)));
                None
            }
            Some(v) => integer_in(&self.at(key), v, &range, errs),
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
    let value = decimal_key(&mut s, "value", errs);
    s.finish(errs);
    Some(TriggerSpec {
        event: event?,
        op,
        value,
    })
}

/// An optional decimal key; a value that is not a number is reported (its range is the
/// domain's business: `Trigger::from_spec`, `RuleAction::from_spec`).
fn decimal_key(s: &mut Section<'_>, key: &'static str, errs: &mut Vec<String>) -> Option<Decimal> {
    let v = s.get(key)?;
    match decimal_of(v) {
        Ok(d) => Some(d),
        Err(e) => {
            errs.push(format!("{}: {e}", s.at(key)));
            None
        }
    }
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
    let reference = s.string("reference", errs);
    let value = decimal_key(&mut s, "value", errs);
    let price = decimal_key(&mut s, "price", errs);
    s.finish(errs);
    Some(ActionSpec {
        action: action?,
        reference,
        value,
        price,
    })
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

/// Where a configured ruleset came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesetSource {
    /// Its rules are written in the configuration.
    Config,
    /// Read from a rules file in the original's export format.
    File {
        /// The path as the configuration writes it (relative to the configuration file).
        path: String,
        /// The ruleset's name inside the file, when the configuration names one.
        ruleset: Option<String>,
    },
}

impl std::fmt::Display for RulesetSource {
    /// `the configuration`, `rules/enter.json`, `rules/all.json, ruleset "LongTerm Enter"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RulesetSource::Config => f.write_str("the configuration"),
            RulesetSource::File {
                path,
                ruleset: None,
            } => f.write_str(path),
            RulesetSource::File {
                path,
                ruleset: Some(name),
            } => write!(f, "{path}, ruleset {name:?}"),
        }
    }
}

/// What the configuration knows about a ruleset beyond its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesetInfo {
    pub source: RulesetSource,
    /// `description` of the `[[rulesets]]` entry, else of the rules file.
    pub description: Option<String>,
    /// The use case the rules file says the ruleset is for.
    pub subtype: Option<UseCase>,
}

/// One `[[rulesets]]` entry: `name` with inline `rules`, or `name` with `file` (and
/// `ruleset`, the name inside the file, when it holds several).
fn ruleset(
    path: String,
    t: &Table,
    dir: &Path,
    errs: &mut Vec<String>,
) -> Option<(Ruleset, RulesetInfo)> {
    let mut s = Section::new(path.clone(), t);
    let name = s.required_string("name", errs);
    let description = s.string("description", errs);
    let file = s.string("file", errs);
    let in_file = s.string("ruleset", errs);
    let loaded = match &file {
        Some(file) => {
            if t.contains_key("rules") {
                s.get("rules");
                errs.push(format!("{path}: give either rules or file, not both"));
            }
            let name = name.as_deref().unwrap_or_default();
            file_ruleset(&path, dir, file, in_file.as_deref(), name, errs)
        }
        None => {
            if in_file.is_some() {
                errs.push(format!(
                    "{path}.ruleset: names a ruleset inside a rules file; set file too"
                ));
            }
            let rules = inline_rules(&mut s, errs);
            Some((rules, None, None))
        }
    };
    s.finish(errs);
    let (rules, file_description, subtype) = loaded?;
    let source = match file {
        Some(path) => RulesetSource::File {
            path,
            ruleset: in_file,
        },
        None => RulesetSource::Config,
    };
    let info = RulesetInfo {
        source,
        description: description.or(file_description),
        subtype,
    };
    Some((Ruleset { name: name?, rules }, info))
}

/// The rules written in a `[[rulesets]]` entry.
fn inline_rules(s: &mut Section<'_>, errs: &mut Vec<String>) -> Vec<Rule> {
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
    rules
}

/// The rules of a ruleset read from a rules file of the original, with the file's
/// description and subtype. Every problem names the file (as the configuration writes it),
/// and inside it the ruleset, the rule and the key.
fn file_ruleset(
    path: &str,
    dir: &Path,
    file: &str,
    pick: Option<&str>,
    name: &str,
    errs: &mut Vec<String>,
) -> Option<(Vec<Rule>, Option<String>, Option<UseCase>)> {
    let text = match std::fs::read_to_string(dir.join(file)) {
        Ok(text) => text,
        Err(e) => {
            errs.push(format!(
                "{path}.file: cannot read {file}: {e} (a relative path is relative to the configuration file)"
            ));
            return None;
        }
    };
    let parsed = match RulesFile::parse(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            errs.push(format!("{path}.file: {file}: {e}"));
            return None;
        }
    };
    let doc = match parsed.pick(pick) {
        Ok(doc) => doc,
        Err(e) => {
            let key = if pick.is_some() { "ruleset" } else { "file" };
            errs.push(format!("{path}.{key}: {file}: {e}"));
            return None;
        }
    };
    match doc.to_ruleset(name) {
        Ok(rs) => Some((rs.rules, doc.description.clone(), doc.subtype)),
        Err(es) => {
            errs.extend(es.iter().map(|e| format!("{path}.file: {file}: {e}")));
            None
        }
    }
}

/// Parses and validates a configuration text whose rules files, if any, are relative to
/// the working directory (the built-in default has none).
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    parse_in(text, Path::new("."))
}

/// Parses and validates a configuration text read from a file in `dir`: a relative rules
/// `file` is relative to `dir`.
pub fn parse_in(text: &str, dir: &Path) -> Result<Config, ConfigErrors> {
    // A TOML error quotes the offending line, which may hold the database password.
    let root: Table = text.parse::<Table>().map_err(|e| {
        ConfigErrors(vec![format!(
            "TOML: {}",
            redact::text(e.to_string().trim())
        )])
    })?;
    let mut errs = Vec::new();
    let mut top = Section::new(String::new(), &root);

    let database = database(&mut top, &mut errs);
    let processing = processing(&mut top, &mut errs);
    let broker_settings = broker_settings(&mut top, &mut errs);

    let mut accounts = HashMap::new();
    let mut brokers = BTreeMap::new();
    for (path, t) in top.array_of_tables("accounts", &mut errs) {
        let mut a = Section::new(path.clone(), t);
        let name = a.required_string("name", &mut errs);
        let broker = a.required_string("broker", &mut errs);
        let kind = match broker.as_deref() {
            Some("alpaca") => alpaca_account(&mut a, &mut errs).map(BrokerKind::Alpaca),
            // Bounded so that no sum of money can overflow a decimal.
            Some("paper") => Some(BrokerKind::Paper {
                cash: a.decimal(
                    "cash",
                    Decimal::from(100_000),
                    Decimal::ZERO,
                    false,
                    Some(Decimal::from(MAX_CASH)),
                    &mut errs,
                ),
            }),
            _ => None,
        };
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
        if let (Some(name), Some(_)) = (name, broker) {
            if accounts.contains_key(&name) {
                errs.push(format!("{path}.name: duplicate account name \"{name}\""));
            }
            if let Some(kind) = kind {
                brokers.insert(name.clone(), kind);
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
    let mut ruleset_info = BTreeMap::new();
    for (path, t) in top.array_of_tables("rulesets", &mut errs) {
        if let Some((rs, info)) = ruleset(path.clone(), t, dir, &mut errs) {
            if rulesets.contains_key(&rs.name) {
                errs.push(format!(
                    "{path}.name: duplicate ruleset name \"{}\"",
                    rs.name
                ));
            }
            ruleset_info.insert(rs.name.clone(), info);
            rulesets.insert(rs.name.clone(), rs);
        }
    }

    let mut experts = BTreeMap::new();
    let hundred = Decimal::ONE_HUNDRED;
    for (path, t) in top.array_of_tables("experts", &mut errs) {
        let mut e = Section::new(path.clone(), t);
        let id = e.required_integer("id", EXPERT_ID, &mut errs);
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
        let exits = exit_settings(&mut e, &defaults.exits, &mut errs);
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
                exits,
            },
        );
    }
    let server = server::server(&mut top, &mut errs);
    let api_tokens = server::api_tokens(&mut top, &experts, &mut errs);
    top.finish(&mut errs);
    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    Ok(Config {
        database_url: database.url,
        connect_timeout: secs(database.connect_timeout_seconds),
        lease: secs(processing.lease_seconds),
        max_clock_skew: secs(processing.max_clock_skew_seconds),
        max_intent_age: secs(processing.max_intent_age_seconds),
        settings: Settings {
            experts,
            rulesets,
            accounts,
            lock_timeout: Duration::from_millis(processing.lock_timeout_ms.unsigned_abs()),
            lookback_days: u32::try_from(processing.lookback_days).unwrap_or(1),
            max_clock_skew_seconds: u32::try_from(processing.max_clock_skew_seconds).unwrap_or(300),
            max_intent_age: secs(processing.max_intent_age_seconds),
            job_timeout: secs(processing.job_timeout_seconds),
        },
        brokers,
        broker_settings,
        ruleset_info,
        server,
        api_tokens,
        background: Background {
            refresh_interval: secs(processing.refresh_interval_seconds),
            process_interval: processing.process_interval_seconds.map(secs),
            job_sweep_interval: secs(processing.job_timeout_seconds).min(JOB_SWEEP_MAX),
        },
    })
}

/// `[[experts]]` `min_take_profit_percent`, `min_tp_sl_percent`, `min_stop_loss_percent`:
/// each at least 0 and at most [`MAX_EXIT_PERCENT`].
fn exit_settings(e: &mut Section<'_>, d: &ExitSettings, errs: &mut Vec<String>) -> ExitSettings {
    let max = Some(Decimal::from(MAX_EXIT_PERCENT));
    let mut percent = |key, default| e.decimal(key, default, Decimal::ZERO, false, max, errs);
    ExitSettings {
        min_take_profit_percent: percent("min_take_profit_percent", d.min_take_profit_percent),
        min_tp_sl_percent: percent("min_tp_sl_percent", d.min_tp_sl_percent),
        min_stop_loss_percent: percent("min_stop_loss_percent", d.min_stop_loss_percent),
    }
}

/// A validated, non-negative number of seconds.
fn secs(n: i64) -> Duration {
    Duration::from_secs(n.unsigned_abs())
}

/// `[database]`, validated.
struct DatabaseSection {
    url: String,
    connect_timeout_seconds: i64,
}

fn database(top: &mut Section<'_>, errs: &mut Vec<String>) -> DatabaseSection {
    let mut out = DatabaseSection {
        url: "sqlite://tradewarden.db".to_string(),
        connect_timeout_seconds: 5,
    };
    let Some(mut db) = top.table("database", errs) else {
        return out;
    };
    if let Some(url) = db.string("url", errs) {
        match db::check_url(&url) {
            Ok(()) => out.url = url,
            Err(e) => errs.push(url_problem(&url, &e)),
        }
    }
    out.connect_timeout_seconds = db.integer(
        "connect_timeout_seconds",
        out.connect_timeout_seconds,
        CONNECT_TIMEOUT_SECONDS,
        errs,
    );
    db.finish(errs);
    out
}

/// The error for an unusable `database.url`; the URL is echoed only redacted.
fn url_problem(url: &str, e: &UrlError) -> String {
    match e {
        UrlError::Scheme => format!(
            "database.url: expected sqlite://PATH or postgres://USER@HOST:PORT/DB (libpq key/value strings are not supported), got {:?}",
            redact::url(url)
        ),
        UrlError::Parameter(p) if p == db::CONNECT_TIMEOUT_PARAM => {
            "database.url: parameter `connect_timeout`: set [database] connect_timeout_seconds instead".into()
        }
        UrlError::Parameter(p) => format!(
            "database.url: unsupported parameter `{p}` (supported: {})",
            db::PG_PARAMETERS.join(", ")
        ),
        UrlError::Invalid(why) => format!("database.url: {}", redact::scrub(why, url)),
    }
}

/// `[processing]`, validated.
struct ProcessingSection {
    lock_timeout_ms: i64,
    lookback_days: i64,
    lease_seconds: i64,
    max_clock_skew_seconds: i64,
    max_intent_age_seconds: i64,
    job_timeout_seconds: i64,
    refresh_interval_seconds: i64,
    process_interval_seconds: Option<i64>,
}

fn processing(top: &mut Section<'_>, errs: &mut Vec<String>) -> ProcessingSection {
    let mut out = ProcessingSection {
        lock_timeout_ms: 500,
        lookback_days: 1,
        lease_seconds: 30,
        max_clock_skew_seconds: 300,
        max_intent_age_seconds: 300,
        job_timeout_seconds: 3600,
        refresh_interval_seconds: 60,
        process_interval_seconds: None,
    };
    let Some(mut p) = top.table("processing", errs) else {
        return out;
    };
    out.lock_timeout_ms = p.integer(
        "lock_timeout_ms",
        out.lock_timeout_ms,
        LOCK_TIMEOUT_MS,
        errs,
    );
    out.lookback_days = p.integer("lookback_days", out.lookback_days, LOOKBACK_DAYS, errs);
    out.lease_seconds = p.integer("lease_seconds", out.lease_seconds, LEASE_SECONDS, errs);
    out.max_clock_skew_seconds = p.integer(
        "max_clock_skew_seconds",
        out.max_clock_skew_seconds,
        MAX_CLOCK_SKEW_SECONDS,
        errs,
    );
    out.max_intent_age_seconds = p.integer(
        "max_intent_age_seconds",
        out.max_intent_age_seconds,
        MAX_INTENT_AGE_SECONDS,
        errs,
    );
    out.job_timeout_seconds = p.integer(
        "job_timeout_seconds",
        out.job_timeout_seconds,
        JOB_TIMEOUT_SECONDS,
        errs,
    );
    out.refresh_interval_seconds = p.integer(
        "refresh_interval_seconds",
        out.refresh_interval_seconds,
        BACKGROUND_INTERVAL_SECONDS,
        errs,
    );
    out.process_interval_seconds = p.get("process_interval_seconds").and_then(|v| {
        integer_in(
            &p.at("process_interval_seconds"),
            v,
            &BACKGROUND_INTERVAL_SECONDS,
            errs,
        )
    });
    p.finish(errs);
    out
}

/// `[brokers]`, validated.
fn broker_settings(top: &mut Section<'_>, errs: &mut Vec<String>) -> BrokerSettings {
    let mut out = BrokerSettings {
        max_retries: 3,
        extended_hours: false,
        request_timeout: Duration::from_secs(10),
    };
    let Some(mut b) = top.table("brokers", errs) else {
        return out;
    };
    let retries = b.integer("max_retries", 3, MAX_RETRIES, errs);
    out.max_retries = u32::try_from(retries).unwrap_or(3);
    out.extended_hours = b.boolean("extended_hours", false, errs);
    out.request_timeout =
        secs(b.integer("request_timeout_seconds", 10, REQUEST_TIMEOUT_SECONDS, errs));
    b.finish(errs);
    out
}

/// The keys of an `alpaca` account. Alpaca's live URL without `live = true` is an error, so
/// that a paper configuration never trades real money by a typo; keys go over HTTPS only
/// (plain HTTP is accepted for a loopback address: a local fake or proxy).
fn alpaca_account(a: &mut Section<'_>, errs: &mut Vec<String>) -> Option<AlpacaAccount> {
    use tradewarden_brokers::alpaca::{DATA_URL, PAPER_URL};
    let base_url = a
        .string("base_url", errs)
        .unwrap_or_else(|| PAPER_URL.into());
    let data_url = a
        .string("data_url", errs)
        .unwrap_or_else(|| DATA_URL.into());
    let key_id_env = a.required_string("key_id_env", errs);
    let secret_key_env = a.required_string("secret_key_env", errs);
    let live = a.boolean("live", false, errs);
    let mut ok = true;
    for (key, url) in [("base_url", &base_url), ("data_url", &data_url)] {
        if let Err(why) = check_broker_url(url) {
            errs.push(format!("{}: {why}, got {url:?}", a.at(key)));
            ok = false;
        }
    }
    if url_host(&base_url).eq_ignore_ascii_case(LIVE_HOST) && !live {
        errs.push(format!(
            "{}: {base_url:?} is Alpaca's live trading API (real money) — set live = true on this account to trade on it, or use {PAPER_URL}",
            a.at("base_url")
        ));
        ok = false;
    }
    for (key, var) in [
        ("key_id_env", &key_id_env),
        ("secret_key_env", &secret_key_env),
    ] {
        if let Some(v) = var
            && !is_env_name(v)
        {
            errs.push(format!(
                "{}: expected the NAME of an environment variable (letters, digits, _), not its value",
                a.at(key)
            ));
            ok = false;
        }
    }
    Some(AlpacaAccount {
        base_url,
        data_url,
        key_id_env: key_id_env?,
        secret_key_env: secret_key_env?,
        live,
    })
    .filter(|_| ok)
}

/// The host of Alpaca's live trading API.
const LIVE_HOST: &str = "api.alpaca.markets";

/// The host of an `http(s)://host[:port]/…` URL (empty when there is none).
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[');
    }
    host.split(':').next().unwrap_or("")
}

/// A broker URL: `https://host…`, or `http://` to a loopback host.
fn check_broker_url(url: &str) -> Result<(), &'static str> {
    let host = url_host(url);
    if host.is_empty() {
        return Err("expected https://HOST");
    }
    if url.starts_with("https://") {
        return Ok(());
    }
    let loopback = ["127.0.0.1", "localhost", "::1"].contains(&host);
    if url.starts_with("http://") && loopback {
        return Ok(());
    }
    Err("expected https://HOST (plain http:// only to a loopback address: the keys travel in it)")
}

/// Whether `name` can be an environment variable's name.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What `check` prints (see [`crate::output::describe_config`]).
pub fn describe(cfg: &Config, source: &str) -> String {
    crate::output::describe_config(cfg, source)
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
            actions = [{ action = "clos" }, { action = "adjust_stop_loss", price = "cheap" }]
        "#;
        let errs = parse(text).unwrap_err().0;
        let want = [
            "bogus: unknown key",
            "processing.lock_timeout_ms: out of range (0..=600000), got -1",
            "accounts[0].cash: not a decimal number",
            "experts[1].account: unknown account \"papr\"",
            "experts[1].virtual_equity_percent: must be greater than 0 and at most 100, got 150",
            "experts[1].enter_market_ruleset: unknown ruleset \"nope\"",
            "experts[1].colour: unknown key",
            "rulesets[0].rules[0].triggers[0].event: unknown trigger \"bulish\"",
            "rulesets[0].rules[0].triggers[1].op: unknown operator \"gte\"",
            "rulesets[0].rules[0].actions[0].action: unknown action \"clos\"",
            "rulesets[0].rules[0].actions[1].price: not a decimal number",
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

    /// `text` with `key = value` in its first `[section]` or `[[section]]`: the line of that
    /// key (commented or not) replaced, else one added after the header.
    fn set(text: &str, section: &str, key: &str, value: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let is_header = |l: &str| l.trim_start().starts_with('[');
        let start = lines
            .iter()
            .position(|l| {
                l.trim() == format!("[{section}]") || l.trim() == format!("[[{section}]]")
            })
            .expect("section in the text");
        let end = (start + 1..lines.len())
            .find(|&i| is_header(&lines[i]))
            .unwrap_or(lines.len());
        let new = format!("{key} = {value}");
        let name = |l: &str| {
            l.trim_start_matches('#')
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        };
        match (start + 1..end).find(|&i| name(&lines[i]) == key) {
            Some(i) => lines[i] = new,
            None => lines.insert(start + 1, new),
        }
        lines.join("\n") + "\n"
    }

    /// The default configuration with one key set.
    fn with(section: &str, key: &str, value: &str) -> String {
        set(DEFAULT_CONFIG, section, key, value)
    }

    #[test]
    fn every_number_has_a_range_named_in_its_error() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "processing",
                "lock_timeout_ms",
                "600001",
                "processing.lock_timeout_ms: out of range (0..=600000), got 600001",
            ),
            (
                "processing",
                "lookback_days",
                "1000000000",
                "processing.lookback_days: out of range (1..=3650), got 1000000000",
            ),
            (
                "processing",
                "lookback_days",
                "0",
                "processing.lookback_days: out of range (1..=3650), got 0",
            ),
            (
                "processing",
                "lookback_days",
                "\"3651\"",
                "processing.lookback_days: out of range (1..=3650), got 3651",
            ),
            (
                "processing",
                "lookback_days",
                "1.5",
                "processing.lookback_days: expected an integer in 1..=3650, got 1.5",
            ),
            (
                "processing",
                "lease_seconds",
                "9223372036854775807",
                "processing.lease_seconds: out of range (1..=86400), got 9223372036854775807",
            ),
            (
                "processing",
                "max_clock_skew_seconds",
                "-1",
                "processing.max_clock_skew_seconds: out of range (0..=86400), got -1",
            ),
            (
                "processing",
                "max_intent_age_seconds",
                "604801",
                "processing.max_intent_age_seconds: out of range (1..=604800), got 604801",
            ),
            (
                "processing",
                "max_intent_age_seconds",
                "0",
                "processing.max_intent_age_seconds: out of range (1..=604800), got 0",
            ),
            (
                "processing",
                "job_timeout_seconds",
                "0",
                "processing.job_timeout_seconds: out of range (1..=604800), got 0",
            ),
            (
                "processing",
                "job_timeout_seconds",
                "604801",
                "processing.job_timeout_seconds: out of range (1..=604800), got 604801",
            ),
            (
                "database",
                "connect_timeout_seconds",
                "0",
                "database.connect_timeout_seconds: out of range (1..=300), got 0",
            ),
            (
                "database",
                "connect_timeout_seconds",
                "301",
                "database.connect_timeout_seconds: out of range (1..=300), got 301",
            ),
            (
                "accounts",
                "cash",
                "\"1000000000000000.01\"",
                "accounts[0].cash: must be at least 0 and at most 1000000000000000, got 1000000000000000.01",
            ),
            (
                "accounts",
                "cash",
                "-1",
                "accounts[0].cash: must be at least 0",
            ),
            (
                "accounts",
                "minimum_equity_threshold_percent",
                "101",
                "accounts[0].minimum_equity_threshold_percent: must be at least 0 and at most 100, got 101",
            ),
            (
                "experts",
                "id",
                "0",
                "experts[0].id: out of range (1..=9223372036854775807), got 0",
            ),
            (
                "experts",
                "id",
                "\"x\"",
                "experts[0].id: expected an integer in 1..=9223372036854775807, got \"x\"",
            ),
            (
                "experts",
                "virtual_equity_percent",
                "0",
                "experts[0].virtual_equity_percent: must be greater than 0 and at most 100, got 0",
            ),
            (
                "experts",
                "max_virtual_equity_per_instrument_percent",
                "100.5",
                "experts[0].max_virtual_equity_per_instrument_percent: must be greater than 0 and at most 100, got 100.5",
            ),
        ];
        for (section, key, value, want) in cases {
            let errs = parse(&with(section, key, value)).unwrap_err().0;
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "{section}.{key} = {value}: want {want:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn rule_values_have_the_range_of_what_they_measure() {
        for (trigger, value, want) in [
            ("confidence", "101", "(0..=100), got 101"),
            ("confidence", "-0.5", "(0..=100), got -0.5"),
            (
                "expected_profit_target_percent",
                "10001",
                "(-10000..=10000), got 10001",
            ),
            (
                "percent_to_new_target",
                "\"-1000000.1\"",
                "(-1000000..=1000000), got -1000000.1",
            ),
        ] {
            let text = DEFAULT_CONFIG.replace(
                r#"{ event = "confidence", op = ">=", value = 60 }"#,
                &format!(r#"{{ event = "{trigger}", op = ">=", value = {value} }}"#),
            );
            let errs = parse(&text).unwrap_err().0;
            let want = format!("rulesets[0].rules[0].triggers[1].value: out of range {want}");
            assert!(
                errs.iter().any(|e| e == &want),
                "want {want:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn the_limits_of_every_range_are_accepted() {
        let mut text = DEFAULT_CONFIG.to_string();
        for (section, key, value) in [
            ("processing", "lock_timeout_ms", "600000"),
            ("processing", "lookback_days", "3650"),
            ("processing", "lease_seconds", "86400"),
            ("processing", "max_clock_skew_seconds", "86400"),
            ("processing", "max_intent_age_seconds", "604800"),
            ("processing", "job_timeout_seconds", "604800"),
            ("database", "connect_timeout_seconds", "300"),
        ] {
            text = set(&text, section, key, value);
        }
        let c = parse(&text).unwrap();
        assert_eq!(c.settings.lock_timeout, Duration::from_millis(600_000));
        assert_eq!(c.settings.lookback_days, 3650);
        assert_eq!(c.lease, Duration::from_secs(86_400));
        assert_eq!(c.max_clock_skew, Duration::from_secs(86_400));
        assert_eq!(c.max_intent_age, Duration::from_secs(604_800));
        // Catches: the key parsed but never handed to the engine.
        assert_eq!(c.settings.max_intent_age, Duration::from_secs(604_800));
        assert_eq!(c.settings.job_timeout, Duration::from_secs(604_800));
        assert_eq!(c.connect_timeout, Duration::from_secs(300));
    }

    #[test]
    fn new_keys_default_when_left_out() {
        let c = parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.max_clock_skew, Duration::from_secs(300));
        assert_eq!(c.max_intent_age, Duration::from_secs(300));
        assert_eq!(c.settings.max_intent_age, Duration::from_secs(300));
        assert_eq!(c.settings.job_timeout, Duration::from_secs(3600));
    }

    #[test]
    fn database_urls_are_checked_and_echoed_only_redacted() {
        for (url, want) in [
            (
                "mysql://u@h/db",
                "database.url: expected sqlite://PATH or postgres://",
            ),
            (
                "postgres: host=h password=hunter2",
                "libpq key/value strings are not supported",
            ),
            (
                "postgres://u@h/db?sslpassword=hunter2",
                "database.url: unsupported parameter `sslpassword`",
            ),
            (
                "postgres://u@h/db?connect_timeout=3",
                "set [database] connect_timeout_seconds instead",
            ),
            (
                "postgres://u:hunter2@h:99999/db",
                "database.url: bad connection URL",
            ),
            (
                "sqlite://x.db?password=hunter2",
                "database.url: bad connection URL",
            ),
        ] {
            let text = DEFAULT_CONFIG.replace("sqlite://tradewarden.db", url);
            let errs = parse(&text).unwrap_err().0;
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "{url}: want {want:?} in {errs:#?}"
            );
            assert!(!errs.join("\n").contains("hunter2"), "{url}: {errs:#?}");
        }
        for url in [
            "postgres://u:hunter2@h:5432/db",
            "postgresql://u@h/db?password=hunter2&sslmode=prefer",
            "sqlite:tw.db",
            "sqlite://tw.db?mode=rwc",
        ] {
            let text = DEFAULT_CONFIG.replace("sqlite://tradewarden.db", url);
            assert!(parse(&text).is_ok(), "{url}: {:?}", parse(&text).err());
        }
    }

    #[test]
    fn check_shows_the_new_keys_and_no_password() {
        let text = DEFAULT_CONFIG.replace(
            "sqlite://tradewarden.db",
            "postgres://u:hunter2@h/db?password=swordfish",
        );
        let out = describe(&parse(&text).unwrap(), "x.toml");
        assert!(
            !out.contains("hunter2") && !out.contains("swordfish"),
            "{out}"
        );
        assert!(
            out.contains(
                "database: postgres://u:***@h/db?password=*** (connect_timeout_seconds = 5)"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "max_clock_skew_seconds = 300, max_intent_age_seconds = 300, job_timeout_seconds = 3600"
            ),
            "{out}"
        );
    }

    #[test]
    fn a_toml_error_quoting_the_url_line_hides_the_password() {
        let errs = parse("[database]\nurl = \"postgres://u:hunter2@h/db\n")
            .unwrap_err()
            .0;
        assert!(!errs[0].contains("hunter2"), "{errs:?}");
    }

    #[test]
    fn broken_toml_is_one_clear_error() {
        let errs = parse("[database\nurl=").unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("TOML:"), "{errs:?}");
    }

    #[test]
    fn actions_take_their_parameters() {
        use rust_decimal_macros::dec;
        use tradewarden_domain::money::Price;
        use tradewarden_domain::rules::{ExitReference, ExitTarget, RuleAction};
        let text = DEFAULT_CONFIG.replace(
            r#"actions = [{ action = "buy" }]"#,
            r#"actions = [
  { action = "buy" },
  { action = "adjust_take_profit", reference = "order_open_price", value = 10 },
  { action = "adjust_stop_loss", price = 95.5 },
  { action = "increase_instrument_share", value = "8" },
  { action = "close" },
]"#,
        );
        let c = parse(&text).unwrap();
        assert_eq!(
            c.settings.rulesets["confident-buy"].rules[0].actions,
            [
                RuleAction::Buy,
                RuleAction::AdjustTakeProfit(ExitTarget::Percent {
                    reference: ExitReference::OrderOpenPrice,
                    percent: dec!(10),
                }),
                RuleAction::AdjustStopLoss(ExitTarget::Price(Price::new(dec!(95.5)).unwrap())),
                RuleAction::IncreaseInstrumentShare(dec!(8)),
                RuleAction::Close,
            ]
        );
        for (action, want) in [
            (
                r#"{ action = "adjust_take_profit", reference = "entry", value = 10 }"#,
                "actions[0].reference: unknown reference \"entry\"",
            ),
            (
                r#"{ action = "adjust_stop_loss", reference = "current_price" }"#,
                "actions[0].value: action \"adjust_stop_loss\" needs a value",
            ),
            (
                r#"{ action = "increase_instrument_share", value = 101 }"#,
                "actions[0].value: out of range (0..=100), got 101",
            ),
            (
                r#"{ action = "buy", value = 1 }"#,
                "actions[0].value: not used by action \"buy\"",
            ),
            (
                r#"{ action = "buy", lots = 1 }"#,
                "actions[0].lots: unknown key",
            ),
            (
                r#"{ action = "sell_covered_call" }"#,
                "actions[0].action: action \"sell_covered_call\" is not supported: options",
            ),
        ] {
            let text = DEFAULT_CONFIG.replace(r#"[{ action = "buy" }]"#, &format!("[{action}]"));
            let errs = parse(&text).unwrap_err().0;
            let want = format!("rulesets[0].rules[0].{want}");
            assert!(
                errs.iter().any(|e| e.starts_with(&want)),
                "want {want:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn unsupported_triggers_are_named_with_the_reason() {
        for (event, why) in [
            ("price_vs_target_consensus_percent", "FMP ratings"),
            ("iv_rank", "options"),
            ("percent_below_recent_high", "daily bars"),
            ("days_to_earnings", "earnings"),
        ] {
            let text = DEFAULT_CONFIG.replace(
                r#"{ event = "bullish" }"#,
                &format!(r#"{{ event = "{event}", op = ">", value = 1 }}"#),
            );
            let errs = parse(&text).unwrap_err().0;
            let want = format!(
                "rulesets[0].rules[0].triggers[0].event: trigger \"{event}\" is not supported: {why}"
            );
            assert!(
                errs.iter().any(|e| e.starts_with(&want)),
                "want {want:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn exit_settings_have_defaults_and_ranges() {
        use rust_decimal_macros::dec;
        let c = parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.settings.experts[&1].exits, ExitSettings::default());
        assert_eq!(
            (
                c.settings.experts[&1].exits.min_take_profit_percent,
                c.settings.experts[&1].exits.min_tp_sl_percent,
                c.settings.experts[&1].exits.min_stop_loss_percent
            ),
            (dec!(2), dec!(3), dec!(7))
        );
        let mut text = DEFAULT_CONFIG.to_string();
        for (key, value) in [
            ("min_take_profit_percent", "0"),
            ("min_tp_sl_percent", "\"0.0000000000000000000000000001\""),
            ("min_stop_loss_percent", "99"),
        ] {
            text = set(&text, "experts", key, value);
        }
        let exits = parse(&text).unwrap().settings.experts[&1].exits;
        assert_eq!(exits.min_take_profit_percent, dec!(0));
        assert_eq!(
            exits.min_tp_sl_percent,
            dec!(0.0000000000000000000000000001)
        );
        assert_eq!(exits.min_stop_loss_percent, dec!(99));
        for key in [
            "min_take_profit_percent",
            "min_tp_sl_percent",
            "min_stop_loss_percent",
        ] {
            for (value, got) in [
                ("-1", "-1"),
                (
                    "-0.0000000000000000000000000001",
                    "-0.0000000000000000000000000001",
                ),
                ("99.01", "99.01"),
                ("1e20", "100000000000000000000"),
            ] {
                let errs = parse(&with("experts", key, value)).unwrap_err().0;
                let want =
                    format!("experts[0].{key}: must be at least 0 and at most 99, got {got}");
                assert!(
                    errs.iter().any(|e| e == &want),
                    "{key} = {value}: want {want:?} in {errs:#?}"
                );
            }
        }
    }

    /// A configuration in a fresh directory whose ruleset entry is `entry`, with `files`
    /// (path, text) written beside it.
    fn with_rules_files(entry: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        let start = DEFAULT_CONFIG.find("\n[[rulesets]]").unwrap() + 1;
        let text = format!("{}[[rulesets]]\n{entry}\n", &DEFAULT_CONFIG[..start]);
        (dir, text)
    }

    const ONE_RULESET: &str = r#"{"export_version":"1.0","export_type":"ruleset","export_timestamp":"2025-10-29T09:23:34",
      "ruleset":{"name":"LongTerm Enter","description":"from the original","subtype":"enter_market","rules":[
        {"name":"BUY_long_conf70","triggers":{"trigger_0":{"event_type":"bullish"},
           "trigger_1":{"event_type":"confidence","operator":">=","value":70.0}},
         "actions":{"action_0":{"action_type":"buy"}},"extra_parameters":{},"continue_processing":false,"order_index":0}]}}"#;

    const TWO_RULESETS: &str = r#"{"export_version":"1.0","export_type":"rulesets","export_timestamp":"x","rulesets":[
      {"name":"A","rules":[{"name":"a","triggers":{"trigger_0":{"event_type":"bullish"}},"actions":{"action_0":{"action_type":"buy"}}}]},
      {"name":"B","rules":[{"name":"b","triggers":{"trigger_0":{"event_type":"bulish"}},"actions":{"action_0":{"action_type":"buy"}}}]}]}"#;

    #[test]
    fn a_ruleset_may_come_from_a_rules_file() {
        let (dir, text) = with_rules_files(
            "name = \"confident-buy\"\nfile = \"rules/enter.json\"",
            &[("rules/enter.json", ONE_RULESET)],
        );
        let c = parse_in(&text, dir.path()).unwrap();
        let rs = &c.settings.rulesets["confident-buy"];
        assert_eq!(rs.name, "confident-buy");
        assert_eq!(
            rs.rules[0].sentence(),
            "IF bullish AND confidence >= 70 THEN buy"
        );
        let info = &c.ruleset_info["confident-buy"];
        assert_eq!(
            info.source,
            RulesetSource::File {
                path: "rules/enter.json".into(),
                ruleset: None
            }
        );
        assert_eq!(info.description.as_deref(), Some("from the original"));
        assert_eq!(info.subtype, Some(UseCase::EnterMarket));
        // Relative to the configuration's directory, not the working directory.
        assert!(parse(&text).is_err());
        // A file of several rulesets: the one named.
        let (dir, text) = with_rules_files(
            "name = \"confident-buy\"\nfile = \"all.json\"\nruleset = \"A\"",
            &[("all.json", TWO_RULESETS)],
        );
        let c = parse_in(&text, dir.path()).unwrap();
        assert_eq!(c.settings.rulesets["confident-buy"].rules[0].name, "a");
        assert_eq!(
            c.ruleset_info["confident-buy"].source.to_string(),
            "all.json, ruleset \"A\""
        );
    }

    #[test]
    fn rules_file_problems_name_the_file_the_ruleset_the_rule_and_the_key() {
        let p = "rulesets[0]";
        let cases: Vec<(&str, Vec<(&str, &str)>, String)> = vec![
            (
                "name = \"confident-buy\"\nfile = \"all.json\"\nruleset = \"B\"",
                vec![("all.json", TWO_RULESETS)],
                format!(
                    "{p}.file: all.json: ruleset \"B\", rule \"b\", trigger_0.event_type: unknown trigger \"bulish\""
                ),
            ),
            (
                "name = \"confident-buy\"\nfile = \"all.json\"",
                vec![("all.json", TWO_RULESETS)],
                format!("{p}.file: all.json: the file holds 2 rulesets (A, B): name one"),
            ),
            (
                "name = \"confident-buy\"\nfile = \"all.json\"\nruleset = \"C\"",
                vec![("all.json", TWO_RULESETS)],
                format!("{p}.ruleset: all.json: no ruleset \"C\" in the file (it holds: A, B)"),
            ),
            (
                "name = \"confident-buy\"\nfile = \"missing.json\"",
                vec![],
                format!("{p}.file: cannot read missing.json: "),
            ),
            (
                "name = \"confident-buy\"\nfile = \"bad.json\"",
                vec![("bad.json", "{")],
                format!("{p}.file: bad.json: not a rules file"),
            ),
            (
                "name = \"confident-buy\"\nfile = \"all.json\"\nruleset = \"A\"\n[[rulesets.rules]]\nname = \"x\"\nactions = [{ action = \"buy\" }]",
                vec![("all.json", TWO_RULESETS)],
                format!("{p}: give either rules or file, not both"),
            ),
            (
                "name = \"confident-buy\"\nruleset = \"A\"",
                vec![],
                format!("{p}.ruleset: names a ruleset inside a rules file; set file too"),
            ),
        ];
        for (entry, files, want) in cases {
            let (dir, text) = with_rules_files(entry, &files);
            let errs = parse_in(&text, dir.path()).unwrap_err().0;
            assert!(
                errs.iter().any(|e| e.starts_with(&want)),
                "{entry}: want {want:?} in {errs:#?}"
            );
        }
    }

    /// The default configuration with its account turned into an Alpaca one with `keys`.
    fn alpaca(keys: &str) -> String {
        DEFAULT_CONFIG.replace(
            "broker = \"paper\"\ncash = 100000",
            &format!("broker = \"alpaca\"\n{keys}"),
        )
    }

    #[test]
    fn an_alpaca_account_takes_its_keys_from_named_variables() {
        let c = parse(&alpaca(
            "key_id_env = \"TW_TEST_KEY\"\nsecret_key_env = \"TW_TEST_SECRET\"",
        ))
        .unwrap();
        assert_eq!(
            c.brokers["paper"],
            BrokerKind::Alpaca(AlpacaAccount {
                base_url: "https://paper-api.alpaca.markets".into(),
                data_url: "https://data.alpaca.markets".into(),
                key_id_env: "TW_TEST_KEY".into(),
                secret_key_env: "TW_TEST_SECRET".into(),
                live: false,
            })
        );
        assert_eq!(
            c.broker_settings,
            BrokerSettings {
                max_retries: 3,
                extended_hours: false,
                request_timeout: Duration::from_secs(10),
            }
        );
    }

    #[test]
    fn alpaca_account_problems_are_named() {
        // Catches: the live URL accepted without live = true (real money by a typo), keys
        // sent over plain HTTP, a key pasted where its variable's name belongs.
        let keys = "key_id_env = \"K\"\nsecret_key_env = \"S\"";
        let cases = [
            (
                format!("{keys}\nbase_url = \"https://api.alpaca.markets\""),
                Some(
                    "accounts[0].base_url: \"https://api.alpaca.markets\" is Alpaca's live trading API (real money) — set live = true",
                ),
            ),
            (
                format!("{keys}\nbase_url = \"https://API.alpaca.markets/\""),
                Some("is Alpaca's live trading API"),
            ),
            (
                format!("{keys}\nbase_url = \"https://api.alpaca.markets\"\nlive = true"),
                None,
            ),
            (
                format!("{keys}\nbase_url = \"http://127.0.0.1:8080\""),
                None,
            ),
            (
                format!("{keys}\nbase_url = \"http://paper-api.alpaca.markets\""),
                Some(
                    "accounts[0].base_url: expected https://HOST (plain http:// only to a loopback address",
                ),
            ),
            (
                format!("{keys}\ndata_url = \"ftp://x\""),
                Some("accounts[0].data_url: expected https://HOST"),
            ),
            (
                "key_id_env = \"PKAB12 34\"\nsecret_key_env = \"S\"".into(),
                Some("accounts[0].key_id_env: expected the NAME of an environment variable"),
            ),
            (
                "key_id_env = \"K\"".into(),
                Some("accounts[0].secret_key_env: missing"),
            ),
            (
                format!("{keys}\ncash = 5"),
                Some("accounts[0].cash: unknown key"),
            ),
        ];
        for (keys, want) in cases {
            let got = parse(&alpaca(&keys));
            match want {
                None => assert!(got.is_ok(), "{keys}: {got:?}"),
                Some(want) => {
                    let errs = got.unwrap_err().to_string();
                    assert!(errs.contains(want), "{keys}: {errs}");
                    assert!(!errs.contains("PKAB12 34"), "{errs}");
                }
            }
        }
    }

    #[test]
    fn the_brokers_section_has_defaults_and_ranges() {
        let cases = [
            ("max_retries", "0", None),
            ("max_retries", "10", None),
            (
                "max_retries",
                "11",
                Some("brokers.max_retries: out of range (0..=10), got 11"),
            ),
            (
                "request_timeout_seconds",
                "0",
                Some("brokers.request_timeout_seconds: out of range (1..=120), got 0"),
            ),
            ("extended_hours", "true", None),
            (
                "extended_hours",
                "1",
                Some("brokers.extended_hours: expected true or false"),
            ),
            ("retries", "1", Some("brokers.retries: unknown key")),
        ];
        for (key, value, want) in cases {
            let text = format!("{DEFAULT_CONFIG}\n[brokers]\n{key} = {value}\n");
            let got = parse(&text);
            match want {
                None => assert!(got.is_ok(), "{key}: {got:?}"),
                Some(want) => {
                    let errs = got.unwrap_err().to_string();
                    assert!(errs.contains(want), "{key}: {errs}");
                }
            }
        }
        let text = format!("{DEFAULT_CONFIG}\n[brokers]\nmax_retries = 5\nextended_hours = true\n");
        let b = parse(&text).unwrap().broker_settings;
        assert_eq!((b.max_retries, b.extended_hours), (5, true));
    }
}
