//! Which actions get `context.roles`: those whose declared context type has an attribute `roles`
//! of type `Set<String>` (inline or through a common type of the namespace), read once per load from
//! the schema's JSON form. legate fills that attribute with the customer's roles in the selected legal
//! entity; an action that does not declare it gets nothing, so a schema without `roles` (the shipped
//! one) sees no change.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Context, EntityUid, RestrictedExpression, SchemaFragment};
use serde_json::Value;

/// The context attribute legate fills with the roles held in the selected legal entity.
pub(crate) const ROLES_KEY: &str = "roles";

/// The context key that carries the selected legal entity.
pub(crate) const LEGAL_ENTITY_KEY: &str = "legalEntity";

/// The actions (of `actions`, by plain name) in `namespace` whose context declares
/// `roles: Set<String>`.
pub(super) fn role_actions(
    schema_text: &str,
    namespace: &str,
    actions: &HashMap<String, EntityUid>,
) -> HashSet<EntityUid> {
    let Some(json) = SchemaFragment::from_cedarschema_str(schema_text)
        .ok()
        .and_then(|(f, _)| f.to_json_value().ok())
    else {
        return HashSet::new();
    };
    let Some(ns) = json.get(namespace) else {
        return HashSet::new();
    };
    let common = ns.get("commonTypes").and_then(Value::as_object);
    let resolve = |ty: &Value| -> Option<Value> {
        if ty.get("type").and_then(Value::as_str) == Some("Record") {
            return Some(ty.clone());
        }
        let name = ty
            .get("name")
            .or_else(|| ty.get("type"))
            .and_then(Value::as_str)?;
        let short = name.rsplit("::").next().unwrap_or(name);
        common?.get(short).cloned()
    };
    let mut out = HashSet::new();
    for (name, def) in ns
        .get("actions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(uid) = actions.get(name) else {
            continue;
        };
        let declares = def
            .get("appliesTo")
            .and_then(|a| a.get("context"))
            .and_then(resolve)
            .and_then(|record| record.get("attributes")?.get(ROLES_KEY).cloned())
            .is_some_and(|roles| is_set_of_strings(&roles));
        if declares {
            out.insert(uid.clone());
        }
    }
    out
}

fn is_set_of_strings(ty: &Value) -> bool {
    if ty.get("type").and_then(Value::as_str) != Some("Set") {
        return false;
    }
    let Some(element) = ty.get("element") else {
        return false;
    };
    match element.get("type").and_then(Value::as_str) {
        Some("String") => true,
        Some("EntityOrCommon") | Some("Extension") => matches!(
            element.get("name").and_then(Value::as_str),
            Some("String" | "__cedar::String")
        ),
        _ => false,
    }
}

/// The context of a check that adds no keys of its own: `legalEntity` and, when `with_roles`,
/// `roles` (`Err`: Cedar's reason). The common case, built directly (parsing JSON with the schema costs more than
/// evaluating); it is the same for every such check of one token, so a decider builds it once
/// (`request::Base`). Whether it fits the action's declared context type is checked by
/// `Request::new`, or was checked at load ([`super::Snapshot`]`::fitting`, which asks Cedar about this very
/// context).
pub(crate) fn own_context(
    legal_entity: Option<&EntityUid>,
    roles: &[String],
    with_roles: bool,
) -> Result<Context, String> {
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
    Context::from_pairs(le.into_iter().chain(roles)).map_err(|e| crate::shared::error_chain(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(schema: &str) -> Vec<String> {
        let parsed = cedar_policy::Schema::from_cedarschema_str(schema)
            .unwrap()
            .0;
        let all: HashMap<String, EntityUid> = parsed
            .actions()
            .map(|a| (a.id().unescaped().to_string(), a.clone()))
            .collect();
        let mut names: Vec<String> = role_actions(schema, "Shop", &all)
            .iter()
            .map(|a| a.id().unescaped().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn inline_and_common_type_contexts_with_roles_are_found() {
        let schema = r#"namespace Shop {
            entity Customer; entity Order;
            type Ctx = { roles: Set<String>, total?: Long };
            action a appliesTo { principal: Customer, resource: Order, context: Ctx };
            action b appliesTo { principal: Customer, resource: Order, context: { roles?: Set<String> } };
            action c appliesTo { principal: Customer, resource: Order, context: { other: Long } };
            action d appliesTo { principal: Customer, resource: Order, context: { roles: Set<Long> } };
            action e appliesTo { principal: Customer, resource: Order, context: { roles: String } };
            action f appliesTo { principal: Customer, resource: Order };
        }"#;
        assert_eq!(actions(schema), ["a", "b"]);
    }

    #[test]
    fn the_shipped_schema_declares_no_roles() {
        let schema = include_str!("../../policies/schema.cedarschema");
        assert!(actions(schema).is_empty());
    }
}
