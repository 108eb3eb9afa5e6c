//! `POST /v1/authorize` and `POST /v1/authorize/batch`: one token, one snapshot, one or many checks.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{
    error::ApiError,
    extract::{AppJson, Verified},
};
use crate::{decision::Decision, request::Check, state::AppState};

/// Answer to one check.
#[derive(Debug, Serialize)]
pub struct AuthorizeAnswer {
    #[serde(flatten)]
    decision: Decision,
    principal: String,
    legal_entity_id: Option<String>,
}

/// `POST /v1/authorize`
pub async fn authorize(
    State(state): State<AppState>,
    Verified(token): Verified,
    AppJson(check): AppJson<Check>,
) -> Result<AppJson<AuthorizeAnswer>, ApiError> {
    let decision = state
        .decider(&token)
        .await
        .decide(&check)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    Ok(AppJson(AuthorizeAnswer {
        decision,
        principal: token.customer.0,
        legal_entity_id: token.legal_entity.map(|l| l.0),
    }))
}

/// `{"checks": [...]}`; each check is kept as its raw JSON text and parsed on its own (once), so one
/// bad check does not sink the batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    checks: Vec<Box<RawValue>>,
}

impl BatchBody {
    /// The raw checks, as the handler hands them to `decide::batch` (for the fuzz targets).
    #[doc(hidden)]
    pub fn checks(&self) -> &[Box<RawValue>] {
        &self.checks
    }
}

/// Answer to a batch, in the order of the checks.
#[derive(Debug, Serialize)]
pub struct BatchAnswer {
    principal: String,
    legal_entity_id: Option<String>,
    results: Vec<Decision>,
}

/// `POST /v1/authorize/batch`
pub async fn authorize_batch(
    State(state): State<AppState>,
    Verified(token): Verified,
    AppJson(body): AppJson<BatchBody>,
) -> Result<AppJson<BatchAnswer>, ApiError> {
    let max = state.config.limits.batch_max;
    if body.checks.len() > max {
        return Err(ApiError::BatchTooLarge {
            max,
            got: body.checks.len(),
        });
    }
    let decider = state.decider(&token).await;
    let results = crate::decide::batch::decide_in_chunks(&decider, &body.checks).await;
    Ok(AppJson(BatchAnswer {
        principal: token.customer.0,
        legal_entity_id: token.legal_entity.map(|l| l.0),
        results,
    }))
}
