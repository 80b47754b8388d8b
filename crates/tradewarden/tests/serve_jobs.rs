//! Analysis jobs, runs and symbols-to-analyze over real HTTP on loopback, on SQLite and on
//! PostgreSQL: each route's success and refusals (401, 403 at each role boundary, 404, 409,
//! 422); a run starts only after the last job of its use case ends (a failing job counts as
//! ended) and is listed by `GET /runs` with trigger `jobs` only then; no run while a job is
//! pending (`process` answers `skipped_pending_jobs`); a job pending past `[processing]
//! job_timeout_seconds` is failed by the server itself; symbols-to-analyze answers each use
//! case.

mod common;
#[path = "common/serve.rs"]
mod serve_support;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use serve_support::*;

/// The runs of expert 1 with trigger `jobs`.
async fn job_runs(c: &Call<'_>) -> Vec<Value> {
    let (status, runs) = c.get("/api/v1/runs?expert_id=1", Some(OPERATOR)).await;
    assert_eq!(status, 200, "{runs}");
    runs.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "jobs")
        .cloned()
        .collect()
}

/// The ids of the jobs in a 201 answer.
fn ids(jobs: &Value) -> Vec<i64> {
    jobs.as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect()
}

async fn jobs_flow(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(dir.path(), &db.url, 2, "");
    let server = Server::start(&config, &[]);
    let http = client();
    let c = Call {
        http: &http,
        server: &server,
    };

    let (status, doc) = c.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/experts/{id}/jobs",
        "/api/v1/jobs/{id}/complete",
        "/api/v1/jobs/{id}/fail",
        "/api/v1/jobs",
        "/api/v1/experts/{id}/symbols-to-analyze",
        "/api/v1/runs",
        "/api/v1/runs/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi.json lacks {path}");
    }

    // POST /experts/{id}/jobs: an expert for itself, an admin for anyone; nobody else.
    let new = json!({"use_case": "enter_market", "symbols": ["AAA", "bbb", "CCC"]});
    assert_eq!(c.post("/api/v1/experts/1/jobs", None, &new).await.0, 401);
    let (status, body) = c.post("/api/v1/experts/1/jobs", Some(EXPERT2), &new).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = c.post("/api/v1/experts/1/jobs", Some(OPERATOR), &new).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = c.post("/api/v1/experts/99/jobs", Some(ADMIN), &new).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    let (status, body) = c
        .post(
            "/api/v1/experts/1/jobs",
            Some(EXPERT1),
            &json!({"use_case": "enter_market"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("symbols"),
        "{body}"
    );
    let (status, body) = c
        .post(
            "/api/v1/experts/1/jobs",
            Some(EXPERT1),
            &json!({"use_case": "exit_everything", "symbols": ["AAA"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "use_case", "{body}");
    let (status, none) = c.get("/api/v1/jobs", Some(ADMIN)).await;
    assert_eq!(
        (status, none),
        (200, json!([])),
        "refused requests create nothing"
    );

    let (status, jobs) = c.post("/api/v1/experts/1/jobs", Some(EXPERT1), &new).await;
    assert_eq!(status, 201, "{jobs}");
    let [a, b, cc] = ids(&jobs)[..] else {
        panic!("three jobs: {jobs}")
    };
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] == "pending")
    );
    assert_eq!(jobs[1]["symbol"], "BBB");
    let (status, other) = c
        .post(
            "/api/v1/experts/2/jobs",
            Some(ADMIN),
            &json!({"use_case": "enter_market", "symbols": ["ZZZ"]}),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let theirs = ids(&other)[0];

    // GET /jobs: an expert reads its own, operators all; filters and paging.
    let (status, mine) = c.get("/api/v1/jobs", Some(EXPERT1)).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&mine), vec![cc, b, a], "its own, newest first");
    let (status, _) = c.get("/api/v1/jobs?expert_id=2", Some(EXPERT1)).await;
    assert_eq!(status, 403);
    assert_eq!(c.get("/api/v1/jobs", None).await.0, 401);
    let (status, all) = c.get("/api/v1/jobs?status=PENDING", Some(OPERATOR)).await;
    assert_eq!((status, ids(&all)), (200, vec![theirs, cc, b, a]));
    let (status, page) = c
        .get("/api/v1/jobs?expert_id=1&limit=1&offset=1", Some(OPERATOR))
        .await;
    assert_eq!((status, ids(&page)), (200, vec![b]));
    for bad in ["limit=1001", "status=stuck", "symbol=AAA", "colour=red"] {
        let (status, body) = c.get(&format!("/api/v1/jobs?{bad}"), Some(ADMIN)).await;
        assert_eq!(
            (status, error_code(&body)),
            (422, "invalid"),
            "{bad}: {body}"
        );
    }

    // No run while jobs are pending: process is skipped, nothing runs by itself.
    let (status, report) = c
        .post(
            "/api/v1/experts/1/process",
            Some(OPERATOR),
            &json!({"use_case": "enter_market"}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], "skipped_pending_jobs");

    // Completing and failing: the job's own expert or an admin.
    let complete = |id: i64| format!("/api/v1/jobs/{id}/complete");
    let fail = |id: i64| format!("/api/v1/jobs/{id}/fail");
    let nothing = json!({"recommendation": null});
    assert_eq!(c.post(&complete(a), None, &nothing).await.0, 401);
    assert_eq!(c.post(&complete(a), Some(EXPERT2), &nothing).await.0, 403);
    assert_eq!(c.post(&complete(a), Some(OPERATOR), &nothing).await.0, 403);
    assert_eq!(
        c.post(&fail(a), Some(EXPERT2), &json!({"reason": "x"}))
            .await
            .0,
        403
    );
    let (status, body) = c.post(&complete(999_999), Some(ADMIN), &nothing).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    assert_eq!(
        c.post("/api/v1/jobs/abc/fail", Some(ADMIN), &nothing)
            .await
            .0,
        404
    );
    for (path, body, field) in [
        (complete(a), json!({"recommendation": 5}), "recommendation"),
        (
            complete(a),
            json!({"recommendation": buy(2, "AAA")}),
            "expert_id",
        ),
        (fail(a), json!({"reason": "  "}), "reason"),
    ] {
        let (status, answer) = c.post(&path, Some(ADMIN), &body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        let details = answer["error"]["details"].as_array().unwrap();
        assert!(
            details
                .iter()
                .any(|d| d["field"].as_str().unwrap().contains(field)),
            "{body}: {answer}"
        );
    }
    let (status, body) = c.post(&fail(a), Some(ADMIN), &json!({"why": "x"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("why"),
        "{body}"
    );

    // Ending all but the last starts nothing.
    let (status, ended) = c
        .post(
            &complete(a),
            Some(EXPERT1),
            &json!({"recommendation": buy(1, "AAA")}),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["job"]["status"], "completed");
    assert!(ended["job"]["recommendation_id"].is_i64(), "{ended}");
    assert_eq!(ended["run"], Value::Null);
    let (status, ended) = c.post(&complete(b), Some(ADMIN), &nothing).await;
    assert_eq!((status, &ended["run"]), (200, &Value::Null), "{ended}");
    assert!(
        job_runs(&c).await.is_empty(),
        "no run while job {cc} is pending"
    );

    // Ending a job twice is a conflict.
    let (status, body) = c.post(&complete(a), Some(EXPERT1), &nothing).await;
    assert_eq!((status, error_code(&body)), (409, "conflict"), "{body}");
    let (status, _) = c
        .post(&fail(b), Some(EXPERT1), &json!({"reason": "late"}))
        .await;
    assert_eq!(status, 409);

    // The last one failing counts as ended: the run starts, the answer carries its report.
    let (status, ended) = c
        .post(
            &fail(cc),
            Some(EXPERT1),
            &json!({"reason": "the model crashed"}),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["job"]["status"], "failed");
    assert_eq!(ended["job"]["reason"], "the model crashed");
    assert_eq!(ended["run"]["status"], "processed", "{ended}");
    let run_id = ended["run"]["run_id"].as_i64().unwrap();
    let runs = job_runs(&c).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["id"], run_id);
    assert_eq!(runs[0]["use_case"], "enter_market");
    let (status, _) = c
        .post(&fail(cc), Some(EXPERT1), &json!({"reason": "x"}))
        .await;
    assert_eq!(status, 409);

    // GET /runs and /runs/{id}.
    let (status, run) = c
        .get(&format!("/api/v1/runs/{run_id}"), Some(EXPERT1))
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(
        (&run["trigger"], &run["status"]),
        (&json!("jobs"), &json!("processed"))
    );
    assert_eq!(
        c.get(&format!("/api/v1/runs/{run_id}"), Some(EXPERT2))
            .await
            .0,
        403
    );
    assert_eq!(c.get(&format!("/api/v1/runs/{run_id}"), None).await.0, 401);
    assert_eq!(c.get("/api/v1/runs/999999", Some(ADMIN)).await.0, 404);
    let (status, theirs) = c.get("/api/v1/runs", Some(EXPERT2)).await;
    assert_eq!((status, theirs), (200, json!([])), "expert 2 ran nothing");
    assert_eq!(
        c.get("/api/v1/runs?expert_id=1", Some(EXPERT2)).await.0,
        403
    );
    let (status, processed) = c
        .get(
            "/api/v1/runs?expert_id=1&status=processed&since=2020-01-01T00:00:00Z",
            Some(OPERATOR),
        )
        .await;
    assert_eq!(status, 200, "{processed}");
    assert!(
        processed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "processed")
    );
    assert!(
        processed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == run_id)
    );
    let (status, later) = c
        .get("/api/v1/runs?since=2999-01-01T00:00:00Z", Some(OPERATOR))
        .await;
    assert_eq!((status, later), (200, json!([])));
    for bad in ["limit=1001", "status=done", "since=yesterday", "symbol=AAA"] {
        let (status, body) = c.get(&format!("/api/v1/runs?{bad}"), Some(ADMIN)).await;
        assert_eq!(
            (status, error_code(&body)),
            (422, "invalid"),
            "{bad}: {body}"
        );
    }

    // Symbols to analyze: the run bought AAA, so it is worth analysing for open_positions
    // only, and BBB (no transaction) for enter_market only.
    let to_analyze = |use_case: &str| {
        format!("/api/v1/experts/1/symbols-to-analyze?use_case={use_case}&symbols=AAA,bbb")
    };
    let (status, body) = c.get(&to_analyze("enter_market"), Some(EXPERT1)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["symbols"], json!(["BBB"]));
    let (status, body) = c.get(&to_analyze("open_positions"), Some(OPERATOR)).await;
    assert_eq!((status, &body["symbols"]), (200, &json!(["AAA"])), "{body}");
    assert_eq!(
        c.get(&to_analyze("enter_market"), Some(EXPERT2)).await.0,
        403
    );
    assert_eq!(c.get(&to_analyze("enter_market"), None).await.0, 401);
    let (status, _) = c
        .get(
            "/api/v1/experts/99/symbols-to-analyze?use_case=enter_market&symbols=A",
            Some(ADMIN),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = c.get(&to_analyze("everything"), Some(ADMIN)).await;
    assert_eq!(
        (status, &body["error"]["details"][0]["field"]),
        (422, &json!("use_case"))
    );
    let (status, body) = c
        .get(
            "/api/v1/experts/1/symbols-to-analyze?use_case=enter_market",
            Some(ADMIN),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("symbols"),
        "{body}"
    );
}
both!(jobs_flow);

/// A job nobody ends is failed by the server once `[processing] job_timeout_seconds` is
/// over, and its run starts (trigger `jobs`).
async fn timed_out_job_is_failed(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(dir.path(), &db.url, 1, "");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[processing]\n",
        "[processing]\njob_timeout_seconds = 1\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config, &[]);
    let http = client();
    let c = Call {
        http: &http,
        server: &server,
    };
    let (status, jobs) = c
        .post(
            "/api/v1/experts/1/jobs",
            Some(EXPERT1),
            &json!({"use_case": "open_positions", "symbols": ["AAA"]}),
        )
        .await;
    assert_eq!(status, 201, "{jobs}");
    let id = ids(&jobs)[0];

    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let (status, jobs) = c.get("/api/v1/jobs?expert_id=1", Some(OPERATOR)).await;
        assert_eq!(status, 200, "{jobs}");
        let job = jobs[0].clone();
        assert_eq!(job["id"], id);
        if job["status"] != "pending" {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the job was never failed:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["reason"].as_str().unwrap().contains("timed out"),
        "{job}"
    );
    // The sweep ended the last pending job: its run is recorded once it has run.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = job_runs(&c).await;
        if let Some(run) = runs.first() {
            assert_eq!(run["use_case"], "open_positions", "{run}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no run after the timed-out job:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = c
        .post(
            &format!("/api/v1/jobs/{id}/complete"),
            Some(EXPERT1),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "a timed-out job has ended");
}
both!(timed_out_job_is_failed);
