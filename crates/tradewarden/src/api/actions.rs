//! The actions: `POST /api/v1/refresh` (every account's working orders asked about, as
//! `tradewarden refresh`) and `POST /api/v1/transactions/{id}/close` (as `tradewarden close`).

use axum::Json;
use axum::extract::State;
use tradewarden_domain::lifecycle::CloseReason;
use tradewarden_engine::{EngineError, RefreshReport, StoreError};

use super::Api;
use super::auth::{Access, Caller};
use super::error::ApiError;
use super::extract::Path;
use crate::cmd::close::{Closed, closed};

/// Refreshes every account: the refresh report.
#[utoipa::path(
    post,
    path = "/api/v1/refresh",
    tag = "actions",
    responses(
        (status = 200, description = "The refresh report, as `refresh` prints it", body = serde_json::Value),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn refresh(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<RefreshReport>, ApiError> {
    caller.may(Access::Operate)?;
    let run = async { api.app.manager.refresh().await.map_err(ApiError::from) };
    api.until_aborted(run).await.map(Json)
}

/// Closes the transaction by hand: 404 for an unknown id.
#[utoipa::path(
    post,
    path = "/api/v1/transactions/{id}/close",
    tag = "actions",
    params(("id" = i64, Path, description = "The transaction's id")),
    responses(
        (status = 200, description = "What `close` prints: transaction_id, outcome, order_id, message", body = serde_json::Value),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token", body = super::error::ErrorBody),
        (status = 404, description = "Unknown transaction", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn close(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Closed>, ApiError> {
    caller.may(Access::Operate)?;
    let run = async {
        match api
            .app
            .manager
            .close_transaction(id, CloseReason::ManualClose)
            .await
        {
            Ok(outcome) => Ok(closed(id, outcome)),
            Err(EngineError::Store(StoreError::NotFound(_))) => Err(ApiError::not_found(format!(
                "unknown transaction {id}: GET /api/v1/transactions lists them"
            ))),
            Err(e) => Err(e.into()),
        }
    };
    api.until_aborted(run).await.map(Json)
}
