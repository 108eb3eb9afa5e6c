//! The resource of a check: `{type, id, attrs?}` in, a Cedar uid (and entity, when attributes are
//! given) out. Attributes are read with the schema, so a wrong type is the caller's 400, and entity
//! references may be written `{"type": "Customer", "id": "C-1"}` without the namespace.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Entity, EntityTypeName, EntityUid, RestrictedExpression};
use serde_json::{json, Map, Value};

use super::{Error, ResourceRef};
use crate::policy::{AttrType, Snapshot};

/// The resource's uid, its entity when attributes were given, and the uids its attributes name.
pub(super) fn build(
    snapshot: &Snapshot,
    r: &ResourceRef,
) -> Result<(EntityUid, Option<Entity>, Vec<EntityUid>), Error> {
    let t = snapshot
        .entity_type(&r.kind)
        .ok_or_else(|| Error::UnknownType(r.kind.clone()))?;
    let uid = EntityUid::from_type_name_and_id(t.clone(), cedar_policy::EntityId::new(&r.id));
    let Some(attrs) = &r.attrs else {
        return Ok((uid, None, Vec::new()));
    };
    let mut referenced = Vec::new();
    if let Some(entity) = fast(snapshot, &t, &uid, attrs, &mut referenced) {
        return Ok((uid, Some(entity), referenced));
    }
    referenced.clear();
    let attrs: Map<String, Value> = attrs
        .iter()
        .map(|(k, v)| Ok((k.clone(), normalize(snapshot, v, &mut referenced)?)))
        .collect::<Result<_, Error>>()?;
    let json = json!({
        "uid": {"type": t.to_string(), "id": r.id},
        "attrs": attrs,
        "parents": [],
    });
    let entity = Entity::from_json_value(json, Some(snapshot.schema()))
        .map_err(|e| Error::Attributes(cedar_message(&e)))?;
    Ok((uid, Some(entity), referenced))
}

/// A whole entity written the way checks write resources (short type names, `{"type", "id"}`
/// references), read with the schema: entity data given outside the entity source, by
/// `legate test` cases and `legate authorize --entities`.
pub(crate) fn entity(
    snapshot: &Snapshot,
    r: &ResourceRef,
    parents: &[(String, String)],
) -> Result<Entity, Error> {
    let t = snapshot
        .entity_type(&r.kind)
        .ok_or_else(|| Error::UnknownType(r.kind.clone()))?;
    let mut refs = Vec::new();
    let attrs = match &r.attrs {
        Some(a) => normalize(snapshot, &Value::Object(a.clone()), &mut refs)?,
        None => json!({}),
    };
    let parents = parents
        .iter()
        .map(|(kind, id)| {
            let p = snapshot
                .entity_type(kind)
                .ok_or_else(|| Error::UnknownType(kind.clone()))?;
            Ok(json!({"type": p.to_string(), "id": id}))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let json = json!({
        "uid": {"type": t.to_string(), "id": r.id},
        "attrs": attrs,
        "parents": parents,
    });
    Entity::from_json_value(json, Some(snapshot.schema()))
        .map_err(|e| Error::Attributes(cedar_message(&e)))
}

/// Builds the entity without Cedar's JSON parser when every attribute has a simple declared shape
/// and the given attributes fit it exactly; `None` sends the caller to Cedar's parser, which then
/// accepts the same entity or names the error.
fn fast(
    snapshot: &Snapshot,
    t: &EntityTypeName,
    uid: &EntityUid,
    attrs: &Map<String, Value>,
    refs: &mut Vec<EntityUid>,
) -> Option<Entity> {
    let shape = snapshot.shapes().get(t).filter(|s| s.simple)?;
    let mut values = HashMap::with_capacity(attrs.len());
    for (name, v) in attrs {
        let ty = shape.attrs.get(name)?.0.as_ref()?;
        values.insert(name.clone(), fast_value(snapshot, v, ty, refs)?);
    }
    let missing = shape
        .attrs
        .iter()
        .any(|(name, (_, required))| *required && !attrs.contains_key(name));
    if missing {
        return None;
    }
    Entity::new(uid.clone(), values, HashSet::new()).ok()
}

fn fast_value(
    snapshot: &Snapshot,
    v: &Value,
    ty: &AttrType,
    refs: &mut Vec<EntityUid>,
) -> Option<RestrictedExpression> {
    Some(match (ty, v) {
        (AttrType::String, Value::String(s)) => RestrictedExpression::new_string(s.clone()),
        (AttrType::Long, Value::Number(n)) => RestrictedExpression::new_long(n.as_i64()?),
        (AttrType::Bool, Value::Bool(b)) => RestrictedExpression::new_bool(*b),
        (AttrType::Entity(want), Value::Object(o)) => {
            let e = entity_reference(o)?;
            let (Some(Value::String(t)), Some(Value::String(id))) = (e.get("type"), e.get("id"))
            else {
                return None;
            };
            let t = snapshot.entity_type(t).filter(|t| t == want)?;
            let uid = EntityUid::from_type_name_and_id(t, cedar_policy::EntityId::new(id));
            refs.push(uid.clone());
            RestrictedExpression::new_entity_uid(uid)
        }
        (AttrType::Set(inner), Value::Array(items)) => RestrictedExpression::new_set(
            items
                .iter()
                .map(|i| fast_value(snapshot, i, inner, refs))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

/// The resource's id and every entity reference's id in its attributes and in `context` are
/// 1–256 characters without control characters (DESIGN.md, "Input hygiene, everywhere").
pub(super) fn check_ids(
    r: &ResourceRef,
    context: Option<&Map<String, Value>>,
) -> Result<(), Error> {
    fn walk(v: &Value) -> Result<(), Error> {
        match v {
            Value::Array(items) => items.iter().try_for_each(walk),
            Value::Object(o) => {
                if let Some(Value::String(id)) = entity_reference(o).and_then(|e| e.get("id")) {
                    return checked(id);
                }
                o.values().try_for_each(walk)
            }
            _ => Ok(()),
        }
    }
    fn checked(id: &str) -> Result<(), Error> {
        if crate::shared::is_valid_id(id) {
            Ok(())
        } else {
            Err(Error::BadReference(
                "an id must be 1–256 characters without control characters".into(),
            ))
        }
    }
    checked(&r.id)?;
    r.attrs.iter().flat_map(Map::values).try_for_each(walk)?;
    context.into_iter().flat_map(Map::values).try_for_each(walk)
}

/// The `{"type", "id"}` of an entity reference written either way the API accepts: bare
/// `{"type": "...", "id": "..."}` (both strings), or Cedar's `{"__entity": {...}}`.
fn entity_reference(o: &Map<String, Value>) -> Option<&Map<String, Value>> {
    match o.get("__entity") {
        Some(Value::Object(inner)) if o.len() == 1 => Some(inner),
        _ if o.len() == 2
            && o.get("type").is_some_and(Value::is_string)
            && o.get("id").is_some_and(Value::is_string) =>
        {
            Some(o)
        }
        _ => None,
    }
}

/// Qualifies entity references (`{"type","id"}` or `{"__entity": {...}}`) with the namespace and
/// collects their uids; records and sets are walked.
fn normalize(snapshot: &Snapshot, v: &Value, refs: &mut Vec<EntityUid>) -> Result<Value, Error> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| normalize(snapshot, i, refs))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(o) => {
            if let Some(e) = entity_reference(o) {
                let (Some(Value::String(t)), Some(Value::String(id))) =
                    (e.get("type"), e.get("id"))
                else {
                    return Err(Error::BadReference(
                        "an entity reference needs string `type` and `id`".into(),
                    ));
                };
                let t_name = snapshot
                    .entity_type(t)
                    .ok_or_else(|| Error::UnknownType(t.clone()))?;
                refs.push(EntityUid::from_type_name_and_id(
                    t_name.clone(),
                    cedar_policy::EntityId::new(id),
                ));
                return Ok(json!({"__entity": {"type": t_name.to_string(), "id": id}}));
            }
            if o.contains_key("__extn") {
                return Ok(v.clone());
            }
            o.iter()
                .map(|(k, v)| Ok((k.clone(), normalize(snapshot, v, refs)?)))
                .collect::<Result<Map<_, _>, Error>>()
                .map(Value::Object)
        }
        other => Ok(other.clone()),
    }
}

pub(super) use crate::shared::error_chain as cedar_message;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::policy::shipped as snapshot;

    /// Whenever the fast path builds an entity, Cedar's parser builds the same one.
    #[test]
    fn the_fast_path_agrees_with_cedars_parser() {
        let s = snapshot();
        let cases = [
            ("Order", json!({"owner": {"type": "Customer", "id": "C-1"}})),
            (
                "Order",
                json!({"owner": {"type": "Shop::Customer", "id": "C-1"}, "status": "open",
                              "legalEntity": {"__entity": {"type": "LegalEntity", "id": "LE-1"}}}),
            ),
            ("Product", json!({"segments": []})),
            (
                "Product",
                json!({"segments": [{"type": "Segment", "id": "a"}, {"type": "Segment", "id": "b"}]}),
            ),
            ("LegalEntity", json!({"segments": [], "name": "Acme"})),
        ];
        for (t, attrs) in cases {
            let t_name = s.entity_type(t).unwrap();
            let uid =
                EntityUid::from_type_name_and_id(t_name.clone(), cedar_policy::EntityId::new("X"));
            let mut refs = Vec::new();
            let attrs = attrs.as_object().unwrap().clone();
            let fast_entity = fast(&s, &t_name, &uid, &attrs, &mut refs)
                .unwrap_or_else(|| panic!("{t} {attrs:?} took the slow path"));
            let mut slow_refs = Vec::new();
            let normalized: Map<String, Value> = attrs
                .iter()
                .map(|(k, v)| (k.clone(), normalize(&s, v, &mut slow_refs).unwrap()))
                .collect();
            let slow_entity = Entity::from_json_value(
                json!({"uid": {"type": t_name.to_string(), "id": "X"}, "attrs": normalized, "parents": []}),
                Some(s.schema()),
            )
            .unwrap();
            assert_eq!(
                fast_entity.to_json_value().unwrap(),
                slow_entity.to_json_value().unwrap(),
                "{t} {attrs:?}"
            );
            assert_eq!(refs, slow_refs);
        }
    }

    /// Anything the fast path does not fit exactly goes to Cedar's parser (which then rejects these).
    #[test]
    fn mismatches_take_the_slow_path() {
        let s = snapshot();
        let cases = [
            ("Order", json!({})),                                        // missing required
            ("Order", json!({"owner": "C-1"})),                          // string for entity
            ("Order", json!({"owner": {"type": "Segment", "id": "s"}})), // wrong entity type
            (
                "Order",
                json!({"owner": {"type": "Customer", "id": "C"}, "extra": 1}),
            ), // undeclared
            (
                "Order",
                json!({"owner": {"type": "Customer", "id": "C"}, "status": 7}),
            ), // wrong primitive
            ("Product", json!({"segments": [1]})),
            (
                "Product",
                json!({"segments": {"type": "Segment", "id": "s"}}),
            ), // not a set
        ];
        for (t, attrs) in cases {
            let t_name = s.entity_type(t).unwrap();
            let uid =
                EntityUid::from_type_name_and_id(t_name.clone(), cedar_policy::EntityId::new("X"));
            let attrs = attrs.as_object().unwrap().clone();
            assert!(
                fast(&s, &t_name, &uid, &attrs, &mut Vec::new()).is_none(),
                "{t} {attrs:?}"
            );
            let r = ResourceRef {
                kind: t.into(),
                id: "X".into(),
                attrs: Some(attrs.clone()),
            };
            assert!(
                matches!(
                    build(&s, &r),
                    Err(Error::Attributes(_)) | Err(Error::UnknownType(_))
                ),
                "{t} {attrs:?}"
            );
        }
    }
}
