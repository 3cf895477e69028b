//! Bearer-token auth, on when `API_TOKEN` is set.
//!
//! Every route needs the token except the open ones (`/metrics` for
//! Prometheus, health for load balancers). Unknown paths need it too, so an
//! unauthenticated client learns nothing about which routes exist. `/ws`
//! also takes it as `?token=`, since browsers cannot set headers on a
//! WebSocket. The comparison is constant-time.

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
    if matched
        .as_ref()
        .is_some_and(|m| super::OPEN_ROUTES.contains(&m.as_str()))
    {
        return Ok(next.run(req).await);
    }
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let from_query = matched
        .as_ref()
        .filter(|m| m.as_str() == super::WS)
        .and_then(|_| query_token(req.uri().query()?));
    let token = match (header, &from_query) {
        (Some(header), _) => bearer_token(header)
            .ok_or_else(|| ApiError::unauthorized("Authorization header is not a Bearer token"))?,
        (None, Some(t)) => t.as_bytes(),
        (None, None) => {
            return Err(ApiError::unauthorized(
                "missing bearer token: send Authorization: Bearer <API_TOKEN>",
            ));
        }
    };
    if bool::from(token.ct_eq(expected.as_bytes())) {
        Ok(next.run(req).await)
    } else {
        Err(ApiError::unauthorized("invalid bearer token"))
    }
}

/// The first `token=` of a query string, decoded like a form.
fn query_token(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "token").then(|| percent_decode(v))?
    })
}

/// Decodes `%XX` and `+`; `None` if the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next()?;
                let lo = bytes.next()?;
                let hex = |c: u8| (c as char).to_digit(16);
                out.push((hex(hi)? * 16 + hex(lo)?) as u8);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
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
    use super::{bearer_token, query_token};

    #[test]
    fn bearer_scheme_is_parsed_case_insensitively() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }

    #[test]
    fn the_query_token_is_decoded_like_a_form() {
        assert_eq!(query_token("token=abc").as_deref(), Some("abc"));
        assert_eq!(query_token("x=1&token=a%2Bb+c").as_deref(), Some("a+b c"));
        assert_eq!(query_token("tokens=abc"), None);
        assert_eq!(query_token("token=%zz"), None);
        assert_eq!(query_token("token=%ff"), None);
    }
}
