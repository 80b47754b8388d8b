//! `POST /api/v1/recommendations` against arbitrary JSON bodies, in-process (the router
//! through `tower::ServiceExt::oneshot`) on SQLite and on PostgreSQL: never a 5xx, and a
//! batch is stored whole (201, the count grows by `imported`) or not at all.
//!
//! Catches: a batch stored item by item (a refused batch would leave its first items), and
//! any input that reaches a panic or a database error (500).

mod common;
#[path = "common/serve.rs"]
mod serve_support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};
use serve_support::*;
use tower::ServiceExt;
use tradewarden::api::auth::Tokens;
use tradewarden::api::{Api, router};
use tradewarden::app::App;

const FIELDS: &[&str] = &[
    "expert_id",
    "symbol",
    "action",
    "confidence",
    "expected_profit_percent",
    "price_at_date",
    "risk_level",
    "time_horizon",
    "target_price",
    "details",
    "created_at",
];

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[A-Za-z0-9 ._:-]{0,12}".prop_map(Value::from),
        Just(Value::from("1e400")),
        Just(Value::from("2026-11-27T10:00:00Z")),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A valid buy with some of its fields replaced or removed.
fn mutated_item() -> impl Strategy<Value = Value> {
    (
        1..3i64,
        "[A-Z]{1,5}",
        prop::collection::vec(
            (prop::sample::select(FIELDS), prop::option::of(any_json())),
            0..3,
        ),
    )
        .prop_map(|(expert, symbol, changes)| {
            let mut item = buy(expert, &symbol);
            for (field, value) in changes {
                match value {
                    Some(v) => item[field] = v,
                    None => {
                        item.as_object_mut().unwrap().remove(field);
                    }
                }
            }
            item
        })
}

/// A body: an array of mostly well-formed items, or any JSON at all.
fn body() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::collection::vec(mutated_item(), 0..6).prop_map(Value::Array),
        1 => any_json(),
    ]
}

async fn count(db: &TestDb) -> i64 {
    let store = db.store().await;
    store
        .pool()
        .fetch("SELECT COUNT(*) AS n FROM recommendations", &[])
        .await
        .unwrap()[0]
        .i64("n")
        .unwrap()
}

fn arbitrary_bodies(kind: DbKind) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (db, app) = rt.block_on(async {
        let db = TestDb::new(kind).await;
        let path = serve_config(dir.path(), &db.url, 2, "");
        let cfg = tradewarden::config::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        let (_, aborted) = tokio::sync::watch::channel(false);
        let tokens = Tokens::new(&cfg.api_tokens, Some(ADMIN));
        let server = cfg.server.clone();
        let app = Arc::new(App::build(cfg, false).await.unwrap());
        let api = Api::new(app, tokens, None, &server, aborted);
        (db, router(api))
    });
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&body(), |body| {
            rt.block_on(async {
                let before = count(&db).await;
                let request = Request::post("/api/v1/recommendations")
                    .header("authorization", format!("Bearer {ADMIN}"))
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
                let response = app.clone().oneshot(request).await.unwrap();
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let answer: Value = serde_json::from_slice(&bytes).unwrap();
                let after = count(&db).await;
                prop_assert!(status < 500, "{status} {answer} for {body}");
                if status == 201 {
                    prop_assert_eq!(after - before, answer["imported"].as_i64().unwrap());
                    let items = body.as_array().map_or(0, Vec::len);
                    prop_assert_eq!(answer["ids"].as_array().unwrap().len(), items);
                } else {
                    prop_assert!(answer["error"]["message"].is_string(), "{answer}");
                    prop_assert_eq!(after, before, "a refused batch stores nothing: {}", body);
                }
                Ok(())
            })
        })
        .unwrap();
}

#[test]
fn arbitrary_bodies_sqlite() {
    arbitrary_bodies(DbKind::Sqlite);
}

#[test]
fn arbitrary_bodies_postgres() {
    arbitrary_bodies(DbKind::Postgres);
}
