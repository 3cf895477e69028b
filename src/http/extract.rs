//! Extractors whose rejections are [`ApiError`], so malformed input gets the
//! same JSON error shape as everything else.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// `axum::Json` with [`ApiError`] rejections; also a JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    /// As `axum::Json`, but an object that names a key twice is refused
    /// (serde_json would keep the last one silently).
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        let value = crate::common::json::from_slice_strict(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("Failed to parse the request body as JSON: {e}"),
            )
        })?;
        T::deserialize(value).map(Self).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("Failed to deserialize the JSON body into the target type: {e}"),
            )
        })
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON body's bytes, for handlers that read it their own way (a suite
/// inside it is read without building its whole tree). The content type
/// and the body limit are checked as [`Json`] checks them.
#[derive(Debug, Clone)]
pub struct JsonBytes(pub axum::body::Bytes);

impl<S> FromRequest<S> for JsonBytes
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a request body with Content-Type: application/json",
            ));
        }
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| ApiError::new(e.status(), code_of_body(e.status()), e.body_text()))
    }
}

/// The code of a body that could not be read.
fn code_of_body(status: StatusCode) -> &'static str {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        "payload_too_large"
    } else {
        "bad_request"
    }
}

/// Whether a `Content-Type` is JSON (`application/json`, `application/*+json`).
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `axum::extract::Query` with [`ApiError`] rejections.
#[derive(Debug, Clone, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
    }
}

/// `axum::extract::Path` with [`ApiError`] rejections.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::{StatusCode, header};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Payload {
        name: String,
        count: u32,
    }

    async fn extract(content_type: Option<&str>, body: &str) -> Result<Json<Payload>, ApiError> {
        let mut req = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        Json::<Payload>::from_request(req.body(Body::from(body.to_owned())).unwrap(), &()).await
    }

    #[tokio::test]
    async fn well_formed_json_is_accepted() {
        let Json(p) = extract(Some("application/json"), r#"{"name":"a","count":2}"#)
            .await
            .unwrap();
        assert_eq!((p.name.as_str(), p.count), ("a", 2));
    }

    #[tokio::test]
    async fn bad_bodies_get_the_right_status() {
        let cases = [
            (
                None,
                r#"{"name":"a","count":2}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                Some("application/json"),
                r#"{"name":"a","#,
                StatusCode::BAD_REQUEST,
            ),
            (
                Some("application/json"),
                r#"{"name":"a","count":"two"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Some("application/json"),
                r#"{"name":"a","count":-1}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Some("application/json"),
                r#"["not","an","object"]"#,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ];
        for (ct, body, status) in cases {
            let err = extract(ct, body).await.unwrap_err();
            assert_eq!(err.status(), status, "{body}");
        }
    }

    #[tokio::test]
    async fn oversized_bodies_are_413() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::post(|Json(_): Json<Payload>| async { "ok" }),
            )
            .layer(DefaultBodyLimit::max(1024));
        let body = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(4096));
        // No Content-Length header: the limit is enforced while reading.
        let req = Request::builder()
            .method("POST")
            .uri("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
