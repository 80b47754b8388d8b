//! Analysis jobs and run records (issue 11, items 3 and 4), on SQLite and PostgreSQL: a run
//! starts only when the last pending job of its expert and use case ends (completed, failed
//! or timed out), is recorded with trigger `jobs`, and never starts while one is pending;
//! ending a job twice is a conflict; two jobs ending at once start the run exactly once;
//! `symbols_to_analyze` leaves out what is not worth analysing; `tradewarden runs` lists the
//! records.

mod common;

use std::sync::Arc;

use chrono::Utc;
use common::*;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use tradewarden_domain::UseCase;
use tradewarden_engine::ports::{
    JobFilter, JobStatus, JobStore, NewJob, QueryStore, RunFilter, StoredRun,
};
use tradewarden_engine::{JobError, RunStatus, RunTrigger, TradeManager};

/// A buy recommendation for expert 1 that the confident-buy ruleset orders, as one `import`
/// line.
fn buy(symbol: &str) -> Value {
    json!({
        "expert_id": 1,
        "symbol": symbol,
        "action": "BUY",
        "confidence": 80,
        "expected_profit_percent": 10,
        "price_at_date": 100,
        "risk_level": "MEDIUM",
        "time_horizon": "SHORT_TERM",
    })
}

async fn one_expert(db: &TestDb) -> Harness {
    harness(db, settings(vec![expert(1)], dec!(100000)), plain).await
}

fn symbols(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

async fn runs_of(m: &TradeManager, expert_id: i64) -> Vec<StoredRun> {
    m.store()
        .runs(&RunFilter {
            expert_id: Some(expert_id),
            ..RunFilter::default()
        })
        .await
        .unwrap()
}

async fn a_run_starts_only_after_the_last_job_ends(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = one_expert(&db).await;
    let m = &h.manager;
    let jobs = m
        .create_jobs(1, "enter_market", &symbols(&["aapl", "MSFT"]))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].symbol, "AAPL", "symbols are normalised");
    assert!(jobs.iter().all(|j| j.status == JobStatus::Pending));

    // Catches: the gate's pending-jobs check left a stub (the run would go on).
    let r = m
        .process_enter_market(1, None, RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::SkippedPendingJobs);

    // Catches: a run started by a job that is not the last one.
    let first = m
        .complete_job(jobs[0].id, Some(&buy("AAPL")))
        .await
        .unwrap();
    assert_eq!(first.job.status, JobStatus::Completed);
    assert!(first.job.recommendation_id.is_some());
    assert_eq!(first.run, None, "a job is still pending");

    // A failing job counts as ended: it is the last, so the run starts and orders AAPL.
    let last = m.fail_job(jobs[1].id, "no data for MSFT").await.unwrap();
    assert_eq!(last.job.status, JobStatus::Failed);
    assert_eq!(last.job.reason.as_deref(), Some("no data for MSFT"));
    let run = last.run.expect("the last ending starts the run");
    assert_eq!(run.status, RunStatus::Processed, "{run:?}");
    assert_eq!(run.counts.ordered, 1, "{run:?}");

    let records = runs_of(m, 1).await;
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        records[0].id,
        run.run_id.expect("the report names its record")
    );
    assert_eq!(records[0].trigger, Some(RunTrigger::Jobs));
    assert_eq!(records[0].use_case, Some(UseCase::EnterMarket));
    assert_eq!(records[0].counts.map(|c| c.ordered), Some(1));
    assert_eq!(records[1].trigger, Some(RunTrigger::Cli));
    assert_eq!(records[1].status, RunStatus::SkippedPendingJobs);

    let listed = m
        .jobs(&JobFilter {
            expert_id: Some(1),
            status: Some(JobStatus::Completed),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, jobs[0].id);
}
both!(a_run_starts_only_after_the_last_job_ends);

async fn a_timed_out_job_is_failed_and_starts_the_run(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = one_expert(&db).await;
    let m = &h.manager;
    let job = m
        .create_jobs(1, "enter_market", &symbols(&["AAPL"]))
        .await
        .unwrap()
        .remove(0);
    // Catches: a sweep that fails jobs before their time.
    assert!(m.fail_timed_out_jobs(Utc::now()).await.unwrap().is_empty());
    let later = Utc::now() + chrono::Duration::seconds(3601);
    let ended = m.fail_timed_out_jobs(later).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].job.id, job.id);
    assert_eq!(ended[0].job.status, JobStatus::Failed);
    assert_eq!(
        ended[0].job.reason.as_deref(),
        Some("timed out after 3600 s")
    );
    let run = ended[0].run.as_ref().expect("the run starts");
    assert_eq!(run.status, RunStatus::Processed);
    assert_eq!(runs_of(m, 1).await[0].trigger, Some(RunTrigger::Jobs));
    // Catches: a sweep that fails an ended job again.
    assert!(m.fail_timed_out_jobs(later).await.unwrap().is_empty());
}
both!(a_timed_out_job_is_failed_and_starts_the_run);

async fn open_positions_waits_for_its_own_jobs(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let mut e = expert(1);
    e.allow_automated_trade_modification = true;
    e.open_positions_ruleset = Some("confident-buy".into());
    let h = harness(&db, settings(vec![e], dec!(100000)), plain).await;
    let m = &h.manager;
    let job = m
        .create_jobs(1, "open_positions", &symbols(&["AAPL"]))
        .await
        .unwrap()
        .remove(0);
    let r = m
        .process_open_positions(1, None, RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::SkippedPendingJobs);
    // Jobs of the other use case hold nothing back.
    let r = m
        .process_enter_market(1, None, RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed);
    let ended = m.complete_job(job.id, None).await.unwrap();
    assert_eq!(ended.job.recommendation_id, None);
    let run = ended.run.expect("the open_positions run starts");
    assert_eq!(run.use_case, UseCase::OpenPositions);
    assert_eq!(run.status, RunStatus::Processed);
    let records = runs_of(m, 1).await;
    assert_eq!(records[0].use_case, Some(UseCase::OpenPositions));
    assert_eq!(records[0].trigger, Some(RunTrigger::Jobs));
}
both!(open_positions_waits_for_its_own_jobs);

async fn ending_a_job_twice_is_a_conflict(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = one_expert(&db).await;
    let m = &h.manager;
    let job = m
        .create_jobs(1, "enter_market", &symbols(&["AAPL"]))
        .await
        .unwrap()
        .remove(0);
    m.complete_job(job.id, None).await.unwrap();
    for again in [
        m.complete_job(job.id, None).await,
        m.fail_job(job.id, "late").await,
    ] {
        match again {
            Err(JobError::AlreadyEnded { id, status }) => {
                assert_eq!((id, status), (job.id, JobStatus::Completed))
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert!(matches!(
        m.complete_job(job.id + 1000, None).await,
        Err(JobError::NotFound(_))
    ));
    // One run only: the second ending started nothing.
    assert_eq!(runs_of(m, 1).await.len(), 1);
}
both!(ending_a_job_twice_is_a_conflict);

async fn bad_requests_name_their_fields_and_write_nothing(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = one_expert(&db).await;
    let m = &h.manager;
    let fields = |e: JobError| match e {
        JobError::Invalid(v) => v.into_iter().map(|f| f.field).collect::<Vec<_>>(),
        other => panic!("expected invalid input, got {other:?}"),
    };
    let e = m
        .create_jobs(1, "exit_market", &symbols(&["AAPL", "BAD SYMBOL", "aapl"]))
        .await
        .unwrap_err();
    assert_eq!(fields(e), ["use_case", "symbols[1]", "symbols[2]"]);
    let e = m.create_jobs(1, "enter_market", &[]).await.unwrap_err();
    assert_eq!(fields(e), ["symbols"]);
    assert!(matches!(
        m.create_jobs(9, "enter_market", &symbols(&["AAPL"])).await,
        Err(JobError::UnknownExpert(9))
    ));
    assert!(m.jobs(&JobFilter::default()).await.unwrap().is_empty());

    let job = m
        .create_jobs(1, "enter_market", &symbols(&["AAPL"]))
        .await
        .unwrap()
        .remove(0);
    // Catches: a recommendation of another symbol stored for the job.
    let e = m
        .complete_job(job.id, Some(&buy("MSFT")))
        .await
        .unwrap_err();
    assert_eq!(fields(e), ["recommendation.symbol"]);
    let mut bad = buy("AAPL");
    bad["confidence"] = json!(101);
    let e = m.complete_job(job.id, Some(&bad)).await.unwrap_err();
    assert_eq!(fields(e), ["recommendation.confidence"]);
    let e = m.fail_job(job.id, "  ").await.unwrap_err();
    assert_eq!(fields(e), ["reason"]);
    let still = m.jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(still[0].status, JobStatus::Pending, "nothing was written");
    assert!(runs_of(m, 1).await.is_empty());
}
both!(bad_requests_name_their_fields_and_write_nothing);

async fn symbols_to_analyze_leave_out_what_is_not_worth_it(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = one_expert(&db).await;
    let m = &h.manager;
    let job = m
        .create_jobs(1, "enter_market", &symbols(&["AAPL"]))
        .await
        .unwrap()
        .remove(0);
    let run = m
        .complete_job(job.id, Some(&buy("AAPL")))
        .await
        .unwrap()
        .run
        .unwrap();
    assert_eq!(run.counts.ordered, 1, "{run:?}");
    let asked = symbols(&["msft", "AAPL", "NVDA"]);
    assert_eq!(
        m.symbols_to_analyze(1, "enter_market", &asked)
            .await
            .unwrap(),
        ["MSFT", "NVDA"]
    );
    assert_eq!(
        m.symbols_to_analyze(1, "open_positions", &asked)
            .await
            .unwrap(),
        ["AAPL"]
    );
    assert!(matches!(
        m.symbols_to_analyze(1, "nope", &asked).await,
        Err(JobError::Invalid(_))
    ));
}
both!(symbols_to_analyze_leave_out_what_is_not_worth_it);

/// Two jobs of one expert end at the same moment, round after round: each round starts the
/// run exactly once. Catches: ending without the per-expert serialisation — on PostgreSQL
/// (READ COMMITTED) each ending then sees the other's job still pending and neither starts
/// the run.
async fn two_last_jobs_ending_at_once_start_the_run_once(kind: DbKind) {
    const ROUNDS: usize = 12;
    let db = TestDb::new(kind).await;
    let h = one_expert(&db).await;
    for round in 0..ROUNDS {
        let jobs = h
            .manager
            .create_jobs(1, "enter_market", &symbols(&["AAPL", "MSFT"]))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for job in jobs {
            let (m, barrier) = (h.manager.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                m.fail_job(job.id, "done").await.unwrap()
            }));
        }
        let mut started = 0;
        for t in tasks {
            started += usize::from(t.await.unwrap().run.is_some());
        }
        assert_eq!(started, 1, "round {round}");
    }
    let by_jobs = runs_of(&h.manager, 1)
        .await
        .iter()
        .filter(|r| r.trigger == Some(RunTrigger::Jobs))
        .count();
    assert_eq!(by_jobs, ROUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_last_jobs_ending_at_once_start_the_run_once() {
    two_last_jobs_ending_at_once_start_the_run_once(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_last_jobs_ending_at_once_start_the_run_once() {
    two_last_jobs_ending_at_once_start_the_run_once(DbKind::Postgres).await;
}

/// Through the binary: `process` reports `skipped_pending_jobs` while a job is pending, and
/// `runs` lists the records as a table and as JSON.
async fn the_runs_command_lists_the_records(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url, 2, 30);
    let recs = dir.path().join("recs.jsonl");
    std::fs::write(&recs, format!("{}\n", buy("AAPL"))).unwrap();
    let (st, _, err) = tw(&config, &["import", recs.to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");
    let store = db.store().await;
    store
        .create_jobs(&[NewJob {
            expert_id: 2,
            use_case: UseCase::EnterMarket,
            symbol: "MSFT".into(),
            created_at: Utc::now(),
        }])
        .await
        .unwrap();
    let (st, out, err) = tw(&config, &["process", "--all"], &[]);
    assert!(st.success(), "{err}");
    let reports: Value = serde_json::from_str(&out).unwrap();
    let status_of = |id: i64| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["expert_id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of(1).as_deref(), Some("processed"));
    assert_eq!(status_of(2).as_deref(), Some("skipped_pending_jobs"));

    let (st, out, err) = tw(&config, &["runs", "--json"], &[]);
    assert!(st.success(), "{err}");
    let runs: Value = serde_json::from_str(&out).unwrap();
    let runs = runs.as_array().unwrap();
    // `process` refreshes the accounts after its runs: a record of its own, newest.
    assert_eq!(runs.len(), 3, "{out}");
    assert_eq!(runs[0]["lock_key"], "refresh_account_paper");
    assert_eq!(runs[0]["expert_id"], Value::Null);
    for r in &runs[1..] {
        assert_eq!(r["trigger"], "cli");
        assert_eq!(r["use_case"], "enter_market");
        assert!(r["id"].is_i64() && r["started_at"].is_string(), "{r}");
    }
    let processed = runs.iter().find(|r| r["expert_id"] == 1).unwrap();
    assert_eq!(processed["status"], "processed");
    assert_eq!(processed["counts"]["ordered"], 1);

    let (st, out, err) = tw(&config, &["runs", "--expert", "2", "--json"], &[]);
    assert!(st.success(), "{err}");
    let only: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["status"], "skipped_pending_jobs");

    let (st, out, err) = tw(&config, &["runs", "--wide"], &[]);
    assert!(st.success(), "{err}");
    assert!(out.contains("trigger"), "{out}");
    assert!(out.contains("skipped_pending_jobs"), "{out}");
    assert!(out.contains("3 run(s)"), "{out}");
}
both!(the_runs_command_lists_the_records);

/// Run records written before migration 0009 stay readable: their expert and use case are
/// read from the lock key, their trigger and counts are unknown; a refresh's has neither.
async fn run_records_of_an_older_version_stay_readable(kind: DbKind) {
    use tradewarden_store::SqlStore;
    use tradewarden_store::db::{Pool, Val};
    let db = TestDb::new(kind).await;
    SqlStore::migrate_to(&db.url, 8).await.unwrap();
    let pool = Pool::connect(&db.url).await.unwrap();
    let t = Utc::now();
    for key in ["expert_12_usecase_open_positions", "refresh_account_paper"] {
        let args: [Val; 4] = [key.into(), "old".into(), "processed".into(), t.into()];
        pool.execute(
            "INSERT INTO runs (lock_key, owner, status, started_at, finished_at) VALUES ($1, $2, $3, $4, $4)",
            &args,
        )
        .await
        .unwrap();
    }
    pool.close().await;
    let store = db.store().await;
    let runs = store.runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].lock_key, "refresh_account_paper");
    assert_eq!((runs[0].expert_id, runs[0].use_case), (None, None));
    assert_eq!(runs[1].expert_id, Some(12));
    assert_eq!(runs[1].use_case, Some(UseCase::OpenPositions));
    assert_eq!((runs[1].trigger, runs[1].counts), (None, None));
    let only = store
        .runs(&RunFilter {
            expert_id: Some(12),
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(store.run(only[0].id).await.unwrap(), Some(only[0].clone()));
    assert_eq!(store.run(999).await.unwrap(), None);
    // Paging: newest first, `limit` then `offset`.
    let page = store
        .runs(&RunFilter {
            limit: Some(1),
            offset: 1,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page, [runs[1].clone()]);
}
both!(run_records_of_an_older_version_stay_readable);
