//! The resource of a check: `{type, id, attrs?}` in, a Cedar uid (and entity, when attributes are
//! given) out. Attributes are read with the schema, so a wrong type is the caller's 400, and entity
//! references may be written `{"type": "Customer", "id": "C-1"}` without the namespace.

use cedar_policy::{Entity, EntityUid};
use serde_json::{json, Map, Value};

use super::{Error, ResourceRef};
use crate::policy::Snapshot;

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
    let attrs: Map<String, Value> = attrs
        .iter()
        .map(|(k, v)| Ok((k.clone(), normalize(snapshot, v, &mut referenced)?)))
        .collect::<Result<_, Error>>()?;
    let json = json!({
        "uid": {"type": t.to_string(), "id": r.id},
        "attrs": attrs,
        "parents": [],
    });
    let entity = Entity::from_json_value(json, Some(&snapshot.schema))
        .map_err(|e| Error::Attributes(cedar_message(&e)))?;
    Ok((uid, Some(entity), referenced))
}

/// A whole entity written the way checks write resources (short type names, `{"type", "id"}`
/// references), read with the schema: entity data given outside the entity source, by
/// `legate test` cases and `legate authorize --entities`.
pub fn entity(
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
    Entity::from_json_value(json, Some(&snapshot.schema))
        .map_err(|e| Error::Attributes(cedar_message(&e)))
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
            let target = match o.get("__entity") {
                Some(Value::Object(inner)) if o.len() == 1 => Some(inner),
                _ if o.len() == 2
                    && o.get("type").is_some_and(Value::is_string)
                    && o.get("id").is_some_and(Value::is_string) =>
                {
                    Some(o)
                }
                _ => None,
            };
            if let Some(e) = target {
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

/// Cedar's error text with its cause chain, on one line.
pub(super) fn cedar_message(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg = format!("{msg}: {s_msg}");
        }
        src = s.source();
    }
    msg
}
