//! Analysis jobs (issue 11): an expert announces the symbols it analyses; each job ends
//! completed (with the recommendation it produced, or none) or failed; when the last pending
//! job of an expert's use case ends, that use case's run starts (trigger `jobs`). A run never
//! starts while jobs of its use case are pending (its gate says `skipped_pending_jobs`).
//!
//! Ending a job is one database transaction: the expert's job lock, the job read, its
//! recommendation stored through the import's statements, the job marked ended, and the
//! count of what is still pending. Two jobs of one expert ending at once are so serialised:
//! exactly one of them sees none left and starts the run.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tradewarden_domain::recommendation::{
    ImportTally, LineError, LineParser, ParseContext, ParsedLine,
};
use tradewarden_domain::symbol::Symbol;
use tradewarden_domain::{NewRecommendation, UseCase};

use super::TradeManager;
use super::import::{known_expert, write_chunk};
use crate::ports::{
    AnalysisJob, ImportSession, JobEnd, JobFilter, JobSession, JobStatus, NewJob, StoreError,
};
use crate::report::{RunReport, RunTrigger};

/// The most symbols one request may create jobs for (as the API's page limit).
pub const MAX_JOBS_PER_REQUEST: usize = 1000;

/// The longest reason a failed job keeps, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// One field of a request that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, as the request names it (`symbols[2]`, `recommendation.symbol`).
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a job operation did nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// The request is wrong; nothing was written. Every wrong field is listed.
    #[error("invalid input: {}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// The expert is not configured.
    #[error("expert_id: unknown expert {0}")]
    UnknownExpert(i64),
    /// No job has this id.
    #[error("job {0} not found")]
    NotFound(i64),
    /// The job ended before (it ends once).
    #[error("job {id} already ended ({status})")]
    AlreadyEnded { id: i64, status: JobStatus },
    /// The store failed; nothing was written.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What ending a job did: the job as it is now, and the run its ending started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobEnded {
    pub job: AnalysisJob,
    /// The report of the run started because this was the last pending job of its expert
    /// and use case; `None` when jobs are still pending (no run started).
    pub run: Option<RunReport>,
}

/// How a job is to end.
enum Ending {
    Completed(Option<NewRecommendation>),
    Failed(String),
}

/// What the ending's transaction found and did.
struct EndedInStore {
    job: AnalysisJob,
    /// No job of the expert and use case is pending any more.
    last: bool,
}

impl TradeManager {
    /// Creates one pending job per symbol for the expert's use case (`enter_market` or
    /// `open_positions`), all or none; returns them with their ids, in the order given.
    /// Refused: an unknown expert, an unknown use case, no symbols, more than
    /// [`MAX_JOBS_PER_REQUEST`], a symbol the domain's rules refuse or given twice.
    pub async fn create_jobs(
        &self,
        expert_id: i64,
        use_case: &str,
        symbols: &[String],
    ) -> Result<Vec<AnalysisJob>, JobError> {
        let (use_case, symbols) = self.job_request(expert_id, use_case, symbols)?;
        let now = self.clock.now();
        let new: Vec<NewJob> = symbols
            .into_iter()
            .map(|symbol| NewJob {
                expert_id,
                use_case,
                symbol,
                created_at: now,
            })
            .collect();
        Ok(self.store.create_jobs(&new).await?)
    }

    /// Completes pending job `id` with the recommendation it produced (one JSON Lines
    /// `import` line as a JSON value; it must name the job's expert and symbol) or none. The
    /// recommendation is stored as `import` stores it (an identical one already stored is
    /// taken as it is) in the transaction that ends the job. Starts the run when this was the
    /// last pending job of its expert and use case.
    pub async fn complete_job(
        &self,
        id: i64,
        recommendation: Option<&serde_json::Value>,
    ) -> Result<JobEnded, JobError> {
        let rec = recommendation
            .map(|v| self.parse_job_recommendation(v))
            .transpose()?;
        self.end_job(id, Ending::Completed(rec), self.clock.now())
            .await
    }

    /// Fails pending job `id` for `reason` (non-empty, at most [`MAX_REASON_CHARS`]). A
    /// failed job counts as ended: it may start the run.
    pub async fn fail_job(&self, id: i64, reason: &str) -> Result<JobEnded, JobError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(JobError::Invalid(vec![FieldError::new(
                "reason",
                "must not be empty",
            )]));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(JobError::Invalid(vec![FieldError::new(
                "reason",
                format!("longer than {MAX_REASON_CHARS} characters"),
            )]));
        }
        self.end_job(id, Ending::Failed(reason.to_string()), self.clock.now())
            .await
    }

    /// Fails every job pending for longer than `job_timeout` at `now` (reason `timed out
    /// after N s`), each as [`TradeManager::fail_job`] would: the last of an expert's use
    /// case starts its run. A job that ended meanwhile is left alone. Returns what each
    /// failing did.
    pub async fn fail_timed_out_jobs(&self, now: DateTime<Utc>) -> Result<Vec<JobEnded>, JobError> {
        let timeout = self.settings.job_timeout;
        let cutoff =
            now - chrono::Duration::from_std(timeout).unwrap_or_else(|_| chrono::Duration::days(7));
        let reason = format!("timed out after {} s", timeout.as_secs());
        let mut ended = Vec::new();
        for id in self.store.pending_jobs_before(cutoff).await? {
            match self.end_job(id, Ending::Failed(reason.clone()), now).await {
                Ok(e) => ended.push(e),
                Err(JobError::AlreadyEnded { .. } | JobError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }

    /// Jobs, newest first, filtered and paged.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<AnalysisJob>, JobError> {
        Ok(self.store.jobs(filter).await?)
    }

    /// Job `id` (its expert says who may end it).
    pub async fn job(&self, id: i64) -> Result<AnalysisJob, JobError> {
        self.store.job(id).await?.ok_or(JobError::NotFound(id))
    }

    /// The symbols worth analysing for the expert's use case, in the order given: for
    /// `enter_market` those in which it holds no active (WAITING, OPENED, CLOSING)
    /// transaction, for `open_positions` those in which it holds one. One query.
    pub async fn symbols_to_analyze(
        &self,
        expert_id: i64,
        use_case: &str,
        symbols: &[String],
    ) -> Result<Vec<String>, JobError> {
        let (use_case, symbols) = self.job_request(expert_id, use_case, symbols)?;
        let active: HashSet<String> = self
            .store
            .active_symbols(expert_id, &symbols)
            .await?
            .into_iter()
            .collect();
        let held = use_case == UseCase::OpenPositions;
        Ok(symbols
            .into_iter()
            .filter(|s| active.contains(s) == held)
            .collect())
    }

    /// Checks a request naming an expert, a use case and symbols; the symbols come back
    /// normalised (trimmed, upper case).
    fn job_request(
        &self,
        expert_id: i64,
        use_case: &str,
        symbols: &[String],
    ) -> Result<(UseCase, Vec<String>), JobError> {
        if !self.settings.experts.contains_key(&expert_id) {
            return Err(JobError::UnknownExpert(expert_id));
        }
        let mut errors = Vec::new();
        let use_case = UseCase::parse(use_case);
        if use_case.is_none() {
            errors.push(FieldError::new(
                "use_case",
                "expected enter_market or open_positions",
            ));
        }
        let symbols = check_symbols(symbols, &mut errors);
        match use_case {
            Some(use_case) if errors.is_empty() => Ok((use_case, symbols)),
            _ => Err(JobError::Invalid(errors)),
        }
    }

    /// A recommendation as one `import` line says it, checked as `import` checks it.
    fn parse_job_recommendation(
        &self,
        value: &serde_json::Value,
    ) -> Result<NewRecommendation, JobError> {
        let ctx = ParseContext::with_max_clock_skew_seconds(
            self.clock.now(),
            self.settings.max_clock_skew_seconds,
        );
        let known = known_expert(&self.settings.experts);
        let line = serde_json::to_vec(value).map_err(|e| {
            JobError::Invalid(vec![FieldError::new("recommendation", e.to_string())])
        })?;
        match LineParser::new(&ctx).next_line(&line, known) {
            Ok(Some(parsed)) => Ok(parsed.rec),
            Ok(None) => Err(JobError::Invalid(vec![FieldError::new(
                "recommendation",
                "must be an object or null",
            )])),
            Err(errors) => Err(JobError::Invalid(
                errors.into_iter().map(recommendation_field).collect(),
            )),
        }
    }

    /// Ends job `id` in one transaction, then starts the run if it was the last pending one.
    async fn end_job(
        &self,
        id: i64,
        ending: Ending,
        ended_at: DateTime<Utc>,
    ) -> Result<JobEnded, JobError> {
        let quoted = match &ending {
            Ending::Completed(Some(rec)) => Some(rec.clone()),
            _ => None,
        };
        let stored = self.end_job_in_store(id, ending, ended_at).await?;
        if let Some(rec) = quoted {
            // As after an import: the recommendation's price is a quote for its account.
            self.quote_prices_of(std::slice::from_ref(&rec)).await;
        }
        let run = match stored.last {
            true => Some(self.run_after_jobs(&stored.job).await),
            false => None,
        };
        Ok(JobEnded {
            job: stored.job,
            run,
        })
    }

    /// The ending's database transaction (see the module documentation).
    async fn end_job_in_store(
        &self,
        id: i64,
        ending: Ending,
        ended_at: DateTime<Utc>,
    ) -> Result<EndedInStore, JobError> {
        let mut session = self.store.begin_job_end().await?;
        let job = session.lock_job(id).await?.ok_or(JobError::NotFound(id))?;
        if job.status != JobStatus::Pending {
            return Err(JobError::AlreadyEnded {
                id,
                status: job.status,
            });
        }
        let end = match ending {
            Ending::Completed(rec) => {
                let recommendation_id = match rec {
                    Some(rec) => Some(store_job_recommendation(&mut *session, &job, &rec).await?),
                    None => None,
                };
                JobEnd {
                    status: JobStatus::Completed,
                    reason: None,
                    recommendation_id,
                    ended_at,
                }
            }
            Ending::Failed(reason) => JobEnd {
                status: JobStatus::Failed,
                reason: Some(reason),
                recommendation_id: None,
                ended_at,
            },
        };
        session.end_job(id, &end).await?;
        let pending = session.pending_count(job.expert_id, job.use_case).await?;
        (session as Box<dyn ImportSession + '_>).commit().await?;
        let job = AnalysisJob {
            status: end.status,
            reason: end.reason,
            recommendation_id: end.recommendation_id,
            ended_at: Some(end.ended_at),
            ..job
        };
        Ok(EndedInStore {
            job,
            last: pending == 0,
        })
    }

    /// The run of the ended job's expert and use case, started by the jobs: its report, or a
    /// `failed` report naming why it could not run.
    async fn run_after_jobs(&self, job: &AnalysisJob) -> RunReport {
        let (expert_id, use_case) = (job.expert_id, job.use_case);
        let result = match use_case {
            UseCase::EnterMarket => {
                self.process_enter_market(expert_id, None, RunTrigger::Jobs)
                    .await
            }
            UseCase::OpenPositions => {
                self.process_open_positions(expert_id, None, RunTrigger::Jobs)
                    .await
            }
        };
        result.unwrap_or_else(|e| {
            tracing::error!("{use_case} run of expert {expert_id} after its jobs failed: {e}");
            RunReport::failed(expert_id, use_case, e.to_string())
        })
    }
}

/// Stores a completed job's recommendation through the import's statements, inside the
/// job's transaction; returns its id. It must be about the job's expert and symbol (the
/// symbol compared as the domain normalises it); a different recommendation already stored
/// under its identity (expert, symbol, created_at) is refused as `import` refuses it.
async fn store_job_recommendation(
    session: &mut (dyn JobSession + '_),
    job: &AnalysisJob,
    rec: &NewRecommendation,
) -> Result<i64, JobError> {
    let mut errors = Vec::new();
    if rec.expert_id != job.expert_id {
        errors.push(FieldError::new(
            "recommendation.expert_id",
            format!(
                "{} is not the job's expert {}",
                rec.expert_id, job.expert_id
            ),
        ));
    }
    if rec.symbol != job.symbol {
        errors.push(FieldError::new(
            "recommendation.symbol",
            format!("{} is not the job's symbol {}", rec.symbol, job.symbol),
        ));
    }
    if !errors.is_empty() {
        return Err(JobError::Invalid(errors));
    }
    let session: &mut (dyn ImportSession + '_) = session;
    let mut tally = ImportTally::new();
    let line = [ParsedLine {
        line: 1,
        rec: rec.clone(),
    }];
    write_chunk(session, &mut tally, &line).await?;
    if let Some((_, message)) = tally.into_conflicts().into_iter().next() {
        return Err(JobError::Invalid(vec![FieldError::new(
            "recommendation",
            message,
        )]));
    }
    session
        .stored(&[rec])
        .await?
        .first()
        .map(|r| r.id)
        .ok_or_else(|| StoreError::database("the stored recommendation was not found").into())
}

/// The symbols of a request, normalised, with an error per bad one.
fn check_symbols(symbols: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if symbols.is_empty() {
        errors.push(FieldError::new("symbols", "must not be empty"));
    }
    if symbols.len() > MAX_JOBS_PER_REQUEST {
        errors.push(FieldError::new(
            "symbols",
            format!("{} symbols; at most {MAX_JOBS_PER_REQUEST}", symbols.len()),
        ));
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut checked = Vec::with_capacity(symbols.len());
    for (i, s) in symbols.iter().enumerate() {
        match Symbol::parse(s) {
            Ok(symbol) if !seen.insert(symbol.as_str().to_string()) => errors.push(
                FieldError::new(format!("symbols[{i}]"), format!("{symbol} given twice")),
            ),
            Ok(symbol) => checked.push(symbol.into_string()),
            Err(e) => errors.push(FieldError::new(format!("symbols[{i}]"), e.to_string())),
        }
    }
    checked
}

/// A recommendation's line error as a field of the request.
fn recommendation_field(e: LineError) -> FieldError {
    match e.field {
        Some(field) => FieldError::new(format!("recommendation.{field}"), e.message),
        None => FieldError::new("recommendation", e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_checked_each_by_its_index() {
        let cases: [(&[&str], Vec<&str>, Vec<&str>); 4] = [
            (&["aapl", " MSFT "], vec!["AAPL", "MSFT"], vec![]),
            (&[], vec![], vec!["symbols"]),
            (&["AAPL", "aapl"], vec!["AAPL"], vec!["symbols[1]"]),
            (
                &["AAPL", "BAD SYMBOL", ""],
                vec!["AAPL"],
                vec!["symbols[1]", "symbols[2]"],
            ),
        ];
        for (input, want, fields) in cases {
            let input: Vec<String> = input.iter().map(|s| s.to_string()).collect();
            let mut errors = Vec::new();
            let got = check_symbols(&input, &mut errors);
            assert_eq!(got, want, "{input:?}");
            let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(named, fields, "{input:?}");
        }
    }

    #[test]
    fn too_many_symbols_are_refused() {
        let input: Vec<String> = (0..=MAX_JOBS_PER_REQUEST)
            .map(|i| format!("S{i}"))
            .collect();
        let mut errors = Vec::new();
        check_symbols(&input, &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "symbols");
    }
}
