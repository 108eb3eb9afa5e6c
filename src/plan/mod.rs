//! List filtering (`POST /v1/plan`, `legate plan`): which resources of a type may this customer see?
//!
//! In: one policy snapshot, the token's principal, the entity source's answer, an action and a
//! resource type. Out: a [`Plan`] — a [`Filter`] over the resource's attributes that is true exactly
//! where `/v1/authorize` would allow (when `errors` is empty; never true where it would deny
//! otherwise), and, with `[plan.tables.<Type>]`, the same filter as a PostgreSQL `WHERE` fragment.
//!
//! - `tpe` runs Cedar's type-aware partial evaluation and reads each residual (the only file
//!   that touches that experimental API);
//! - `filter` is the filter language and its simplification;
//! - `sql` turns a filter into SQL;
//! - `scope` leaves out the policies whose scope rules them out (tpe typechecks each one per call);
//! - `answer` joins the policies' residuals into one answer.

mod answer;
pub mod filter;
mod scope;
pub(crate) mod sql;
mod tpe;

pub use answer::plan;
pub use filter::{Filter, Operand, Value};
pub use sql::{to_sql, Sql, SqlError};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// A plan request: `{"action", "resource": {"type"}, "context"?}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// Action name, e.g. `listOrders`.
    pub action: String,
    /// The resource type; `id` and `attrs` are refused (the resource is what is asked for).
    pub resource: PlanResource,
    /// Extra context keys (never `legalEntity` or `roles`).
    #[serde(default)]
    pub context: Option<Map<String, Json>>,
}

/// `{"type"}`; `id` and `attrs` are read only to refuse them with a clear message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanResource {
    /// Entity type, with or without namespace.
    #[serde(rename = "type")]
    pub kind: String,
    /// Refused when present.
    #[serde(default)]
    pub id: Option<Json>,
    /// Refused when present.
    #[serde(default)]
    pub attrs: Option<Json>,
}

/// `always_allowed`, `always_denied` or `conditional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The filter is `true`.
    AlwaysAllowed,
    /// The filter is `false`.
    AlwaysDenied,
    /// The filter depends on the resource.
    Conditional,
}

/// The answer to a plan request (without `principal` and `legal_entity_id`, which the caller adds).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// What the filter is.
    pub kind: Kind,
    /// The filter over the resource's attributes.
    pub filter: Filter,
    /// `@id`s of the permits that are true or whose residual is in the filter, sorted.
    pub policies: Vec<String>,
    /// What could not be expressed, and the entity source being down.
    pub errors: Vec<String>,
    /// The `WHERE` fragment. Outer `None`: left out (no `[plan.tables]` for the type, or
    /// `?sql=false`); `Some(None)`: `"sql": null`, an attribute has no column (reason in `errors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<Option<Sql>>,
}

/// `[plan.tables.<Type>]`: how a type's attributes are stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The table's name (informational: the fragment names columns only).
    #[serde(default)]
    pub table: Option<String>,
    /// Attribute name → column name.
    #[serde(default)]
    pub columns: HashMap<String, String>,
}

/// `[plan]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// By entity type (short or qualified name).
    #[serde(default)]
    pub tables: HashMap<String, TableConfig>,
}

/// Problems with `[plan.tables]` against the schema at start-up: a type the schema does not
/// declare, an attribute the type does not have, an empty column name.
pub fn check_tables(config: &PlanConfig, snapshot: &crate::policy::Snapshot) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names: Vec<&String> = config.tables.keys().collect();
    names.sort();
    for name in names {
        let table = &config.tables[name];
        let Some(ty) = snapshot.entity_type(name) else {
            problems.push(format!(
                "[plan.tables.{name}]: the schema declares no entity type {name:?}"
            ));
            continue;
        };
        let shape = snapshot.shapes().get(&ty);
        let mut attrs: Vec<(&String, &String)> = table.columns.iter().collect();
        attrs.sort();
        for (attr, column) in attrs {
            if shape.is_some_and(|s| !s.attrs.contains_key(attr)) {
                problems.push(format!(
                    "[plan.tables.{name}] columns: {ty} has no attribute {attr:?}"
                ));
            }
            if column.is_empty() {
                problems.push(format!(
                    "[plan.tables.{name}] columns: the column of {attr:?} is empty"
                ));
            }
        }
    }
    problems
}

/// Why a plan request cannot be answered: the caller's mistake (400 `invalid_request`), except
/// [`Error::Engine`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The schema declares no such action.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// The schema declares no such entity type.
    #[error("unknown entity type {0:?}")]
    UnknownType(String),
    /// `resource.id` or `resource.attrs` given.
    #[error("a plan's resource is a type only: `resource.{0}` is not allowed")]
    ResourceGiven(&'static str),
    /// The action does not apply to the type, or the context does not fit the schema.
    #[error("request does not match the schema: {0}")]
    Request(String),
    /// Building the principal or context failed (e.g. `context.legalEntity` given).
    #[error("{0}")]
    Build(String),
    /// Partial evaluation failed; answered as `always_denied` with this in `errors`.
    #[error("partial evaluation failed: {0}")]
    Engine(String),
}

use crate::shared::error_chain as cedar_message;

#[cfg(test)]
mod tests;
