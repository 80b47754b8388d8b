//! `tradewarden rules export [NAME...]` and `tradewarden rules show NAME`: the configured
//! rulesets in the original's rules-file format, or as a person reads them; and the rulesets
//! part of `check`. None of them opens the database.

use std::fmt::Write as _;

use tradewarden_domain::UseCase;
use tradewarden_domain::rules::Ruleset;
use tradewarden_domain::rules::file::{ExportedRuleset, export_ruleset, export_rulesets};

use crate::cli::RulesArgs;
use crate::config::Config;
use crate::failure::{CHECK_HINT, Failure, runtime};
use crate::out;

/// Runs `rules export` or `rules show`.
pub fn run(args: RulesArgs, cfg: &Config) -> Result<(), Failure> {
    match args {
        RulesArgs::Export { names } => export(&names, cfg),
        RulesArgs::Show { name } => show(&name, cfg),
    }
}

/// The configured rulesets called `names` (every one, by name, when `names` is empty); an
/// unknown name is exit 2, all of them named at once.
fn find<'a>(cfg: &'a Config, names: &[String]) -> Result<Vec<&'a Ruleset>, Failure> {
    if names.is_empty() {
        let mut all: Vec<&Ruleset> = cfg.settings.rulesets.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(all);
    }
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !cfg.settings.rulesets.contains_key(*n))
        .map(|n| format!("{n:?}"))
        .collect();
    if !unknown.is_empty() {
        return Err(Failure::Input(format!(
            "unknown ruleset {}: no ruleset with this name is configured — {CHECK_HINT}",
            unknown.join(", ")
        )));
    }
    Ok(names
        .iter()
        .filter_map(|n| cfg.settings.rulesets.get(n))
        .collect())
}

/// The use case a ruleset serves: what its rules file says, else what the experts use it for.
fn use_case(cfg: &Config, name: &str) -> Option<UseCase> {
    let from_file = cfg.ruleset_info.get(name).and_then(|i| i.subtype);
    let used_as = |pick: fn(&tradewarden_domain::expert::Expert) -> &Option<String>| {
        cfg.settings
            .experts
            .values()
            .any(|e| pick(e).as_deref() == Some(name))
    };
    from_file.or_else(|| {
        if used_as(|e| &e.enter_market_ruleset) {
            Some(UseCase::EnterMarket)
        } else if used_as(|e| &e.open_positions_ruleset) {
            Some(UseCase::OpenPositions)
        } else {
            None
        }
    })
}

/// Prints the rulesets in the original's export format: `ruleset` for one name,
/// `rulesets` otherwise.
fn export(names: &[String], cfg: &Config) -> Result<(), Failure> {
    let rulesets = find(cfg, names)?;
    let exported: Vec<ExportedRuleset<'_>> = rulesets
        .iter()
        .map(|r| ExportedRuleset {
            ruleset: r,
            description: cfg
                .ruleset_info
                .get(&r.name)
                .and_then(|i| i.description.as_deref()),
            subtype: use_case(cfg, &r.name),
        })
        .collect();
    let now = chrono::Utc::now();
    let text = match exported.as_slice() {
        [one] if names.len() == 1 => export_ruleset(one, now),
        all => export_rulesets(all, now),
    }
    .map_err(runtime)?;
    out::stdout(&text);
    Ok(())
}

/// Prints one ruleset, a line per rule.
fn show(name: &str, cfg: &Config) -> Result<(), Failure> {
    let rulesets = find(cfg, &[name.to_string()])?;
    let mut text = String::new();
    for rs in rulesets {
        for rule in &rs.rules {
            let _ = writeln!(text, "{}: {}", rule.name, rule.sentence());
        }
    }
    out::stdout(&text);
    Ok(())
}

/// The rulesets part of `check`: for each ruleset, its rules (one line each) and where it
/// came from.
pub fn describe_rulesets(cfg: &Config) -> String {
    let mut out = String::new();
    let rulesets = find(cfg, &[]).unwrap_or_default();
    let _ = writeln!(out, "rulesets: {}", rulesets.len());
    for r in rulesets {
        let names: Vec<&str> = r.rules.iter().map(|r| r.name.as_str()).collect();
        let source = cfg
            .ruleset_info
            .get(&r.name)
            .map_or("the configuration".to_string(), |i| i.source.to_string());
        let _ = writeln!(
            out,
            "  {}: {} rule(s): {} (from {source})",
            r.name,
            r.rules.len(),
            names.join(", ")
        );
        for rule in &r.rules {
            let _ = writeln!(out, "    {}: {}", rule.name, rule.sentence());
        }
    }
    out
}
