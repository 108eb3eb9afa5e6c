//! `/v1/forward-auth` (any method): the sub-request a reverse proxy sends before it forwards a
//! request: nginx `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`, Envoy `ext_authz`.
//!
//! In: the token (`Authorization: Bearer`, else the cookie named by `forward_auth.cookie`) and the
//! original request. On the bare path that is `X-Original-Method` + `X-Original-URI` (nginx) or
//! `X-Forwarded-Method` + `X-Forwarded-Uri` (Caddy, Traefik). Envoy's HTTP service instead appends
//! the original path to the auth path (`/v1/forward-auth/orders/O-1`) and keeps the original
//! method; on such a path those headers are ignored, so a client cannot smuggle its own.
//! The `[[routes]]` table (see `crate::routes`) turns that into a check, decided like `/v1/authorize`.
//!
//! Out: 200 with `X-Customer-Id` and `legalEntityId` (names from `[forward_auth]`; the second only
//! when the token selects an entity) for the proxy to pass upstream; 401 for no or a bad token; 403
//! for a deny, an unmatched route (unless `forward_auth.unmatched = "allow"`) or a path that could be
//! read two ways; 400 when the proxy did not say what the original request was.

use axum::{
    extract::{Request, State},
    http::{request::Parts, HeaderMap, HeaderName, HeaderValue, Method},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{
    error::ApiError,
    extract::{bearer_token, verify_token, AppJson},
};
use crate::{
    config::Unmatched,
    decide::record_unmatched_allow,
    decision::Decision,
    routes::{self, Route},
    state::AppState,
    verify::VerifiedToken,
};

/// The endpoint's path; anything after it is Envoy's original path.
pub(crate) const PATH: &str = "/v1/forward-auth";

/// The body of an allow (the proxy reads only the status and headers).
#[derive(Debug, Serialize)]
pub(crate) struct ForwardAuthAnswer {
    decision: &'static str,
    /// The matching route (`GET /orders/{id}`), or `null` when unmatched requests are allowed.
    route: Option<String>,
    action: Option<String>,
    policies: Vec<String>,
    principal: String,
    legal_entity_id: Option<String>,
}

/// `ANY /v1/forward-auth` and `ANY /v1/forward-auth/{*path}`
pub(crate) async fn forward_auth(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let (method, uri) = original_request(&parts)?;
    let fa = &state.config.forward_auth;
    let raw = match bearer_token(&parts)? {
        Some(t) => Some(t),
        None => fa.cookie.as_deref().and_then(|c| cookie(&parts.headers, c)),
    };
    let token = verify_token(&state, &raw.ok_or(ApiError::MissingToken)?).await?;
    // The ids are vetted before anything is decided: what is decided is what the upstream reads.
    let mut headers = HeaderMap::new();
    headers.insert(header_name(&fa.customer_header)?, value(&token.customer.0)?);
    if let Some(le) = &token.legal_entity {
        headers.insert(header_name(&fa.legal_entity_header)?, value(&le.0)?);
    }
    let (route, decision) = decide(&state, &token, &method, &uri).await?;
    let answer = ForwardAuthAnswer {
        decision: "allow",
        route: route.map(|r| r.label.clone()),
        action: route.map(|r| r.action.clone()),
        policies: decision.policies,
        principal: token.customer.0,
        legal_entity_id: token.legal_entity.map(|l| l.0),
    };
    Ok((headers, AppJson(answer)).into_response())
}

/// Routes the original request and decides it: the route (none when an unmatched request is
/// allowed) and the allowing decision, or the 403 that refuses it.
async fn decide<'a>(
    state: &'a AppState,
    token: &VerifiedToken,
    method: &Method,
    uri: &str,
) -> Result<(Option<&'a Route>, Decision), ApiError> {
    let segments = routes::segments(uri).map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let path = uri.split('?').next().unwrap_or_default();
    let Some(m) = state.routes.find(method, &segments) else {
        if state.config.forward_auth.unmatched == Unmatched::Allow {
            let snapshot = state.policies.snapshot();
            let request = format!("{method} {path}");
            let allow = record_unmatched_allow(&state.audit, &snapshot, token, request);
            return Ok((None, allow));
        }
        return Err(ApiError::Forbidden(format!(
            "no forward-auth route matches {method} {path}"
        )));
    };
    let check = m
        .check(&token.customer, token.legal_entity.as_ref())
        .map_err(|e| ApiError::Forbidden(format!("{method} {path}: {e}")))?;
    // A check the schema rejects (say, after a policy reload) is a deny, recorded as one.
    let decision = state
        .decider(token)
        .await
        .decide(&check)
        .unwrap_or_else(|e| Decision::deny(e.to_string()));
    if !decision.allow {
        return Err(ApiError::Forbidden(format!(
            "{method} {path} is denied ({} on {}::{:?})",
            check.action, check.resource.kind, check.resource.id
        )));
    }
    Ok((Some(m.route), decision))
}

/// The original method and URI: from Envoy's path suffix, else from the proxy's headers.
fn original_request(parts: &Parts) -> Result<(Method, String), ApiError> {
    if let Some(suffix) = parts
        .uri
        .path()
        .strip_prefix(PATH)
        .filter(|s| !s.is_empty())
    {
        let uri = match parts.uri.query() {
            Some(q) => format!("{suffix}?{q}"),
            None => suffix.to_string(),
        };
        return Ok((parts.method.clone(), uri));
    }
    let method = one_of(&parts.headers, "x-original-method", "x-forwarded-method")?;
    let uri = one_of(&parts.headers, "x-original-uri", "x-forwarded-uri")?;
    let (Some(method), Some(uri)) = (method, uri) else {
        return Err(ApiError::InvalidRequest(
            "the proxy must say what the original request was: X-Original-Method and \
             X-Original-URI (nginx), X-Forwarded-Method and X-Forwarded-Uri (Caddy, Traefik), or \
             the original path appended to /v1/forward-auth (Envoy)"
                .into(),
        ));
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| ApiError::InvalidRequest(format!("{method:?} is not an HTTP method")))?;
    Ok((method, uri))
}

/// The value of header `a` or `b`. Both present and different is refused: one of them then came
/// from the client, and legate cannot tell which.
fn one_of(headers: &HeaderMap, a: &str, b: &str) -> Result<Option<String>, ApiError> {
    let get = |name: &str| -> Result<Option<String>, ApiError> {
        let mut all = headers.get_all(name).iter();
        let Some(v) = all.next() else {
            return Ok(None);
        };
        if all.next().is_some() {
            return Err(ApiError::InvalidRequest(format!("{name} is sent twice")));
        }
        v.to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| ApiError::InvalidRequest(format!("{name} is not ASCII")))
    };
    match (get(a)?, get(b)?) {
        (Some(x), Some(y)) if x != y => Err(ApiError::InvalidRequest(format!(
            "{a} and {b} disagree; the proxy must send one pair and drop the other"
        ))),
        (x, y) => Ok(x.or(y)),
    }
}

/// The value of cookie `name` from the `Cookie` header(s) (RFC 6265 `name=value; …`, value may be
/// quoted). The first one wins.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

fn header_name(name: &str) -> Result<HeaderName, ApiError> {
    // Checked when the config was loaded.
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ApiError::Internal(format!("bad header name {name:?}")))
}

/// Longest id sent upstream in a header.
const MAX_ID_LEN: usize = 256;

/// An id as a forward-auth header value: 1 to [`MAX_ID_LEN`] visible ASCII characters, nothing
/// else. A space, tab or control character, or a non-ASCII character, is refused (403) rather than
/// sent: proxies and servers trim a value's surrounding whitespace (`" C-1 "` arrives as `C-1`)
/// and re-encode or drop non-ASCII bytes, so the upstream would read another id than the one
/// decided.
fn value(v: &str) -> Result<HeaderValue, ApiError> {
    let refuse = || {
        ApiError::Forbidden(
            "an id in the token cannot be sent as an HTTP header value (only 1 to 256 visible \
             ASCII characters are)"
                .into(),
        )
    };
    if v.is_empty() || v.len() > MAX_ID_LEN || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refuse());
    }
    HeaderValue::from_str(v).map_err(|_| refuse())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookie_is_found_by_exact_name_in_any_cookie_header() {
        let h = headers(&[
            ("cookie", "a=1; tok=x"),
            ("cookie", "at=\"q.r.s\"; at=second"),
        ]);
        assert_eq!(cookie(&h, "at").as_deref(), Some("q.r.s"));
        assert_eq!(cookie(&h, "tok").as_deref(), Some("x"));
        assert_eq!(cookie(&h, "t"), None);
        assert_eq!(cookie(&headers(&[("cookie", "at=")]), "at"), None);
    }

    #[test]
    fn header_pairs_may_agree_but_not_differ_or_repeat() {
        let (a, b) = ("x-original-uri", "x-forwarded-uri");
        let one = headers(&[(a, "/x")]);
        assert_eq!(one_of(&one, a, b).unwrap().as_deref(), Some("/x"));
        let other = headers(&[(b, "/y")]);
        assert_eq!(one_of(&other, a, b).unwrap().as_deref(), Some("/y"));
        assert_eq!(one_of(&headers(&[]), a, b).unwrap(), None);
        assert!(one_of(&headers(&[(a, "/x"), (b, "/x")]), a, b).is_ok());
        assert!(one_of(&headers(&[(a, "/x"), (b, "/y")]), a, b).is_err());
        assert!(one_of(&headers(&[(a, "/x"), (a, "/x")]), a, b).is_err());
    }
}
