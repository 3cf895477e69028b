//! Bearer-token auth, on when `API_TOKEN` is set.
//!
//! Every route needs the token except the open ones (`/metrics` for
//! Prometheus, health for load balancers). Unknown paths need it too, so an
//! unauthenticated client learns nothing about which routes exist. The
//! comparison is constant-time.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::state::AppState;

/// Rejects requests without the right `Authorization: Bearer` token.
pub(super) async fn require_token(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = state.api_token.as_deref() else {
        return Ok(next.run(req).await);
    };
    if matched.is_some_and(|m| super::OPEN_ROUTES.contains(&m.as_str())) {
        return Ok(next.run(req).await);
    }
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let Some(header) = header else {
        return Err(ApiError::unauthorized(
            "missing bearer token: send Authorization: Bearer <API_TOKEN>",
        ));
    };
    let token = bearer_token(header)
        .ok_or_else(|| ApiError::unauthorized("Authorization header is not a Bearer token"))?;
    if bool::from(token.ct_eq(expected.as_bytes())) {
        Ok(next.run(req).await)
    } else {
        Err(ApiError::unauthorized("invalid bearer token"))
    }
}

/// The credentials of a `Bearer` header; the scheme is case-insensitive.
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_scheme_is_parsed_case_insensitively() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }
}
