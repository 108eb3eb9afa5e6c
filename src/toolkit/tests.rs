//! Suite files against the shipped policies: passes, wrong expectations, entity overrides, formats.

use super::suite::{read_suite, run_suite, Report, SuiteFile};
use super::*;

fn snapshot() -> Arc<Snapshot> {
    Arc::new(crate::policy::shipped())
}

fn names() -> ClaimNames {
    ClaimNames {
        customer: "sub".into(),
        legal_entity: "legalEntityId".into(),
    }
}

fn run_toml(text: &str) -> Report {
    let suite: SuiteFile = toml::from_str(text).unwrap();
    let mut report = Report::default();
    run_suite(&snapshot(), &names(), "tests/t.toml", &suite, &mut report);
    report
}

const OWN_ORDER: &str = r#"
[[case]]
name = "own order"
action = "viewOrder"
expect = "allow"
policies = ["own-orders"]
claims = { sub = "C-1" }
[case.resource]
type = "Order"
id = "O-1"
attrs.owner = { type = "Customer", id = "C-1" }
"#;

#[test]
fn a_case_that_gets_what_it_expects_passes() {
    let r = run_toml(OWN_ORDER);
    assert_eq!(r.passed, vec!["tests/t.toml: own order"]);
    assert!(r.failures.is_empty(), "{:?}", r.failures);
}

#[test]
fn a_wrong_decision_fails_and_says_what_decided() {
    let r = run_toml(&OWN_ORDER.replace("expect = \"allow\"", "expect = \"deny\""));
    assert!(r.passed.is_empty());
    let f = &r.failures[0];
    assert_eq!(f.case.as_deref(), Some("own order"));
    assert!(
        f.why.contains("expected deny, got allow") && f.why.contains("own-orders"),
        "{}",
        f.why
    );
}

#[test]
fn the_right_decision_by_the_wrong_policy_fails() {
    let r = run_toml(&OWN_ORDER.replace("[\"own-orders\"]", "[\"entity-orders\"]"));
    let why = &r.failures[0].why;
    assert!(
        why.contains("expected determining policies [entity-orders], got [own-orders]"),
        "{why}"
    );
}

#[test]
fn case_entities_override_the_entity_data() {
    // C-2 is assigned to LE-3 only; the case assigns it to LE-1 as well.
    let text = r#"
[[case]]
name = "assigned for this case"
action = "selectLegalEntity"
expect = "allow"
claims = { sub = "C-2" }
resource = { type = "LegalEntity", id = "LE-1" }
[[case.entities]]
type = "Customer"
id = "C-2"
parents = [{ type = "LegalEntity", id = "LE-1" }]

[[case]]
name = "not assigned otherwise"
action = "selectLegalEntity"
expect = "deny"
claims = { sub = "C-2" }
resource = { type = "LegalEntity", id = "LE-1" }
"#;
    let r = run_toml(text);
    assert_eq!(r.passed.len(), 2, "{:?}", r.failures);
}

#[test]
fn file_entities_apply_to_every_case() {
    let text = r#"
[[entities]]
type = "LegalEntity"
id = "LE-9"
attrs.segments = [{ type = "Segment", id = "retail" }]
[[entities]]
type = "Customer"
id = "C-9"
parents = [{ type = "LegalEntity", id = "LE-9" }]

[[case]]
name = "retail product for a retail entity"
action = "viewProduct"
expect = "allow"
policies = ["segment-products"]
claims = { sub = "C-9", legalEntityId = "LE-9" }
resource = { type = "Product", id = "P-1", attrs = { segments = [{ type = "Segment", id = "retail" }] } }
"#;
    let r = run_toml(text);
    assert_eq!(r.passed.len(), 1, "{:?}", r.failures);
}

#[test]
fn an_invalid_check_is_a_failure_not_a_deny() {
    let r = run_toml(&OWN_ORDER.replace("viewOrder", "eatOrder"));
    assert!(
        r.failures[0].why.contains("the check is invalid"),
        "{:?}",
        r.failures
    );
}

#[test]
fn claims_without_the_customer_fail_the_case() {
    let r = run_toml(&OWN_ORDER.replace("{ sub = \"C-1\" }", "{ user = \"C-1\" }"));
    assert!(r.failures[0].why.contains("`sub`"), "{:?}", r.failures);
}

#[test]
fn json_suites_have_the_same_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    std::fs::write(
        &path,
        r#"{"cases": [{"name": "public", "action": "viewProduct", "expect": "allow",
             "claims": {"sub": "C-404"},
             "resource": {"type": "Product", "id": "P-1", "attrs": {"segments": []}}}]}"#,
    )
    .unwrap();
    let suite = read_suite(&path).unwrap();
    let mut report = Report::default();
    run_suite(&snapshot(), &names(), "tests/t.json", &suite, &mut report);
    assert_eq!(report.passed.len(), 1, "{:?}", report.failures);
}

#[test]
fn unknown_keys_in_a_suite_are_reported_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, OWN_ORDER.replace("expect =", "expected =")).unwrap();
    let err = read_suite(&path).unwrap_err();
    assert!(err.contains("expected") && err.contains("line"), "{err}");
}
