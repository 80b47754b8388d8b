//! `POST /api/v1/recommendations`: an array of recommendations in the shape of an import
//! line, stored all or nothing through the engine's import (the same per-field validation as
//! `tradewarden import`); 201 `{"imported", "already_present", "ids"}`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use tradewarden_domain::NewRecommendation;
use tradewarden_domain::recommendation::{LineError, LineParser, ParseContext};
use tradewarden_engine::ports::RecommendationStore;

use super::Api;
use super::auth::{Access, Caller};
use super::error::{ApiError, ItemProblem};
use super::extract::Body;

/// The answer of a stored batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub imported: usize,
    pub already_present: usize,
    /// The stored id of each item, in the array's order (an item already present gets the
    /// id of the stored one).
    pub ids: Vec<i64>,
}

/// Stores the batch: 422 naming every bad item, 403 when an expert token posts for another
/// expert, 201 with the counts and ids.
#[utoipa::path(
    post,
    path = "/api/v1/recommendations",
    tag = "recommendations",
    request_body(content = Vec<serde_json::Value>, description = "Recommendations, each in the shape of an import line"),
    responses(
        (status = 201, description = "Stored, all of them", body = Imported),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An operator token, or an expert token posting for another expert", body = super::error::ErrorBody),
        (status = 413, description = "Over [server] max_body_bytes", body = super::error::ErrorBody),
        (status = 422, description = "Bad items (details: index, field, message); nothing stored", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post(
    State(api): State<Api>,
    caller: Caller,
    Body(body): Body,
) -> Result<(StatusCode, Json<Imported>), ApiError> {
    caller.may(Access::Submit)?;
    let items: Vec<&RawValue> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "body: expected a JSON array of recommendations: {e}"
        ))
    })?;
    let recs = parse_items(&api, &items)?;
    for rec in &recs {
        caller.may_act_for(rec.expert_id)?;
    }
    let counts = api.app.manager.import(&recs).await?;
    let ids = stored_ids(&api, &recs).await?;
    Ok((
        StatusCode::CREATED,
        Json(Imported {
            imported: counts.imported,
            already_present: counts.already_present,
            ids,
        }),
    ))
}

/// Every item through the import's line parser (item `i` is line `i + 1`, so a missing
/// `created_at` gets the same distinct default as in a file), its expert checked as the
/// import checks it: the recommendations, or 422 naming each problem by index and field.
fn parse_items(api: &Api, items: &[&RawValue]) -> Result<Vec<NewRecommendation>, ApiError> {
    let manager = &api.app.manager;
    let ctx = ParseContext::with_max_clock_skew_seconds(
        manager.clock().now(),
        manager.settings().max_clock_skew_seconds,
    );
    let known = |r: &NewRecommendation| {
        if manager.settings().experts.contains_key(&r.expert_id) {
            Ok(())
        } else {
            Err((
                "expert_id".to_string(),
                format!("unknown expert {}", r.expert_id),
            ))
        }
    };
    let mut parser = LineParser::new(&ctx);
    let mut recs = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for item in items {
        // A JSON text has line breaks only between tokens: as spaces it is one line.
        let line = item.get().replace(['\n', '\r'], " ");
        match parser.next_line(line.as_bytes(), known) {
            Ok(Some(parsed)) => recs.push(parsed.rec),
            Ok(None) => {}
            Err(errors) => problems.extend(errors.into_iter().map(problem)),
        }
    }
    if problems.is_empty() {
        Ok(recs)
    } else {
        Err(ApiError::invalid_items(
            format!(
                "{} problem(s) in the batch; nothing was stored",
                problems.len()
            ),
            problems,
        ))
    }
}

/// A parser's line problem as an item problem (line `n` is index `n - 1`).
fn problem(e: LineError) -> ItemProblem {
    ItemProblem {
        index: e.line.saturating_sub(1),
        field: e.field,
        message: e.message,
    }
}

/// The stored id of each recommendation, by its identity (expert, symbol, created_at), read
/// in an import session that is then rolled back (it writes nothing).
async fn stored_ids(api: &Api, recs: &[NewRecommendation]) -> Result<Vec<i64>, ApiError> {
    type Identity<'a> = (i64, &'a str, DateTime<Utc>);
    let identity = |r: &NewRecommendation| (r.expert_id, r.symbol.clone(), r.created_at);
    let mut distinct: HashMap<Identity<'_>, &NewRecommendation> = HashMap::new();
    for r in recs {
        distinct
            .entry((r.expert_id, r.symbol.as_str(), r.created_at))
            .or_insert(r);
    }
    let lookups: Vec<&NewRecommendation> = distinct.into_values().collect();
    let stored = if lookups.is_empty() {
        Vec::new()
    } else {
        let mut session = api.app.store.begin_import().await?;
        session.stored(&lookups).await?
    };
    let ids: HashMap<(i64, String, DateTime<Utc>), i64> = stored
        .iter()
        .map(|s| ((s.expert_id, s.symbol.clone(), s.created_at), s.id))
        .collect();
    recs.iter()
        .map(|r| {
            ids.get(&identity(r)).copied().ok_or_else(|| {
                ApiError::internal(format!(
                    "recommendation {} {} was stored but cannot be read back",
                    r.expert_id, r.symbol
                ))
            })
        })
        .collect()
}
