//! The context record: the selected legal entity from the token, the roles held there (for actions
//! whose context declares `roles`), plus the caller's own keys (which must be declared in the schema
//! and may never include `legalEntity` or `roles`).

use cedar_policy::{Context, EntityUid};
use serde_json::{json, Map, Value};

use super::{resource::cedar_message, Error};
use crate::policy::{Snapshot, LEGAL_ENTITY_KEY, ROLES_KEY};

/// `roles` are the customer's roles in `legal_entity` (empty when none is selected, the customer is
/// not assigned to it, or the entity source could not answer); they are set only when the action's
/// context declares `roles`.
pub(super) fn build(
    snapshot: &Snapshot,
    action: &EntityUid,
    legal_entity: Option<&EntityUid>,
    roles: &[String],
    caller: Option<&Map<String, Value>>,
) -> Result<Context, Error> {
    let mut record = caller.cloned().unwrap_or_default();
    if record.contains_key(LEGAL_ENTITY_KEY) {
        return Err(Error::ContextLegalEntity);
    }
    if record.contains_key(ROLES_KEY) {
        return Err(Error::ContextRoles);
    }
    let with_roles = snapshot.role_actions().contains(action);
    if record.is_empty() {
        return own(legal_entity, roles, with_roles);
    }
    if let Some(le) = legal_entity {
        record.insert(
            LEGAL_ENTITY_KEY.into(),
            json!({"__entity": {"type": le.type_name().to_string(), "id": le.id().unescaped()}}),
        );
    }
    if with_roles {
        record.insert(ROLES_KEY.into(), json!(roles));
    }
    Context::from_json_value(Value::Object(record), Some((snapshot.schema(), action)))
        .map_err(|e| Error::Context(cedar_message(&e)))
}

/// The context of a check that adds no keys of its own ([`crate::policy::own_context`]), with
/// this stage's error.
pub(super) fn own(
    legal_entity: Option<&EntityUid>,
    roles: &[String],
    with_roles: bool,
) -> Result<Context, Error> {
    crate::policy::own_context(legal_entity, roles, with_roles).map_err(Error::Context)
}
