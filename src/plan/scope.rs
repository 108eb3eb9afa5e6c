//! Narrowing the policy set before partial evaluation. Cedar's `tpe` typechecks every policy it is
//! given on every call, so a policy whose scope already rules it out for this principal and action
//! (`principal == <someone else>`, `action == <another action>`, `principal in <a group it is not
//! in>`) is left out first. Only what the scope proves false is dropped: such a policy is neither
//! satisfied nor in error, so leaving it out changes no answer.

use std::collections::HashSet;

use cedar_policy::{ActionConstraint, EntityUid, PolicySet, PrincipalConstraint};

use crate::request::Known;

/// The policies of `all` whose scope can hold for `known`'s principal and action.
pub(super) fn relevant(all: &PolicySet, known: &Known) -> PolicySet {
    let with_ancestors = |uid: &EntityUid| -> HashSet<EntityUid> {
        let mut set: HashSet<EntityUid> = known
            .entities
            .ancestors(uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        set.insert(uid.clone());
        set
    };
    let principal = with_ancestors(&known.principal);
    let action = with_ancestors(&known.action);
    let mut out = PolicySet::new();
    for p in all.policies() {
        let principal_ok = match p.principal_constraint() {
            PrincipalConstraint::Eq(e) => e == known.principal,
            PrincipalConstraint::In(e) => principal.contains(&e),
            PrincipalConstraint::IsIn(_, e) => principal.contains(&e),
            PrincipalConstraint::Any | PrincipalConstraint::Is(_) => true,
        };
        let action_ok = match p.action_constraint() {
            ActionConstraint::Eq(a) => a == known.action,
            ActionConstraint::In(list) => list.iter().any(|a| action.contains(a)),
            ActionConstraint::Any => true,
        };
        if principal_ok && action_ok {
            // Ids are unique in the source set, so adding cannot fail.
            let _ = out.add(p.clone());
        }
    }
    out
}
