//! Ingestion: recommendations are stored all or nothing (I6, B7); the price each carries is
//! then a quote for every broker of its expert's account that takes quotes.

use std::collections::HashMap;

use tradewarden_domain::NewRecommendation;
use tradewarden_domain::recommendation::{LineError, ParseContext, parse_batch_checked};

use super::TradeManager;
use crate::error::EngineError;
use crate::ports::{ImportCounts, ImportError, Quote};

/// What `import` prints: the store's counts.
pub type ImportSummary = ImportCounts;

impl TradeManager {
    /// Parses and stores a JSON Lines batch, all or nothing (I6, B7). Blank lines are
    /// ignored; every bad line is reported with its 1-based number (invalid UTF-8 and a
    /// `created_at` further ahead than the allowed clock skew included).
    pub async fn import_jsonl(
        &self,
        input: impl AsRef<[u8]>,
    ) -> Result<ImportSummary, EngineError> {
        let ctx = ParseContext::with_max_clock_skew_seconds(
            self.clock.now(),
            self.settings.max_clock_skew_seconds,
        );
        let known = |r: &NewRecommendation| {
            if self.settings.experts.contains_key(&r.expert_id) {
                Ok(())
            } else {
                Err((
                    "expert_id".to_string(),
                    format!("unknown expert {}", r.expert_id),
                ))
            }
        };
        let parsed = parse_batch_checked(input.as_ref(), &ctx, known).map_err(|errs| {
            let named = |e: LineError| match e.field {
                Some(field) => (e.line, format!("{field}: {}", e.message)),
                None => (e.line, e.message),
            };
            EngineError::BadInput(errs.into_iter().map(named).collect())
        })?;
        let (line_of, recs): (Vec<usize>, Vec<NewRecommendation>) =
            parsed.into_iter().map(|p| (p.line, p.rec)).unzip();
        self.import(&recs).await.map_err(|e| match e {
            EngineError::BadInput(v) => {
                EngineError::BadInput(v.into_iter().map(|(i, msg)| (line_of[i], msg)).collect())
            }
            other => other,
        })
    }

    /// Stores validated recommendations, then hands their prices to the brokers that take
    /// quotes. Conflicts are reported by batch index.
    pub async fn import(&self, recs: &[NewRecommendation]) -> Result<ImportSummary, EngineError> {
        let counts = match self.store.import(recs).await {
            Ok(c) => c,
            Err(ImportError::Conflicts(v)) => return Err(EngineError::BadInput(v)),
            Err(ImportError::Store(e)) => return Err(e.into()),
        };
        self.quote_recommendations(recs).await?;
        Ok(counts)
    }

    /// Each recommendation's price is a quote for its expert's account, when that account's
    /// broker takes quotes.
    async fn quote_recommendations(&self, recs: &[NewRecommendation]) -> Result<(), EngineError> {
        let mut by_account: HashMap<&str, Vec<Quote>> = HashMap::new();
        for r in recs {
            let Some(expert) = self.settings.experts.get(&r.expert_id) else {
                continue;
            };
            by_account
                .entry(expert.account.as_str())
                .or_default()
                .push(Quote {
                    symbol: r.symbol.clone(),
                    price: r.price_at_date.get(),
                    at: r.created_at,
                });
        }
        for (account, quotes) in by_account {
            if let Some(sink) = self.brokers.get(account).and_then(|b| b.accepts_quotes()) {
                sink.record_quotes(&quotes).await?;
            }
        }
        Ok(())
    }

    /// Records quotes for every broker that takes them; returns, per account, how many
    /// stored quotes changed.
    pub async fn record_quotes(
        &self,
        quotes: &[Quote],
    ) -> Result<Vec<(String, usize)>, EngineError> {
        let mut accounts: Vec<&String> = self.brokers.keys().collect();
        accounts.sort();
        let mut changed = Vec::new();
        for account in accounts {
            if let Some(sink) = self.brokers[account].accepts_quotes() {
                changed.push((account.clone(), sink.record_quotes(quotes).await?));
            }
        }
        Ok(changed)
    }
}
