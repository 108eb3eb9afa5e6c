//! Business on Behalf off: `examples/policies/no-switching.cedar` beside the shipped policies. For
//! `selectLegalEntity`, `context.legalEntity` is the presented token's entity (absent at login), so
//! the policy lets a session pick its first entity and keep it, and forbids switching. Checked with
//! `legate test` on the example's case file and end to end through `/v1/token/refresh`.

use std::path::{Path, PathBuf};

use crate::common::{self, TestApp};
use reqwest::StatusCode;
use serde_json::json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A policy directory: the shipped policies, schema and entities, the example's case file in
/// `tests/`, and the example policy when `with_policy`.
fn policy_dir(with_policy: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(root().join("policies")).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    let example = root().join("examples/policies");
    if with_policy {
        std::fs::copy(
            example.join("no-switching.cedar"),
            dir.path().join("no-switching.cedar"),
        )
        .unwrap();
    }
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::copy(
        example.join("tests/no-switching.toml"),
        dir.path().join("tests/no-switching.toml"),
    )
    .unwrap();
    dir
}

fn legate_test(dir: &Path) -> (bool, String) {
    let out = common::process::legate()
        .arg("test")
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_example_case_file_passes_with_the_policy_and_fails_without_it() {
    let (ok, out) = legate_test(policy_dir(true).path());
    assert!(ok, "{out}");
    assert!(out.contains("4 passed, 0 failed"), "{out}");
    let (ok, out) = legate_test(policy_dir(false).path());
    assert!(
        !ok,
        "without no-switching.cedar switching is allowed:\n{out}"
    );
    assert!(
        out.contains("switching to another assigned entity is forbidden"),
        "{out}"
    );
}

#[tokio::test]
async fn with_no_switching_a_session_keeps_its_first_entity() {
    let app = TestApp::spawn().await;
    std::fs::copy(
        root().join("examples/policies/no-switching.cedar"),
        app.policy_dir().join("no-switching.cedar"),
    )
    .unwrap();
    app.state.policies.reload().unwrap();
    // Login without an entity: C-1's default LE-1 (no entity in the presented token yet).
    let idp = app.token("C-1", None);
    let (s, _, login) = app.post("/v1/token/refresh", Some(&idp), &json!({})).await;
    assert_eq!(s, StatusCode::OK, "{login}");
    assert_eq!(login["legal_entity_id"], "LE-1");
    let rt = login["refresh_token"].as_str().unwrap();
    // Switching to LE-2, to which C-1 is assigned, is now forbidden; nothing is issued and the
    // refresh token stays usable.
    let (s, _, b) = app
        .post(
            "/v1/token/refresh",
            None,
            &json!({"refresh_token": rt, "legal_entity_id": "LE-2"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "legal_entity_not_assigned");
    let (s, _, b) = app
        .post("/v1/token/refresh", None, &json!({"refresh_token": rt}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["legal_entity_id"], "LE-1");
    // An identity-provider token that already names LE-1 cannot be exchanged for LE-2 either.
    let (s, _, _) = app
        .post(
            "/v1/token/refresh",
            Some(&app.token("C-1", Some("LE-1"))),
            &json!({"legal_entity_id": "LE-2"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.stop().await;
}
