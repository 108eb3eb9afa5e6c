//! Middleware that observes every request: its `x-request-id` and the HTTP metrics.
//!
//! [`request_id`] takes the caller's `x-request-id` when it is usable (1 to 128 visible ASCII
//! characters), else generates a UUID; it puts the id on the request (for the trace span), on the
//! response, and around the handler for the decision log ([`crate::audit::with_request_id`]), so
//! every stage that records a decision gets the id without passing it through its signature.
//! [`track`] counts `legate_http_requests_total{method, route, status}` and times the request; the
//! route is the matched path pattern (`/v1/forward-auth/{*path}`), never the raw URI, so callers
//! cannot create new series.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, Method},
    middleware::Next,
    response::Response,
};
use tower_http::request_id::RequestId;

/// The header carrying the request id, in and out.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied request id kept; longer ones are replaced.
const MAX_REQUEST_ID: usize = 128;

fn usable(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= MAX_REQUEST_ID && b.iter().all(|c| c.is_ascii_graphic())
}

/// Middleware: assigns the request id (caller's or a fresh UUID) and returns it on the response.
pub(crate) async fn request_id(mut req: Request, next: Next) -> Response {
    let value = match req.headers().get(&X_REQUEST_ID) {
        Some(v) if usable(v) => v.clone(),
        _ => HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .expect("a UUID is a valid header value"),
    };
    let id = value.to_str().unwrap_or_default().to_string();
    req.headers_mut()
        .insert(X_REQUEST_ID.clone(), value.clone());
    req.extensions_mut().insert(RequestId::new(value.clone()));
    let mut resp = crate::audit::with_request_id(id, next.run(req)).await;
    resp.headers_mut().insert(X_REQUEST_ID.clone(), value);
    resp
}

/// The trace span of one request: method, matched route and request id.
pub(crate) fn span(req: &Request) -> tracing::Span {
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = route(req),
        request_id,
    )
}

fn route(req: &Request) -> &str {
    req.extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

/// Methods are a label; anything outside the standard set is `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times each request by method, matched route and status.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = route(&req).to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("legate_http_requests_total",
        "method" => method, "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("legate_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_are_kept_only_when_short_and_printable() {
        assert!(usable(&HeaderValue::from_static("req-42_abc.DEF")));
        assert!(!usable(&HeaderValue::from_static("")));
        assert!(!usable(&HeaderValue::from_static("has space")));
        let long = "x".repeat(MAX_REQUEST_ID + 1);
        assert!(!usable(&HeaderValue::from_str(&long).unwrap()));
        assert!(!usable(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
