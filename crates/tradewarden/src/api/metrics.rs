//! `GET /metrics` (the Prometheus text of every metric recorded through the `metrics`
//! facade) and the middleware that counts and times every request by its route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Api;
use super::error::ApiError;

/// Requests answered, by route template and status.
pub const HTTP_REQUESTS: &str = "tradewarden_http_requests_total";
/// Seconds to answer, by route template.
pub const HTTP_REQUEST_SECONDS: &str = "tradewarden_http_request_seconds";

/// The route label of a request no route matched (never the raw path: unbounded labels).
const UNMATCHED: &str = "unmatched";

/// Counts and times the request under its route template (`/api/v1/experts/{id}/process`).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(HTTP_REQUEST_SECONDS, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: open unless `[server] metrics_require_token`; 404 where this process
/// records no metrics.
pub async fn render(State(api): State<Api>, request: Request) -> Result<Response, ApiError> {
    if api.metrics_require_token {
        let (parts, _) = request.into_parts();
        api.tokens.caller(&parts)?;
    }
    let handle = api
        .metrics
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this process records no metrics"))?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response())
}

/// Installs the Prometheus recorder for this process (once: `serve` calls it before
/// serving), with buckets so the timings render as histograms.
pub fn install() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(SECONDS_BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

/// Bucket bounds (seconds) of every histogram: 1 ms to 60 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
