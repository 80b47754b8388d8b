//! The HTTP API of `tradewarden serve`: JSON over axum, one file per resource, every handler
//! calling the same engine functions as the commands, every error through [`error::ApiError`].
//!
//! | route | who |
//! |---|---|
//! | `GET /healthz`, `GET /readyz` | anyone |
//! | `GET /metrics` | anyone, or any token with `[server] metrics_require_token` |
//! | `POST /api/v1/recommendations` | expert (its own), admin |
//! | `POST /api/v1/experts/{id}/process` | operator, admin |
//! | `GET /api/v1/experts`, `/accounts`, `/transactions`, `/orders`, `/outcomes` | expert (its own), operator, admin |
//! | `POST /api/v1/refresh`, `POST /api/v1/transactions/{id}/close` | operator, admin |
//! | `POST /api/v1/experts/{id}/jobs`, `POST /api/v1/jobs/{id}/complete`, `…/fail` | expert (its own), admin |
//! | `GET /api/v1/jobs`, `/runs`, `/runs/{id}`, `/experts/{id}/symbols-to-analyze` | expert (its own), operator, admin |
//! | `GET /api/v1/openapi.json` | anyone |

pub mod actions;
pub mod auth;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod process;
pub mod reads;
pub mod recommendations;
pub mod runs;
pub mod symbols;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::config::ServerSettings;

use self::auth::Tokens;
use self::error::ApiError;

/// How long one request may take before it is answered 408 (a process run of many
/// recommendations included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// What every handler shares: the wired app, the known tokens, the metrics handle and the
/// server's limits. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    pub app: Arc<App>,
    pub tokens: Arc<Tokens>,
    /// The Prometheus recorder's handle; `None` where none is installed (in-process tests).
    pub metrics: Option<PrometheusHandle>,
    pub metrics_require_token: bool,
    pub max_body_bytes: usize,
    /// Becomes true when the shutdown grace is over: work still running is then dropped.
    aborted: watch::Receiver<bool>,
}

impl Api {
    /// The state of a server on `app`, with the limits of its `[server]` configuration.
    /// `aborted` turning true cancels the work of requests still running.
    pub fn new(
        app: Arc<App>,
        tokens: Tokens,
        metrics: Option<PrometheusHandle>,
        server: &ServerSettings,
        aborted: watch::Receiver<bool>,
    ) -> Api {
        Api {
            app,
            tokens: Arc::new(tokens),
            metrics,
            metrics_require_token: server.metrics_require_token,
            max_body_bytes: server.max_body_bytes,
            aborted,
        }
    }

    /// Runs `work` unless the shutdown grace ends first (then 503): a run cut short this way
    /// drops its lock guards, and `serve` then gives back every lease.
    pub async fn until_aborted<T>(
        &self,
        work: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let mut aborted = self.aborted.clone();
        tokio::select! {
            done = work => done,
            () = crate::background::stopped(&mut aborted) => Err(ApiError::unavailable(
                "the server stopped before this request's work was done — ask again (another instance may answer)",
            )),
        }
    }
}

/// The whole router, its middleware outermost last: request tracing (method and path, never
/// a header), the per-route metrics, gzip for a client that accepts it, the timeout's answer
/// in the API's error shape, the timeout and the body limit.
pub fn router(api: Api) -> Router {
    let max_body = api.max_body_bytes;
    let v1 = Router::new()
        .route("/recommendations", post(recommendations::post))
        .route("/experts", get(reads::experts))
        .route("/experts/{id}/process", post(process::post))
        .route("/experts/{id}/jobs", post(jobs::create))
        .route("/experts/{id}/symbols-to-analyze", get(symbols::get))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}/complete", post(jobs::complete))
        .route("/jobs/{id}/fail", post(jobs::fail))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::get))
        .route("/accounts", get(reads::accounts))
        .route("/transactions", get(reads::transactions))
        .route("/transactions/{id}/close", post(actions::close))
        .route("/orders", get(reads::orders))
        .route("/outcomes", get(reads::outcomes))
        .route("/refresh", post(actions::refresh))
        .route("/openapi.json", get(openapi::get));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
        .nest("/api/v1", v1)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(timed_out_as_json))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
        .with_state(api)
}

/// The timeout's 408 (an empty body) in the API's error shape.
async fn timed_out_as_json(response: axum::response::Response) -> axum::response::Response {
    if response.status() != axum::http::StatusCode::REQUEST_TIMEOUT {
        return response;
    }
    ApiError::timed_out(REQUEST_TIMEOUT).into_response()
}

/// `GET /healthz`: the process is up.
async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers (503 when not).
async fn readyz(State(api): State<Api>) -> Result<axum::Json<Value>, ApiError> {
    api.app
        .store
        .pool()
        .fetch("SELECT 1 AS one", &[])
        .await
        .map_err(|e| ApiError::unavailable(format!("the database does not answer: {e}")))?;
    Ok(axum::Json(json!({"status": "ready"})))
}

/// Any other path.
async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {} — GET /api/v1/openapi.json lists them",
        uri.path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[tokio::test]
    async fn a_timed_out_request_is_answered_in_the_error_shape() {
        let r = timed_out_as_json(StatusCode::REQUEST_TIMEOUT.into_response()).await;
        assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "timeout");
        // Any other answer passes unchanged.
        let ok = timed_out_as_json(StatusCode::OK.into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
}
