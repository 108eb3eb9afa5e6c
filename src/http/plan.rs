//! `POST /v1/plan`: which resources of a type may this customer see? One token, one snapshot, the
//! entity source's answer for the customer, then [`crate::plan::plan`].

use axum::extract::{RawQuery, State};
use serde::Serialize;

use super::{
    error::ApiError,
    extract::{AppJson, Verified},
};
use crate::{
    plan::{self, Plan, PlanBody},
    state::AppState,
};

/// The plan with the token's principal and selected entity.
#[derive(Debug, Serialize)]
pub(crate) struct PlanAnswer {
    principal: String,
    legal_entity_id: Option<String>,
    #[serde(flatten)]
    plan: Plan,
}

/// `POST /v1/plan[?sql=false]`
pub(crate) async fn plan(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    Verified(token): Verified,
    AppJson(body): AppJson<PlanBody>,
) -> Result<AppJson<PlanAnswer>, ApiError> {
    let want_sql = want_sql(query.as_deref())?;
    // A plan is not a decision: nothing is recorded in the decision log.
    let decider = state.decider(&token).await.unrecorded();
    let plan = plan::plan(&decider, &body, &state.config.plan, want_sql)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    Ok(AppJson(PlanAnswer {
        principal: token.customer.0,
        legal_entity_id: token.legal_entity.map(|l| l.0),
        plan,
    }))
}

/// `sql=true|false`; anything else in the query is refused, so a typo does not pass silently.
fn want_sql(query: Option<&str>) -> Result<bool, ApiError> {
    let mut want = true;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair {
            "sql=true" => want = true,
            "sql=false" => want = false,
            other => {
                return Err(ApiError::InvalidRequest(format!(
                    "unknown query parameter {other:?} (only sql=true or sql=false)"
                )))
            }
        }
    }
    Ok(want)
}
