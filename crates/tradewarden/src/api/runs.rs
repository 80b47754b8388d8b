//! The run records: `GET /api/v1/runs` (filters `expert_id`, `status`, `since`; paged,
//! newest first) and `GET /api/v1/runs/{id}`, each run as `tradewarden runs --json` shows it.
//! An expert token reads its own expert's runs only.

use axum::Json;
use axum::extract::State;
use tradewarden_engine::RunStatus;
use tradewarden_engine::ports::{RunFilter, StoredRun};

use super::Api;
use super::auth::{Access, Caller};
use super::error::ApiError;
use super::extract::{Path, Query};
use super::reads::{ListQuery, since, status};

/// `GET /api/v1/runs`.
#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "reads",
    params(ListQuery),
    responses(
        (status = 200, description = "Runs, newest first", body = Vec<serde_json::Value>),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token asking for another expert's runs", body = super::error::ErrorBody),
        (status = 422, description = "A bad filter, or limit over 1000", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<StoredRun>>, ApiError> {
    q.refuse_filters("runs", &["symbol", "recommendation_id"])?;
    let all = RunStatus::ALL.map(RunStatus::as_str);
    let page = q.page()?;
    let filter = RunFilter {
        expert_id: caller.read_scope(q.expert_id)?,
        status: q
            .status
            .as_deref()
            .map(|s| status(s, &all))
            .transpose()?
            .and_then(|s| RunStatus::parse(&s)),
        since: q.since.as_deref().map(since).transpose()?,
        limit: page.limit,
        offset: page.offset,
    };
    Ok(Json(api.app.queries().runs(&filter).await?))
}

/// `GET /api/v1/runs/{id}`: 404 for an unknown run.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}",
    tag = "reads",
    params(("id" = i64, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = serde_json::Value),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token asking for another expert's run", body = super::error::ErrorBody),
        (status = 404, description = "Unknown run", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<StoredRun>, ApiError> {
    caller.may(Access::Read)?;
    let run = api.app.queries().run(id).await?.ok_or_else(|| {
        ApiError::not_found(format!("unknown run {id}: GET /api/v1/runs lists them"))
    })?;
    match (run.expert_id, caller.expert_id) {
        (Some(expert_id), _) => caller.may_act_for(expert_id)?,
        (None, Some(_)) => {
            return Err(ApiError::forbidden(format!(
                "token {:?} reads its expert's runs only; run {id} is no expert's",
                caller.name
            )));
        }
        (None, None) => {}
    }
    Ok(Json(run))
}
