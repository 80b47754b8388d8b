//! Analysis jobs: created pending, ended once (completed or failed) in a transaction that
//! serialises the endings of one expert's jobs, so that exactly one ending sees none left.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tradewarden_domain::{NewRecommendation, Recommendation, UseCase};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::{Kind, Row, Tx, Val, map_err};
use crate::recommendations::SqlImport;
use crate::rows::*;

const JOB_COLUMNS: &str =
    "id, expert_id, use_case, symbol, status, reason, recommendation_id, created_at, ended_at";

/// The first key of PostgreSQL's two-key advisory locks that serialise the endings of one
/// expert's jobs (the second is the expert id); `'jobs'` in ASCII. Two-key locks never
/// meet the one-key locks the liveness signal takes.
const JOB_LOCK_SPACE: i64 = 0x6a6f_6273;

#[async_trait]
impl JobStore for SqlStore {
    async fn create_jobs(&self, new: &[NewJob]) -> Result<Vec<AnalysisJob>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut created = Vec::with_capacity(new.len());
        for chunk in new.chunks(chunk_rows(4)) {
            created.extend(insert_jobs(&mut tx, chunk).await?);
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn begin_job_end(&self) -> Result<Box<dyn JobSession + '_>, StoreError> {
        Ok(Box::new(SqlJobSession {
            import: SqlImport::within(self.pool.begin().await?),
        }))
    }

    async fn jobs(&self, f: &JobFilter) -> Result<Vec<AnalysisJob>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM analysis_jobs WHERE ($1 IS NULL OR expert_id = $1) \
             AND ($2 IS NULL OR status = $2) ORDER BY id DESC LIMIT $3 OFFSET $4"
        );
        let args: [Val; 4] = [
            f.expert_id.into(),
            f.status.map(JobStatus::as_str).into(),
            f.limit.map_or(i64::MAX, i64::from).into(),
            i64::from(f.offset).into(),
        ];
        let rows = self.pool.fetch(&sql, &args).await?;
        rows.iter().map(job_from).collect()
    }

    async fn job(&self, id: i64) -> Result<Option<AnalysisJob>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM analysis_jobs WHERE id = $1");
        let rows = self.pool.fetch(&sql, &[id.into()]).await?;
        rows.first().map(job_from).transpose()
    }

    async fn experts_with_pending_jobs(
        &self,
        expert_ids: &[i64],
        use_case: UseCase,
    ) -> Result<HashSet<i64>, StoreError> {
        let mut pending = HashSet::new();
        for chunk in expert_ids.chunks(PARAMS_PER_STATEMENT) {
            let sql = format!(
                "SELECT DISTINCT expert_id FROM analysis_jobs \
                 WHERE status = 'pending' AND use_case = $1 AND expert_id IN ({})",
                param_list(self.pool.kind(), 2, chunk.len())
            );
            let mut args: Vec<Val> = vec![use_case.as_str().into()];
            args.extend(chunk.iter().map(|&id| Val::from(id)));
            for row in self.pool.fetch(&sql, &args).await? {
                pending.insert(row.i64("expert_id")?);
            }
        }
        Ok(pending)
    }

    async fn pending_jobs_before(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = self
            .pool
            .fetch(
                "SELECT id FROM analysis_jobs WHERE status = 'pending' AND created_at < $1 ORDER BY id",
                &[created_before.into()],
            )
            .await?;
        rows.iter().map(|r| r.i64("id")).collect()
    }

    async fn active_symbols(
        &self,
        expert_id: i64,
        symbols: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if symbols.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT symbol FROM transactions WHERE expert_id = $1 \
             AND status IN ('WAITING', 'OPENED', 'CLOSING') AND symbol IN ({})",
            param_list(self.pool.kind(), 2, symbols.len())
        );
        let mut args: Vec<Val> = vec![expert_id.into()];
        args.extend(symbols.iter().map(|s| Val::from(s.as_str())));
        let rows = self.pool.fetch(&sql, &args).await?;
        rows.iter().map(|r| r.text("symbol")).collect()
    }
}

/// Inserts pending jobs inside `tx`, one statement; returns them with their ids, in order.
/// The ids come back with each row's symbol, unique within one request (`RETURNING` rows
/// need not come in `VALUES` order).
async fn insert_jobs(tx: &mut Tx, jobs: &[NewJob]) -> Result<Vec<AnalysisJob>, StoreError> {
    let sql = format!(
        "INSERT INTO analysis_jobs (expert_id, use_case, symbol, created_at) VALUES {} RETURNING {JOB_COLUMNS}",
        values_clause(tx.kind(), jobs.len(), 4)
    );
    let args: Vec<Val> = jobs
        .iter()
        .flat_map(|j| {
            [
                j.expert_id.into(),
                j.use_case.as_str().into(),
                j.symbol.as_str().into(),
                j.created_at.into(),
            ]
        })
        .collect();
    let rows = tx.fetch(&sql, &args).await.map_err(map_err)?;
    let mut by_symbol: HashMap<String, AnalysisJob> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let job = job_from(row)?;
        by_symbol.insert(job.symbol.clone(), job);
    }
    jobs.iter()
        .map(|j| {
            by_symbol
                .remove(&j.symbol)
                .ok_or_else(|| StoreError::database("a created job got no id"))
        })
        .collect()
}

/// A stored job.
fn job_from(r: &Row) -> Result<AnalysisJob, StoreError> {
    let use_case = r.text("use_case")?;
    let status = r.text("status")?;
    Ok(AnalysisJob {
        id: r.i64("id")?,
        expert_id: r.i64("expert_id")?,
        use_case: UseCase::parse(&use_case).ok_or_else(|| bad_value("use_case", &use_case))?,
        symbol: r.text("symbol")?,
        status: JobStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
        reason: r.opt_text("reason")?,
        recommendation_id: r.opt_i64("recommendation_id")?,
        created_at: r.time("created_at")?,
        ended_at: r.opt_time("ended_at")?,
    })
}

/// The transaction ending one job: an import session (for its recommendation) that also
/// reads, locks and ends jobs.
struct SqlJobSession {
    import: SqlImport,
}

impl SqlJobSession {
    fn tx(&mut self) -> &mut Tx {
        &mut self.import.tx
    }

    /// Job `id`, read inside the transaction.
    async fn read_job(&mut self, id: i64) -> Result<Option<AnalysisJob>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM analysis_jobs WHERE id = $1");
        let row = self
            .tx()
            .fetch_one(&sql, &[id.into()])
            .await
            .map_err(map_err)?;
        row.as_ref().map(job_from).transpose()
    }
}

#[async_trait]
impl ImportSession for SqlJobSession {
    async fn insert_new(&mut self, recs: &[&NewRecommendation]) -> Result<Vec<bool>, StoreError> {
        self.import.insert_new(recs).await
    }

    async fn stored(
        &mut self,
        recs: &[&NewRecommendation],
    ) -> Result<Vec<Recommendation>, StoreError> {
        self.import.stored(recs).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.import.tx.commit().await
    }
}

#[async_trait]
impl JobSession for SqlJobSession {
    /// On PostgreSQL (READ COMMITTED) two endings would each see the other's job still
    /// pending and neither would start the run; the advisory lock makes the second wait for
    /// the first's commit, and its later statements (each with a fresh snapshot) then see
    /// it. The job is read again after the lock for the same reason. On SQLite the
    /// transaction's `BEGIN IMMEDIATE` already holds the database's one write lock.
    async fn lock_job(&mut self, id: i64) -> Result<Option<AnalysisJob>, StoreError> {
        let Some(job) = self.read_job(id).await? else {
            return Ok(None);
        };
        if self.tx().kind() == Kind::Sqlite {
            return Ok(Some(job));
        }
        self.tx()
            .execute(
                "SELECT pg_advisory_xact_lock(CAST($1 AS INTEGER), CAST($2 % 2147483647 AS INTEGER))",
                &[JOB_LOCK_SPACE.into(), job.expert_id.into()],
            )
            .await
            .map_err(map_err)?;
        self.read_job(id).await
    }

    async fn end_job(&mut self, id: i64, end: &JobEnd) -> Result<(), StoreError> {
        let changed = self
            .tx()
            .execute(
                "UPDATE analysis_jobs SET status = $1, reason = $2, recommendation_id = $3, ended_at = $4 \
                 WHERE id = $5 AND status = 'pending'",
                &[
                    end.status.as_str().into(),
                    end.reason.clone().into(),
                    end.recommendation_id.into(),
                    end.ended_at.into(),
                    id.into(),
                ],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("pending job {id}")));
        }
        Ok(())
    }

    async fn pending_count(
        &mut self,
        expert_id: i64,
        use_case: UseCase,
    ) -> Result<u64, StoreError> {
        let row = self
            .tx()
            .fetch_one(
                "SELECT COUNT(*) AS pending FROM analysis_jobs WHERE expert_id = $1 AND use_case = $2 AND status = 'pending'",
                &[expert_id.into(), use_case.as_str().into()],
            )
            .await
            .map_err(map_err)?;
        let pending = row.map(|r| r.i64("pending")).transpose()?.unwrap_or(0);
        Ok(u64::try_from(pending).unwrap_or(0))
    }
}
