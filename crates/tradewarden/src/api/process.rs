//! `POST /api/v1/experts/{id}/process`: one expert's run of one use case, its report as
//! `tradewarden process` prints it (200 also when the run was skipped because another run
//! holds the expert's lock).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tradewarden_engine::{RunReport, RunTrigger};

use super::Api;
use super::auth::{Access, Caller};
use super::error::ApiError;
use super::extract::{Body, Path, parse_json};
use crate::config::LOOKBACK_DAYS;

/// The body: which use case, and optionally the lookback window.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessRequest {
    pub use_case: UseCaseName,
    /// Overrides `[processing] lookback_days` (1..=3650).
    pub lookback_days: Option<i64>,
}

/// A use case as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UseCaseName {
    EnterMarket,
    OpenPositions,
}

/// Runs the use case for the expert: 404 for an unknown expert, 422 for a bad body.
#[utoipa::path(
    post,
    path = "/api/v1/experts/{id}/process",
    tag = "processing",
    params(("id" = i64, Path, description = "The expert's id")),
    request_body = ProcessRequest,
    responses(
        (status = 200, description = "The run's report, as `process` prints it (also when skipped_locked)", body = serde_json::Value),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token", body = super::error::ErrorBody),
        (status = 404, description = "Unknown expert", body = super::error::ErrorBody),
        (status = 422, description = "Bad body", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post(
    State(api): State<Api>,
    caller: Caller,
    Path(expert_id): Path<i64>,
    Body(body): Body,
) -> Result<Json<RunReport>, ApiError> {
    // The role first: a caller that may not process learns nothing about its body.
    caller.may(Access::Operate)?;
    let request: ProcessRequest = parse_json(&body)?;
    if !api.app.manager.settings().experts.contains_key(&expert_id) {
        return Err(ApiError::not_found(format!(
            "unknown expert {expert_id}: no expert with this id is configured"
        )));
    }
    let lookback_days = lookback(request.lookback_days)?;
    let manager = &api.app.manager;
    let run = async {
        let report = match request.use_case {
            UseCaseName::EnterMarket => {
                manager
                    .process_enter_market(expert_id, lookback_days, RunTrigger::Api)
                    .await
            }
            UseCaseName::OpenPositions => {
                manager
                    .process_open_positions(expert_id, lookback_days, RunTrigger::Api)
                    .await
            }
        };
        report.map_err(ApiError::from)
    };
    api.until_aborted(run).await.map(Json)
}

/// `lookback_days` within the configuration's range.
fn lookback(days: Option<i64>) -> Result<Option<u32>, ApiError> {
    match days {
        None => Ok(None),
        Some(d) if LOOKBACK_DAYS.contains(&d) => Ok(u32::try_from(d).ok()),
        Some(d) => Err(ApiError::invalid(format!(
            "lookback_days: out of range ({}..={}), got {d}",
            LOOKBACK_DAYS.start(),
            LOOKBACK_DAYS.end()
        ))),
    }
}
