//! The original's rules files: export format v1.0 (reference §4.5), read and written, so
//! rules move both ways between tradewarden and the original.
//!
//! - The envelope is `{export_version: "1.0", export_type, export_timestamp, <payload>}`;
//!   `export_type` is `ruleset`, `rulesets`, `rule` or `rules`.
//! - A trigger is `trigger_N: {event_type, operator?, value?}`; an action is
//!   `action_N: {action_type, reference_value?, value?, take_profit_price?,
//!   stop_loss_price?, target_percent?}`. Keys are ordered by their number N.
//! - Reading is strict where meaning is at stake: an unknown event or action type, or a
//!   parameter the action does not use, is an error naming the ruleset, the rule and the
//!   key. Keys set to `null` count as absent; other keys of rules and rulesets
//!   (`extra_parameters`, `type`) are ignored, as the original ignores them.
//! - Numbers are read from their text, never through `f64` (I7), and written the same way.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{
    ActionSpec, ExitTarget, Rule, RuleAction, RuleError, RuleSpec, Ruleset, Trigger, TriggerSpec,
};
use crate::UseCase;
use crate::decimal::parse_decimal;
use crate::echo;

/// The only export version this reads and writes.
pub const EXPORT_VERSION: &str = "1.0";

/// The rule `type` the original writes (its only value).
const RULE_TYPE: &str = "trading_recommendation_rule";

/// What a rules file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportType {
    Ruleset,
    Rulesets,
    Rule,
    Rules,
}

/// One ruleset of a rules file (or its loose rules), read but not yet checked.
#[derive(Debug, Clone)]
pub struct RulesetDoc {
    /// The ruleset's name in the file; `None` for the loose rules of a `rule(s)` export.
    pub name: Option<String>,
    pub description: Option<String>,
    /// The use case the original made it for.
    pub subtype: Option<UseCase>,
    rules: Vec<RuleDoc>,
}

/// A rule as the file writes it.
#[derive(Debug, Clone)]
struct RuleDoc {
    name: String,
    continue_processing: bool,
    /// `(trigger_N, its keys)`, ordered by N.
    triggers: Vec<(String, Params)>,
    /// `(action_N, its keys)`, ordered by N.
    actions: Vec<(String, Params)>,
}

/// The keys of one trigger or action, each value kept as its JSON text.
type Params = BTreeMap<String, Box<RawValue>>;

/// A rules file, read.
#[derive(Debug, Clone)]
pub struct RulesFile {
    pub export_type: ExportType,
    /// Its rulesets in file order; one unnamed ruleset for a `rule` or `rules` export.
    pub rulesets: Vec<RulesetDoc>,
}

/// A problem in a rules file, with where it is: `ruleset "A", rule "r", trigger_2.value: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FileError {
    pub ruleset: Option<String>,
    pub rule: Option<String>,
    /// The key inside the rule: `trigger_2.operator`, `action_0.action_type`.
    pub key: Option<String>,
    pub problem: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = &self.ruleset {
            write!(f, "ruleset {}, ", echo::quoted(r))?;
        }
        if let Some(r) = &self.rule {
            write!(f, "rule {}, ", echo::quoted(r))?;
        }
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.problem)
    }
}

impl FileError {
    fn whole(problem: String) -> FileError {
        FileError {
            ruleset: None,
            rule: None,
            key: None,
            problem,
        }
    }
}

/// Why no ruleset of a file could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    /// No ruleset of that name in the file.
    #[error("no ruleset {} in the file (it holds: {})", echo::quoted(.wanted), .held.join(", "))]
    NotFound { wanted: String, held: Vec<String> },
    /// Several rulesets and none named.
    #[error("the file holds {} rulesets ({}): name one with ruleset = \"…\"", .0.len(), .0.join(", "))]
    Ambiguous(Vec<String>),
    /// A ruleset named, but the file holds loose rules.
    #[error(
        "the file holds loose rules (export_type \"rule\" or \"rules\"), not rulesets: leave ruleset out"
    )]
    LooseRules,
    /// The file holds nothing.
    #[error("the file holds no ruleset")]
    Empty,
}

// ---- reading ------------------------------------------------------------------------

#[derive(Deserialize)]
struct EnvelopeIn {
    export_version: Option<Box<RawValue>>,
    export_type: String,
    ruleset: Option<RulesetIn>,
    rulesets: Option<Vec<RulesetIn>>,
    rule: Option<RuleIn>,
    rules: Option<Vec<RuleIn>>,
}

#[derive(Deserialize)]
struct RulesetIn {
    name: String,
    description: Option<String>,
    subtype: Option<String>,
    #[serde(default)]
    rules: Option<Vec<RuleIn>>,
}

#[derive(Deserialize)]
struct RuleIn {
    name: String,
    continue_processing: Option<bool>,
    order_index: Option<i64>,
    triggers: Option<BTreeMap<String, Params>>,
    actions: Option<BTreeMap<String, Params>>,
}

impl RulesFile {
    /// Reads a rules file's text: the envelope and the shape of every ruleset and rule.
    /// The triggers and actions are checked by [`RulesetDoc::to_ruleset`].
    pub fn parse(text: &str) -> Result<RulesFile, FileError> {
        let env: EnvelopeIn = serde_json::from_str(text.trim_start_matches('\u{feff}'))
            .map_err(|e| FileError::whole(format!("not a rules file: {e}")))?;
        let version = env.export_version.as_deref().map(RawValue::get);
        if version != Some("\"1.0\"") {
            return Err(FileError::whole(format!(
                "export_version: expected \"{EXPORT_VERSION}\", got {}",
                version.map_or("nothing".to_string(), echo::prefix)
            )));
        }
        let missing = |key: &str| {
            FileError::whole(format!("export_type \"{}\" needs a {key}", env.export_type))
        };
        let (export_type, rulesets) = match env.export_type.as_str() {
            "ruleset" => {
                let one = env.ruleset.ok_or_else(|| missing("ruleset"))?;
                (ExportType::Ruleset, vec![ruleset_doc(one)?])
            }
            "rulesets" => {
                let many = env.rulesets.ok_or_else(|| missing("rulesets"))?;
                let docs = many
                    .into_iter()
                    .map(ruleset_doc)
                    .collect::<Result<_, _>>()?;
                (ExportType::Rulesets, docs)
            }
            "rule" => {
                let one = env.rule.ok_or_else(|| missing("rule"))?;
                (ExportType::Rule, vec![loose(vec![one])])
            }
            "rules" => {
                let many = env.rules.ok_or_else(|| missing("rules"))?;
                (ExportType::Rules, vec![loose(many)])
            }
            other => {
                return Err(FileError::whole(format!(
                    "export_type: expected ruleset, rulesets, rule or rules, got {}",
                    echo::quoted(other)
                )));
            }
        };
        Ok(RulesFile {
            export_type,
            rulesets,
        })
    }

    /// The ruleset called `name`, or the only one when `name` is `None`.
    pub fn pick(&self, name: Option<&str>) -> Result<&RulesetDoc, PickError> {
        let loose = matches!(self.export_type, ExportType::Rule | ExportType::Rules);
        let held: Vec<String> = self
            .rulesets
            .iter()
            .filter_map(|r| r.name.clone())
            .collect();
        match (name, self.rulesets.as_slice()) {
            (Some(_), _) if loose => Err(PickError::LooseRules),
            (None, []) => Err(PickError::Empty),
            (None, [only]) => Ok(only),
            (None, _) => Err(PickError::Ambiguous(held)),
            (Some(wanted), all) => all
                .iter()
                .find(|r| r.name.as_deref() == Some(wanted))
                .ok_or(PickError::NotFound {
                    wanted: wanted.to_string(),
                    held,
                }),
        }
    }
}

fn ruleset_doc(r: RulesetIn) -> Result<RulesetDoc, FileError> {
    let subtype = match r.subtype.as_deref() {
        None => None,
        Some(s) => Some(UseCase::parse(s).ok_or_else(|| FileError {
            ruleset: Some(r.name.clone()),
            rule: None,
            key: Some("subtype".into()),
            problem: format!(
                "expected enter_market or open_positions, got {}",
                echo::quoted(s)
            ),
        })?),
    };
    let mut rules = r.rules.unwrap_or_default();
    // The original links rules by order_index (0 when absent); ties keep the file's order.
    rules.sort_by_key(|rule| rule.order_index.unwrap_or(0));
    Ok(RulesetDoc {
        name: Some(r.name),
        description: r.description,
        subtype,
        rules: rules.into_iter().map(rule_doc).collect(),
    })
}

fn loose(rules: Vec<RuleIn>) -> RulesetDoc {
    RulesetDoc {
        name: None,
        description: None,
        subtype: None,
        rules: rules.into_iter().map(rule_doc).collect(),
    }
}

fn rule_doc(r: RuleIn) -> RuleDoc {
    RuleDoc {
        name: r.name,
        continue_processing: r.continue_processing.unwrap_or(false),
        triggers: numbered(r.triggers.unwrap_or_default()),
        actions: numbered(r.actions.unwrap_or_default()),
    }
}

/// The entries of a `trigger_N` / `action_N` map ordered by N (`trigger_10` after
/// `trigger_9`), keys without a number last in name order.
fn numbered(map: BTreeMap<String, Params>) -> Vec<(String, Params)> {
    let mut entries: Vec<(String, Params)> = map.into_iter().collect();
    entries.sort_by_key(|(k, _)| {
        let n = k.rsplit('_').next().and_then(|n| n.parse::<u64>().ok());
        (n.is_none(), n, k.clone())
    });
    entries
}

impl RulesetDoc {
    /// Checks every trigger and action and builds the ruleset under `name` (the name the
    /// configuration gives it). Every problem is returned, each with its rule and key.
    pub fn to_ruleset(&self, name: &str) -> Result<Ruleset, Vec<FileError>> {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for doc in &self.rules {
            match doc.to_rule() {
                Ok(rule) => rules.push(rule),
                Err(es) => errors.extend(es.into_iter().map(|(key, problem)| FileError {
                    ruleset: self.name.clone(),
                    rule: Some(doc.name.clone()),
                    key,
                    problem,
                })),
            }
        }
        if errors.is_empty() {
            Ok(Ruleset {
                name: name.to_string(),
                rules,
            })
        } else {
            Err(errors)
        }
    }
}

/// `(key inside the rule, problem)`.
type KeyError = (Option<String>, String);

impl RuleDoc {
    fn to_rule(&self) -> Result<Rule, Vec<KeyError>> {
        let mut errors = Vec::new();
        let mut spec = RuleSpec {
            name: self.name.clone(),
            continue_processing: self.continue_processing,
            triggers: Vec::new(),
            actions: Vec::new(),
        };
        for (key, params) in &self.triggers {
            match trigger_spec(params) {
                Ok(t) => spec.triggers.push(t),
                Err((field, problem)) => errors.push((Some(format!("{key}.{field}")), problem)),
            }
        }
        for (key, params) in &self.actions {
            match action_spec(params) {
                Ok(a) => spec.actions.push(a),
                Err((field, problem)) => errors.push((Some(format!("{key}.{field}")), problem)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Rule::from_spec(&spec).map_err(|es| {
            es.into_iter()
                .map(|e| (Some(self.file_key(&e)), e.problem))
                .collect()
        })
    }

    /// A [`Rule::from_spec`] field (`triggers[1].op`) as the file's key
    /// (`trigger_1.operator`).
    fn file_key(&self, e: &RuleError) -> String {
        let (list, rest) = e.field.split_once('.').unwrap_or((&e.field, ""));
        let index = |prefix: &str| {
            list.strip_prefix(prefix)
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<usize>().ok())
        };
        if let Some(i) = index("triggers[") {
            let key = self.triggers.get(i).map_or("trigger", |(k, _)| k.as_str());
            return format!("{key}.{}", trigger_key(rest));
        }
        if let Some(i) = index("actions[") {
            let (key, params) = self
                .actions
                .get(i)
                .map_or(("action", None), |(k, p)| (k.as_str(), Some(p)));
            return format!("{key}.{}", action_key(rest, params));
        }
        e.field.clone()
    }
}

/// The file's name of a [`TriggerSpec`] field.
fn trigger_key(field: &str) -> &str {
    match field {
        "event" => "event_type",
        "op" => "operator",
        other => other,
    }
}

/// The file's name of an [`ActionSpec`] field.
fn action_key<'a>(field: &'a str, params: Option<&Params>) -> &'a str {
    let has = |k: &str| params.is_some_and(|p| p.get(k).is_some_and(|v| v.get() != "null"));
    match field {
        "action" => "action_type",
        "reference" => "reference_value",
        "price" if has("stop_loss_price") => "stop_loss_price",
        "price" => "take_profit_price",
        "value" if has("target_percent") => "target_percent",
        other => other,
    }
}

/// `(field, problem)`.
type ParamError = (String, String);

/// Reads one parameter: absent or `null` is `None`.
fn param<'p>(params: &'p Params, key: &str) -> Option<&'p RawValue> {
    params.get(key).map(|b| &**b).filter(|v| v.get() != "null")
}

fn string_param(params: &Params, key: &str) -> Result<Option<String>, ParamError> {
    match param(params, key) {
        None => Ok(None),
        Some(v) => serde_json::from_str::<String>(v.get())
            .map(Some)
            .map_err(|_| {
                (
                    key.to_string(),
                    format!("expected a string, got {}", echo::prefix(v.get())),
                )
            }),
    }
}

/// A number, or a decimal string, read from its text.
fn decimal_param(params: &Params, key: &str) -> Result<Option<Decimal>, ParamError> {
    let Some(v) = param(params, key) else {
        return Ok(None);
    };
    let text = match serde_json::from_str::<String>(v.get()) {
        Ok(s) => s,
        Err(_) => v.get().to_string(),
    };
    parse_decimal(&text)
        .map(Some)
        .map_err(|e| (key.to_string(), e.to_string()))
}

/// Refuses every key not in `known` that is set (not `null`).
fn only_known(params: &Params, known: &[&str]) -> Result<(), ParamError> {
    match params
        .iter()
        .find(|(k, v)| !known.contains(&k.as_str()) && v.get() != "null")
    {
        Some((k, _)) => Err((k.clone(), "unknown key".to_string())),
        None => Ok(()),
    }
}

/// The word forms of operators the original's import and UI accept (`gte`), as symbols.
fn operator_symbol(op: String) -> String {
    let symbol = match op.as_str() {
        "gt" => ">",
        "gte" | "ge" => ">=",
        "lt" => "<",
        "lte" | "le" => "<=",
        "eq" => "==",
        "ne" | "neq" => "!=",
        _ => return op,
    };
    symbol.to_string()
}

fn trigger_spec(params: &Params) -> Result<TriggerSpec, ParamError> {
    only_known(
        params,
        &["event_type", "operator", "value", "reference_value"],
    )?;
    let event = string_param(params, "event_type")?
        .ok_or_else(|| ("event_type".to_string(), "missing".to_string()))?;
    if param(params, "reference_value").is_some() {
        return Err((
            "reference_value".into(),
            format!("not used by trigger {}", echo::quoted(&event)),
        ));
    }
    Ok(TriggerSpec {
        op: string_param(params, "operator")?.map(operator_symbol),
        value: decimal_param(params, "value")?,
        event,
    })
}

/// The keys an action may carry; which ones its type uses is [`RuleAction::from_spec`]'s
/// business.
const ACTION_KEYS: &[&str] = &[
    "action_type",
    "type",
    "reference_value",
    "value",
    "take_profit_price",
    "stop_loss_price",
    "target_percent",
];

fn action_spec(params: &Params) -> Result<ActionSpec, ParamError> {
    only_known(params, ACTION_KEYS)?;
    let action = match string_param(params, "action_type")? {
        Some(a) => a,
        None => string_param(params, "type")?
            .ok_or_else(|| ("action_type".to_string(), "missing".to_string()))?,
    };
    let value = decimal_param(params, "value")?;
    let target = decimal_param(params, "target_percent")?;
    let is_share = action.ends_with("_instrument_share");
    let value = match (value, target) {
        (Some(v), Some(t)) if v != t => {
            return Err((
                "target_percent".into(),
                format!("{t} differs from value {v}"),
            ));
        }
        (v, Some(t)) if is_share => Some(v.unwrap_or(t)),
        (_, Some(_)) => {
            return Err((
                "target_percent".into(),
                format!("not used by action {}", echo::quoted(&action)),
            ));
        }
        (v, None) => v,
    };
    let price = exit_price_param(params, &action)?;
    Ok(ActionSpec {
        reference: string_param(params, "reference_value")?,
        value,
        price,
        action,
    })
}

/// `take_profit_price` of an `adjust_take_profit`, `stop_loss_price` of an
/// `adjust_stop_loss`; the other one, or either on another action, is refused.
fn exit_price_param(params: &Params, action: &str) -> Result<Option<Decimal>, ParamError> {
    let tp = decimal_param(params, "take_profit_price")?;
    let sl = decimal_param(params, "stop_loss_price")?;
    let unused = |key: &str| {
        Err((
            key.to_string(),
            format!("not used by action {}", echo::quoted(action)),
        ))
    };
    match (action, tp, sl) {
        (_, None, None) => Ok(None),
        ("adjust_take_profit", tp, None) => Ok(tp),
        ("adjust_stop_loss", None, sl) => Ok(sl),
        (_, Some(_), _) => unused("take_profit_price"),
        (_, None, Some(_)) => unused("stop_loss_price"),
    }
}

// ---- writing ------------------------------------------------------------------------

/// A configured ruleset to export, with what the file says about it beyond its rules.
#[derive(Debug, Clone, Copy)]
pub struct ExportedRuleset<'a> {
    pub ruleset: &'a Ruleset,
    pub description: Option<&'a str>,
    /// The use case it serves (the file's `subtype`).
    pub subtype: Option<UseCase>,
}

/// Why an export could not be written (a JSON serializer error; not expected).
#[derive(Debug, thiserror::Error)]
#[error("cannot write the rules file: {0}")]
pub struct ExportError(#[from] serde_json::Error);

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    export_version: &'static str,
    export_type: &'static str,
    export_timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ruleset: Option<RulesetOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rulesets: Option<Vec<RulesetOut<'a>>>,
}

#[derive(Serialize)]
struct RulesetOut<'a> {
    name: &'a str,
    description: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    subtype: Option<&'static str>,
    rules: Vec<RuleOut<'a>>,
}

#[derive(Serialize)]
struct RuleOut<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    subtype: Option<&'static str>,
    triggers: Numbered<TriggerOut>,
    actions: Numbered<ActionOut>,
    extra_parameters: BTreeMap<String, String>,
    continue_processing: bool,
    order_index: usize,
}

#[derive(Serialize)]
struct TriggerOut {
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Box<RawValue>>,
}

#[derive(Serialize, Default)]
struct ActionOut {
    action_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_value: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    take_profit_price: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_loss_price: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_percent: Option<Box<RawValue>>,
}

/// Entries written as `{prefix_0: …, prefix_1: …}` in that order.
struct Numbered<T> {
    prefix: &'static str,
    items: Vec<T>,
}

impl<T: Serialize> Serialize for Numbered<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.items.len()))?;
        for (i, item) in self.items.iter().enumerate() {
            map.serialize_entry(&format!("{}_{i}", self.prefix), item)?;
        }
        map.end()
    }
}

/// A decimal as a JSON number, written from its text (never through `f64`).
fn number(d: Decimal) -> Result<Box<RawValue>, ExportError> {
    Ok(RawValue::from_string(d.normalize().to_string())?)
}

fn trigger_out(t: &Trigger) -> Result<TriggerOut, ExportError> {
    Ok(match t {
        Trigger::Flag(f) => TriggerOut {
            event_type: f.name(),
            operator: None,
            value: None,
        },
        Trigger::Compare { metric, op, value } => TriggerOut {
            event_type: metric.name(),
            operator: Some(op.as_str()),
            value: Some(number(*value)?),
        },
    })
}

fn action_out(a: &RuleAction) -> Result<ActionOut, ExportError> {
    let mut out = ActionOut {
        action_type: a.as_str(),
        ..ActionOut::default()
    };
    match a {
        RuleAction::AdjustTakeProfit(t) | RuleAction::AdjustStopLoss(t) => match t {
            ExitTarget::Percent { reference, percent } => {
                out.reference_value = Some(reference.as_str());
                out.value = Some(number(*percent)?);
            }
            ExitTarget::Price(p) if matches!(a, RuleAction::AdjustTakeProfit(_)) => {
                out.take_profit_price = Some(number(p.get())?);
            }
            ExitTarget::Price(p) => out.stop_loss_price = Some(number(p.get())?),
        },
        // Both keys: the original's editor writes target_percent, its reference reads value.
        RuleAction::IncreaseInstrumentShare(p) | RuleAction::DecreaseInstrumentShare(p) => {
            out.value = Some(number(*p)?);
            out.target_percent = Some(number(*p)?);
        }
        _ => {}
    }
    Ok(out)
}

fn ruleset_out<'a>(e: &ExportedRuleset<'a>) -> Result<RulesetOut<'a>, ExportError> {
    let subtype = e.subtype.map(UseCase::as_str);
    let rules = e
        .ruleset
        .rules
        .iter()
        .enumerate()
        .map(|(order_index, r)| {
            Ok(RuleOut {
                name: &r.name,
                kind: RULE_TYPE,
                subtype,
                triggers: Numbered {
                    prefix: "trigger",
                    items: r
                        .triggers
                        .iter()
                        .map(trigger_out)
                        .collect::<Result<_, _>>()?,
                },
                actions: Numbered {
                    prefix: "action",
                    items: r.actions.iter().map(action_out).collect::<Result<_, _>>()?,
                },
                extra_parameters: BTreeMap::new(),
                continue_processing: r.continue_processing,
                order_index,
            })
        })
        .collect::<Result<_, ExportError>>()?;
    Ok(RulesetOut {
        name: &e.ruleset.name,
        description: e.description,
        kind: RULE_TYPE,
        subtype,
        rules,
    })
}

fn write(env: &EnvelopeOut<'_>) -> Result<String, ExportError> {
    let mut text = serde_json::to_string_pretty(env)?;
    text.push('\n');
    Ok(text)
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One ruleset as the original exports it (`export_type` `ruleset`).
pub fn export_ruleset(
    ruleset: &ExportedRuleset<'_>,
    exported_at: DateTime<Utc>,
) -> Result<String, ExportError> {
    write(&EnvelopeOut {
        export_version: EXPORT_VERSION,
        export_type: "ruleset",
        export_timestamp: timestamp(exported_at),
        ruleset: Some(ruleset_out(ruleset)?),
        rulesets: None,
    })
}

/// Several rulesets as the original exports them (`export_type` `rulesets`).
pub fn export_rulesets(
    rulesets: &[ExportedRuleset<'_>],
    exported_at: DateTime<Utc>,
) -> Result<String, ExportError> {
    write(&EnvelopeOut {
        export_version: EXPORT_VERSION,
        export_type: "rulesets",
        export_timestamp: timestamp(exported_at),
        ruleset: None,
        rulesets: Some(rulesets.iter().map(ruleset_out).collect::<Result<_, _>>()?),
    })
}
