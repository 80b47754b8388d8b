//! Extractors whose refusals are [`ApiError`]s, so that a bad body, query or path gets the
//! API's error shape (axum's own answer in plain text).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::Api;
use super::error::ApiError;

/// A JSON body read whole (at most `[server] max_body_bytes`: more is 413), then parsed;
/// malformed JSON is 422 naming the line and column.
#[derive(Debug)]
pub struct Json<T>(pub T);

/// The raw bytes of a body, within `[server] max_body_bytes`.
#[derive(Debug)]
pub struct Body(pub Bytes);

impl FromRequest<Api> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, api)
            .await
            .map(Body)
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(api.max_body_bytes),
                _ => ApiError::bad_request(format!("cannot read the request body: {e}")),
            })
    }
}

impl<T: DeserializeOwned> FromRequest<Api> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, Self::Rejection> {
        let Body(bytes) = Body::from_request(req, api).await?;
        parse_json(&bytes).map(Json)
    }
}

/// A body's JSON as `T`: 422 naming the line and column of what is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("body: {e}")))
}

/// Query parameters; a bad one is 422 naming it.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<Api> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Api) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::invalid(format!("query: {}", e.body_text())))
    }
}

/// A path parameter; one that does not parse (`/transactions/abc/close`) is 404, as no such
/// resource can exist.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Api> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, api)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::not_found(format!("{}: {}", parts.uri.path(), e.body_text())))
    }
}
