//! Analysis jobs: `POST /api/v1/experts/{id}/jobs` (one pending job per symbol),
//! `POST /api/v1/jobs/{id}/complete`, `POST /api/v1/jobs/{id}/fail` and `GET /api/v1/jobs`.
//! An expert token creates, ends and reads its own expert's jobs only; operators read; admins
//! do everything. Ending the last pending job of an expert's use case starts that use case's
//! run (trigger `jobs`) before the answer: the answer waits for the run and carries its
//! report (`run`, `null` while jobs of the use case are still pending).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tradewarden_engine::JobEnded;
use tradewarden_engine::ports::{AnalysisJob, JobFilter, JobStatus};

use super::Api;
use super::auth::{Access, Caller};
use super::error::ApiError;
use super::extract::{Body, Path, Query, parse_json};
use super::reads::{ListQuery, status};

/// The body of `POST /api/v1/experts/{id}/jobs`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJobs {
    /// `enter_market` or `open_positions`.
    pub use_case: String,
    /// The symbols the expert analyses: one job each (at most 1000, none twice).
    pub symbols: Vec<String>,
}

/// The body of `POST /api/v1/jobs/{id}/complete`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// The recommendation the job produced, in the shape of an import line (naming the job's
    /// expert and symbol), or `null` (or absent) when it found nothing to recommend.
    pub recommendation: Option<serde_json::Value>,
}

/// The body of `POST /api/v1/jobs/{id}/fail`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// Why the analysis failed (not empty, at most 1000 characters).
    pub reason: String,
}

/// Creates the expert's pending jobs: 201 with them and their ids, in the order given.
#[utoipa::path(
    post,
    path = "/api/v1/experts/{id}/jobs",
    tag = "jobs",
    params(("id" = i64, Path, description = "The expert's id")),
    request_body = NewJobs,
    responses(
        (status = 201, description = "The pending jobs created, with their ids", body = Vec<serde_json::Value>),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An operator token, or an expert token for another expert", body = super::error::ErrorBody),
        (status = 404, description = "Unknown expert", body = super::error::ErrorBody),
        (status = 422, description = "Bad body (details: field, message); nothing created", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(api): State<Api>,
    caller: Caller,
    Path(expert_id): Path<i64>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Vec<AnalysisJob>>), ApiError> {
    caller.may(Access::Submit)?;
    caller.may_act_for(expert_id)?;
    let request: NewJobs = parse_json(&body)?;
    let jobs = api
        .app
        .manager
        .create_jobs(expert_id, &request.use_case, &request.symbols)
        .await?;
    Ok((StatusCode::CREATED, Json(jobs)))
}

/// Completes a pending job: the job, and the report of the run its ending started.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/complete",
    tag = "jobs",
    params(("id" = i64, Path, description = "The job's id")),
    request_body = Completion,
    responses(
        (status = 200, description = "`{\"job\", \"run\"}`: the job as it is now, and the report of the run it started (`null` while others are pending)", body = serde_json::Value),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An operator token, or an expert token for another expert's job", body = super::error::ErrorBody),
        (status = 404, description = "Unknown job", body = super::error::ErrorBody),
        (status = 409, description = "The job ended before", body = super::error::ErrorBody),
        (status = 422, description = "Bad body or recommendation (details: field, message); nothing stored", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn complete(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body,
) -> Result<Json<JobEnded>, ApiError> {
    may_end(&api, &caller, id).await?;
    let request: Completion = parse_json(&body)?;
    let manager = &api.app.manager;
    let end = async {
        manager
            .complete_job(id, request.recommendation.as_ref())
            .await
            .map_err(ApiError::from)
    };
    api.until_aborted(end).await.map(Json)
}

/// Fails a pending job (it counts as ended): the job, and the report of the run its ending
/// started.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/fail",
    tag = "jobs",
    params(("id" = i64, Path, description = "The job's id")),
    request_body = Failure,
    responses(
        (status = 200, description = "`{\"job\", \"run\"}`: the job as it is now, and the report of the run it started (`null` while others are pending)", body = serde_json::Value),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An operator token, or an expert token for another expert's job", body = super::error::ErrorBody),
        (status = 404, description = "Unknown job", body = super::error::ErrorBody),
        (status = 409, description = "The job ended before", body = super::error::ErrorBody),
        (status = 422, description = "Bad body (details: field, message)", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn fail(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body,
) -> Result<Json<JobEnded>, ApiError> {
    may_end(&api, &caller, id).await?;
    let request: Failure = parse_json(&body)?;
    let manager = &api.app.manager;
    let end = async {
        manager
            .fail_job(id, &request.reason)
            .await
            .map_err(ApiError::from)
    };
    api.until_aborted(end).await.map(Json)
}

/// 403 unless the caller may end job `id` (an expert token: only its own expert's jobs);
/// 404 for an unknown job.
async fn may_end(api: &Api, caller: &Caller, id: i64) -> Result<(), ApiError> {
    caller.may(Access::Submit)?;
    let job = api.app.manager.job(id).await?;
    caller.may_act_for(job.expert_id)
}

/// `GET /api/v1/jobs`: filters `expert_id` and `status` (`pending`, `completed`, `failed`),
/// paged, newest first. An expert token reads its own expert's jobs only.
#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "Jobs, newest first", body = Vec<serde_json::Value>),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token asking for another expert's jobs", body = super::error::ErrorBody),
        (status = 422, description = "A bad filter, or limit over 1000", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<AnalysisJob>>, ApiError> {
    q.refuse_filters("jobs", &["symbol", "recommendation_id", "since"])?;
    let all = JobStatus::ALL.map(JobStatus::as_str);
    let page = q.page()?;
    let filter = JobFilter {
        expert_id: caller.read_scope(q.expert_id)?,
        status: q
            .status
            .as_deref()
            .map(|s| status(s, &all))
            .transpose()?
            .and_then(|s| JobStatus::parse(&s)),
        limit: page.limit,
        offset: page.offset,
    };
    Ok(Json(api.app.manager.jobs(&filter).await?))
}
