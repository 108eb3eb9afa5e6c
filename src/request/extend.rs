//! Adding one check's entities to the shared part without recomputing the transitive closure.
//!
//! Cedar's public `Entities::upsert_entities` recomputes the closure of every touched entity and of
//! everything below it, through freshly built hash sets: about 34,000 instructions per check, a
//! fifth of a check in a batch (callgrind, BENCHMARKS.md). Most checks add entities whose ancestor
//! sets are already complete (a resource, the snapshot's entities it names, the action and its
//! groups), so there is nothing to compute. [`extend`] proves that for the check at hand and then
//! adds them with `TCComputation::AssumeAlreadyComputed`; when it cannot prove it, it falls back to
//! Cedar's own `upsert_entities`. The result is the same store either way (the unit tests beside this
//! file and the request property tests compare the two).
//!
//! The store after adding is already transitively closed, so Cedar's recomputation would change
//! nothing, when all of these hold:
//! 1. no added entity replaces a shared one (replacing one makes Cedar strip stale edges below it);
//! 2. no shared entity names an added entity as an ancestor (its ancestors would grow through it);
//! 3. every added entity's ancestor set contains the ancestor sets of its own ancestors, as the
//!    combined store has them (so nothing is missing), and not the entity itself (no cycle).
//!
//! [`closed`] does the same for the decider's shared part itself: Cedar's `from_entities` closes
//! the hierarchy with its general algorithm (~37,000 instructions for the five entities of a
//! request); here the closure is walked over the handful of entities given, and a cycle is left to
//! Cedar, which refuses it with its own message.
//!
//! This uses `cedar-policy-core`, the crate under `cedar-policy`, through the two conversions
//! `cedar-policy` marks `#[doc(hidden)]`: pinned to the same exact version as `cedar-policy`.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use cedar_policy::{Entities, Entity, EntityUid};
use cedar_policy_core::{
    ast,
    entities::{Dereference, NoEntitiesSchema, TCComputation},
    extensions::Extensions,
};

/// The ancestors that `shared`'s entities name but `shared` does not hold: adding one of them
/// could lengthen a shared entity's ancestry (condition 2).
pub(super) fn dangling(shared: &Entities, uids: &HashSet<EntityUid>) -> HashSet<EntityUid> {
    let mut out = HashSet::new();
    for e in shared.iter() {
        for a in shared.ancestors(&e.uid()).into_iter().flatten() {
            if !uids.contains(a) {
                out.insert(a.clone());
            }
        }
    }
    out
}

/// `shared` with `added` (unique uids) upserted, as Cedar's `upsert_entities` would make it; `Err`
/// is Cedar's message.
pub(super) fn extend(
    shared: &Entities,
    uids: &HashSet<EntityUid>,
    dangling: &HashSet<EntityUid>,
    added: Vec<Entity>,
) -> Result<Entities, String> {
    if already_closed(shared, uids, dangling, &added) {
        let core: Vec<Arc<ast::Entity>> =
            added.iter().map(|e| Arc::new(e.as_ref().clone())).collect();
        let store = shared.as_ref().clone().add_entities(
            core,
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        );
        return store.map(Entities::from).map_err(|e| e.to_string());
    }
    shared
        .clone()
        .upsert_entities(added, None)
        .map_err(|e| e.to_string())
}

/// `Entities::from_entities(entities, None)` (unique uids), the closure computed here.
pub(super) fn closed(entities: Vec<Entity>) -> Result<Entities, String> {
    let core: Vec<ast::Entity> = entities.iter().map(|e| e.as_ref().clone()).collect();
    let Some(additions) = closures(&core) else {
        // A cycle: Cedar refuses it.
        return Entities::from_entities(entities, None).map_err(|e| e.to_string());
    };
    let core = core.into_iter().zip(additions).map(|(mut e, add)| {
        for a in add {
            e.add_indirect_ancestor(a);
        }
        e
    });
    cedar_policy_core::entities::Entities::from_entities(
        core,
        None::<&NoEntitiesSchema>,
        TCComputation::AssumeAlreadyComputed,
        Extensions::all_available(),
    )
    .map(Entities::from)
    .map_err(|e| e.to_string())
}

/// For each entity, the ancestors it reaches through the given entities but does not hold yet;
/// `None` when one reaches itself.
fn closures(entities: &[ast::Entity]) -> Option<Vec<Vec<ast::EntityUID>>> {
    let at: HashMap<&ast::EntityUID, usize> = entities
        .iter()
        .enumerate()
        .map(|(i, e)| (e.uid(), i))
        .collect();
    entities
        .iter()
        .map(|e| {
            let mut seen: HashSet<&ast::EntityUID> = e.ancestors().collect();
            let mut stack: Vec<&ast::EntityUID> = e.ancestors().collect();
            let mut add = Vec::new();
            while let Some(a) = stack.pop() {
                if a == e.uid() {
                    return None;
                }
                for aa in at
                    .get(a)
                    .map(|&i| entities[i].ancestors())
                    .into_iter()
                    .flatten()
                {
                    if seen.insert(aa) {
                        add.push(aa.clone());
                        stack.push(aa);
                    }
                }
            }
            Some(add)
        })
        .collect()
}

/// Conditions 1–3 of the module docs.
fn already_closed(
    shared: &Entities,
    uids: &HashSet<EntityUid>,
    dangling: &HashSet<EntityUid>,
    added: &[Entity],
) -> bool {
    let added_core: Vec<&ast::Entity> = added.iter().map(AsRef::as_ref).collect();
    if added
        .iter()
        .any(|e| uids.contains(&e.uid()) || dangling.contains(&e.uid()))
    {
        return false;
    }
    let shared_core = shared.as_ref();
    added_core.iter().all(|e| {
        e.ancestors().all(|a| {
            if a == e.uid() {
                return false;
            }
            let check = |of: &ast::Entity| of.ancestors().all(|aa| e.is_descendant_of(aa));
            match added_core.iter().find(|x| x.uid() == a) {
                Some(x) => check(x),
                None => match shared_core.entity(a) {
                    Dereference::Data(x) => check(x),
                    // Not in the store: it has no ancestors there.
                    _ => true,
                },
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, str::FromStr};

    use cedar_policy::{Entities, Entity, EntityUid, RestrictedExpression};

    use super::*;

    fn uid(s: &str) -> EntityUid {
        EntityUid::from_str(s).unwrap()
    }

    fn entity(id: &str, parents: &[&str]) -> Entity {
        Entity::new_no_attrs(uid(id), parents.iter().map(|p| uid(p)).collect())
    }

    fn shared(entities: Vec<Entity>) -> (Entities, HashSet<EntityUid>, HashSet<EntityUid>) {
        let uids = entities.iter().map(Entity::uid).collect();
        let store = Entities::from_entities(entities, None).unwrap();
        let dangling = dangling(&store, &uids);
        (store, uids, dangling)
    }

    /// Each entity's ancestors, as a comparable map.
    fn ancestry(store: &Entities) -> HashMap<String, Vec<String>> {
        store
            .iter()
            .map(|e| {
                let mut a: Vec<String> = store
                    .ancestors(&e.uid())
                    .into_iter()
                    .flatten()
                    .map(|u| u.to_string())
                    .collect();
                a.sort();
                (e.uid().to_string(), a)
            })
            .collect()
    }

    fn same_as_cedar(
        store: &Entities,
        uids: &HashSet<EntityUid>,
        d: &HashSet<EntityUid>,
        added: Vec<Entity>,
    ) -> bool {
        let ours = extend(store, uids, d, added.clone()).unwrap();
        let cedar = store.clone().upsert_entities(added, None).unwrap();
        ancestry(&ours) == ancestry(&cedar) && ours == cedar
    }

    /// The shared part of a request: a customer in LE-1, LE-1 in LE-P (the source's version).
    fn base() -> (Entities, HashSet<EntityUid>, HashSet<EntityUid>) {
        shared(vec![
            entity(
                r#"Customer::"c""#,
                &[r#"LegalEntity::"LE-1""#, r#"LegalEntity::"LE-9""#],
            ),
            entity(r#"LegalEntity::"LE-1""#, &[r#"LegalEntity::"LE-P""#]),
        ])
    }

    #[test]
    fn closed_additions_take_the_fast_path_and_equal_cedars_store() {
        let (store, uids, d) = base();
        let mut attrs = HashMap::new();
        attrs.insert("n".into(), RestrictedExpression::new_long(1));
        let order = Entity::new(uid(r#"Order::"o""#), attrs, HashSet::new()).unwrap();
        // An order in LE-1 whose ancestor set already holds LE-1's ancestors.
        let filed = entity(
            r#"Order::"f""#,
            &[r#"LegalEntity::"LE-1""#, r#"LegalEntity::"LE-P""#],
        );
        let added = vec![order, filed];
        assert!(already_closed(&store, &uids, &d, &added));
        assert!(same_as_cedar(&store, &uids, &d, added));
    }

    #[test]
    fn an_ancestor_missing_from_an_added_entity_falls_back_and_is_computed() {
        let (store, uids, d) = base();
        // Filed under LE-1 but without LE-1's parent LE-P: Cedar's closure adds it.
        let added = vec![entity(r#"Order::"f""#, &[r#"LegalEntity::"LE-1""#])];
        assert!(!already_closed(&store, &uids, &d, &added));
        let ours = extend(&store, &uids, &d, added.clone()).unwrap();
        assert!(ours.is_ancestor_of(&uid(r#"LegalEntity::"LE-P""#), &uid(r#"Order::"f""#)));
        assert!(same_as_cedar(&store, &uids, &d, added));
    }

    #[test]
    fn adding_an_ancestor_a_shared_entity_names_falls_back() {
        let (store, uids, d) = base();
        // LE-9 is the customer's parent but not in the shared part; adding it with a parent of its
        // own makes the customer a descendant of that parent too.
        let added = vec![
            entity(r#"LegalEntity::"LE-9""#, &[r#"LegalEntity::"LE-Q""#]),
            entity(r#"LegalEntity::"LE-Q""#, &[]),
        ];
        assert!(!already_closed(&store, &uids, &d, &added));
        let ours = extend(&store, &uids, &d, added.clone()).unwrap();
        assert!(ours.is_ancestor_of(&uid(r#"LegalEntity::"LE-Q""#), &uid(r#"Customer::"c""#)));
        assert!(same_as_cedar(&store, &uids, &d, added));
    }

    #[test]
    fn replacing_a_shared_entity_falls_back() {
        let (store, uids, d) = base();
        // LE-1 given again without its parent: Cedar strips LE-P from the customer's ancestry.
        let added = vec![entity(r#"LegalEntity::"LE-1""#, &[])];
        assert!(!already_closed(&store, &uids, &d, &added));
        assert!(same_as_cedar(&store, &uids, &d, added));
    }

    #[test]
    fn an_added_ancestor_missing_its_own_ancestor_falls_back() {
        let (store, uids, d) = base();
        // f in g, g in h: f lacks h, which only the added g names.
        let added = vec![
            entity(r#"Folder::"f""#, &[r#"Folder::"g""#]),
            entity(r#"Folder::"g""#, &[r#"Folder::"h""#]),
        ];
        assert!(!already_closed(&store, &uids, &d, &added));
        assert!(same_as_cedar(&store, &uids, &d, added));
    }

    mod property {
        use proptest::prelude::*;

        use super::*;

        /// Six entities `T::"0"` … `T::"5"` of two types; each edge points to a higher number, so
        /// every graph is a DAG, as Cedar requires.
        fn node(i: usize) -> String {
            format!(r#"{}::"{i}""#, ["A", "B"][i % 2])
        }

        /// Who is shared, who is added and with which parents (edges i → j for j > i only).
        fn case() -> impl Strategy<Value = (Vec<bool>, Vec<bool>, Vec<Vec<bool>>)> {
            (
                prop::collection::vec(any::<bool>(), 6),
                prop::collection::vec(any::<bool>(), 6),
                prop::collection::vec(prop::collection::vec(any::<bool>(), 6), 6),
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever the graph, cycles and self-loops included, [`closed`] gives what Cedar's
            /// `from_entities` gives: the same store, or an error where Cedar errs.
            #[test]
            fn closed_equals_cedars_from_entities(present in prop::collection::vec(any::<bool>(), 6), edges in prop::collection::vec(prop::collection::vec(0..12u8, 6), 6)) {
                // An edge i -> j when edges[i][j] is 0 (one in twelve), any j, itself included.
                let entities: Vec<Entity> = (0..6)
                    .filter(|&i| present[i])
                    .map(|i| {
                        let parents = (0..6).filter(|&j| edges[i][j] == 0).map(|j| uid(&node(j))).collect();
                        Entity::new_no_attrs(uid(&node(i)), parents)
                    })
                    .collect();
                let ours = closed(entities.clone());
                let cedar = Entities::from_entities(entities, None).map_err(|e| e.to_string());
                match (ours, cedar) {
                    (Ok(o), Ok(c)) => prop_assert!(ancestry(&o) == ancestry(&c) && o == c),
                    (Err(o), Err(c)) => prop_assert_eq!(o, c),
                    (o, c) => prop_assert!(false, "ours {:?}, Cedar's {:?}", o.is_ok(), c.is_ok()),
                }
            }

            /// Whatever the graph, adding through [`extend`] gives the store Cedar's own upsert
            /// gives (ancestors of every entity, and the entities themselves). Added entities either
            /// carry only their parents or, as snapshot entities do, their closure so far.
            #[test]
            fn extend_equals_cedars_upsert((shared_mask, added_mask, edges) in case(), closed in any::<bool>()) {
                let parents = |i: usize| -> Vec<String> {
                    (i + 1..6).filter(|&j| edges[i][j]).map(node).collect()
                };
                let make = |i: usize, with_closure: bool| {
                    let mut ps: HashSet<EntityUid> = parents(i).iter().map(|p| uid(p)).collect();
                    if with_closure {
                        // Walk the whole graph's edges: the closure a snapshot entity carries.
                        let mut stack: Vec<usize> = (i + 1..6).filter(|&j| edges[i][j]).collect();
                        while let Some(j) = stack.pop() {
                            ps.insert(uid(&node(j)));
                            stack.extend((j + 1..6).filter(|&k| edges[j][k]));
                        }
                    }
                    Entity::new_no_attrs(uid(&node(i)), ps)
                };
                let shared_entities: Vec<Entity> = (0..6).filter(|&i| shared_mask[i]).map(|i| make(i, false)).collect();
                let added: Vec<Entity> = (0..6).filter(|&i| added_mask[i]).map(|i| make(i, closed)).collect();
                let (store, uids, d) = shared(shared_entities);
                prop_assert!(same_as_cedar(&store, &uids, &d, added));
            }
        }
    }
}
