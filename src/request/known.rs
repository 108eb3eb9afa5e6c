//! The known half of a request, for planning (`/v1/plan`): everything but the resource.
//!
//! Built from the decider's [`Base`] — the very principal entity, selected-entity data and roles a
//! decision uses — plus the action's entities and the context a decision would build, so a plan
//! sees the data a decision would see; only the resource and the entities its attributes name are
//! missing.

use cedar_policy::{Context, Entities, EntityUid};
use serde_json::{Map, Value};

use super::{extend, Base, Error, Slice};
use crate::policy::Snapshot;

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

impl Base {
    /// The known half for `action` with the caller's `caller_context`, against `snapshot` (the one
    /// this was built from).
    pub fn known(
        &self,
        snapshot: &Snapshot,
        action: &str,
        caller_context: Option<&Map<String, Value>>,
    ) -> Result<Known, Error> {
        let action = snapshot
            .actions()
            .get(action)
            .ok_or_else(|| Error::UnknownAction(action.to_string()))?
            .clone();
        let context = self.context(snapshot, &action, caller_context)?;
        let mut slice = Slice {
            map: Default::default(),
            base: Some(&self.uids),
        };
        slice.add_action(snapshot, &action);
        let entities = extend::extend(
            &self.entities,
            &self.uids,
            &self.dangling,
            slice.map.into_values().collect(),
        )
        .map_err(Error::Entities)?;
        Ok(Known {
            principal: self.principal.clone(),
            action,
            context,
            entities,
        })
    }
}
