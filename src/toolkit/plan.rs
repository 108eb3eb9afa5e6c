//! `legate plan`: the `/v1/plan` answer for claims given by hand, without a server, exactly as the
//! endpoint would answer a token with those claims (file entity source, SQL form included).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::token;
use crate::{
    decide::Decider,
    entities::FileSource,
    plan::{self, PlanBody, PlanConfig, PlanResource},
    policy::Snapshot,
    verify::ClaimNames,
};

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The claims are not usable.
    #[error("{0}")]
    Claims(String),
    /// The request does not fit the schema.
    #[error("cannot plan: {0}")]
    Plan(#[from] plan::Error),
}

/// Plans `action` on `type_name` for a token with `claims`; the answer as `/v1/plan` gives it.
pub(crate) fn ask(
    snapshot: &Arc<Snapshot>,
    names: &ClaimNames,
    claims: &Map<String, Value>,
    action: &str,
    type_name: &str,
    context: Option<Map<String, Value>>,
    tables: &PlanConfig,
) -> Result<Value, Error> {
    let token = token(claims, names).map_err(Error::Claims)?;
    let data = FileSource::lookup(snapshot, &token.customer).into();
    let decider = Decider::new(snapshot.clone(), data, &token, None);
    let body = PlanBody {
        action: action.to_string(),
        resource: PlanResource {
            kind: type_name.to_string(),
            id: None,
            attrs: None,
        },
        context,
    };
    let answer = plan::plan(&decider, &body, tables, true)?;
    let mut json = serde_json::to_value(&answer).unwrap_or_default();
    json["principal"] = json!(token.customer.0);
    json["legal_entity_id"] = json!(token.legal_entity.as_ref().map(|l| &l.0));
    Ok(json)
}
