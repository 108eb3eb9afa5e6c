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
        json!({"status": "ready", "policy_hash": state.policies.snapshot().hash}),
    ))
}

/// `GET /v1/policies`: what is loaded now and how the last reload went.
pub async fn policies(State(state): State<AppState>) -> AppJson<Value> {
    let snapshot = state.policies.snapshot();
    AppJson(json!({
        "hash": snapshot.hash,
        "loaded_at": rfc3339(snapshot.loaded_at),
        "policies": snapshot.files,
        "last_reload": state.policies.last_reload(),
    }))
}

/// The OpenAPI 3 description of the HTTP API (kept in sync with the router by `tests/openapi.rs`).
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

/// `GET /openapi.json`
pub async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}
