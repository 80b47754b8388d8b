//! Rulesets: the condition and action catalogue, their evaluation, the original's rules
//! files, and a rule as a person reads it (reference §4).
//!
//! A ruleset is an ordered list of rules; a rule holds when all its triggers hold. The first
//! rule that holds wins unless it says `continue_processing`; a rule that holds and names
//! `stop_processing` halts evaluation and contributes nothing. Unknown trigger or action names
//! are refused when the ruleset is built, never skipped at run time (a quirk of the original).
//!
//! - [`catalogue`]: every trigger name, what it measures, and [`Trigger::from_spec`].
//! - [`action`]: every action name and its parameters; [`ActionPlan`].
//! - [`facts`]: what a trigger sees ([`RuleFacts`]) and whether it holds.
//! - [`file`](mod@file): the original's export format v1.0, read and written.
//! - [`display`]: `IF … AND … THEN …`.

pub mod action;
pub mod catalogue;
pub mod display;
pub mod facts;
pub mod file;

use serde::{Deserialize, Serialize};

pub use action::{ActionPlan, ActionSpec, ExitReference, ExitTarget, RuleAction};
pub use catalogue::{Flag, Grade, Metric, Op, Trigger, TriggerSpec};
pub use facts::{LastCloses, PositionFacts, RuleFacts};

/// A rule as written in configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub continue_processing: bool,
    #[serde(default)]
    pub triggers: Vec<TriggerSpec>,
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
}

/// A rule, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub continue_processing: bool,
    pub triggers: Vec<Trigger>,
    pub actions: Vec<RuleAction>,
}

/// A named, ordered list of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// Why a trigger or action spec is refused; `field` is relative to the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct RuleError {
    pub field: String,
    pub problem: String,
}

impl RuleError {
    /// The same problem with `prefix.` before its field (`triggers[1].op`).
    fn within(self, prefix: &str) -> RuleError {
        RuleError {
            field: format!("{prefix}.{}", self.field),
            problem: self.problem,
        }
    }
}

impl Rule {
    /// Builds a rule, collecting every problem with its path inside the rule
    /// (`triggers[1].op: …`).
    pub fn from_spec(spec: &RuleSpec) -> Result<Rule, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut triggers = Vec::new();
        for (i, t) in spec.triggers.iter().enumerate() {
            match Trigger::from_spec(t) {
                Ok(t) => triggers.push(t),
                Err(e) => errors.push(e.within(&format!("triggers[{i}]"))),
            }
        }
        let mut actions = Vec::new();
        for (i, a) in spec.actions.iter().enumerate() {
            match RuleAction::from_spec(a) {
                Ok(a) => actions.push(a),
                Err(e) => errors.push(e.within(&format!("actions[{i}]"))),
            }
        }
        if spec.actions.is_empty() {
            errors.push(RuleError {
                field: "actions".into(),
                problem: "a rule needs at least one action".into(),
            });
        }
        if errors.is_empty() {
            Ok(Rule {
                name: spec.name.clone(),
                continue_processing: spec.continue_processing,
                triggers,
                actions,
            })
        } else {
            Err(errors)
        }
    }
}

/// The result of evaluating a ruleset against one recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// Actions of the matching rules, in order, without duplicates; never `StopProcessing`.
    pub actions: Vec<RuleAction>,
    /// Names of the rules that matched, in order (a halting guard included).
    pub matched: Vec<String>,
    /// The guard rule that halted evaluation, if any.
    pub halted_by: Option<String>,
    /// For every rule that did not match, the first trigger that failed.
    pub misses: Vec<(String, String)>,
}

impl Evaluation {
    /// A one-line account of the evaluation, for decision records.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.matched.is_empty() {
            parts.push(format!("matched {}", self.matched.join(", ")));
        }
        if let Some(g) = &self.halted_by {
            parts.push(format!("halted by stop_processing in {g}"));
        }
        if self.matched.is_empty() {
            if self.misses.is_empty() {
                parts.push("no rule matched".into());
            } else {
                let misses: Vec<String> = self
                    .misses
                    .iter()
                    .map(|(r, t)| format!("{r}: {t} not met"))
                    .collect();
                parts.push(format!("no rule matched ({})", misses.join("; ")));
            }
        }
        parts.join("; ")
    }

    /// The matched actions reduced to one plan ([`ActionPlan::from_actions`]).
    pub fn plan(&self) -> ActionPlan {
        ActionPlan::from_actions(&self.actions)
    }
}

impl Ruleset {
    /// Whether any trigger reads the current price: when none does, an evaluation is the
    /// same with or without the quote.
    pub fn reads_price(&self) -> bool {
        self.rules
            .iter()
            .flat_map(|r| &r.triggers)
            .any(Trigger::reads_price)
    }

    /// Evaluates the rules in order with first-match / continue_processing / stop_processing
    /// semantics.
    pub fn evaluate(&self, facts: &RuleFacts<'_>) -> Evaluation {
        let mut ev = Evaluation::default();
        for rule in &self.rules {
            if let Some(failed) = rule.triggers.iter().find(|t| !t.holds(facts)) {
                ev.misses.push((rule.name.clone(), failed.to_string()));
                continue;
            }
            ev.matched.push(rule.name.clone());
            if rule.actions.contains(&RuleAction::StopProcessing) {
                ev.halted_by = Some(rule.name.clone());
                break;
            }
            for a in &rule.actions {
                if !ev.actions.contains(a) {
                    ev.actions.push(*a);
                }
            }
            if !rule.continue_processing {
                break;
            }
        }
        ev
    }
}

#[cfg(test)]
mod tests;
