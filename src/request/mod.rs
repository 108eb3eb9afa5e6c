//! Stage 3, building the Cedar request: a verified token and a check in, a Cedar `Request` and the
//! `Entities` it needs out.
//!
//! Principal: `Customer::"<customer claim>"`, with its assignments (parents) and the legal entities'
//! data from the entity source's [`Assignments`] (none when the source could not answer: fail closed)
//! and its primitive attributes from same-named claims. Context: `legalEntity` from the token only,
//! and, for actions whose context declares it, `roles`: the roles the customer holds in that entity
//! ([`Assignments::roles_in`]; none without an answer from the source). Resource:
//! from the check, its attributes read with the schema. The entities passed to Cedar are a slice of
//! the snapshot's: the principal, the selected legal entity, the resource and the entities its
//! attributes name, each with its ancestors.

mod context;
mod extend;
mod known;
mod resource;

pub(crate) use known::Known;
pub(crate) use resource::entity;

use std::{
    collections::{HashMap, HashSet},
    sync::OnceLock,
};

use cedar_policy::{Context, Entities, Entity, EntityUid, Request};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    entities::Assignments,
    policy::Snapshot,
    verify::{CustomerId, LegalEntityId, VerifiedToken},
};

/// One authorization question, as the HTTP API and the CLI take it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Action name, e.g. `viewOrder`.
    pub action: String,
    /// The resource asked about.
    pub resource: ResourceRef,
    /// Extra context keys (never `legalEntity` or `roles`).
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

/// `{"type", "id", "attrs"?}`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    /// Entity type, with or without namespace.
    #[serde(rename = "type")]
    pub kind: String,
    /// Entity id.
    pub id: String,
    /// Attributes in Cedar JSON form; absent means "look it up in the entity data".
    #[serde(default)]
    pub attrs: Option<Map<String, Value>>,
}

/// Who is asking: what the token says, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// The customer.
    pub customer: &'a CustomerId,
    /// The selected legal entity.
    pub legal_entity: Option<&'a LegalEntityId>,
    /// The token's claims, for attribute mapping.
    pub claims: &'a Map<String, Value>,
}

impl<'a> From<&'a VerifiedToken> for Principal<'a> {
    fn from(t: &'a VerifiedToken) -> Self {
        Self {
            customer: &t.customer,
            legal_entity: t.legal_entity.as_ref(),
            claims: &t.claims,
        }
    }
}

/// Why a check could not be turned into a Cedar request: the caller's mistake, answered 400.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The schema declares no such action.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// The schema declares no such entity type.
    #[error("unknown entity type {0:?}")]
    UnknownType(String),
    /// An id or name Cedar cannot use.
    #[error("invalid entity reference: {0}")]
    BadReference(String),
    /// Attributes that do not match the schema.
    #[error("resource attributes do not match the schema: {0}")]
    Attributes(String),
    /// `context.legalEntity` given by the caller.
    #[error("context may not set `legalEntity`: the selected legal entity comes from the token")]
    ContextLegalEntity,
    /// `context.roles` given by the caller.
    #[error("context may not set `roles`: the roles come from the entity source")]
    ContextRoles,
    /// Context that does not match the schema.
    #[error("context does not match the schema: {0}")]
    Context(String),
    /// The request does not fit the schema (e.g. a resource type the action does not apply to).
    #[error("request does not match the schema: {0}")]
    Request(String),
    /// The entity data could not be assembled.
    #[error("entity data does not match the schema: {0}")]
    Entities(String),
}

/// Builds the Cedar request for `check` by `principal` against `snapshot`. The principal's parents and
/// the legal entities' data come from `assignments`; `None` (the entity source could not answer)
/// builds a principal with no parents, so no assignment-dependent permit applies. (Decisions go
/// through a decider's [`Base`]; this builds one for a single check, for unit tests.)
#[cfg(test)]
pub(crate) fn build(
    snapshot: &Snapshot,
    principal: &Principal<'_>,
    assignments: Option<&Assignments>,
    check: &Check,
) -> Result<(Request, Entities), Error> {
    if !snapshot.actions().contains_key(&check.action) {
        return Err(Error::UnknownAction(check.action.clone()));
    }
    Base::new(snapshot, principal, assignments)?.build(snapshot, check)
}

/// What every check of one token shares, built once per decider (a request or a whole batch): the
/// principal entity (parents, claim attributes), the entity source's entities and the selected legal
/// entity with what the snapshot knows of it. [`Base::build`] adds one check's action, resource and
/// context. Only valid with the snapshot it was built from.
#[derive(Debug, Clone)]
pub struct Base {
    principal: EntityUid,
    legal_entity: Option<EntityUid>,
    /// The roles held in `legal_entity` (`context.roles` where the action declares it).
    roles: Vec<String>,
    /// The shared entities, their transitive closure computed once (Cedar's `from_entities`
    /// computes it, and that was a fifth of a decision when every check did it for every entity).
    entities: Entities,
    /// Their uids: a check's slice does not add them again.
    uids: HashSet<EntityUid>,
    /// Ancestors they name that are not among them (see [`extend`]).
    dangling: HashSet<EntityUid>,
    /// The context of a check without keys of its own, built on first use: without and with
    /// `roles` (which the action decides).
    own_context: [OnceLock<Result<Context, Error>>; 2],
}

impl Base {
    /// The shared part for `principal`: its entity, parents from `assignments`, claim attributes.
    pub fn new(
        snapshot: &Snapshot,
        principal: &Principal<'_>,
        assignments: Option<&Assignments>,
    ) -> Result<Self, Error> {
        let mut slice = Slice::default();
        let customer_type = snapshot
            .entity_type("Customer")
            .ok_or_else(|| Error::UnknownType("Customer".into()))?;
        let principal_uid = uid(customer_type, &principal.customer.0);
        slice.add_principal(snapshot, &principal_uid, principal.claims, assignments);

        let legal_entity = principal
            .legal_entity
            .map(|le| selected(snapshot, le, &mut slice))
            .transpose()?;
        let roles = roles_in(legal_entity.as_ref(), assignments);
        let uids = slice.map.keys().cloned().collect();
        let entities =
            extend::closed(slice.map.into_values().collect()).map_err(Error::Entities)?;
        let dangling = extend::dangling(&entities, &uids);
        Ok(Self {
            principal: principal_uid,
            legal_entity,
            roles,
            entities,
            uids,
            dangling,
            own_context: Default::default(),
        })
    }

    /// The Cedar request and entities for one `check` against `snapshot` (the one this was built
    /// from).
    pub fn build(&self, snapshot: &Snapshot, check: &Check) -> Result<(Request, Entities), Error> {
        let action = snapshot
            .actions()
            .get(&check.action)
            .ok_or_else(|| Error::UnknownAction(check.action.clone()))?
            .clone();
        let mut slice = Slice {
            map: HashMap::new(),
            base: Some(&self.uids),
        };

        resource::check_ids(&check.resource, check.context.as_ref())?;
        let (resource_uid, resource_entity, referenced) =
            resource::build(snapshot, &check.resource)?;
        match resource_entity {
            Some(e) => {
                slice.add_ancestors(snapshot, &resource_uid);
                slice.insert(e);
            }
            None => slice.add_known(snapshot, &resource_uid),
        }
        for r in &referenced {
            slice.add_known(snapshot, r);
        }

        let own_keys_only = check.context.as_ref().is_none_or(Map::is_empty);
        let context = self.context(snapshot, &action, check.context.as_ref())?;
        slice.add_action(snapshot, &action);
        // Only legate's own context keys, in a shape checked at load: nothing left to check.
        let fits = own_keys_only
            && snapshot.fitting().contains(&(
                action.clone(),
                resource_uid.type_name().clone(),
                self.legal_entity.is_some(),
            ));
        let request = Request::new(
            self.principal.clone(),
            action,
            resource_uid,
            context,
            (!fits).then_some(snapshot.schema()),
        )
        .map_err(|e| Error::Request(e.to_string()))?;
        // Every entity in the slice is already schema-checked: the snapshot's at load, the resource by
        // `resource::build`, the principal's attributes by type. Of the actions, only this request's
        // (with its groups) is needed (added above).
        // Upsert: a resource given with attributes replaces a shared entity of the same uid, as it
        // did when the slice was one map; everything else the slice holds is new. The closure is
        // recomputed only when the slice's is not already complete.
        let entities = extend::extend(
            &self.entities,
            &self.uids,
            &self.dangling,
            slice.map.into_values().collect(),
        )
        .map_err(Error::Entities)?;
        Ok((request, entities))
    }

    /// The context of a check: built once per decider when the caller adds no keys of its own
    /// (without and with `roles`, which the action decides), else from the caller's keys.
    fn context(
        &self,
        snapshot: &Snapshot,
        action: &EntityUid,
        caller: Option<&Map<String, Value>>,
    ) -> Result<Context, Error> {
        if caller.is_none_or(Map::is_empty) {
            let with_roles = snapshot.role_actions().contains(action);
            return self.own_context[usize::from(with_roles)]
                .get_or_init(|| context::own(self.legal_entity.as_ref(), &self.roles, with_roles))
                .clone();
        }
        context::build(
            snapshot,
            action,
            self.legal_entity.as_ref(),
            &self.roles,
            caller,
        )
    }
}

/// The selected legal entity's uid, added to the slice with what the snapshot knows of it.
fn selected(
    snapshot: &Snapshot,
    le: &LegalEntityId,
    slice: &mut Slice<'_>,
) -> Result<EntityUid, Error> {
    let t = snapshot
        .entity_type("LegalEntity")
        .ok_or_else(|| Error::UnknownType("LegalEntity".into()))?;
    let le_uid = uid(t, &le.0);
    slice.add_known(snapshot, &le_uid);
    Ok(le_uid)
}

/// The roles held in the selected entity: none without one, or without the source's answer.
fn roles_in(legal_entity: Option<&EntityUid>, assignments: Option<&Assignments>) -> Vec<String> {
    match (legal_entity, assignments) {
        (Some(le), Some(a)) => a.roles_in(le),
        _ => Vec::new(),
    }
}

fn uid(t: cedar_policy::EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(t, cedar_policy::EntityId::new(id))
}

/// The entities one request needs, keyed by uid so nothing is added twice; with `base`, the uids
/// already in the shared part count as added.
#[derive(Debug, Clone, Default)]
struct Slice<'b> {
    map: HashMap<EntityUid, Entity>,
    base: Option<&'b HashSet<EntityUid>>,
}

impl Slice<'_> {
    fn contains(&self, uid: &EntityUid) -> bool {
        self.map.contains_key(uid) || self.base.is_some_and(|b| b.contains(uid))
    }

    fn insert(&mut self, e: Entity) {
        self.map.insert(e.uid(), e);
    }

    /// The entity as the snapshot knows it, with its ancestors; nothing when it is unknown.
    fn add_known(&mut self, snapshot: &Snapshot, uid: &EntityUid) {
        if self.contains(uid) {
            return;
        }
        if let Some(e) = snapshot.entities().get(uid) {
            self.insert(e.clone());
            self.add_ancestors(snapshot, uid);
        }
    }

    fn add_ancestors(&mut self, snapshot: &Snapshot, uid: &EntityUid) {
        if let Some(ancestors) = snapshot.entities().ancestors(uid) {
            for a in ancestors {
                if !self.contains(a) {
                    if let Some(e) = snapshot.entities().get(a) {
                        self.map.insert(a.clone(), e.clone());
                    }
                }
            }
        }
    }

    /// The action's entity and the action groups it is in.
    fn add_action(&mut self, snapshot: &Snapshot, action: &EntityUid) {
        for e in snapshot.action_entities().get(action).into_iter().flatten() {
            self.insert(e.clone());
        }
    }

    /// The principal: parents and their data from the entity source, attributes from same-named
    /// claims. The source's entities go in first, so they win over `entities.json` for the same uid.
    fn add_principal(
        &mut self,
        snapshot: &Snapshot,
        uid: &EntityUid,
        claims: &Map<String, Value>,
        assignments: Option<&Assignments>,
    ) {
        let parents: std::collections::HashSet<EntityUid> = assignments
            .map(|a| a.parents.iter().cloned().collect())
            .unwrap_or_default();
        for e in assignments
            .map(|a| a.entities.as_slice())
            .unwrap_or_default()
        {
            self.insert(e.clone());
        }
        let mut attrs = HashMap::new();
        for (name, kind) in snapshot.customer_attrs() {
            use crate::policy::ClaimType;
            use cedar_policy::RestrictedExpression as R;
            let value = match (kind, claims.get(name)) {
                (ClaimType::String, Some(Value::String(s))) => R::new_string(s.clone()),
                (ClaimType::Long, Some(Value::Number(n))) if n.is_i64() => {
                    R::new_long(n.as_i64().unwrap_or_default())
                }
                (ClaimType::Bool, Some(Value::Bool(b))) => R::new_bool(*b),
                _ => continue,
            };
            attrs.insert(name.clone(), value);
        }
        let entity = Entity::new(uid.clone(), attrs, parents.clone())
            .unwrap_or_else(|_| Entity::new_no_attrs(uid.clone(), parents));
        self.insert(entity);
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
