//! Evaluation: a Cedar request and its entities in, a [`Decision`] out.
//!
//! Cedar skips a policy whose evaluation errors. For `permit` that already fails closed; for `forbid`
//! it would not, so an error in any `forbid` policy denies the request (and is listed in `errors`).

use cedar_policy::{Entities, Request};

use super::Snapshot;
use crate::decision::Decision;

/// Decides `request` against `snapshot`, evaluating only the policies its scope can match (the
/// snapshot's `PolicyIndex`).
pub fn evaluate(snapshot: &Snapshot, request: &Request, entities: &Entities) -> Decision {
    let outcome = snapshot
        .index
        .is_authorized(&snapshot.policies, request, entities);
    let mut forbid_errored = false;
    let errors: Vec<String> = outcome
        .errors
        .into_iter()
        .map(|(id, e)| {
            forbid_errored |= snapshot.forbids.contains(&id);
            e
        })
        .collect();
    let mut policies: Vec<String> = outcome.reasons.iter().map(|id| id.to_string()).collect();
    policies.sort();
    let allow = outcome.decision == cedar_policy::Decision::Allow && !forbid_errored;
    if forbid_errored {
        policies.clear();
    }
    Decision {
        allow,
        policies,
        errors,
    }
}
