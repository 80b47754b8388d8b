//! Analysis jobs: an expert announces the symbols it is analysing, and its runs of that use
//! case wait until every job has ended (completed with a recommendation or none, or failed).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tradewarden_domain::UseCase;

use super::store::{ImportSession, StoreError};

/// Where an analysis job stands. Only `pending` ends; the two ended states are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Completed,
    Failed,
}

impl JobStatus {
    /// Every status.
    pub const ALL: [JobStatus; 3] = [JobStatus::Pending, JobStatus::Completed, JobStatus::Failed];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        JobStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored analysis job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnalysisJob {
    pub id: i64,
    pub expert_id: i64,
    pub use_case: UseCase,
    pub symbol: String,
    pub status: JobStatus,
    /// Why a failed job failed.
    pub reason: Option<String>,
    /// The recommendation a completed job delivered (none when it found nothing to say).
    pub recommendation_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A job to create, pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub expert_id: i64,
    pub use_case: UseCase,
    pub symbol: String,
    pub created_at: DateTime<Utc>,
}

/// How a pending job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    /// `Completed` or `Failed`.
    pub status: JobStatus,
    pub reason: Option<String>,
    pub recommendation_id: Option<i64>,
    pub ended_at: DateTime<Utc>,
}

/// Filters and paging of [`JobStore::jobs`]; `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub expert_id: Option<i64>,
    pub status: Option<JobStatus>,
    /// At most this many rows (`None`: all).
    pub limit: Option<u32>,
    /// Rows skipped first, newest first.
    pub offset: u32,
}

/// Analysis jobs in the store.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores pending jobs in one database transaction; returns them with their ids, in order.
    async fn create_jobs(&self, new: &[NewJob]) -> Result<Vec<AnalysisJob>, StoreError>;

    /// Begins ending a job: one database transaction that also takes the job's
    /// recommendation (it is an [`ImportSession`]). Committed by [`ImportSession::commit`],
    /// rolled back when dropped.
    async fn begin_job_end(&self) -> Result<Box<dyn JobSession + '_>, StoreError>;

    /// Jobs, newest first, filtered and paged.
    async fn jobs(&self, f: &JobFilter) -> Result<Vec<AnalysisJob>, StoreError>;

    /// Job `id`, if there is one.
    async fn job(&self, id: i64) -> Result<Option<AnalysisJob>, StoreError>;

    /// Those of `expert_ids` with a pending job of `use_case` (their runs of it wait), in
    /// one query for a whole batch of runs.
    async fn experts_with_pending_jobs(
        &self,
        expert_ids: &[i64],
        use_case: UseCase,
    ) -> Result<HashSet<i64>, StoreError>;

    /// Whether the expert has a pending job of `use_case`.
    async fn has_pending_jobs(
        &self,
        expert_id: i64,
        use_case: UseCase,
    ) -> Result<bool, StoreError> {
        Ok(!self
            .experts_with_pending_jobs(&[expert_id], use_case)
            .await?
            .is_empty())
    }

    /// The ids of the jobs pending since before `created_before`, oldest first.
    async fn pending_jobs_before(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;

    /// Those of `symbols` in which the expert holds an active (WAITING, OPENED or CLOSING)
    /// transaction, in one query, in any order.
    async fn active_symbols(
        &self,
        expert_id: i64,
        symbols: &[String],
    ) -> Result<Vec<String>, StoreError>;
}

/// The database transaction that ends one job (and stores its recommendation through the
/// import's statements).
#[async_trait]
pub trait JobSession: ImportSession {
    /// Reads job `id` after taking its expert's job lock for the rest of the transaction:
    /// two transactions ending jobs of one expert run one after the other, so the second
    /// sees the first's ending (on PostgreSQL an advisory transaction lock per expert; on
    /// SQLite the write lock `BEGIN IMMEDIATE` took). `None` when there is no such job.
    async fn lock_job(&mut self, id: i64) -> Result<Option<AnalysisJob>, StoreError>;

    /// Ends pending job `id` as `end` says.
    async fn end_job(&mut self, id: i64, end: &JobEnd) -> Result<(), StoreError>;

    /// How many jobs of the expert and use case are still pending, as this transaction sees.
    async fn pending_count(&mut self, expert_id: i64, use_case: UseCase)
    -> Result<u64, StoreError>;
}
