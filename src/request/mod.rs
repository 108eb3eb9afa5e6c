//! Stage 3, building the Cedar request: a verified token and a check in, a Cedar `Request` and the
//! `Entities` it needs out.
//!
//! Principal: `Customer::"<customer claim>"`, with its assignments (parents) and the legal entities'
//! data from the entity source's [`Assignments`] (none when the source could not answer: fail closed)
//! and its primitive attributes from same-named claims. Context: `legalEntity` from the token only. Resource:
//! from the check, its attributes read with the schema. The entities passed to Cedar are a slice of
//! the snapshot's: the principal, the selected legal entity, the resource and the entities its
//! attributes name, each with its ancestors.

mod context;
mod resource;

pub use context::LEGAL_ENTITY_KEY;
pub use resource::entity;

use std::collections::HashMap;

use cedar_policy::{Entities, Entity, EntityUid, Request};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    entities::Assignments,
    policy::Snapshot,
    verify::{CustomerId, LegalEntityId},
};

/// One authorization question, as the HTTP API and the CLI take it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Action name, e.g. `viewOrder`.
    pub action: String,
    /// The resource asked about.
    pub resource: ResourceRef,
    /// Extra context keys (never `legalEntity`).
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

/// Who is asking: what the token says.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The customer.
    pub customer: CustomerId,
    /// The selected legal entity.
    pub legal_entity: Option<LegalEntityId>,
    /// The token's claims, for attribute mapping.
    pub claims: Map<String, Value>,
}

impl From<&crate::verify::VerifiedToken> for Principal {
    fn from(t: &crate::verify::VerifiedToken) -> Self {
        Self {
            customer: t.customer.clone(),
            legal_entity: t.legal_entity.clone(),
            claims: t.claims.clone(),
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
/// builds a principal with no parents, so no assignment-dependent permit applies.
pub fn build(
    snapshot: &Snapshot,
    principal: &Principal,
    assignments: Option<&Assignments>,
    check: &Check,
) -> Result<(Request, Entities), Error> {
    Base::new(snapshot, principal, assignments)?.build(check)
}

/// What every check of one token shares, built once per request or batch: the principal entity
/// (parents, claim attributes), the entity source's entities and the selected legal entity with its
/// ancestors. [`Base::build`] adds one check's action, resource and context.
#[derive(Debug)]
pub struct Base<'s> {
    snapshot: &'s Snapshot,
    principal: EntityUid,
    legal_entity: Option<EntityUid>,
    slice: Slice,
}

impl<'s> Base<'s> {
    /// The shared part for `principal` (see [`build`]).
    pub fn new(
        snapshot: &'s Snapshot,
        principal: &Principal,
        assignments: Option<&Assignments>,
    ) -> Result<Self, Error> {
        Self::from_parts(
            snapshot,
            &principal.customer,
            principal.legal_entity.as_ref(),
            &principal.claims,
            assignments,
        )
    }

    /// [`Base::new`] from a verified token, without copying its claims.
    pub fn for_token(
        snapshot: &'s Snapshot,
        token: &crate::verify::VerifiedToken,
        assignments: Option<&Assignments>,
    ) -> Result<Self, Error> {
        Self::from_parts(
            snapshot,
            &token.customer,
            token.legal_entity.as_ref(),
            &token.claims,
            assignments,
        )
    }

    fn from_parts(
        snapshot: &'s Snapshot,
        customer: &CustomerId,
        legal_entity: Option<&LegalEntityId>,
        claims: &Map<String, Value>,
        assignments: Option<&Assignments>,
    ) -> Result<Self, Error> {
        let mut slice = Slice::default();
        let customer_type = snapshot
            .entity_type("Customer")
            .ok_or_else(|| Error::UnknownType("Customer".into()))?;
        let principal_uid = uid(customer_type, &customer.0);
        slice.add_principal(snapshot, &principal_uid, claims, assignments);

        let legal_entity = match legal_entity {
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
        Ok(Self {
            snapshot,
            principal: principal_uid,
            legal_entity,
            slice,
        })
    }

    /// The Cedar request and entities for one `check`.
    pub fn build(&self, check: &Check) -> Result<(Request, Entities), Error> {
        let snapshot = self.snapshot;
        let action = snapshot
            .actions
            .get(&check.action)
            .ok_or_else(|| Error::UnknownAction(check.action.clone()))?
            .clone();
        let mut slice = Slice(self.slice.0.clone());

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

        let context = context::build(
            snapshot,
            &action,
            self.legal_entity.as_ref(),
            check.context.as_ref(),
        )?;
        slice.add_action(snapshot, &action);
        let request = Request::new(
            self.principal.clone(),
            action,
            resource_uid,
            context,
            Some(&snapshot.schema),
        )
        .map_err(|e| Error::Request(e.to_string()))?;
        // Every entity in the slice is already schema-checked: the snapshot's at load, the resource by
        // `resource::build`, the principal's attributes by type. Of the actions, only this request's
        // (with its groups) is needed (added above).
        let entities = Entities::from_entities(slice.0.into_values(), None)
            .map_err(|e| Error::Entities(e.to_string()))?;
        Ok((request, entities))
    }
}

fn uid(t: cedar_policy::EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(t, cedar_policy::EntityId::new(id))
}

/// The entities one request needs, keyed by uid so nothing is added twice.
#[derive(Debug, Default)]
struct Slice(HashMap<EntityUid, Entity>);

impl Slice {
    fn insert(&mut self, e: Entity) {
        self.0.insert(e.uid(), e);
    }

    /// The entity as the snapshot knows it, with its ancestors; nothing when it is unknown.
    fn add_known(&mut self, snapshot: &Snapshot, uid: &EntityUid) {
        if self.0.contains_key(uid) {
            return;
        }
        if let Some(e) = snapshot.entities.get(uid) {
            self.insert(e.clone());
            self.add_ancestors(snapshot, uid);
        }
    }

    fn add_ancestors(&mut self, snapshot: &Snapshot, uid: &EntityUid) {
        if let Some(ancestors) = snapshot.entities.ancestors(uid) {
            for a in ancestors {
                if !self.0.contains_key(a) {
                    if let Some(e) = snapshot.entities.get(a) {
                        self.0.insert(a.clone(), e.clone());
                    }
                }
            }
        }
    }

    /// The action's entity and the action groups it is in.
    fn add_action(&mut self, snapshot: &Snapshot, action: &EntityUid) {
        for e in snapshot.action_entities.get(action).into_iter().flatten() {
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
        for (name, kind) in &snapshot.customer_attrs {
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
mod tests;
