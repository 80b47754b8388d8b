//! The reads: `GET /api/v1/experts`, `/accounts`, `/transactions`, `/orders`, `/outcomes`,
//! each a JSON array in the shape of the command line's `--json` listing, filtered
//! (`expert_id`, `status`, `symbol`, `recommendation_id`, `since`) and paged (`limit` ≤ 1000,
//! default 100; `offset`), newest first. An expert token reads its own rows only.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tradewarden_domain::expert::Expert;
use tradewarden_domain::{
    Order, OrderStatus, Outcome, OutcomeKind, Transaction, TransactionStatus,
};
use tradewarden_engine::ports::{ListFilter, Page};

use super::Api;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::Query;
use crate::cmd::accounts::{self, AccountView};

/// The most rows one page holds.
pub const MAX_LIMIT: u32 = 1000;
/// Rows in a page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;

/// The query of every read.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub expert_id: Option<i64>,
    /// Any case; the listing's own statuses (transactions `OPENED`, orders `FILLED`,
    /// outcomes `ordered`, …).
    pub status: Option<String>,
    pub symbol: Option<String>,
    pub recommendation_id: Option<i64>,
    /// RFC 3339: rows created (outcomes: decided) at or after it.
    pub since: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

impl ListQuery {
    /// The store's filter for this query, the expert limited to what `caller` may read and
    /// `status` checked against `statuses`.
    fn filter(&self, caller: &Caller, statuses: &[&'static str]) -> Result<ListFilter, ApiError> {
        Ok(ListFilter {
            expert_id: caller.read_scope(self.expert_id)?,
            status: self
                .status
                .as_deref()
                .map(|s| status(s, statuses))
                .transpose()?,
            recommendation_id: self.recommendation_id,
            symbol: self.symbol.clone(),
            since: self.since.as_deref().map(since).transpose()?,
            page: self.page()?,
        })
    }

    /// 422 when one of `names` (filters `route` does not have) is given.
    pub(super) fn refuse_filters(&self, route: &str, names: &[&str]) -> Result<(), ApiError> {
        let given = |name: &str| match name {
            "expert_id" => self.expert_id.is_some(),
            "status" => self.status.is_some(),
            "symbol" => self.symbol.is_some(),
            "recommendation_id" => self.recommendation_id.is_some(),
            "since" => self.since.is_some(),
            _ => false,
        };
        match names.iter().find(|n| given(n)) {
            Some(name) => Err(ApiError::invalid(format!(
                "{name}: /{route} is not filtered by {name}"
            ))),
            None => Ok(()),
        }
    }

    /// `limit` (≤ [`MAX_LIMIT`]) and `offset`, newest first.
    pub(super) fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit > MAX_LIMIT {
            return Err(ApiError::invalid(format!(
                "limit: at most {MAX_LIMIT}, got {limit} — page with offset"
            )));
        }
        Ok(Page {
            limit: Some(limit),
            offset: self.offset.unwrap_or(0),
            newest_first: true,
        })
    }
}

/// `status` as the listing stores it, any case accepted.
pub(super) fn status(s: &str, statuses: &[&'static str]) -> Result<String, ApiError> {
    statuses
        .iter()
        .find(|v| v.eq_ignore_ascii_case(s))
        .map(|v| v.to_string())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "status: unknown status {s:?} (expected one of {})",
                statuses.join(", ")
            ))
        })
}

/// `since` as an instant.
pub(super) fn since(s: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::invalid(format!(
                "since: expected an RFC 3339 time such as 2026-11-27T10:00:00Z: {e}"
            ))
        })
}

/// `GET /api/v1/transactions`.
#[utoipa::path(
    get,
    path = "/api/v1/transactions",
    tag = "reads",
    params(ListQuery),
    responses(
        (status = 200, description = "Transactions, newest first", body = Vec<serde_json::Value>),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token asking for another expert's rows", body = super::error::ErrorBody),
        (status = 422, description = "A bad filter, or limit over 1000", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn transactions(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Transaction>>, ApiError> {
    if q.recommendation_id.is_some() {
        return Err(ApiError::invalid(
            "recommendation_id: transactions are not filtered by recommendation — filter /orders or /outcomes",
        ));
    }
    let all = TransactionStatus::ALL.map(TransactionStatus::as_str);
    let f = q.filter(&caller, &all)?;
    Ok(Json(api.app.queries().transactions(&f).await?))
}

/// `GET /api/v1/orders`.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "reads",
    params(ListQuery),
    responses(
        (status = 200, description = "Orders, newest first", body = Vec<serde_json::Value>),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token asking for another expert's rows", body = super::error::ErrorBody),
        (status = 422, description = "A bad filter, or limit over 1000", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn orders(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Order>>, ApiError> {
    let all = OrderStatus::ALL.map(OrderStatus::as_str);
    let f = q.filter(&caller, &all)?;
    Ok(Json(api.app.queries().orders(&f).await?))
}

/// `GET /api/v1/outcomes`.
#[utoipa::path(
    get,
    path = "/api/v1/outcomes",
    tag = "reads",
    params(ListQuery),
    responses(
        (status = 200, description = "Decision records, newest first", body = Vec<serde_json::Value>),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token asking for another expert's rows", body = super::error::ErrorBody),
        (status = 422, description = "A bad filter, or limit over 1000", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn outcomes(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Outcome>>, ApiError> {
    let all = OutcomeKind::ALL.map(OutcomeKind::as_str);
    let f = q.filter(&caller, &all)?;
    Ok(Json(api.app.queries().outcomes(&f).await?))
}

/// `GET /api/v1/experts`: the configured experts by id (an expert token: itself), paged.
#[utoipa::path(
    get,
    path = "/api/v1/experts",
    tag = "reads",
    params(ListQuery),
    responses(
        (status = 200, description = "The configured experts", body = Vec<serde_json::Value>),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token asking for another expert's rows", body = super::error::ErrorBody),
        (status = 422, description = "A bad filter, or limit over 1000", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn experts(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Expert>>, ApiError> {
    let scope = caller.read_scope(q.expert_id)?;
    let page = q.page()?;
    let experts = api.app.manager.settings().experts.values();
    let rows = experts
        .filter(|e| scope.is_none_or(|id| e.id == id))
        .cloned();
    Ok(Json(paged(rows, page)))
}

/// `GET /api/v1/accounts`: each account as its broker holds it (an expert token: its
/// expert's account), by name.
#[utoipa::path(
    get,
    path = "/api/v1/accounts",
    tag = "reads",
    params(ListQuery),
    responses(
        (status = 200, description = "Each account as its broker holds it", body = Vec<serde_json::Value>),
        (status = 401, description = "No or an unknown token", body = super::error::ErrorBody),
        (status = 403, description = "An expert token asking for another expert's rows", body = super::error::ErrorBody),
        (status = 422, description = "A bad filter, or limit over 1000", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn accounts(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    let scope = caller.read_scope(q.expert_id)?;
    let page = q.page()?;
    let settings = api.app.manager.settings();
    let account_of = scope.and_then(|id| settings.experts.get(&id).map(|e| e.account.clone()));
    if scope.is_some() && account_of.is_none() {
        return Ok(Json(Vec::new()));
    }
    let views = accounts::views(&api.app, account_of.as_deref())
        .await
        .map_err(|e| ApiError::internal(e.message()))?;
    Ok(Json(paged(views.into_iter(), page)))
}

/// One page of configured items (in their own order: they are not rows with ids).
fn paged<T>(rows: impl Iterator<Item = T>, page: Page) -> Vec<T> {
    rows.skip(page.offset as usize)
        .take(page.limit.map_or(usize::MAX, |l| l as usize))
        .collect()
}
