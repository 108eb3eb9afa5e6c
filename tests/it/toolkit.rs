//! The policy author's toolkit through the real binary: `legate validate`, `legate test` (including
//! the shipped suites in `policies/tests/`, so CI runs them) and `legate authorize`, with their
//! output and exit codes.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// Runs `legate ARGS` from an empty directory (so no `legate.toml` is picked up).
fn legate(args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_legate"))
        .args(args)
        .current_dir(cwd.path())
        .env_remove("LEGATE_LOG")
        .output()
        .expect("legate runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A copy of the shipped policy directory, tests included.
fn copy_of_shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shipped(), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn validate_accepts_the_shipped_policies() {
    let out = legate(&["validate", shipped().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("5 policies valid"), "{stdout}");
}

#[test]
fn validate_prints_file_line_column_and_the_offending_text_and_fails() {
    let dir = copy_of_shipped();
    std::fs::write(
        dir.path().join("extra.cedar"),
        "// a typo in an attribute name\n@id(\"typo\")\npermit (principal, action == Shop::Action::\"viewOrder\", resource is Shop::Order)\nwhen { resource.ownr == principal };\n",
    )
    .unwrap();
    let out = legate(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let file = dir.path().join("extra.cedar").display().to_string();
    assert!(stderr.contains(&format!("{file}:4:")), "{stderr}");
    assert!(stderr.contains("ownr"), "{stderr}");
    assert!(
        stderr.contains("| when { resource.ownr == principal };"),
        "{stderr}"
    );
}

#[test]
fn validate_reports_a_syntax_error_with_its_position() {
    let dir = copy_of_shipped();
    std::fs::write(
        dir.path().join("orders.cedar"),
        "permit (principal, action, resource)\nwhen { principal == };\n",
    )
    .unwrap();
    let out = legate(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("orders.cedar:2:21: "), "{stderr}");
}

#[test]
fn the_shipped_policy_tests_pass() {
    let out = legate(&["test", shipped().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    let (passed, failed) = last
        .strip_suffix(" failed")
        .and_then(|l| l.split_once(" passed, "))
        .unwrap_or_else(|| panic!("no summary line: {stdout}"));
    assert_eq!(failed, "0");
    assert!(passed.parse::<usize>().unwrap() >= 10, "{stdout}");
}

#[test]
fn the_shipped_tests_cover_every_shipped_policy_both_ways() {
    assert_covered_both_ways(&shipped());
}

/// Every permit of `dir` is named by an allow case, with a deny case of the same action on the same
/// resource type; every forbid is named by a deny case, with an allow case of the same kind.
fn assert_covered_both_ways(dir: &Path) {
    use legate::testing::toolkit::Expect;
    let snapshot = legate::testing::policy::load(dir, "Shop").unwrap();
    let mut cases = Vec::new();
    for e in std::fs::read_dir(dir.join("tests")).unwrap() {
        let suite = legate::testing::toolkit::read_suite(&e.unwrap().path()).unwrap();
        cases.extend(suite.cases);
    }
    for p in snapshot.files() {
        let forbid = snapshot.forbids().iter().any(|f| f.to_string() == p.id);
        let (decides, other) = if forbid {
            (Expect::Deny, Expect::Allow)
        } else {
            (Expect::Allow, Expect::Deny)
        };
        // A case this policy decides...
        let decided: Vec<_> = cases
            .iter()
            .filter(|c| c.expect == decides)
            .filter(|c| c.policies.as_ref().is_some_and(|ps| ps.contains(&p.id)))
            .collect();
        assert!(!decided.is_empty(), "no {decides:?} case names {}", p.id);
        // ...and the other answer for the same action on the same resource type.
        for a in decided {
            assert!(
                cases.iter().any(|c| c.expect == other
                    && c.action == a.action
                    && c.resource.kind == a.resource.kind),
                "no {other:?} case for {} {} (policy {})",
                a.action,
                a.resource.kind,
                p.id
            );
        }
    }
}

#[test]
fn a_wrong_expectation_fails_the_run_and_says_why() {
    let dir = copy_of_shipped();
    let path = dir.path().join("tests/products.toml");
    let suite = std::fs::read_to_string(&path).unwrap();
    // The first case (a public product) expects allow; claim it is denied.
    std::fs::write(
        &path,
        suite.replacen("expect = \"allow\"", "expect = \"deny\"", 1),
    )
    .unwrap();
    let out = legate(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAIL tests/products.toml: \"a product with no segments is visible to anyone\": expected deny, got allow (determining policies: [public-products])"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap();
    assert!(last.ends_with(" passed, 1 failed"), "{stdout}");
}

#[test]
fn test_fails_when_the_policies_do_not_load_or_there_are_no_tests() {
    let dir = copy_of_shipped();
    std::fs::remove_dir_all(dir.path().join("tests")).unwrap();
    let out = legate(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no test files"));

    let dir = copy_of_shipped();
    std::fs::write(dir.path().join("orders.cedar"), "permit (").unwrap();
    let out = legate(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("orders.cedar:1:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn authorize_prints_the_decision_and_exits_by_it() {
    let policies = shipped();
    let p = policies.to_str().unwrap();
    let order = r#"{"type": "Order", "id": "O-1", "attrs": {"owner": {"type": "Customer", "id": "C-2"},
                   "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}"#;
    let out = legate(&[
        "authorize",
        "--policies",
        p,
        "--customer",
        "C-1",
        "--legal-entity",
        "LE-1",
        "--action",
        "viewOrder",
        "--resource",
        order,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("allow\n"), "{stdout}");
    assert!(
        stdout.contains("determining policies: entity-orders"),
        "{stdout}"
    );

    // The same order with another entity selected: deny, exit 1; JSON as /v1/authorize answers.
    let out = legate(&[
        "authorize",
        "--policies",
        p,
        "--customer",
        "C-1",
        "--legal-entity",
        "LE-2",
        "--action",
        "viewOrder",
        "--resource",
        order,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"decision": "deny", "policies": [], "errors": [],
                           "principal": "C-1", "legal_entity_id": "LE-2"})
    );

    // A check the schema refuses: exit 2 with the reason.
    let out = legate(&[
        "authorize",
        "--policies",
        p,
        "--customer",
        "C-1",
        "--action",
        "eatOrder",
        "--resource",
        order,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown action \"eatOrder\""));
}

#[test]
fn authorize_takes_extra_entities_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let entities = dir.path().join("extra.json");
    std::fs::write(
        &entities,
        r#"[{"type": "Customer", "id": "C-7", "parents": [{"type": "LegalEntity", "id": "LE-3"}]}]"#,
    )
    .unwrap();
    let args = |extra: bool| {
        let mut a = vec![
            "authorize".to_string(),
            "--policies".into(),
            shipped().display().to_string(),
            "--sub".into(),
            "C-7".into(),
            "--action".into(),
            "selectLegalEntity".into(),
            "--resource".into(),
            r#"{"type": "LegalEntity", "id": "LE-3"}"#.into(),
        ];
        if extra {
            a.push("--entities".into());
            a.push(entities.display().to_string());
        }
        a
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        legate(&refs)
    };
    assert_eq!(run(args(false)).status.code(), Some(1));
    let out = run(args(true));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("select-assigned-entity"));
}

fn b2b() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/b2b/policies")
}

#[test]
fn validate_accepts_the_b2b_pack() {
    let out = legate(&["validate", b2b().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("13 policies valid"), "{stdout}");
}

#[test]
fn the_b2b_pack_passes_its_suites_with_at_least_forty_cases() {
    let out = legate(&["test", b2b().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let passed: usize = stdout
        .lines()
        .find_map(|l| l.strip_suffix(" passed, 0 failed"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {stdout}"));
    assert!(passed >= 40, "{passed} cases: {stdout}");
}

#[test]
fn the_b2b_tests_cover_every_b2b_policy_both_ways() {
    assert_covered_both_ways(&b2b());
}

#[test]
fn legate_plan_on_the_b2b_pack_uses_the_roles_of_the_selected_entity() {
    let dir = b2b();
    let plan = |claims: &str, action: &str| -> serde_json::Value {
        let out = legate(&[
            "plan",
            dir.to_str().unwrap(),
            "--claims",
            claims,
            "--action",
            action,
            "--type",
            "Order",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Carla is approver in LE-ACME-DE and requester in LE-ACME-FR.
    let de = plan(
        r#"{"sub":"C-CARLA","legalEntityId":"LE-ACME-DE"}"#,
        "approveOrder",
    );
    assert_eq!(de["kind"], "conditional", "{de}");
    assert_eq!(
        de["policies"],
        serde_json::json!(["b2b-approve-entity-orders"])
    );
    let fr = plan(
        r#"{"sub":"C-CARLA","legalEntityId":"LE-ACME-FR"}"#,
        "approveOrder",
    );
    assert_eq!(fr["kind"], "always_denied", "{fr}");
    // The parent's admin: the filter lists the whole hierarchy below LE-ACME.
    let anna = plan(
        r#"{"sub":"C-ANNA","legalEntityId":"LE-ACME"}"#,
        "listOrders",
    );
    let filter = anna["filter"].to_string();
    for le in ["LE-ACME-DE", "LE-ACME-DE-B", "LE-ACME-FR"] {
        assert!(filter.contains(le), "{anna}");
    }
    assert!(!filter.contains("LE-GLOBEX"), "{anna}");
}
