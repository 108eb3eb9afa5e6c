//! Operations endpoints: `/healthz` (alive), `/readyz` (policies and keys loaded), `/v1/policies`.

use axum::extract::State;
use serde_json::{json, Value};

use super::{error::ApiError, extract::AppJson};
use crate::{app::AppState, policy::rfc3339};

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
