//! The one place that touches Cedar's experimental type-aware partial evaluation (`tpe`) and its
//! residual form (`pst`): run it with the resource unknown, and translate each policy's residual
//! into the filter language. An upgrade of `cedar-policy` that changes that API changes this file.
//!
//! A residual is read with three-valued Cedar semantics (true, false, error): for every expression
//! the translation gives `t` (the filter true exactly where it evaluates to `true`) and `f` (where it
//! evaluates to `false`); where neither holds, Cedar would raise an error. A permit applies where its
//! condition is `t`; a forbid stays out of the way only where its condition is `f` (legate denies on
//! a forbid that errors). What the language cannot express is reported, never guessed.

mod operands;
mod residual;

use cedar_policy::{
    Effect, EntityTypeName, PartialEntities, PartialEntityUid, PartialRequest, PolicyId, PolicySet,
};

use self::residual::Reader;
use super::filter::{not, Filter};
use super::Error;
use crate::{policy::Snapshot, request::Known};

/// What partial evaluation made of one policy.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    /// True whatever the resource.
    True,
    /// False (or not applicable) whatever the resource.
    False,
    /// Raises an error whatever the resource (e.g. an overflow).
    Error,
    /// Depends on the resource, as this condition.
    Residual(Cond),
    /// Depends on the resource in a way the filter language cannot express; the reason.
    Unexpressible(String),
}

/// A residual condition: where it is true and where it is false.
#[derive(Debug, Clone)]
pub(super) struct Cond {
    /// Where the condition evaluates to `true`.
    pub t: Filter,
    /// Where it evaluates to `false` (neither: it would raise an error).
    pub f: Filter,
    /// Whether it can never raise an error (then `f` is `not(t)`).
    total: bool,
}

impl Cond {
    fn exact(t: Filter) -> Self {
        let f = not(t.clone());
        Self { t, f, total: true }
    }

    fn constant(b: bool) -> Self {
        Self::exact(Filter::Const(b))
    }
}

/// Every policy's outcome, by `@id`, permits and forbids apart.
#[derive(Debug, Default)]
pub(super) struct Outcomes {
    /// Permit policies.
    pub permits: Vec<(String, Outcome)>,
    /// Forbid policies.
    pub forbids: Vec<(String, Outcome)>,
}

/// Partially evaluates `policies` (of `snapshot`) for `known` with a resource of type
/// `resource_type`.
pub(super) fn evaluate(
    snapshot: &Snapshot,
    policies: &PolicySet,
    known: &Known,
    resource_type: &EntityTypeName,
) -> Result<Outcomes, Error> {
    let request = PartialRequest::new(
        PartialEntityUid::from_concrete(known.principal.clone()),
        known.action.clone(),
        PartialEntityUid::new(resource_type.clone(), None),
        Some(known.context.clone()),
        snapshot.schema(),
    )
    .map_err(|e| Error::Request(super::cedar_message(&e)))?;
    let entities = PartialEntities::from_concrete(known.entities.clone(), snapshot.schema())
        .map_err(|e| Error::Engine(super::cedar_message(&e)))?;
    let response = policies
        .tpe(&request, &entities, snapshot.schema())
        .map_err(|e| Error::Engine(super::cedar_message(&e)))?;

    let shape = snapshot
        .shapes()
        .get(resource_type)
        .cloned()
        .unwrap_or_default();
    let reader = Reader {
        shape: &shape,
        known,
        snapshot,
    };
    let mut out = Outcomes::default();
    let fixed = |ids: &mut dyn Iterator<Item = &PolicyId>, o: Outcome| {
        ids.map(|id| (id.to_string(), o.clone()))
            .collect::<Vec<_>>()
    };
    out.permits
        .extend(fixed(&mut response.true_permits(), Outcome::True));
    out.permits
        .extend(fixed(&mut response.false_permits(), Outcome::False));
    out.permits
        .extend(fixed(&mut response.error_permits(), Outcome::Error));
    out.forbids
        .extend(fixed(&mut response.true_forbids(), Outcome::True));
    out.forbids
        .extend(fixed(&mut response.false_forbids(), Outcome::False));
    out.forbids
        .extend(fixed(&mut response.error_forbids(), Outcome::Error));
    for policy in response.residual_policies() {
        let outcome = reader.policy(&policy);
        let entry = (policy.id().to_string(), outcome);
        match policy.effect() {
            Effect::Permit => out.permits.push(entry),
            Effect::Forbid => out.forbids.push(entry),
        }
    }
    out.permits.sort_by(|a, b| a.0.cmp(&b.0));
    out.forbids.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
