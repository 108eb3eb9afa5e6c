//! Joining the policies' residuals into one answer: the permits' conditions `or`-ed, each forbid's
//! "does not apply" `and`-ed, simplified; then `kind`, `policies`, `errors` and the SQL form.

use std::collections::HashSet;

use super::{
    filter::{and, or, Filter},
    scope,
    sql::to_sql,
    tpe::{self, Outcome},
    Error, Kind, Plan, PlanBody, PlanConfig,
};
use crate::{
    decide::{Decider, EntityData},
    policy::Snapshot,
    request,
};

/// Plans `body` for the decider's token against its snapshot and entity data (the same a decision
/// would use: one snapshot, one entity-source answer). When the source could not answer, the plan
/// is made without assignments, as a decision would be, and `errors` says so. `want_sql`: add the
/// SQL form when `tables` maps the type.
pub fn plan(
    decider: &Decider<'_>,
    body: &PlanBody,
    tables: &PlanConfig,
    want_sql: bool,
) -> Result<Plan, Error> {
    let snapshot: &Snapshot = decider.snapshot();
    if body.resource.id.is_some() {
        return Err(Error::ResourceGiven("id"));
    }
    if body.resource.attrs.is_some() {
        return Err(Error::ResourceGiven("attrs"));
    }
    if !snapshot.actions().contains_key(&body.action) {
        return Err(Error::UnknownAction(body.action.clone()));
    }
    let resource_type = snapshot
        .entity_type(&body.resource.kind)
        .ok_or_else(|| Error::UnknownType(body.resource.kind.clone()))?;
    let known = decider
        .known(&body.action, body.context.as_ref())
        .map_err(|e| match e {
            request::Error::UnknownAction(a) => Error::UnknownAction(a),
            request::Error::UnknownType(t) => Error::UnknownType(t),
            other => Error::Build(other.to_string()),
        })?;

    let mut errors = Vec::new();
    if let EntityData::Unavailable(e) = decider.entity_data() {
        errors.push(format!(
            "entity source unavailable, planned without assignments: {e}"
        ));
    }
    let relevant = scope::relevant(snapshot.policies(), &known);
    let (filter, policies) = match tpe::evaluate(snapshot, &relevant, &known, &resource_type) {
        Ok(outcomes) => combine(outcomes, &mut errors),
        Err(Error::Engine(e)) => {
            errors.push(format!(
                "partial evaluation failed, answered always_denied: {e}"
            ));
            (Filter::Const(false), Vec::new())
        }
        Err(e) => return Err(e),
    };
    let kind = match filter {
        Filter::Const(true) => Kind::AlwaysAllowed,
        Filter::Const(false) => Kind::AlwaysDenied,
        _ => Kind::Conditional,
    };
    let short = resource_type.basename();
    let table = tables
        .tables
        .get(short)
        .or_else(|| tables.tables.get(&resource_type.to_string()));
    let required: HashSet<String> = snapshot
        .shapes()
        .get(&resource_type)
        .map(|s| {
            s.attrs
                .iter()
                .filter(|(_, (_, req))| *req)
                .map(|(a, _)| a.clone())
                .collect()
        })
        .unwrap_or_default();
    let sql = match table {
        Some(t) if want_sql => Some(match to_sql(&filter, short, &t.columns, &required) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(format!("no SQL: {e}"));
                None
            }
        }),
        _ => None,
    };
    Ok(Plan {
        kind,
        filter,
        policies,
        errors,
        sql,
    })
}

/// `or(permits) ∧ and(forbids do not apply)`, and the permits that made it.
fn combine(outcomes: tpe::Outcomes, errors: &mut Vec<String>) -> (Filter, Vec<String>) {
    let mut allow = Vec::new();
    let mut policies = Vec::new();
    for (id, outcome) in outcomes.permits {
        match outcome {
            Outcome::True => allow.push(Filter::Const(true)),
            Outcome::Residual(c) => allow.push(c.t),
            Outcome::False => continue,
            Outcome::Error => {
                errors.push(format!("permit {id:?} raises an error for every resource"));
                continue;
            }
            Outcome::Unexpressible(why) => {
                errors.push(format!(
                    "permit {id:?} left out (the filter denies more than the policies): {why}"
                ));
                continue;
            }
        }
        policies.push(id);
    }
    let mut keep_out = Vec::new();
    for (id, outcome) in outcomes.forbids {
        match outcome {
            Outcome::False => {}
            Outcome::Residual(c) => keep_out.push(c.f),
            Outcome::True => keep_out.push(Filter::Const(false)),
            Outcome::Error => {
                errors.push(format!(
                    "forbid {id:?} raises an error for every resource, which denies"
                ));
                keep_out.push(Filter::Const(false));
            }
            Outcome::Unexpressible(why) => {
                errors.push(format!("forbid {id:?} answered always_denied: {why}"));
                keep_out.push(Filter::Const(false));
            }
        }
    }
    // Simpler terms first (`owner == C-1` before `and(has legalEntity, ...)`); ties by policy id.
    allow.sort_by_key(size);
    let mut terms = vec![or(allow)];
    terms.extend(keep_out);
    let filter = and(terms);
    if filter == Filter::Const(false) {
        policies.clear();
    }
    (filter, policies)
}

/// Number of nodes, for ordering terms from simple to complex.
fn size(f: &Filter) -> usize {
    match f {
        Filter::And(fs) | Filter::Or(fs) => 1 + fs.iter().map(size).sum::<usize>(),
        Filter::Not(f) => 1 + size(f),
        _ => 1,
    }
}
