//! The context record: the selected legal entity from the token, plus the caller's own keys (which
//! must be declared in the schema and may never include `legalEntity`).

use cedar_policy::{Context, EntityUid};
use serde_json::{json, Map, Value};

use super::{resource::cedar_message, Error};
use crate::policy::Snapshot;

/// The context key that carries the selected legal entity.
pub const LEGAL_ENTITY_KEY: &str = "legalEntity";

pub(super) fn build(
    snapshot: &Snapshot,
    action: &EntityUid,
    legal_entity: Option<&EntityUid>,
    caller: Option<&Map<String, Value>>,
) -> Result<Context, Error> {
    let mut record = caller.cloned().unwrap_or_default();
    if record.contains_key(LEGAL_ENTITY_KEY) {
        return Err(Error::ContextLegalEntity);
    }
    if record.is_empty() {
        // The common case, built directly: parsing JSON with the schema costs more than evaluating.
        // `Request::new` still checks the context against the action's declared context type.
        let pairs = legal_entity.map(|le| {
            (
                LEGAL_ENTITY_KEY.to_string(),
                cedar_policy::RestrictedExpression::new_entity_uid(le.clone()),
            )
        });
        return Context::from_pairs(pairs).map_err(|e| Error::Context(cedar_message(&e)));
    }
    if let Some(le) = legal_entity {
        record.insert(
            LEGAL_ENTITY_KEY.into(),
            json!({"__entity": {"type": le.type_name().to_string(), "id": le.id().unescaped()}}),
        );
    }
    Context::from_json_value(Value::Object(record), Some((&snapshot.schema, action)))
        .map_err(|e| Error::Context(cedar_message(&e)))
}
