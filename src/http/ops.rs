//! Operations endpoints: `/healthz` (alive), `/readyz` (policies and keys loaded), `/v1/policies`,
//! `/metrics` (Prometheus text) and `/openapi.json` (the API description).

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

use super::{error::ApiError, extract::AppJson};
use crate::{shared::rfc3339, state::AppState};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> AppJson<Value> {
    AppJson(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once policies and every issuer's keys are loaded, else 503.
pub async fn readyz(State(state): State<AppState>) -> Result<AppJson<Value>, ApiError> {
    if !state.verifier.ready() {
        return Err(ApiError::NotReady(
            "the key set of a trusted issuer is not loaded yet".into(),
        ));
    }
    Ok(AppJson(
        json!({"status": "ready", "policy_hash": state.policies.snapshot().hash()}),
    ))
}

/// `GET /v1/policies`: what is loaded now and how the last reload went.
pub async fn policies(State(state): State<AppState>) -> AppJson<Value> {
    let snapshot = state.policies.snapshot();
    AppJson(json!({
        "hash": snapshot.hash(),
        "loaded_at": rfc3339(snapshot.loaded_at()),
        "policies": snapshot.files(),
        "last_reload": state.policies.last_reload(),
    }))
}

/// The OpenAPI 3 description of the HTTP API (kept in sync with the router by `tests/it/openapi.rs`).
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /metrics`: every metric in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let handle = state.prometheus.as_ref().ok_or_else(|| {
        ApiError::NotReady("another metrics recorder was installed in this process".into())
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response())
}

/// `GET /openapi.json`: the shipped document with `servers` set to `public_url`, rendered once per
/// process and configuration (the document is 60 KB: parsing it per request cost more than the
/// answer).
pub async fn openapi(State(state): State<AppState>) -> Response {
    let body = state
        .openapi
        .get_or_init(|| render_openapi(&state.config.public_url));
    match body {
        Ok(bytes) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes.clone(),
        )
            .into_response(),
        Err(e) => ApiError::Internal(e.clone()).into_response(),
    }
}

/// The shipped document with `servers` set to `public_url`, as JSON bytes.
pub fn render_openapi(public_url: &str) -> Result<axum::body::Bytes, String> {
    let mut doc: Value =
        serde_json::from_str(OPENAPI).map_err(|e| format!("openapi.json does not parse: {e}"))?;
    doc["servers"] = json!([{"url": public_url, "description": "public_url"}]);
    Ok(serde_json::to_vec(&doc)
        .map_err(|e| format!("openapi.json does not serialize: {e}"))?
        .into())
}
