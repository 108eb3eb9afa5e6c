//! The index decides exactly as plain `is_authorized` over the whole set: same decision, same
//! determining policies, same errors, over generated policies, entity graphs and requests.

use super::*;
use cedar_policy::{Context, Entity, EntityId, RestrictedExpression};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

fn uid(t: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(t.parse().unwrap(), EntityId::new(id))
}

const PRINCIPALS: &[&str] = &[
    "principal",
    "principal == User::\"u0\"",
    "principal == User::\"u1\"",
    "principal == Group::\"g0\"",
    "principal in Group::\"g0\"",
    "principal in Group::\"g1\"",
    "principal in Group::\"g2\"",
    "principal in User::\"u2\"",
    "principal is User",
    "principal is Group",
    "principal is User in Group::\"g1\"",
];
const ACTIONS: &[&str] = &[
    "action",
    "action == Action::\"a0\"",
    "action == Action::\"a1\"",
    "action in [Action::\"a2\"]",
    "action in [Action::\"a0\", Action::\"a2\"]",
    "action in Action::\"grp\"",
];
const RESOURCES: &[&str] = &[
    "resource",
    "resource == Doc::\"d0\"",
    "resource == Doc::\"d1\"",
    "resource in Folder::\"f0\"",
    "resource in Folder::\"f1\"",
    "resource is Doc",
    "resource is Folder",
    "resource is Doc in Folder::\"f1\"",
];
/// Conditions that hold, fail, or raise an error depending on the entities.
const CONDITIONS: &[&str] = &[
    "",
    "when { true }",
    "when { false }",
    "when { principal.level > 2 }",
    "when { resource.owner == principal }",
    "when { principal has level && principal.level < 3 }",
    "unless { resource has owner }",
    "when { principal in resource.owner }",
];

#[derive(Debug, Clone)]
struct Case {
    /// (forbid?, principal, action, resource, condition) indexes.
    policies: Vec<(bool, usize, usize, usize, usize)>,
    /// Per user: groups it is in (bitmask over g0..g2) and its `level`, if any.
    users: Vec<(u8, Option<i64>)>,
    /// g0 in g1, g1 in g2, g0 in g2.
    group_links: (bool, bool, bool),
    /// Per document: folders it is in (bitmask over f0..f1) and its owner (a user index), if any.
    docs: Vec<(u8, Option<usize>)>,
    /// Which of a0..a2 are in the group `grp`.
    in_grp: u8,
    /// (principal, action, resource) indexes of the requests.
    requests: Vec<(usize, usize, usize)>,
}

fn case() -> impl Strategy<Value = Case> {
    let policy = (
        any::<bool>(),
        0..PRINCIPALS.len(),
        0..ACTIONS.len(),
        0..RESOURCES.len(),
        0..CONDITIONS.len(),
    );
    (
        prop::collection::vec(policy, 0..40),
        prop::collection::vec((0u8..8, prop::option::of(0i64..6)), 3),
        any::<(bool, bool, bool)>(),
        prop::collection::vec((0u8..4, prop::option::of(0usize..3)), 3),
        0u8..8,
        prop::collection::vec((0usize..6, 0usize..3, 0usize..5), 1..8),
    )
        .prop_map(
            |(policies, users, group_links, docs, in_grp, requests)| Case {
                policies,
                users,
                group_links,
                docs,
                in_grp,
                requests,
            },
        )
}

fn policy_set(case: &Case) -> PolicySet {
    let mut set = PolicySet::new();
    for (n, (forbid, p, a, r, c)) in case.policies.iter().enumerate() {
        let effect = if *forbid { "forbid" } else { "permit" };
        let text = format!(
            "{effect} ({}, {}, {}) {};",
            PRINCIPALS[*p], ACTIONS[*a], RESOURCES[*r], CONDITIONS[*c]
        );
        let policy = Policy::parse(Some(PolicyId::new(format!("p{n}"))), &text).unwrap();
        set.add(policy).unwrap();
    }
    set
}

fn entities(case: &Case) -> Entities {
    let mut all = Vec::new();
    for (i, (groups, level)) in case.users.iter().enumerate() {
        let parents: HashSet<EntityUid> = (0..3)
            .filter(|g| groups & (1 << g) != 0)
            .map(|g| uid("Group", &format!("g{g}")))
            .collect();
        let attrs: HashMap<String, RestrictedExpression> = level
            .map(|l| ("level".to_string(), RestrictedExpression::new_long(l)))
            .into_iter()
            .collect();
        all.push(Entity::new(uid("User", &format!("u{i}")), attrs, parents).unwrap());
    }
    let (g01, g12, g02) = case.group_links;
    let links = [vec![(g01, 1), (g02, 2)], vec![(g12, 2)], vec![]];
    for (g, ups) in links.iter().enumerate() {
        let parents = ups
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, to)| uid("Group", &format!("g{to}")))
            .collect();
        all.push(Entity::new_no_attrs(
            uid("Group", &format!("g{g}")),
            parents,
        ));
    }
    for f in 0..2 {
        all.push(Entity::new_no_attrs(
            uid("Folder", &format!("f{f}")),
            HashSet::new(),
        ));
    }
    for (i, (folders, owner)) in case.docs.iter().enumerate() {
        let parents = (0..2)
            .filter(|f| folders & (1 << f) != 0)
            .map(|f| uid("Folder", &format!("f{f}")))
            .collect();
        let attrs: HashMap<String, RestrictedExpression> = owner
            .map(|o| {
                let owner = uid("User", &format!("u{o}"));
                (
                    "owner".to_string(),
                    RestrictedExpression::new_entity_uid(owner),
                )
            })
            .into_iter()
            .collect();
        all.push(Entity::new(uid("Doc", &format!("d{i}")), attrs, parents).unwrap());
    }
    for a in 0..3 {
        let parents = if case.in_grp & (1 << a) != 0 {
            HashSet::from([uid("Action", "grp")])
        } else {
            HashSet::new()
        };
        all.push(Entity::new_no_attrs(
            uid("Action", &format!("a{a}")),
            parents,
        ));
    }
    all.push(Entity::new_no_attrs(uid("Action", "grp"), HashSet::new()));
    Entities::from_entities(all, None).unwrap()
}

/// Principals: three users, a group, a user and a group the entity data does not know.
fn principal(i: usize) -> EntityUid {
    match i {
        0..=2 => uid("User", &format!("u{i}")),
        3 => uid("Group", "g0"),
        4 => uid("User", "u9"),
        _ => uid("Group", "g9"),
    }
}

/// Resources: three documents, a folder, a document the entity data does not know.
fn resource(i: usize) -> EntityUid {
    match i {
        0..=2 => uid("Doc", &format!("d{i}")),
        3 => uid("Folder", "f1"),
        _ => uid("Doc", "d9"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn index_decides_exactly_as_the_whole_set(case in case()) {
        let set = policy_set(&case);
        // Every bucket its own prebuilt set, and every bucket a small one (a set per request).
        let prebuilt = PolicyIndex::build_with(&set, usize::MAX, 0);
        let few = PolicyIndex::build_with(&set, 0, usize::MAX);
        let entities = entities(&case);
        for (p, a, r) in &case.requests {
            let request = Request::new(
                principal(*p),
                uid("Action", &format!("a{a}")),
                resource(*r),
                Context::empty(),
                None,
            )
            .unwrap();
            let whole = Outcome::from_response(&Authorizer::new().is_authorized(&request, &set, &entities));
            let indexed = prebuilt.is_authorized(&set, &request, &entities);
            prop_assert_eq!(&indexed, &whole, "request {:?} {:?} {:?}", p, a, r);
            let indexed = few.is_authorized(&set, &request, &entities);
            prop_assert_eq!(indexed, whole, "small buckets: request {:?} {:?} {:?}", p, a, r);
        }
    }
}

#[test]
fn small_sets_prebuild_every_bucket_and_large_ones_only_the_big_buckets() {
    let text = |n: usize| {
        (0..n)
            .map(|i| format!("permit (principal == User::\"u{i}\", action, resource);"))
            .collect::<String>()
    };
    // Five policies, five buckets, each with its own set.
    let small: PolicySet = text(5).parse().unwrap();
    let index = PolicyIndex::build(&small);
    assert_eq!((index.buckets(), index.prebuilt()), (5, 5));
    // More buckets than ALL_PREBUILT_UP_TO: one-policy buckets keep ids; a bucket of PREBUILT_AT
    // policies (the catch-all here) keeps its set.
    let mut large = text(ALL_PREBUILT_UP_TO + 1);
    for a in 0..PREBUILT_AT {
        large.push_str(&format!(
            "permit (principal, action, resource) when {{ {a} == {a} }};"
        ));
    }
    let index = PolicyIndex::build(&large.parse().unwrap());
    assert_eq!(
        (index.buckets(), index.prebuilt()),
        (ALL_PREBUILT_UP_TO + 2, 1)
    );
}
