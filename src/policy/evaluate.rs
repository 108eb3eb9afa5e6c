//! Evaluation: a Cedar request and its entities in, a [`Decision`] out.
//!
//! Cedar skips a policy whose evaluation errors. For `permit` that already fails closed; for `forbid`
//! it would not, so an error in any `forbid` policy denies the request (and is listed in `errors`).

use cedar_policy::{Authorizer, Entities, Request};

use super::Snapshot;
use crate::decision::Decision;

/// Decides `request` against `snapshot`.
pub fn evaluate(snapshot: &Snapshot, request: &Request, entities: &Entities) -> Decision {
    let response = Authorizer::new().is_authorized(request, &snapshot.policies, entities);
    let diagnostics = response.diagnostics();
    let mut forbid_errored = false;
    let errors: Vec<String> = diagnostics
        .errors()
        .map(|e| {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
            forbid_errored |= snapshot.forbids.contains(pe.policy_id());
            e.to_string()
        })
        .collect();
    let mut policies: Vec<String> = diagnostics.reason().map(|id| id.to_string()).collect();
    policies.sort();
    let allow = response.decision() == cedar_policy::Decision::Allow && !forbid_errored;
    if forbid_errored {
        policies.clear();
    }
    Decision {
        allow,
        policies,
        errors,
    }
}
