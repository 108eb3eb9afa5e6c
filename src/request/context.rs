//! The context record: the selected legal entity from the token, the roles held there (for actions
//! whose context declares `roles`), plus the caller's own keys (which must be declared in the schema
//! and may never include `legalEntity` or `roles`).

use cedar_policy::{Context, EntityUid, RestrictedExpression};
use serde_json::{json, Map, Value};

use super::{resource::cedar_message, Error};
use crate::policy::{Snapshot, ROLES_KEY};

/// The context key that carries the selected legal entity.
pub const LEGAL_ENTITY_KEY: &str = "legalEntity";

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
    let with_roles = snapshot.role_actions.contains(action);
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
    Context::from_json_value(Value::Object(record), Some((&snapshot.schema, action)))
        .map_err(|e| Error::Context(cedar_message(&e)))
}

/// The context of a check that adds no keys of its own: `legalEntity` and, when `with_roles`,
/// `roles`. The common case, built directly (parsing JSON with the schema costs more than
/// evaluating); it is the same for every such check of one token, so a decider builds it once
/// ([`super::Base`]). Whether it fits the action's declared context type is checked by
/// `Request::new`, or was checked at load ([`Snapshot::fitting`], which asks Cedar about this very
/// context).
pub(crate) fn own(
    legal_entity: Option<&EntityUid>,
    roles: &[String],
    with_roles: bool,
) -> Result<Context, Error> {
    let le = legal_entity.map(|le| {
        (
            LEGAL_ENTITY_KEY.to_string(),
            RestrictedExpression::new_entity_uid(le.clone()),
        )
    });
    let roles = with_roles.then(|| {
        (
            ROLES_KEY.to_string(),
            RestrictedExpression::new_set(
                roles.iter().cloned().map(RestrictedExpression::new_string),
            ),
        )
    });
    Context::from_pairs(le.into_iter().chain(roles)).map_err(|e| Error::Context(cedar_message(&e)))
}
