//! The policy index: a snapshot's policies split by scope at load, so a request evaluates only the
//! policies it can match.
//!
//! Every policy goes into exactly one bucket, keyed by its most selective scope constraint, in this
//! order: principal `==`/`in`/`is … in` an entity; resource `==`/`in`/`is … in` an entity; action
//! `==` an action or `in` a single action (group); principal `is` a type; resource `is` a type; else
//! the catch-all bucket. Every set is split, however small: with the shipped five policies, a
//! `viewProduct` check evaluating only its action's two policies costs Cedar half the instructions
//! of evaluating all five (callgrind, BENCHMARKS.md). In a set of up to [`ALL_PREBUILT_UP_TO`]
//! buckets each bucket is its own `PolicySet`, built once. In a larger one (one file of per-customer
//! policies makes thousands of one-policy buckets) only buckets of [`PREBUILT_AT`] or more policies
//! are; a smaller one keeps only its policies' ids, and the small buckets a request needs are put
//! into one `PolicySet` for that request. A Cedar `PolicySet` costs about 3 KB even for one policy:
//! at 10,000 one-policy buckets that was 30 MB of the 70 MB a load peaked at (heaptrack,
//! BENCHMARKS.md).
//!
//! A request can only satisfy (or error in) a policy whose scope it matches, and a policy whose scope
//! does not match evaluates to false without an error. Cedar's `in` is "equal, or an ancestor in the
//! entities passed". So the buckets a request needs are those of its principal and the principal's
//! ancestors, its resource and the resource's ancestors, its action and the action's groups, the
//! principal's and the resource's types, and the catch-all; every policy outside them is certainly
//! not satisfied and raises no error.
//!
//! Those buckets are evaluated one by one and combined by Cedar's own rules: a satisfied `forbid` in
//! any bucket denies, with every satisfied `forbid` as the reason; else a satisfied `permit` in any
//! bucket allows, with every satisfied `permit` as the reason; else deny with no reason. Errors are
//! the union. The result equals evaluating the whole set (proved against plain `is_authorized` by the
//! property test beside this file).

use std::collections::HashMap;

use cedar_policy::{
    ActionConstraint, Authorizer, Decision, Entities, EntityTypeName, EntityUid, Policy, PolicyId,
    PolicySet, PrincipalConstraint, Request, ResourceConstraint, Response,
};

/// A set split into at most this many buckets has a `PolicySet` for every bucket.
pub(crate) const ALL_PREBUILT_UP_TO: usize = 64;

/// In a set split into more buckets, buckets with fewer policies than this get no `PolicySet` of
/// their own.
pub(crate) const PREBUILT_AT: usize = 4;

/// What one evaluation decided, in a form both the index and a plain `is_authorized` give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Cedar's decision (before legate's "an erroring forbid denies" rule).
    pub decision: Decision,
    /// The determining policies, sorted.
    pub reasons: Vec<PolicyId>,
    /// Each evaluation error with the policy it came from, sorted.
    pub errors: Vec<(PolicyId, String)>,
}

impl Outcome {
    /// The outcome of one plain `is_authorized` call.
    #[cfg(test)]
    pub(crate) fn from_response(response: &Response) -> Self {
        let mut out = Self {
            decision: response.decision(),
            reasons: response.diagnostics().reason().cloned().collect(),
            errors: Vec::new(),
        };
        push_errors(&mut out.errors, response);
        out.reasons.sort();
        out.errors.sort();
        out
    }
}

fn push_errors(into: &mut Vec<(PolicyId, String)>, response: &Response) {
    for e in response.diagnostics().errors() {
        let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
        into.push((pe.policy_id().clone(), e.to_string()));
    }
}

/// The snapshot's policies, bucketed by scope.
#[derive(Debug, Clone, Default)]
pub(crate) struct PolicyIndex {
    buckets: Vec<Bucket>,
    principal: HashMap<EntityUid, usize>,
    resource: HashMap<EntityUid, usize>,
    action: HashMap<EntityUid, usize>,
    principal_type: HashMap<EntityTypeName, usize>,
    resource_type: HashMap<EntityTypeName, usize>,
    any: Option<usize>,
}

/// One bucket's policies: a `PolicySet` built at load, or (a small bucket) just the policies' ids,
/// looked up in the snapshot's whole set when a request needs them (a `Policy` clone copies the
/// policy's text, so keeping clones here held a second copy of every small bucket's text).
#[derive(Debug, Clone)]
enum Bucket {
    Set(Box<PolicySet>),
    Few(Box<[PolicyId]>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Principal(EntityUid),
    Resource(EntityUid),
    Action(EntityUid),
    PrincipalType(EntityTypeName),
    ResourceType(EntityTypeName),
    Any,
}

fn key(policy: &Policy) -> Key {
    match policy.principal_constraint() {
        PrincipalConstraint::Eq(u)
        | PrincipalConstraint::In(u)
        | PrincipalConstraint::IsIn(_, u) => return Key::Principal(u),
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => {}
    }
    match policy.resource_constraint() {
        ResourceConstraint::Eq(u) | ResourceConstraint::In(u) | ResourceConstraint::IsIn(_, u) => {
            return Key::Resource(u)
        }
        ResourceConstraint::Any | ResourceConstraint::Is(_) => {}
    }
    match policy.action_constraint() {
        ActionConstraint::Eq(u) => return Key::Action(u),
        ActionConstraint::In(mut list) if list.len() == 1 => {
            return Key::Action(list.pop().expect("one element"))
        }
        ActionConstraint::In(_) | ActionConstraint::Any => {}
    }
    if let PrincipalConstraint::Is(t) = policy.principal_constraint() {
        return Key::PrincipalType(t);
    }
    if let ResourceConstraint::Is(t) = policy.resource_constraint() {
        return Key::ResourceType(t);
    }
    Key::Any
}

impl PolicyIndex {
    /// Buckets `set` by scope.
    pub(crate) fn build(set: &PolicySet) -> Self {
        Self::build_with(set, ALL_PREBUILT_UP_TO, PREBUILT_AT)
    }

    /// [`PolicyIndex::build`]: when `set` makes more than `all_prebuilt_up_to` buckets, buckets of
    /// fewer than `prebuilt_at` policies are kept without a `PolicySet` of their own.
    pub(crate) fn build_with(
        set: &PolicySet,
        all_prebuilt_up_to: usize,
        prebuilt_at: usize,
    ) -> Self {
        let mut index = Self::default();
        let count = set.policies().count();
        let mut slots: HashMap<Key, usize> = HashMap::new();
        // Two passes, so each bucket's vector is allocated at its final size (a first push reserves
        // room for four policies: at 10,000 one-policy buckets that alone was 16 MB).
        let mut sizes: Vec<usize> = Vec::new();
        let mut slot_of = Vec::with_capacity(count);
        for policy in set.policies() {
            let k = key(policy);
            let slot = *slots.entry(k.clone()).or_insert_with(|| {
                sizes.push(0);
                let slot = sizes.len() - 1;
                match k {
                    Key::Principal(u) => _ = index.principal.insert(u, slot),
                    Key::Resource(u) => _ = index.resource.insert(u, slot),
                    Key::Action(u) => _ = index.action.insert(u, slot),
                    Key::PrincipalType(t) => _ = index.principal_type.insert(t, slot),
                    Key::ResourceType(t) => _ = index.resource_type.insert(t, slot),
                    Key::Any => index.any = Some(slot),
                }
                slot
            });
            sizes[slot] += 1;
            slot_of.push(slot);
        }
        let mut policies: Vec<Vec<&Policy>> = sizes.into_iter().map(Vec::with_capacity).collect();
        for (policy, slot) in set.policies().zip(slot_of) {
            policies[slot].push(policy);
        }
        let many = policies.len() > all_prebuilt_up_to;
        index.buckets = policies
            .into_iter()
            .map(|ps| {
                if many && ps.len() < prebuilt_at {
                    Bucket::Few(ps.into_iter().map(|p| p.id().clone()).collect())
                } else {
                    Bucket::Set(Box::new(set_of(ps)))
                }
            })
            .collect();
        index
    }

    /// How many buckets the set was split into.
    #[cfg(test)]
    pub(crate) fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// How many of them have a `PolicySet` of their own.
    #[cfg(test)]
    pub(crate) fn prebuilt(&self) -> usize {
        self.buckets
            .iter()
            .filter(|b| matches!(b, Bucket::Set(_)))
            .count()
    }

    /// The buckets `request` can match (by index), given the request's `entities`.
    fn relevant(&self, request: &Request, entities: &Entities, out: &mut Vec<usize>) {
        let with_ancestors =
            |map: &HashMap<EntityUid, usize>, uid: Option<&EntityUid>, out: &mut Vec<usize>| {
                let Some(uid) = uid else { return };
                if map.is_empty() {
                    return;
                }
                out.extend(map.get(uid).copied());
                for a in entities.ancestors(uid).into_iter().flatten() {
                    out.extend(map.get(a).copied());
                }
            };
        with_ancestors(&self.principal, request.principal(), out);
        with_ancestors(&self.resource, request.resource(), out);
        with_ancestors(&self.action, request.action(), out);
        if let Some(p) = request.principal() {
            out.extend(self.principal_type.get(p.type_name()).copied());
        }
        if let Some(r) = request.resource() {
            out.extend(self.resource_type.get(r.type_name()).copied());
        }
        out.extend(self.any);
    }

    /// Decides `request` by evaluating only the buckets it can match, combined by Cedar's rules.
    /// `all` is the set the index was built from (the small buckets' policies are taken from it).
    pub(crate) fn is_authorized(
        &self,
        all: &PolicySet,
        request: &Request,
        entities: &Entities,
    ) -> Outcome {
        let mut relevant = Vec::with_capacity(4);
        self.relevant(request, entities, &mut relevant);
        let authorizer = Authorizer::new();
        let mut forbids = Vec::new();
        let mut permits = Vec::new();
        let mut errors = Vec::new();
        let mut evaluate = |set: &PolicySet| {
            let response = authorizer.is_authorized(request, set, entities);
            let reasons = response.diagnostics().reason().cloned();
            match response.decision() {
                // A set allows only when none of its forbids is satisfied: its reasons are permits.
                Decision::Allow => permits.extend(reasons),
                // A set denies with reasons only when forbids are satisfied: they are the reasons.
                Decision::Deny => forbids.extend(reasons),
            }
            push_errors(&mut errors, &response);
        };
        // The small buckets this request needs, as one set (the combination is a union either way).
        let mut few: Option<PolicySet> = None;
        for slot in relevant {
            match &self.buckets[slot] {
                Bucket::Set(set) => evaluate(set),
                Bucket::Few(ids) => {
                    let set = few.get_or_insert_with(PolicySet::new);
                    for p in ids.iter().filter_map(|id| all.policy(id)) {
                        // Ids are unique in the snapshot; a slot listed twice adds nothing new.
                        let _ = set.add(p.clone());
                    }
                }
            }
        }
        if let Some(set) = &few {
            evaluate(set);
        }
        let (decision, mut reasons) = if !forbids.is_empty() {
            (Decision::Deny, forbids)
        } else if !permits.is_empty() {
            (Decision::Allow, permits)
        } else {
            (Decision::Deny, Vec::new())
        };
        reasons.sort();
        errors.sort();
        Outcome {
            decision,
            reasons,
            errors,
        }
    }
}

/// A `PolicySet` of `policies` (unique ids: from one snapshot).
fn set_of(policies: Vec<&Policy>) -> PolicySet {
    let mut set = PolicySet::new();
    for p in policies {
        let _ = set.add(p.clone());
    }
    set
}

#[cfg(test)]
mod tests;
