//! Extractors: the bearer token, the verified token, and JSON bodies whose rejections use our error
//! shape (axum's own are plain text).

use axum::{
    body::Bytes,
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};

use super::error::ApiError;
use crate::{shared::check_unique_members, state::AppState, verify::VerifiedToken};

/// Refuses a request with more than one `Authorization` header (400 `invalid_request`) before any
/// handler reads one: a proxy or upstream that takes another of them than legate did would see
/// another identity.
pub(crate) async fn one_authorization(req: Request, next: Next) -> Response {
    if req
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return ApiError::InvalidRequest("more than one Authorization header".into())
            .into_response();
    }
    next.run(req).await
}

/// The raw token from `Authorization: Bearer <token>` (scheme case-insensitive).
#[derive(Debug)]
pub(crate) struct Bearer(pub String);

/// Reads the bearer token; `Ok(None)` when there is no `Authorization` header or another scheme.
pub(crate) fn bearer_token(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::InvalidToken(crate::verify::Error::Malformed("header is not ASCII"))
    })?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    if token.is_empty() {
        return Ok(None);
    }
    Ok(Some(token.to_string()))
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        bearer_token(parts)?
            .map(Bearer)
            .ok_or(ApiError::MissingToken)
    }
}

/// The bearer token when there is one (`/v1/token/refresh`, where a refresh token in the body may
/// stand in for it).
#[derive(Debug)]
pub struct MaybeBearer(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeBearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        bearer_token(parts).map(MaybeBearer)
    }
}

/// A bearer token that passed verification.
#[derive(Debug)]
pub struct Verified(pub VerifiedToken);

impl FromRequestParts<AppState> for Verified {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        match state.verifier.verify(&token).await {
            Ok(t) => Ok(Verified(t)),
            Err(e) => {
                crate::verify::count_rejection(&e);
                Err(ApiError::InvalidToken(e))
            }
        }
    }
}

/// Verifies a raw token as [`Verified`] does, counting a rejection by its reason.
pub(crate) async fn verify_token(state: &AppState, token: &str) -> Result<VerifiedToken, ApiError> {
    state.verifier.verify(token).await.map_err(|e| {
        crate::verify::count_rejection(&e);
        ApiError::InvalidToken(e)
    })
}

/// `Json` in and out, with rejections in our error shape.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    /// The one path every JSON body takes: media type, size, then member names unique at every
    /// depth (I-JSON: never "last one wins"), then the typed read.
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidRequest(rejection.body_text())
            }
        })?;
        check_unique_members(&bytes).map_err(ApiError::InvalidRequest)?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(AppJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `application/json` or `application/<anything>+json`, parameters allowed, case-insensitive
/// (RFC 9110 §8.3.1).
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind == "application" && (subtype == "json" || subtype.ends_with("+json"))
}

/// An `application/x-www-form-urlencoded` body as its name/value pairs, decoded strictly: a body
/// over `limits.body_bytes` is 413, a name or value that is not UTF-8 once percent-decoded (or a
/// malformed `%` escape) is 400 — never decoded lossily to U+FFFD. The media type is matched
/// case-insensitively.
#[derive(Debug)]
pub struct AppForm(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for AppForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Err(ApiError::InvalidRequest(
                "expected an application/x-www-form-urlencoded body".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidRequest(rejection.body_text())
            }
        })?;
        bytes
            .split(|b| *b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = match pair.iter().position(|b| *b == b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &b""[..]),
                };
                Ok((form_text(name)?, form_text(value)?))
            })
            .collect::<Result<_, _>>()
            .map(AppForm)
    }
}

/// One percent-decoded name or value (`+` is a space), which must be UTF-8.
fn form_text(raw: &[u8]) -> Result<String, ApiError> {
    let bad = || ApiError::InvalidRequest("the form is not percent-encoded UTF-8".into());
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex).ok_or_else(bad)?;
                let lo = raw.get(i + 2).copied().and_then(hex).ok_or_else(bad)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Maps axum's JSON rejection onto our errors.
pub(crate) fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        _ => ApiError::InvalidRequest(rejection.body_text()),
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
