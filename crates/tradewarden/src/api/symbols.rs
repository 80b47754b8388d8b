//! `GET /api/v1/experts/{id}/symbols-to-analyze?use_case=…&symbols=A,B,C`: those of the
//! symbols worth the expert's analysis — for `enter_market` those in which it holds no active
//! transaction, for `open_positions` those in which it holds one — in the order given.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::Api;
use super::auth::{Access, Caller};
use super::error::ApiError;
use super::extract::{Path, Query};

/// The query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SymbolsQuery {
    /// `enter_market` or `open_positions`.
    pub use_case: String,
    /// Comma-separated symbols (`A,B,C`).
    pub symbols: String,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SymbolsToAnalyze {
    pub expert_id: i64,
    pub use_case: String,
    /// The symbols worth analysing, normalised (upper case), in the order asked.
    pub symbols: Vec<String>,
}

/// The symbols worth analysing.
#[utoipa::path(
    get,
    path = "/api/v1/experts/{id}/symbols-to-analyze",
    tag = "jobs",
    params(("id" = i64, Path, description = "The expert's id"), SymbolsQuery),
    responses(
        (status = 200, description = "The symbols worth analysing", body = SymbolsToAnalyze),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token for another expert", body = super::error::ErrorBody),
        (status = 404, description = "Unknown expert", body = super::error::ErrorBody),
        (status = 422, description = "A bad use case or symbol (details: field, message)", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(api): State<Api>,
    caller: Caller,
    Path(expert_id): Path<i64>,
    Query(q): Query<SymbolsQuery>,
) -> Result<Json<SymbolsToAnalyze>, ApiError> {
    caller.may(Access::Read)?;
    caller.may_act_for(expert_id)?;
    let asked: Vec<String> = q
        .symbols
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .collect();
    let symbols = api
        .app
        .manager
        .symbols_to_analyze(expert_id, &q.use_case, &asked)
        .await?;
    Ok(Json(SymbolsToAnalyze {
        expert_id,
        use_case: q.use_case,
        symbols,
    }))
}
