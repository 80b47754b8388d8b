//! Run records read back: `tradewarden runs` and the API's `/runs` (they are written with
//! the run's end, in `journal`).

use tradewarden_domain::UseCase;
use tradewarden_engine::ports::{RunFilter, StoreError, StoredRun};
use tradewarden_engine::{Counts, RunStatus, RunTrigger};

use crate::db::{Pool, Row, Val};
use crate::rows::bad_value;

const RUN_COLUMNS: &str = "id, expert_id, use_case, trigger, lock_key, owner, status, counts, error, started_at, finished_at";

/// Run records, newest first, filtered and paged.
pub(crate) async fn runs(pool: &Pool, f: &RunFilter) -> Result<Vec<StoredRun>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE ($1 IS NULL OR expert_id = $1) AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR started_at >= $3) ORDER BY id DESC LIMIT $4 OFFSET $5"
    );
    let args: [Val; 5] = [
        f.expert_id.into(),
        f.status.map(RunStatus::as_str).into(),
        f.since.into(),
        f.limit.map_or(i64::MAX, i64::from).into(),
        i64::from(f.offset).into(),
    ];
    let rows = pool.fetch(&sql, &args).await?;
    rows.iter().map(run_from).collect()
}

/// One run record.
pub(crate) async fn run(pool: &Pool, id: i64) -> Result<Option<StoredRun>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
    let rows = pool.fetch(&sql, &[id.into()]).await?;
    rows.first().map(run_from).transpose()
}

/// A stored run record; a record from before migration 0009 has no trigger and no counts.
fn run_from(r: &Row) -> Result<StoredRun, StoreError> {
    let status = r.text("status")?;
    let use_case = r
        .opt_text("use_case")?
        .map(|u| UseCase::parse(&u).ok_or_else(|| bad_value("use_case", &u)))
        .transpose()?;
    let trigger = r
        .opt_text("trigger")?
        .map(|t| RunTrigger::parse(&t).ok_or_else(|| bad_value("trigger", &t)))
        .transpose()?;
    let counts = r
        .opt_text("counts")?
        .map(|c| serde_json::from_str::<Counts>(&c).map_err(|_| bad_value("counts", &c)))
        .transpose()?;
    Ok(StoredRun {
        id: r.i64("id")?,
        expert_id: r.opt_i64("expert_id")?,
        use_case,
        trigger,
        lock_key: r.text("lock_key")?,
        owner: r.text("owner")?,
        status: RunStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
        counts,
        error: r.opt_text("error")?,
        started_at: r.time("started_at")?,
        finished_at: r.time("finished_at")?,
    })
}
