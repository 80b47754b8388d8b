//! The bookkeeping of one all-or-nothing import (I6, B7), chunk by chunk, so that an input of
//! any length is checked as one batch without holding its lines: which lines repeat an
//! identity seen earlier in the input, and — once the store has said which lines it inserted
//! and what it holds for the others — how each line counts.
//!
//! A line is `imported` (new), `already_present` (identical to what is stored, or to the
//! earlier line of the input with its identity), or a conflict: the same identity with other
//! content, named against the earlier line of the input, else against the stored
//! recommendation.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};

use super::{NewRecommendation, ParsedLine, Recommendation};

/// What an import has seen so far: the first line of each identity, the counts, the
/// conflicts, and the content of first lines that conflicted (a later line of their identity
/// is compared with that line, not with the stored recommendation).
#[derive(Debug, Default)]
pub struct ImportTally {
    first_lines: FirstLines,
    imported: usize,
    already_present: usize,
    conflicts: Vec<(usize, String)>,
    /// First lines refused for differing from the stored recommendation, by line: only lines
    /// that are errors are held.
    refused: HashMap<usize, NewRecommendation>,
}

/// One chunk of lines split by identity.
#[derive(Debug)]
pub struct ChunkPlan<'a> {
    /// Lines whose identity is new in the input: to be inserted unless already stored.
    pub firsts: Vec<&'a ParsedLine>,
    /// Lines repeating an earlier line's identity, with that line's number.
    pub repeats: Vec<(&'a ParsedLine, usize)>,
}

/// The store answered about a line it was not given or did not insert, without the stored
/// recommendation of that identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: the stored recommendation of its identity was not found")]
pub struct MissingTwin {
    /// The line concerned.
    pub line: usize,
}

/// A recommendation's identity, as [`NewRecommendation::identity`] gives it.
type Identity<'a> = (i64, &'a str, DateTime<Utc>);

impl ImportTally {
    /// A tally for a new input.
    pub fn new() -> Self {
        Self::default()
    }

    /// Splits a chunk into the lines whose identity is new in the input and those repeating
    /// an earlier line (of this chunk or an earlier one), and remembers the new identities.
    pub fn plan<'a>(&mut self, chunk: &'a [ParsedLine]) -> ChunkPlan<'a> {
        let mut plan = ChunkPlan {
            firsts: Vec::with_capacity(chunk.len()),
            repeats: Vec::new(),
        };
        for p in chunk {
            match self.first_lines.first_or_insert(&p.rec, p.line) {
                None => plan.firsts.push(p),
                Some(earlier) => plan.repeats.push((p, earlier)),
            }
        }
        plan
    }

    /// Counts the lines of a planned chunk, given which of `plan.firsts` the store inserted
    /// (`inserted[i]` for `plan.firsts[i]`) and the stored recommendations of the identities
    /// of [`ChunkPlan::lookups`].
    pub fn settle(
        &mut self,
        plan: &ChunkPlan<'_>,
        inserted: &[bool],
        stored: &[Recommendation],
    ) -> Result<(), MissingTwin> {
        let twins: HashMap<Identity<'_>, &Recommendation> =
            stored.iter().map(|s| (s.rec.identity(), s)).collect();
        let twin_of = |p: &ParsedLine| {
            twins
                .get(&p.rec.identity())
                .copied()
                .ok_or(MissingTwin { line: p.line })
        };
        for (p, &was_inserted) in plan.firsts.iter().zip(inserted) {
            if was_inserted {
                self.imported += 1;
                continue;
            }
            let twin = twin_of(p)?;
            if twin.rec == p.rec {
                self.already_present += 1;
            } else {
                self.conflicts.push((p.line, differs_from_stored(twin.id)));
                self.refused.insert(p.line, p.rec.clone());
            }
        }
        for &(p, earlier) in &plan.repeats {
            let same = match self.refused.get(&earlier) {
                Some(refused) => *refused == p.rec,
                // The earlier line was inserted or found identical: the stored one is it.
                None => twin_of(p)?.rec == p.rec,
            };
            if same {
                self.already_present += 1;
            } else {
                self.conflicts
                    .push((p.line, differs_from_earlier_line(earlier)));
            }
        }
        Ok(())
    }

    /// Lines counted as new so far.
    pub fn imported(&self) -> usize {
        self.imported
    }

    /// Lines counted as already present so far.
    pub fn already_present(&self) -> usize {
        self.already_present
    }

    /// The conflicts, `(line, message)` in line order; empty when the import may commit.
    pub fn into_conflicts(mut self) -> Vec<(usize, String)> {
        self.conflicts.sort();
        self.conflicts
    }
}

impl ChunkPlan<'_> {
    /// The recommendations whose stored twin [`ImportTally::settle`] needs: the first lines
    /// the store did not insert, and every repeat.
    pub fn lookups(&self, inserted: &[bool]) -> Vec<&NewRecommendation> {
        let not_inserted = self
            .firsts
            .iter()
            .zip(inserted)
            .filter(|(_, inserted)| !**inserted)
            .map(|(p, _)| &p.rec);
        not_inserted
            .chain(self.repeats.iter().map(|(p, _)| &p.rec))
            .collect()
    }
}

fn differs_from_stored(id: i64) -> String {
    format!(
        "recommendation: same expert, symbol and created_at as stored recommendation {id} with different content"
    )
}

fn differs_from_earlier_line(line: usize) -> String {
    format!(
        "recommendation: same expert, symbol and created_at as an earlier line ({line}) with different content"
    )
}

/// The first line of each identity seen, as compact as an exact index allows: per expert and
/// symbol, a map from `created_at` in microseconds to the line number — 16 bytes of key and
/// value a line, in hash tables kept at most 7/8 full (so 18–40 bytes a line), plus about
/// 150 bytes per distinct (expert, symbol).
#[derive(Debug, Default)]
struct FirstLines {
    by_expert: HashMap<i64, HashMap<String, HashMap<i64, usize>>>,
}

impl FirstLines {
    /// The line that first had `rec`'s identity, or `None` after recording `line` as its first.
    fn first_or_insert(&mut self, rec: &NewRecommendation, line: usize) -> Option<usize> {
        let symbols = self.by_expert.entry(rec.expert_id).or_default();
        let times = match symbols.get_mut(rec.symbol.as_str()) {
            Some(times) => times,
            None => symbols.entry(rec.symbol.clone()).or_default(),
        };
        match times.entry(rec.created_at.timestamp_micros()) {
            Entry::Occupied(first) => Some(*first.get()),
            Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Price;
    use crate::recommendation::{Action, RiskLevel, TimeHorizon};
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    /// Line `line`: expert 1, `symbol` at second `second`, with `confidence`.
    fn line(line: usize, symbol: &str, second: u32, confidence: u32) -> ParsedLine {
        ParsedLine {
            line,
            rec: NewRecommendation {
                expert_id: 1,
                symbol: symbol.into(),
                action: Action::Buy,
                confidence: confidence.into(),
                expected_profit_percent: dec!(10),
                price_at_date: Price::new(dec!(100)).unwrap(),
                risk_level: RiskLevel::Low,
                time_horizon: TimeHorizon::ShortTerm,
                target_price: None,
                details: None,
                created_at: Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, second).unwrap(),
            },
        }
    }

    fn stored(id: i64, p: &ParsedLine) -> Recommendation {
        Recommendation {
            id,
            rec: p.rec.clone(),
        }
    }

    /// The store as a test sees it: what it held before, and what this import inserted.
    #[derive(Default)]
    struct FakeStore {
        rows: Vec<Recommendation>,
    }

    impl FakeStore {
        /// Plans and settles one chunk as the engine does with a real store.
        fn write(&mut self, tally: &mut ImportTally, chunk: &[ParsedLine]) {
            let plan = tally.plan(chunk);
            let inserted: Vec<bool> = plan
                .firsts
                .iter()
                .map(|p| {
                    let new = !self.rows.iter().any(|r| r.identity() == p.rec.identity());
                    if new {
                        let id = self.rows.len() as i64 + 1;
                        self.rows.push(stored(id, p));
                    }
                    new
                })
                .collect();
            let twins: Vec<Recommendation> = plan
                .lookups(&inserted)
                .iter()
                .filter_map(|r| self.rows.iter().find(|s| s.identity() == r.identity()))
                .cloned()
                .collect();
            tally.settle(&plan, &inserted, &twins).unwrap();
        }
    }

    #[test]
    fn lines_count_against_the_input_and_the_store_across_chunks() {
        let before = line(0, "OLD", 0, 50);
        // (chunks of lines, imported, already_present, conflicts as (line, against)).
        type Case = (
            Vec<Vec<ParsedLine>>,
            usize,
            usize,
            Vec<(usize, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            // Identical repeats, within a chunk and across chunks, are already present.
            (
                vec![
                    vec![line(1, "A", 1, 70), line(2, "A", 1, 70)],
                    vec![line(3, "B", 2, 70), line(4, "A", 1, 70)],
                ],
                2,
                2,
                vec![],
            ),
            // A different repeat is named against the earlier line, in any later chunk.
            (
                vec![
                    vec![line(1, "A", 1, 70)],
                    vec![line(2, "B", 1, 70)],
                    vec![line(3, "A", 1, 71)],
                ],
                2,
                0,
                vec![(3, "earlier line (1)")],
            ),
            // Stored before: identical is already present, different a conflict with it.
            (
                vec![vec![line(1, "OLD", 0, 50), line(2, "C", 1, 70)]],
                1,
                1,
                vec![],
            ),
            (
                vec![vec![line(1, "C", 1, 70)], vec![line(2, "OLD", 0, 51)]],
                1,
                0,
                vec![(2, "stored recommendation 1")],
            ),
            // A repeat of a refused line is compared with that line, not the stored one:
            // equal to it is no new error; equal to the stored one is a conflict with it.
            (
                vec![
                    vec![line(1, "OLD", 0, 51)],
                    vec![line(2, "OLD", 0, 51), line(3, "OLD", 0, 50)],
                ],
                0,
                1,
                vec![(1, "stored recommendation 1"), (3, "earlier line (1)")],
            ),
        ];
        for (i, (chunks, imported, already_present, conflicts)) in cases.into_iter().enumerate() {
            let mut store = FakeStore {
                rows: vec![stored(1, &before)],
            };
            let mut tally = ImportTally::new();
            for chunk in &chunks {
                store.write(&mut tally, chunk);
            }
            assert_eq!(
                (tally.imported(), tally.already_present()),
                (imported, already_present),
                "case {i}"
            );
            let got = tally.into_conflicts();
            assert_eq!(got.len(), conflicts.len(), "case {i}: {got:?}");
            for ((line, msg), (want_line, against)) in got.iter().zip(&conflicts) {
                assert_eq!(line, want_line, "case {i}: {got:?}");
                assert!(
                    msg.starts_with("recommendation: same expert, symbol and created_at as ")
                        && msg.contains(against)
                        && msg.ends_with("with different content"),
                    "case {i}: {msg}"
                );
            }
        }
    }

    #[test]
    fn a_store_that_loses_a_twin_is_an_error_not_a_count() {
        let mut tally = ImportTally::new();
        let chunk = [line(1, "A", 1, 70)];
        let plan = tally.plan(&chunk);
        assert_eq!(
            tally.settle(&plan, &[false], &[]),
            Err(MissingTwin { line: 1 })
        );
    }
}
