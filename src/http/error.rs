//! `ApiError`: the one place that knows HTTP status codes, error codes and the error JSON.
//!
//! Every error leaves as `{"error": {"code", "message"}}`; token errors add RFC 6750's
//! `WWW-Authenticate`. [`ensure_json`] catches whatever a framework layer answers on its own (404,
//! 405, 408, 413 …) and gives it the same shape, so no plain-text rejection reaches a client.

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::{entities, issue, verify};

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 with a bare `WWW-Authenticate: Bearer`: no credentials at all. Code `missing_token`.
    #[error("a bearer token is required")]
    MissingToken,
    /// 401 `invalid_token`, with the reason in `WWW-Authenticate`.
    #[error("{0}")]
    InvalidToken(#[from] verify::Error),
    /// 400 `invalid_request`: the body is not a valid request (JSON, shape or schema).
    #[error("{0}")]
    InvalidRequest(String),
    /// 400 `batch_too_large`.
    #[error("a batch may hold at most {max} checks; this one has {got}")]
    BatchTooLarge {
        /// `limits.batch_max`
        max: usize,
        /// checks sent
        got: usize,
    },
    /// 413 `payload_too_large`.
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    #[error("expected a request with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// 403 `forbidden`: forward-auth denied the original request, or no route matches it.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not_found`.
    #[error("no such endpoint")]
    NotFound,
    /// 405 `method_not_allowed`.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// 408 `request_timeout`.
    #[error("request took too long")]
    Timeout,
    /// 503 `not_ready`.
    #[error("{0}")]
    NotReady(String),
    /// 500 `internal`: logged, never shown.
    #[error("internal error")]
    Internal(String),
    /// 400 `invalid_grant`: a bad, expired, revoked or reused refresh token, an access token given
    /// as one, or a session past its maximum.
    #[error("{0}")]
    InvalidGrant(String),
    /// 400 `unauthorized_client`: a token issued to another client (RFC 7009 §2.1).
    #[error("{0}")]
    UnauthorizedClient(String),
    /// 403 `legal_entity_not_assigned`.
    #[error("{0}")]
    LegalEntityNotAssigned(String),
    /// 503 `entity_source_unavailable`: the entity source could not answer (detail logged only).
    #[error("the entity source cannot answer right now; nothing was issued")]
    EntitySourceUnavailable(String),
    /// 503 `store_unavailable`: the refresh-token store could not answer (detail logged only).
    #[error("the refresh-token store cannot answer right now; nothing was issued")]
    StoreUnavailable(String),
    /// 400 `unsupported_grant_type` (OAuth token endpoint).
    #[error("{0}")]
    UnsupportedGrantType(String),
    /// 401 `invalid_client` with `WWW-Authenticate: Basic`: client authentication failed or is
    /// missing where `[[clients]]` are configured (a conflicting one is 400 `invalid_request`).
    #[error(transparent)]
    InvalidClient(#[from] issue::ClientError),
    /// 400 `invalid_target`: an RFC 8693 `audience` / `resource` legate does not issue for.
    #[error("{0}")]
    InvalidTarget(String),
    /// 400 `unsupported_response_type`: legate has no authorization endpoint of its own.
    #[error("legate has no authorization endpoint: customers log in at the identity provider and exchange its token at the token endpoint")]
    UnsupportedResponseType,
}

impl From<issue::Error> for ApiError {
    fn from(e: issue::Error) -> Self {
        match e {
            issue::Error::InvalidGrant(g) => ApiError::InvalidGrant(g.to_string()),
            issue::Error::InvalidToken(t) => ApiError::InvalidToken(t),
            e @ issue::Error::NotAssigned(_) => ApiError::LegalEntityNotAssigned(e.to_string()),
            issue::Error::EntitySource(e) => ApiError::EntitySourceUnavailable(e.to_string()),
            issue::Error::Store(e) => ApiError::StoreUnavailable(e.to_string()),
            e @ issue::Error::Signing(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<entities::Error> for ApiError {
    fn from(e: entities::Error) -> Self {
        ApiError::EntitySourceUnavailable(e.to_string())
    }
}

impl ApiError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::InvalidRequest(_) | ApiError::BatchTooLarge { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::InvalidGrant(_)
            | ApiError::UnsupportedGrantType(_)
            | ApiError::UnauthorizedClient(_) => StatusCode::BAD_REQUEST,
            ApiError::LegalEntityNotAssigned(_) => StatusCode::FORBIDDEN,
            ApiError::EntitySourceUnavailable(_) | ApiError::StoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::InvalidClient(issue::ClientError::Conflicting(_)) => StatusCode::BAD_REQUEST,
            ApiError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            ApiError::InvalidTarget(_) | ApiError::UnsupportedResponseType => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    /// The `code` in the error JSON.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "missing_token",
            ApiError::InvalidToken(_) => "invalid_token",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::BatchTooLarge { .. } => "batch_too_large",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Timeout => "request_timeout",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Internal(_) => "internal",
            ApiError::InvalidGrant(_) => "invalid_grant",
            ApiError::UnauthorizedClient(_) => "unauthorized_client",
            ApiError::LegalEntityNotAssigned(_) => "legal_entity_not_assigned",
            ApiError::EntitySourceUnavailable(_) => "entity_source_unavailable",
            ApiError::StoreUnavailable(_) => "store_unavailable",
            ApiError::UnsupportedGrantType(_) => "unsupported_grant_type",
            ApiError::InvalidClient(issue::ClientError::Conflicting(_)) => "invalid_request",
            ApiError::InvalidClient(_) => "invalid_client",
            ApiError::InvalidTarget(_) => "invalid_target",
            ApiError::UnsupportedResponseType => "unsupported_response_type",
        }
    }

    /// The RFC 6749 §5.2 / RFC 8693 error code and status this error has on the OAuth token endpoint.
    fn oauth(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidGrant(_) => (StatusCode::BAD_REQUEST, "invalid_grant"),
            ApiError::LegalEntityNotAssigned(_) => (StatusCode::BAD_REQUEST, "invalid_target"),
            ApiError::UnsupportedGrantType(_) => {
                (StatusCode::BAD_REQUEST, "unsupported_grant_type")
            }
            ApiError::InvalidClient(_)
            | ApiError::UnauthorizedClient(_)
            | ApiError::InvalidTarget(_)
            | ApiError::UnsupportedResponseType => (self.status(), self.code()),
            // RFC 8693 §2.2.2: an invalid subject_token is `invalid_request`.
            ApiError::MissingToken
            | ApiError::InvalidToken(_)
            | ApiError::InvalidRequest(_)
            | ApiError::BatchTooLarge { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request")
            }
            ApiError::NotFound | ApiError::MethodNotAllowed | ApiError::Forbidden(_) => {
                (self.status(), "invalid_request")
            }
            ApiError::Timeout
            | ApiError::NotReady(_)
            | ApiError::EntitySourceUnavailable(_)
            | ApiError::StoreUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }

    /// The error an otherwise bodiless framework answer with this status stands for.
    fn from_status(status: StatusCode) -> Option<Self> {
        Some(match status {
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => ApiError::Timeout,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            s if s.is_client_error() => ApiError::InvalidRequest(
                s.canonical_reason().unwrap_or("bad request").to_lowercase(),
            ),
            s if s.is_server_error() => ApiError::Internal(format!("status {s}")),
            _ => return None,
        })
    }
}

/// Quotes a value for an RFC 6750 auth-param (no `"` or `\` inside).
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let mut resp = (
            status,
            Json(json!({"error": {"code": self.code(), "message": message}})),
        )
            .into_response();
        let challenge = match &self {
            ApiError::MissingToken => Some("Bearer".to_string()),
            ApiError::InvalidToken(e) => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                quoted(&e.to_string())
            )),
            _ => None,
        }
        .or_else(|| self.basic_challenge());
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        // The middleware below logs it once, with the request's span.
        resp.extensions_mut()
            .insert(LoggedError(self.to_string_internal()));
        resp
    }
}

/// An [`ApiError`] in the OAuth token endpoint's shape: `{"error": "<code>", "error_description"}`
/// (RFC 6749 §5.2), with `Cache-Control: no-store`.
#[derive(Debug)]
pub struct OAuthError(pub ApiError);

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        OAuthError(e)
    }
}

impl From<issue::Error> for OAuthError {
    fn from(e: issue::Error) -> Self {
        OAuthError(e.into())
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, code) = self.0.oauth();
        let description = match &self.0 {
            ApiError::Internal(_) => "internal error".to_string(),
            other => quoted(&other.to_string()),
        };
        let mut resp = (
            status,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response();
        if let Some(c) = self
            .0
            .basic_challenge()
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        resp.extensions_mut()
            .insert(LoggedError(self.0.to_string_internal()));
        resp
    }
}

impl ApiError {
    /// RFC 6749 §5.2: a 401 `invalid_client` names the scheme the client should use.
    fn basic_challenge(&self) -> Option<String> {
        (self.status() == StatusCode::UNAUTHORIZED && matches!(self, ApiError::InvalidClient(_)))
            .then(|| "Basic realm=\"legate\"".to_string())
    }

    fn to_string_internal(&self) -> String {
        match self {
            ApiError::Internal(detail) => format!("internal error: {detail}"),
            ApiError::EntitySourceUnavailable(detail) | ApiError::StoreUnavailable(detail) => {
                format!("{self}: {detail}")
            }
            ApiError::InvalidToken(e) => format!("token refused ({}): {e}", e.reason()),
            other => other.to_string(),
        }
    }
}

/// The internal reason behind an error answer, for the logging middleware.
#[derive(Debug, Clone)]
pub(crate) struct LoggedError(pub String);

/// Middleware: logs error answers once, and gives any error answer without a JSON body our shape.
pub(crate) async fn ensure_json(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    if let Some(LoggedError(reason)) = resp.extensions().get::<LoggedError>() {
        if status.is_server_error() {
            tracing::error!(%status, %reason, "request failed");
        } else {
            tracing::info!(%status, %reason, "request refused");
        }
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    match ApiError::from_status(status) {
        Some(err) => {
            let (mut parts, _) = resp.into_parts();
            let fresh = err.into_response();
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let (_, body) = fresh.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        None => resp,
    }
}
