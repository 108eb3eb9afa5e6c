//! Attribute shapes of the schema's entity types, read once per snapshot from the schema's JSON form.
//!
//! They let request building convert a resource's JSON attributes straight into Cedar values when the
//! shape is simple (String, Long, Bool, entity references, sets of these): Cedar's schema-driven JSON
//! parser costs more than evaluating the policies. Anything else (records, extension and common types,
//! enumerated entity types, tags) has no shape here, and Cedar's own parser handles it.

use std::collections::HashMap;

use cedar_policy::{EntityTypeName, SchemaFragment};
use serde_json::Value;

/// The type of one attribute, as far as the fast path understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrType {
    /// `String`
    String,
    /// `Long`
    Long,
    /// `Bool`
    Bool,
    /// A reference to an entity of this type.
    Entity(EntityTypeName),
    /// `Set<T>`
    Set(Box<AttrType>),
}

/// One entity type's attributes: type (`None` when the fast path does not handle it) and whether
/// the attribute is required.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// By attribute name.
    pub attrs: HashMap<String, (Option<AttrType>, bool)>,
    /// False when the type has tags or is an enumeration: always use Cedar's parser.
    pub simple: bool,
}

/// Reads the shapes of every entity type in `namespace`. `types` maps short and qualified names to
/// the declared entity types.
pub(super) fn shapes(
    schema_text: &str,
    namespace: &str,
    types: &HashMap<String, EntityTypeName>,
) -> HashMap<EntityTypeName, Shape> {
    let Some(json) = SchemaFragment::from_cedarschema_str(schema_text)
        .ok()
        .and_then(|(f, _)| f.to_json_value().ok())
    else {
        return HashMap::new();
    };
    let Some(ns) = json.get(namespace) else {
        return HashMap::new();
    };
    let common: Vec<&str> = ns
        .get("commonTypes")
        .and_then(Value::as_object)
        .map(|c| c.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut out = HashMap::new();
    for (name, def) in ns
        .get("entityTypes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(t) = types.get(name) else { continue };
        let simple = def.get("tags").is_none() && def.get("enum").is_none();
        let mut shape = Shape {
            attrs: HashMap::new(),
            simple,
        };
        let attrs = def
            .get("shape")
            .and_then(|s| s.get("attributes"))
            .and_then(Value::as_object);
        for (attr, ty) in attrs.into_iter().flatten() {
            let required = ty.get("required").and_then(Value::as_bool).unwrap_or(true);
            shape
                .attrs
                .insert(attr.clone(), (attr_type(ty, types, &common), required));
        }
        out.insert(t.clone(), shape);
    }
    out
}

fn attr_type(
    ty: &Value,
    types: &HashMap<String, EntityTypeName>,
    common: &[&str],
) -> Option<AttrType> {
    let kind = ty.get("type")?.as_str()?;
    let named = |name: &str| -> Option<AttrType> {
        if common.contains(&name) {
            return None; // a common type: Cedar's parser resolves it
        }
        if let Some(t) = types.get(name) {
            return Some(AttrType::Entity(t.clone()));
        }
        match name {
            "String" | "__cedar::String" => Some(AttrType::String),
            "Long" | "__cedar::Long" => Some(AttrType::Long),
            "Bool" | "Boolean" | "__cedar::Bool" => Some(AttrType::Bool),
            _ => None,
        }
    };
    match kind {
        "EntityOrCommon" => named(ty.get("name")?.as_str()?),
        "Entity" => types
            .get(ty.get("name")?.as_str()?)
            .cloned()
            .map(AttrType::Entity),
        "String" => Some(AttrType::String),
        "Long" => Some(AttrType::Long),
        "Boolean" | "Bool" => Some(AttrType::Bool),
        "Set" => attr_type(ty.get("element")?, types, common).map(|e| AttrType::Set(Box::new(e))),
        _ => None,
    }
}
