//! Building Cedar requests from checks against the shipped policies.

use serde_json::json;

use super::*;
use crate::entities::FileSource;
use crate::policy::{evaluate, shipped as snapshot, Snapshot};

fn principal(customer: &str, le: Option<&str>) -> VerifiedToken {
    VerifiedToken::for_test(customer, le)
}

fn check(v: Value) -> Check {
    serde_json::from_value(v).unwrap()
}

fn decide(s: &Snapshot, p: &VerifiedToken, c: Value) -> crate::decision::Decision {
    let a = FileSource::lookup(s, &p.customer);
    let (req, entities) = build(s, &p.into(), Some(&a), &check(c)).unwrap();
    evaluate(s, &req, &entities)
}

#[test]
fn short_and_qualified_type_names_are_the_same() {
    let s = snapshot();
    let p = principal("C-1", None);
    for t in ["Order", "Shop::Order"] {
        let d = decide(
            &s,
            &p,
            json!({"action": "viewOrder", "resource": {"type": t, "id": "O-1",
            "attrs": {"owner": {"type": "Customer", "id": "C-1"}}}}),
        );
        assert!(d.allow, "{t}: {d:?}");
        assert_eq!(d.policies, ["own-orders"]);
    }
}

#[test]
fn legal_entity_comes_from_the_token_and_assignments_from_entity_data() {
    let s = snapshot();
    let order = json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O-9",
        "attrs": {"owner": {"type": "Customer", "id": "C-2"}, "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}});
    assert!(decide(&s, &principal("C-1", Some("LE-1")), order.clone()).allow);
    assert!(!decide(&s, &principal("C-1", Some("LE-2")), order.clone()).allow);
    // C-3 claims LE-1 in its token but is not assigned to it.
    assert!(!decide(&s, &principal("C-3", Some("LE-1")), order).allow);
}

#[test]
fn caller_context_may_not_set_the_legal_entity() {
    let s = snapshot();
    let c = check(
        json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O"},
        "context": {"legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}),
    );
    assert!(matches!(
        build(&s, &(&principal("C-1", None)).into(), None, &c),
        Err(Error::ContextLegalEntity)
    ));
}

#[test]
fn schema_errors_are_the_callers() {
    let s = snapshot();
    let p = principal("C-1", None);
    let unknown_action = check(json!({"action": "fly", "resource": {"type": "Order", "id": "O"}}));
    assert!(matches!(
        build(&s, &(&p).into(), None, &unknown_action),
        Err(Error::UnknownAction(_))
    ));
    let unknown_type =
        check(json!({"action": "viewOrder", "resource": {"type": "Ship", "id": "O"}}));
    assert!(matches!(
        build(&s, &(&p).into(), None, &unknown_type),
        Err(Error::UnknownType(_))
    ));
    let wrong_attr = check(
        json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O",
        "attrs": {"owner": "C-1"}}}),
    );
    assert!(matches!(
        build(&s, &(&p).into(), None, &wrong_attr),
        Err(Error::Attributes(_))
    ));
    let wrong_resource = check(
        json!({"action": "viewOrder", "resource": {"type": "Product", "id": "P",
        "attrs": {"segments": []}}}),
    );
    assert!(matches!(
        build(&s, &(&p).into(), None, &wrong_resource),
        Err(Error::Request(_))
    ));
    let undeclared_context = check(
        json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O"},
        "context": {"channel": "web"}}),
    );
    assert!(matches!(
        build(&s, &(&p).into(), None, &undeclared_context),
        Err(Error::Context(_))
    ));
}

#[test]
fn a_resource_given_by_reference_is_looked_up() {
    let s = snapshot();
    let select = |le: &str| json!({"action": "selectLegalEntity", "resource": {"type": "LegalEntity", "id": le}});
    let p = principal("C-1", None);
    assert!(decide(&s, &p, select("LE-2")).allow);
    assert!(!decide(&s, &p, select("LE-3")).allow);
    assert!(!decide(&s, &p, select("LE-404")).allow);
}

#[test]
fn claims_fill_declared_principal_attributes() {
    let extra: cedar_policy::PolicySet = "@id(\"staff\")\npermit (principal, action == Shop::Action::\"cancelOrder\", resource)\nwhen { principal has email && principal.email like \"*@acme.example\" };"
        .parse()
        .unwrap();
    let extra: cedar_policy::PolicySet = cedar_policy::PolicySet::from_policies(
        extra
            .policies()
            .map(|p| p.new_id(cedar_policy::PolicyId::new("staff"))),
    )
    .unwrap();
    let s = snapshot().with_policies(&extra);
    let mut p = principal("C-1", None);
    let cancel = json!({"action": "cancelOrder", "resource": {"type": "Order", "id": "O",
        "attrs": {"owner": {"type": "Customer", "id": "C-2"}}}});
    assert!(!decide(&s, &p, cancel.clone()).allow);
    p.claims.insert("email".into(), json!("ann@acme.example"));
    assert!(decide(&s, &p, cancel.clone()).allow);
    // A claim of the wrong type is not mapped.
    p.claims.insert("email".into(), json!(42));
    assert!(!decide(&s, &p, cancel).allow);
}

#[test]
fn assignments_come_from_the_entity_source_and_none_fails_closed() {
    let s = snapshot();
    // C-3 is unknown to entities.json; the source says it is assigned to LE-1.
    let p = principal("C-3", Some("LE-1"));
    let order = check(
        json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O-9",
        "attrs": {"owner": {"type": "Customer", "id": "C-2"}, "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}}),
    );
    let le1: cedar_policy::EntityUid = r#"Shop::LegalEntity::"LE-1""#.parse().unwrap();
    let from_source = crate::entities::Assignments {
        parents: vec![le1],
        entities: Vec::new(),
        default: None,
        roles: Default::default(),
    };
    let (req, entities) = build(&s, &(&p).into(), Some(&from_source), &order).unwrap();
    assert!(evaluate(&s, &req, &entities).allow);
    // C-1 is assigned to LE-1 in entities.json, but without the source's answer nothing is assumed.
    let p1 = principal("C-1", Some("LE-1"));
    let (req, entities) = build(&s, &(&p1).into(), None, &order).unwrap();
    assert!(!evaluate(&s, &req, &entities).allow);
}

/// The B2B pack (`examples/b2b/policies`), whose contexts declare `roles`.
fn b2b() -> Snapshot {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/b2b/policies");
    crate::policy::load(&dir, "Shop").expect("the b2b pack loads")
}

fn b2b_order(owner: &str, le: &str) -> Value {
    json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O-1", "attrs": {
        "owner": {"type": "Customer", "id": owner}, "legalEntity": {"type": "LegalEntity", "id": le},
        "total": 5000, "status": "open"}}})
}

#[test]
fn roles_reach_the_context_only_for_the_selected_assigned_entity() {
    let s = b2b();
    // Carla is approver in LE-ACME-DE and requester in LE-ACME-FR (tags in entities.json).
    let order = b2b_order("C-BEN", "LE-ACME-DE");
    let d = decide(&s, &principal("C-CARLA", Some("LE-ACME-DE")), order.clone());
    assert!(d.allow, "{d:?}");
    assert_eq!(d.policies, ["b2b-entity-orders"]);
    assert!(!decide(&s, &principal("C-CARLA", Some("LE-ACME-FR")), order.clone()).allow);
    assert!(!decide(&s, &principal("C-CARLA", None), order.clone()).allow);
    // The source could not answer: no roles.
    let p = principal("C-CARLA", Some("LE-ACME-DE"));
    let (req, entities) = build(&s, &(&p).into(), None, &check(order.clone())).unwrap();
    assert!(!evaluate(&s, &req, &entities).allow);
    // Roles for an entity the customer is not assigned to count for nothing.
    let de: EntityUid = r#"Shop::LegalEntity::"LE-ACME-DE""#.parse().unwrap();
    let unassigned = crate::entities::Assignments {
        parents: vec![de],
        roles: [("LE-ACME-FR".to_string(), vec!["approver".to_string()])].into(),
        ..Default::default()
    };
    let p = principal("C-X", Some("LE-ACME-FR"));
    let fr_order = b2b_order("C-BEN", "LE-ACME-FR");
    let (req, entities) = build(&s, &(&p).into(), Some(&unassigned), &check(fr_order)).unwrap();
    assert!(!evaluate(&s, &req, &entities).allow);
}

#[test]
fn roles_are_added_beside_the_callers_context_keys() {
    let s = b2b();
    let place = |total: i64| {
        json!({"action": "placeOrder", "context": {"total": total}, "resource": {"type": "Cart",
        "id": "K-1", "attrs": {"owner": {"type": "Customer", "id": "C-BEN"},
        "legalEntity": {"type": "LegalEntity", "id": "LE-ACME-DE"}}}})
    };
    let ben = principal("C-BEN", Some("LE-ACME-DE"));
    assert!(decide(&s, &ben, place(100_000)).allow);
    assert!(!decide(&s, &ben, place(100_001)).allow);
    // Dan is requester there, not buyer.
    assert!(!decide(&s, &principal("C-DAN", Some("LE-ACME-DE")), place(1)).allow);
}

#[test]
fn caller_context_may_not_set_roles() {
    for s in [snapshot(), b2b()] {
        let p = principal("C-1", Some("LE-1"));
        let a = FileSource::lookup(&s, &p.customer);
        let c = check(
            json!({"action": "viewOrder", "context": {"roles": ["admin"]},
            "resource": {"type": "Order", "id": "O-1"}}),
        );
        assert!(matches!(
            build(&s, &(&p).into(), Some(&a), &c),
            Err(Error::ContextRoles)
        ));
    }
}

/// A schema where `approve` declares `roles` and `view` does not, and a customer who is a buyer in
/// LE-1: one decider asked both, in either order, builds each check's context as a fresh build
/// does (the context of checks without keys of their own is built once per kind and reused).
#[test]
fn a_decider_reuses_the_right_context_for_actions_with_and_without_roles() {
    let schema = r#"namespace Shop {
        entity LegalEntity;
        entity Customer in [LegalEntity] tags Set<String>;
        entity Order { legalEntity: LegalEntity };
        action approve appliesTo { principal: Customer, resource: Order,
            context: { legalEntity?: LegalEntity, roles: Set<String> } };
        action view appliesTo { principal: Customer, resource: Order,
            context: { legalEntity?: LegalEntity } };
    }"#;
    let policies = vec![(
        "p.cedar".to_string(),
        r#"@id("buyers-approve")
        permit (principal, action == Shop::Action::"approve", resource)
        when { context.roles.contains("buyer") };
        @id("members-view")
        permit (principal, action == Shop::Action::"view", resource)
        when { context has legalEntity && principal in context.legalEntity };"#
            .to_string(),
    )];
    let entities = r#"[
        {"uid": {"type": "Shop::LegalEntity", "id": "LE-1"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Shop::Customer", "id": "C-1"}, "attrs": {},
         "parents": [{"type": "Shop::LegalEntity", "id": "LE-1"}], "tags": {"LE-1": ["buyer"]}}
    ]"#;
    let s =
        crate::policy::from_texts(schema, &policies, Some(entities), "Shop", "t".into()).unwrap();
    let p = principal("C-1", Some("LE-1"));
    let a = FileSource::lookup(&s, &p.customer);
    let order = |action: &str| {
        check(
            json!({"action": action, "resource": {"type": "Order", "id": "O-1",
            "attrs": {"legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}}),
        )
    };
    for order_of_asking in [["approve", "view"], ["view", "approve"]] {
        let base = Base::new(&s, &(&p).into(), Some(&a)).unwrap();
        for action in order_of_asking.iter().chain(&order_of_asking) {
            let (req, entities) = base.build(&s, &order(action)).unwrap();
            let (fresh, _) = build(&s, &(&p).into(), Some(&a), &order(action)).unwrap();
            assert_eq!(
                format!("{:?}", req.context()),
                format!("{:?}", fresh.context()),
                "{action} after {order_of_asking:?}"
            );
            let d = evaluate(&s, &req, &entities);
            assert!(d.allow && d.errors.is_empty(), "{action}: {d:?}");
        }
    }
}
