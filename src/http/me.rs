//! `GET /v1/me`: who the token speaks for, which legal entity it selects, and which entities the
//! customer may select (those the source lists and `selectLegalEntity` allows), for a picker.

use axum::extract::State;
use serde::Serialize;

use super::{
    error::ApiError,
    extract::{AppJson, Verified},
};
use crate::{
    decide::{
        select::{selectable, Selectable},
        EntityData,
    },
    state::AppState,
};

/// `{"customer_id", "legal_entity_id", "legal_entities": [{"id", "name"}]}`
#[derive(Debug, Serialize)]
pub(crate) struct MeAnswer {
    customer_id: String,
    legal_entity_id: Option<String>,
    legal_entities: Vec<Selectable>,
}

/// `GET /v1/me`; 503 `entity_source_unavailable` when the source cannot answer.
pub(crate) async fn me(
    State(state): State<AppState>,
    Verified(token): Verified,
) -> Result<AppJson<MeAnswer>, ApiError> {
    // The picker lists what may be selected; it decides nothing, so nothing is recorded.
    let decider = state.decider(&token).await.unrecorded();
    let assignments = match decider.entity_data() {
        EntityData::Known(a) => a.clone(),
        EntityData::Unavailable(e) => return Err(e.clone().into()),
    };
    let legal_entities = selectable(&decider, &assignments);
    Ok(AppJson(MeAnswer {
        customer_id: token.customer.0,
        legal_entity_id: token.legal_entity.map(|l| l.0),
        legal_entities,
    }))
}
