//! Indexing: what requests look up in a snapshot, derived once per load (forbid ids, short and
//! qualified type names, actions and their groups, attribute shapes, claim-filled attributes).

use std::{
    collections::{HashMap, HashSet},
    time::SystemTime,
};

use cedar_policy::{Effect, Entities, EntityTypeName, PolicyId, Schema};

use super::{parse::Parsed, LoadError, SCHEMA_FILE};
use crate::policy::{AttrType, ClaimType, Shape, Snapshot};

/// The snapshot of a parsed, validated set: the set and everything derived from it.
pub(super) fn snapshot(
    namespace: &str,
    schema: Schema,
    schema_text: &str,
    parsed: Parsed,
    entities: Entities,
    hash: String,
) -> Result<Snapshot, LoadError> {
    let Parsed { set, mut infos, .. } = parsed;
    let forbids: HashSet<PolicyId> = set
        .policies()
        .filter(|p| p.effect() == Effect::Forbid)
        .map(|p| p.id().clone())
        .collect();
    infos.sort_by(|a, b| a.id.cmp(&b.id));
    let mut entity_types = HashMap::new();
    for t in schema.entity_types() {
        if t.namespace() == namespace {
            entity_types.insert(t.basename().to_string(), t.clone());
        }
        entity_types.insert(t.to_string(), t.clone());
    }
    let actions: HashMap<String, cedar_policy::EntityUid> = schema
        .actions()
        .map(|a| (a.id().unescaped().to_string(), a.clone()))
        .collect();
    let shapes = crate::policy::shape::shapes(schema_text, namespace, &entity_types);
    let customer_attrs = customer_attrs(&shapes, namespace);
    let role_actions = crate::policy::roles::role_actions(schema_text, namespace, &actions);
    let action_entities = action_entities(&schema)?;
    let fitting = fitting(&schema, &entity_types, &actions, &role_actions);
    let index = crate::policy::PolicyIndex::build(&set);
    Ok(Snapshot {
        namespace: namespace.to_string(),
        schema,
        index,
        policies: set,
        entities,
        files: infos,
        forbids,
        entity_types,
        actions,
        action_entities,
        shapes,
        customer_attrs,
        role_actions,
        fitting,
        hash,
        loaded_at: SystemTime::now(),
    })
}

/// [`Snapshot::fitting`]: every action × entity type × (no) selected legal entity, asked of Cedar
/// once with the context legate builds when the caller adds no keys of its own. Whether a request
/// fits depends only on these types (ids and the roles' values do not matter), so one check per
/// combination stands for every request of that shape.
fn fitting(
    schema: &Schema,
    entity_types: &HashMap<String, EntityTypeName>,
    actions: &HashMap<String, cedar_policy::EntityUid>,
    role_actions: &HashSet<cedar_policy::EntityUid>,
) -> HashSet<(cedar_policy::EntityUid, EntityTypeName, bool)> {
    use cedar_policy::{EntityId, EntityUid, Request};
    let mut out = HashSet::new();
    let (Some(customer), Some(le_type)) = (
        entity_types.get("Customer"),
        entity_types.get("LegalEntity"),
    ) else {
        return out;
    };
    let id = || EntityId::new("x");
    let principal = EntityUid::from_type_name_and_id(customer.clone(), id());
    let le = EntityUid::from_type_name_and_id(le_type.clone(), id());
    let types: HashSet<&EntityTypeName> = entity_types.values().collect();
    for action in actions.values() {
        for t in &types {
            for selected in [false, true] {
                // Exactly the context a decider builds for such a check.
                let Ok(context) = crate::policy::own_context(
                    selected.then_some(&le),
                    &["r".to_string()],
                    role_actions.contains(action),
                ) else {
                    continue;
                };
                let resource = EntityUid::from_type_name_and_id((*t).clone(), id());
                if Request::new(
                    principal.clone(),
                    action.clone(),
                    resource,
                    context,
                    Some(schema),
                )
                .is_ok()
                {
                    out.insert((action.clone(), (*t).clone(), selected));
                }
            }
        }
    }
    out
}

/// Each action with the action groups it is in: the action entities one request needs.
fn action_entities(
    schema: &Schema,
) -> Result<HashMap<cedar_policy::EntityUid, Vec<cedar_policy::Entity>>, LoadError> {
    let all = schema
        .action_entities()
        .map_err(|e| LoadError::one(SCHEMA_FILE, e.to_string()))?;
    Ok(all
        .iter()
        .map(|a| {
            let uid = a.uid();
            let groups = all.ancestors(&uid).into_iter().flatten();
            let slice = std::iter::once(a.clone())
                .chain(groups.filter_map(|g| all.get(g).cloned()))
                .collect();
            (uid, slice)
        })
        .collect())
}

/// The principal type's (`<namespace>::Customer`) primitive attributes, which token claims fill.
fn customer_attrs(
    shapes: &HashMap<EntityTypeName, Shape>,
    namespace: &str,
) -> HashMap<String, ClaimType> {
    let customer = shapes
        .iter()
        .find(|(t, _)| t.basename() == "Customer" && t.namespace() == namespace);
    customer
        .into_iter()
        .flat_map(|(_, shape)| shape.attrs.iter())
        .filter_map(|(name, (ty, _))| {
            let kind = match ty.as_ref()? {
                AttrType::String => ClaimType::String,
                AttrType::Long => ClaimType::Long,
                AttrType::Bool => ClaimType::Bool,
                _ => return None,
            };
            Some((name.clone(), kind))
        })
        .collect()
}
