//! `tradewarden serve` over real HTTP on loopback, on SQLite and on PostgreSQL: every route's
//! success and refusals (401 without or with an unknown token, 403 at each role boundary,
//! 404, 413, 422), `/metrics` as Prometheus text whose counters move with the requests and
//! runs, and `token new`.

mod common;
#[path = "common/serve.rs"]
mod serve_support;

use std::collections::HashMap;

use common::*;
use serde_json::{Value, json};
use serve_support::*;

/// A confident buy stamped `created_at`, so that posting it again is the same recommendation.
fn buy_at(expert: i64, symbol: &str, at: &str) -> Value {
    let mut v = buy(expert, symbol);
    v["created_at"] = json!(at);
    v
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn recommendations_stored(db: &TestDb) -> i64 {
    let store = db.store().await;
    let rows = store
        .pool()
        .fetch("SELECT COUNT(*) AS n FROM recommendations", &[])
        .await
        .unwrap();
    rows[0].i64("n").unwrap()
}

async fn routes(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(dir.path(), &db.url, 2, "[server]\nmax_body_bytes = 4096\n");
    let server = Server::start(&config, &[]);
    let http = client();
    let c = Call {
        http: &http,
        server: &server,
    };

    // Open routes.
    assert_eq!(c.get("/healthz", None).await.0, 200);
    assert_eq!(c.get("/readyz", None).await.0, 200);
    let (status, doc) = c.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/recommendations",
        "/api/v1/experts/{id}/process",
        "/api/v1/experts",
        "/api/v1/accounts",
        "/api/v1/transactions",
        "/api/v1/orders",
        "/api/v1/outcomes",
        "/api/v1/refresh",
        "/api/v1/transactions/{id}/close",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi.json lacks {path}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Catches: no compression layer. A client that accepts gzip gets gzip.
    let zipped = http
        .get(server.url("/api/v1/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.status().as_u16(), 200);
    assert_eq!(
        zipped
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let (status, body) = c.get("/nowhere", Some(ADMIN)).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));

    // 401: no token, an unknown one, a malformed header; with WWW-Authenticate: Bearer.
    for token in [None, Some("not-a-known-token")] {
        let mut r = http.get(server.url("/api/v1/transactions"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{token:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let (_, body) = answer(r).await;
        assert_eq!(error_code(&body), "unauthorized");
    }
    let r = http
        .get(server.url("/api/v1/transactions"))
        .header("authorization", format!("Basic {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // POST /recommendations: an expert posts its own; not another's; an operator not at all.
    let at = now();
    let mine = json!([buy_at(1, "AAA", &at), buy_at(1, "BBB", &at)]);
    let (status, body) = c
        .post("/api/v1/recommendations", Some(EXPERT1), &mine)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["imported"], 2);
    assert_eq!(body["already_present"], 0);
    let ids: Vec<i64> = serde_json::from_value(body["ids"].clone()).unwrap();
    assert_eq!(ids.len(), 2);
    let (status, again) = c
        .post("/api/v1/recommendations", Some(EXPERT1), &mine)
        .await;
    assert_eq!(
        (status, &again["already_present"], &again["imported"]),
        (201, &json!(2), &json!(0))
    );
    assert_eq!(
        again["ids"], body["ids"],
        "an item already present gets the stored id"
    );
    let theirs = json!([buy_at(1, "CCC", &at), buy_at(2, "CCC", &at)]);
    let (status, body) = c
        .post("/api/v1/recommendations", Some(EXPERT1), &theirs)
        .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    let (status, _) = c
        .post("/api/v1/recommendations", Some(OPERATOR), &mine)
        .await;
    assert_eq!(status, 403);
    let (status, _) = c.post("/api/v1/recommendations", None, &mine).await;
    assert_eq!(status, 401);
    assert_eq!(
        recommendations_stored(&db).await,
        2,
        "refused batches store nothing"
    );
    let (status, _) = c
        .post(
            "/api/v1/recommendations",
            Some(ADMIN),
            &json!([buy_at(2, "CCC", &at)]),
        )
        .await;
    assert_eq!(status, 201);

    // 422: every bad item named by index and field; nothing of the batch stored.
    let mut bad = buy_at(1, "DDD", &at);
    bad["confidence"] = json!(101);
    let batch = json!([buy_at(1, "EEE", &at), bad, {"expert_id": 99}]);
    let (status, body) = c.post("/api/v1/recommendations", Some(ADMIN), &batch).await;
    assert_eq!(status, 422, "{body}");
    let details = body["error"]["details"].as_array().unwrap();
    assert!(
        details
            .iter()
            .any(|d| d["index"] == 1 && d["field"] == "confidence"),
        "{body}"
    );
    assert!(details.iter().any(|d| d["index"] == 2), "{body}");
    assert!(details.iter().all(|d| d["index"] != 0), "{body}");
    assert_eq!(recommendations_stored(&db).await, 3);
    for raw in [&b"{"[..], b"{\"expert_id\": 1}", b"[1, 2", b"\xff\xfe", b""] {
        let (status, body) = c
            .post_raw("/api/v1/recommendations", ADMIN, raw.to_vec())
            .await;
        assert!(status == 400 || status == 422, "{status} {body}");
        assert!(body["error"]["message"].is_string());
    }
    // 413 over [server] max_body_bytes.
    let big: Vec<Value> = (0..100).map(|i| buy_at(1, &format!("S{i}"), &at)).collect();
    let (status, body) = c
        .post_raw(
            "/api/v1/recommendations",
            ADMIN,
            serde_json::to_vec(&big).unwrap(),
        )
        .await;
    assert_eq!((status, error_code(&body)), (413, "payload_too_large"));
    assert_eq!(recommendations_stored(&db).await, 3);

    // POST /experts/{id}/process: operators and admins; 404 unknown expert; 422 bad body.
    let enter = json!({"use_case": "enter_market", "lookback_days": 1});
    let (status, _) = c
        .post("/api/v1/experts/1/process", Some(EXPERT1), &enter)
        .await;
    assert_eq!(status, 403);
    let (status, _) = c.post("/api/v1/experts/1/process", None, &enter).await;
    assert_eq!(status, 401);
    let (status, _) = c
        .post("/api/v1/experts/99/process", Some(OPERATOR), &enter)
        .await;
    assert_eq!(status, 404);
    for body in [
        json!({"use_case": "exit_market"}),
        json!({"use_case": "enter_market", "lookback_days": 0}),
        json!({"lookback_days": 1}),
        json!({"use_case": "enter_market", "colour": "blue"}),
    ] {
        let (status, answer) = c
            .post("/api/v1/experts/1/process", Some(OPERATOR), &body)
            .await;
        assert_eq!(status, 422, "{body} → {answer}");
    }
    let (status, report) = c
        .post("/api/v1/experts/1/process", Some(OPERATOR), &enter)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], "processed");
    assert_eq!(report["orders"].as_array().unwrap().len(), 2);
    let (status, report) = c
        .post("/api/v1/experts/2/process", Some(ADMIN), &enter)
        .await;
    assert_eq!((status, &report["status"]), (200, &json!("processed")));

    // Reads: operators everything, experts their own only, paged newest first.
    let (status, rows) = c.get("/api/v1/transactions", Some(OPERATOR)).await;
    assert_eq!(status, 200);
    let rows = rows.as_array().unwrap().clone();
    assert_eq!(rows.len(), 3);
    let row_ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(
        row_ids.windows(2).all(|w| w[0] > w[1]),
        "newest first: {row_ids:?}"
    );
    let (_, page) = c
        .get("/api/v1/transactions?limit=1&offset=1", Some(OPERATOR))
        .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["id"].as_i64(), Some(row_ids[1]));
    let (_, own) = c.get("/api/v1/transactions", Some(EXPERT2)).await;
    assert!(own.as_array().unwrap().iter().all(|r| r["expert_id"] == 2));
    assert_eq!(own.as_array().unwrap().len(), 1);
    let (status, _) = c
        .get("/api/v1/transactions?expert_id=1", Some(EXPERT2))
        .await;
    assert_eq!(status, 403);
    let (status, _) = c
        .get("/api/v1/transactions?expert_id=2", Some(EXPERT2))
        .await;
    assert_eq!(status, 200);
    for bad in [
        "limit=1001",
        "status=bogus",
        "since=yesterday",
        "limit=-1",
        "expert_id=x",
        "colour=blue",
    ] {
        let (status, body) = c
            .get(&format!("/api/v1/transactions?{bad}"), Some(OPERATOR))
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (_, waiting) = c
        .get(
            "/api/v1/transactions?status=waiting&expert_id=1",
            Some(OPERATOR),
        )
        .await;
    let (_, opened) = c
        .get(
            "/api/v1/transactions?status=OPENED&expert_id=1",
            Some(OPERATOR),
        )
        .await;
    assert_eq!(
        waiting.as_array().unwrap().len() + opened.as_array().unwrap().len(),
        2
    );
    let (_, aaa) = c.get("/api/v1/orders?symbol=AAA", Some(OPERATOR)).await;
    assert!(!aaa.as_array().unwrap().is_empty());
    assert!(aaa.as_array().unwrap().iter().all(|o| o["symbol"] == "AAA"));
    let (_, later) = c
        .get("/api/v1/orders?since=2999-01-01T00:00:00Z", Some(OPERATOR))
        .await;
    assert_eq!(later, json!([]));
    let (_, outcomes) = c
        .get(
            &format!("/api/v1/outcomes?recommendation_id={}", ids[0]),
            Some(EXPERT1),
        )
        .await;
    let outcomes = outcomes.as_array().unwrap();
    assert!(!outcomes.is_empty());
    assert!(outcomes.iter().all(|o| o["recommendation_id"] == ids[0]));
    let (_, experts) = c.get("/api/v1/experts", Some(OPERATOR)).await;
    assert_eq!(experts.as_array().unwrap().len(), 2);
    let (_, experts) = c.get("/api/v1/experts", Some(EXPERT1)).await;
    assert_eq!(experts.as_array().unwrap().len(), 1);
    assert_eq!(experts[0]["id"], 1);
    let (status, accounts) = c.get("/api/v1/accounts", Some(OPERATOR)).await;
    assert_eq!(status, 200);
    assert_eq!(accounts[0]["name"], "paper");
    for path in [
        "/api/v1/experts",
        "/api/v1/accounts",
        "/api/v1/orders",
        "/api/v1/outcomes",
    ] {
        assert_eq!(c.get(path, None).await.0, 401, "{path}");
    }

    // Actions: refresh and close for operators and admins.
    let (status, _) = c.post("/api/v1/refresh", Some(EXPERT1), &json!({})).await;
    assert_eq!(status, 403);
    let (status, report) = c.post("/api/v1/refresh", Some(OPERATOR), &json!({})).await;
    assert_eq!(status, 200, "{report}");
    assert!(report["orders_updated"].is_number(), "{report}");
    let id = row_ids[0];
    let close = format!("/api/v1/transactions/{id}/close");
    assert_eq!(c.post(&close, Some(EXPERT1), &json!({})).await.0, 403);
    assert_eq!(c.post(&close, None, &json!({})).await.0, 401);
    let (status, closed) = c.post(&close, Some(OPERATOR), &json!({})).await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["transaction_id"], id);
    let (status, _) = c
        .post("/api/v1/transactions/999999/close", Some(ADMIN), &json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = c
        .post("/api/v1/transactions/abc/close", Some(ADMIN), &json!({}))
        .await;
    assert_eq!(status, 404);
}
both!(routes);

/// One line of Prometheus text: `name{labels} value`.
fn sample(line: &str) -> (String, HashMap<String, String>, f64) {
    let (head, value) = line.rsplit_once(' ').expect("name and value");
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("value of {line:?}"));
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => {
            let body = rest
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("labels of {line:?}"));
            let labels = body
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("label in {line:?}"));
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            (name.to_string(), labels)
        }
        None => (head.to_string(), HashMap::new()),
    };
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "metric name in {line:?}"
    );
    (name, labels, value)
}

/// Every sample of a Prometheus text, each line checked.
fn parse(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(sample)
        .collect()
}

fn process_requests(samples: &[(String, HashMap<String, String>, f64)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == "tradewarden_http_requests_total"
                && l.get("route").map(String::as_str) == Some("/api/v1/experts/{id}/process")
                && l.get("status").map(String::as_str) == Some("200")
        })
        .map(|s| s.2)
        .sum()
}

async fn metrics(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(dir.path(), &db.url, 1, "");
    let server = Server::start(&config, &[]);
    let http = client();
    let c = Call {
        http: &http,
        server: &server,
    };
    let scrape = || async {
        let r = http.get(server.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        parse(&r.text().await.unwrap())
    };
    let before = process_requests(&scrape().await);
    let (status, _) = c
        .post(
            "/api/v1/recommendations",
            Some(ADMIN),
            &json!([buy(1, "AAA")]),
        )
        .await;
    assert_eq!(status, 201);
    let enter = json!({"use_case": "enter_market"});
    for _ in 0..3 {
        let (status, _) = c
            .post("/api/v1/experts/1/process", Some(OPERATOR), &enter)
            .await;
        assert_eq!(status, 200);
    }
    let samples = scrape().await;
    assert_eq!(process_requests(&samples) - before, 3.0);
    // The route template, never the raw path.
    assert!(
        samples
            .iter()
            .all(|(_, l, _)| l.get("route").is_none_or(|r| !r.contains("/1/")))
    );
    // The request timing renders as a histogram.
    assert!(
        samples
            .iter()
            .any(|(n, l, _)| n == "tradewarden_http_request_seconds_bucket"
                && l.get("route").map(String::as_str) == Some("/api/v1/experts/{id}/process"))
    );
    // The engine's own figures are there too, now that runs happened.
    assert!(
        samples.iter().any(|(n, _, v)| n.starts_with("tradewarden_")
            && !n.starts_with("tradewarden_http_")
            && *v > 0.0),
        "no engine metric moved"
    );
}
both!(metrics);

/// `[server] metrics_require_token = true`: /metrics needs a token (any role).
#[tokio::test]
async fn metrics_may_require_a_token() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(
        dir.path(),
        &db.url,
        1,
        "[server]\nmetrics_require_token = true\n",
    );
    let server = Server::start(&config, &[]);
    let http = client();
    let c = Call {
        http: &http,
        server: &server,
    };
    assert_eq!(c.get("/metrics", None).await.0, 401);
    assert_eq!(c.get("/metrics", Some("unknown")).await.0, 401);
    let r = http
        .get(server.url("/metrics"))
        .bearer_auth(EXPERT1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(c.get("/healthz", None).await.0, 200);
}

/// `token new` prints a token and a TOML block that parses, holds its hash, and that `serve`
/// accepts.
#[tokio::test]
async fn token_new_prints_a_token_serve_accepts() {
    // Catches: a block `check` would refuse (a blank name) printed as if it were usable.
    let blank = bin()
        .args(["token", "new", "--name", " ", "--role", "admin"])
        .output()
        .unwrap();
    assert_eq!(blank.status.code(), Some(2));
    assert!(blank.stdout.is_empty(), "no token is printed");
    assert!(String::from_utf8_lossy(&blank.stderr).contains("--name"));
    let out = bin()
        .args([
            "token", "new", "--name", "robot", "--role", "expert", "--expert", "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .next()
        .unwrap()
        .strip_prefix("token: ")
        .unwrap()
        .to_string();
    let block = &text[text.find("[[api_tokens]]").unwrap()..];
    let parsed: toml::Table = block.parse().unwrap();
    let entry = &parsed["api_tokens"].as_array().unwrap()[0];
    assert_eq!(entry["name"].as_str(), Some("robot"));
    assert_eq!(entry["role"].as_str(), Some("expert"));
    assert_eq!(entry["expert_id"].as_integer(), Some(1));
    assert_eq!(
        entry["token_sha256"].as_str().unwrap(),
        tradewarden::config::to_hex(&tradewarden::api::auth::sha256(token.as_bytes()))
    );
    assert!(!block.contains(&token), "the block holds only the hash");
    for bad in [
        &["token", "new", "--name", "x", "--role", "expert"][..],
        &[
            "token", "new", "--name", "x", "--role", "operator", "--expert", "1",
        ],
        &["token", "new", "--name", "x", "--role", "root"],
    ] {
        assert_eq!(
            bin().args(bad).output().unwrap().status.code(),
            Some(2),
            "{bad:?}"
        );
    }

    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url, 1, 30);
    let mut cfg = std::fs::read_to_string(&config).unwrap();
    cfg.push('\n');
    cfg.push_str(block);
    std::fs::write(&config, cfg).unwrap();
    // Every log line, hyper's and tower-http's included: the tokens are in none of them.
    let server = Server::start_with(&config, &[], &["--log-level", "trace"]);
    let http = client();
    let c = Call {
        http: &http,
        server: &server,
    };
    assert_eq!(c.get("/api/v1/transactions", Some(&token)).await.0, 200);
    assert_eq!(
        c.get("/api/v1/transactions?expert_id=2", Some(&token))
            .await
            .0,
        403
    );
    assert_eq!(c.get("/api/v1/transactions", Some(ADMIN)).await.0, 200);
    let log = server.log_text();
    assert!(
        log.contains("/api/v1/transactions"),
        "the trace logs requests: {log}"
    );
    assert!(!log.contains(&token), "the token is never logged");
    assert!(!log.contains(ADMIN), "the admin token is never logged");
}

/// Without any token, `serve` refuses a non-loopback address; `check` shows the server
/// settings and token names, never their hashes.
#[test]
fn no_token_means_loopback_only() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url, 1, 30);
    let (status, _, err) = tw(&config, &["serve", "--bind", "0.0.0.0:0"], &[]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("loopback"), "{err}");
    // On loopback, without any token, this host is trusted as admin.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = Server::start(&config, &[("TRADEWARDEN_ADMIN_TOKEN", "")]);
        let http = client();
        let c = Call {
            http: &http,
            server: &server,
        };
        assert_eq!(c.get("/api/v1/transactions", None).await.0, 200);
        let enter = json!({"use_case": "enter_market"});
        assert_eq!(
            c.post("/api/v1/experts/1/process", None, &enter).await.0,
            200
        );
        // Catches: a web page open in a browser on this host acting as the local admin,
        // by a cross-site post or by DNS rebinding to its own name.
        let url = format!("{}/api/v1/experts/1/process", server.base);
        let cross_site = http
            .post(&url)
            .header("origin", "https://evil.example")
            .body(enter.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(cross_site.status().as_u16(), 403);
        let rebound = http
            .get(format!("{}/api/v1/transactions", server.base))
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(rebound.status().as_u16(), 403);
    });

    let config = serve_config(dir.path(), &db.url, 1, "");
    let (status, out, err) = tw(&config, &["check"], &[]);
    assert!(status.success(), "{err}");
    assert!(out.contains("server: bind = 127.0.0.1:8080"), "{out}");
    assert!(out.contains("ops (operator)"), "{out}");
    assert!(out.contains("producer-1 (expert for expert 1)"), "{out}");
    assert!(
        out.contains("refresh_interval_seconds = 60, process_interval_seconds = off"),
        "{out}"
    );
    assert!(!out.contains(&tradewarden::config::to_hex(
        &tradewarden::api::auth::sha256(OPERATOR.as_bytes())
    )));
}
