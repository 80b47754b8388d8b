//! `GET /api/v1/openapi.json`: the API's description.
//!
//! Not generated yet (see the README): for now the list of routes of [`super::router`], so
//! that a client can discover them.

use axum::Json;
use serde_json::{Value, json};

/// The routes, their methods and who may call them.
pub async fn get() -> Json<Value> {
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "tradewarden", "version": env!("CARGO_PKG_VERSION")},
        "paths": {}
    }))
}
