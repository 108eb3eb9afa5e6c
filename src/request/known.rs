//! The known half of a request, for planning (`/v1/plan`): everything but the resource.
//!
//! Built exactly as [`super::build`] builds it for `/v1/authorize` (same principal entity, same
//! selected-entity data, same context, same action entities), so a plan sees the data a decision
//! would see; only the resource and the entities its attributes name are missing.

use cedar_policy::{Context, Entities, EntityUid};
use serde_json::{Map, Value};

use super::{context, uid, Error, Principal, Slice};
use crate::{entities::Assignments, policy::Snapshot};

/// Principal, action and context of a request whose resource is unknown, with the entities the
/// decision path would pass to Cedar for them.
#[derive(Debug, Clone)]
pub struct Known {
    /// `Customer::"<customer claim>"`.
    pub principal: EntityUid,
    /// The action's uid.
    pub action: EntityUid,
    /// The context record (the selected legal entity, the roles held there where the action
    /// declares `roles`, plus the caller's keys).
    pub context: Context,
    /// The principal, the selected legal entity (with ancestors) and the action's entities.
    pub entities: Entities,
}

/// Builds the known half for `action` by `principal`; `assignments` as in [`super::build`].
pub fn build_known(
    snapshot: &Snapshot,
    principal: &Principal<'_>,
    assignments: Option<&Assignments>,
    action: &str,
    caller_context: Option<&Map<String, Value>>,
) -> Result<Known, Error> {
    let action = snapshot
        .actions
        .get(action)
        .ok_or_else(|| Error::UnknownAction(action.to_string()))?
        .clone();
    let mut slice = Slice::default();
    let customer_type = snapshot
        .entity_type("Customer")
        .ok_or_else(|| Error::UnknownType("Customer".into()))?;
    let principal_uid = uid(customer_type, &principal.customer.0);
    slice.add_principal(snapshot, &principal_uid, principal.claims, assignments);
    let legal_entity = match &principal.legal_entity {
        Some(le) => {
            let t = snapshot
                .entity_type("LegalEntity")
                .ok_or_else(|| Error::UnknownType("LegalEntity".into()))?;
            let le_uid = uid(t, &le.0);
            slice.add_known(snapshot, &le_uid);
            Some(le_uid)
        }
        None => None,
    };
    let roles = super::roles_in(legal_entity.as_ref(), assignments);
    let context = context::build(
        snapshot,
        &action,
        legal_entity.as_ref(),
        &roles,
        caller_context,
    )?;
    slice.add_action(snapshot, &action);
    let entities =
        super::extend::closed(slice.map.into_values().collect()).map_err(Error::Entities)?;
    Ok(Known {
        principal: principal_uid,
        action,
        context,
        entities,
    })
}
