//! Loading the shipped policies and broken copies of them.
use super::*;
use crate::policy::{shipped_dir as shipped, ClaimType, PolicyStore};

fn copy_of_shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn shipped_policies_load_with_their_ids() {
    let s = load(&shipped(), "Shop").unwrap();
    let ids: Vec<&str> = s.files.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "entity-orders",
            "own-orders",
            "public-products",
            "segment-products",
            "select-assigned-entity"
        ]
    );
    assert_eq!(s.hash.len(), 64);
    assert!(s.actions.contains_key("selectLegalEntity"));
    assert_eq!(s.customer_attrs.get("email"), Some(&ClaimType::String));
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let dir = copy_of_shipped();
    std::fs::write(
        dir.path().join("broken.cedar"),
        "// c\npermit (principal, action, resource)\nwhen { principal.email == };\n",
    )
    .unwrap();
    let err = load(dir.path(), "Shop").unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.file, "broken.cedar");
    assert_eq!(p.line, Some(3), "{err}");
    assert!(p.column.is_some());
}

#[test]
fn a_type_error_is_found_by_strict_validation_with_its_line() {
    let dir = copy_of_shipped();
    std::fs::write(
        dir.path().join("typo.cedar"),
        "@id(\"typo\")\npermit (principal, action == Shop::Action::\"viewOrder\", resource is Shop::Order)\nwhen {\n  resource.ownr == principal\n};\n",
    )
    .unwrap();
    let err = load(dir.path(), "Shop").unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.file, "typo.cedar", "{err}");
    assert_eq!(p.line, Some(4), "{err}");
    assert!(p.message.contains("ownr"), "{err}");
}

#[test]
fn duplicate_ids_across_files_are_refused() {
    let dir = copy_of_shipped();
    std::fs::write(
        dir.path().join("dup.cedar"),
        "@id(\"own-orders\")\npermit (principal, action, resource) when { false };\n",
    )
    .unwrap();
    let err = load(dir.path(), "Shop").unwrap_err();
    assert!(err.to_string().contains("also used in"), "{err}");
}

#[test]
fn an_empty_directory_is_an_error_not_an_empty_set() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        shipped().join("schema.cedarschema"),
        dir.path().join("schema.cedarschema"),
    )
    .unwrap();
    let err = load(dir.path(), "Shop").unwrap_err();
    assert!(err.to_string().contains("no *.cedar"), "{err}");
}

#[test]
fn dot_entries_are_skipped_and_subdirectories_read() {
    let dir = copy_of_shipped();
    std::fs::create_dir(dir.path().join(".hidden")).unwrap();
    std::fs::write(dir.path().join(".hidden/bad.cedar"), "nonsense").unwrap();
    std::fs::create_dir(dir.path().join("extra")).unwrap();
    std::fs::write(
        dir.path().join("extra/more.cedar"),
        "@id(\"more\")\nforbid (principal, action == Shop::Action::\"cancelOrder\", resource);\n",
    )
    .unwrap();
    let s = load(dir.path(), "Shop").unwrap();
    assert!(s
        .files
        .iter()
        .any(|p| p.id == "more" && p.file == "extra/more.cedar"));
    assert!(s.forbids.contains(&cedar_policy::PolicyId::new("more")));
}

#[test]
fn reload_keeps_the_old_set_when_the_new_one_is_invalid() {
    let dir = copy_of_shipped();
    let store = PolicyStore::open(dir.path().to_path_buf(), "Shop").unwrap();
    let before = store.snapshot().hash.clone();
    std::fs::write(dir.path().join("orders.cedar"), "permit (").unwrap();
    assert!(store.reload().is_err());
    assert_eq!(store.snapshot().hash, before);
    let status = store.last_reload().unwrap();
    assert!(!status.ok);
    assert!(status.error.unwrap().contains("orders.cedar"));
}

#[test]
fn duplicate_ids_point_at_the_second_annotation() {
    let dir = copy_of_shipped();
    std::fs::write(
        dir.path().join("zz.cedar"),
        "// again\n\n@id(\"own-orders\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    let err = load(dir.path(), "Shop").unwrap_err();
    let p = &err.problems[0];
    assert_eq!(
        (p.file.as_str(), p.line, p.column),
        ("zz.cedar", Some(3), Some(1)),
        "{err}"
    );
    assert_eq!(p.snippet.as_deref(), Some("@id(\"own-orders\")"));
}

#[test]
fn entity_data_errors_point_at_the_entity_or_the_json_position() {
    let dir = copy_of_shipped();
    let path = dir.path().join(ENTITIES_FILE);
    let good = std::fs::read_to_string(&path).unwrap();
    let bad_attr = good.replace(
        "\"name\": \"Globex Corp\"",
        "\"name\": \"Globex Corp\", \"colour\": 1",
    );
    std::fs::write(&path, &bad_attr).unwrap();
    let err = load(dir.path(), "Shop").unwrap_err();
    let p = &err.problems[0];
    assert!(p.message.contains("colour"), "{err}");
    let snippet = p.snippet.as_deref().unwrap_or_default();
    assert!(snippet.contains("\"LE-3\""), "{err}");

    std::fs::write(&path, good.replacen('[', "[,", 1)).unwrap();
    let err = load(dir.path(), "Shop").unwrap_err();
    assert_eq!(err.problems[0].line, Some(1), "{err}");
    assert!(err.problems[0].column.is_some(), "{err}");
}

#[test]
fn fingerprint_matches_the_snapshot_hash_and_follows_every_file() {
    let dir = copy_of_shipped();
    let hash = load(dir.path(), "Shop").unwrap().hash;
    assert_eq!(fingerprint(dir.path()).unwrap(), hash);
    for file in [
        "orders.cedar",
        SCHEMA_FILE,
        ENTITIES_FILE,
        "legal_entities.cedar",
    ] {
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}\n")).unwrap();
        let changed = fingerprint(dir.path()).unwrap();
        assert_ne!(changed, hash, "{file}");
        assert_eq!(changed, load(dir.path(), "Shop").unwrap().hash, "{file}");
        std::fs::write(&path, text).unwrap();
    }
    assert_eq!(fingerprint(dir.path()).unwrap(), hash);
}

#[test]
fn a_configmap_layout_loads_through_its_links_only() {
    // kubelet's layout: files in a timestamped dir, `..data` -> it, top-level links via `..data`.
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("..2026_11_21_10_00_00.000000001");
    std::fs::create_dir(&ts).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(shipped()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), ts.join(entry.file_name())).unwrap();
            names.push(entry.file_name().to_string_lossy().to_string());
        }
    }
    std::os::unix::fs::symlink(
        ts.file_name().unwrap(),
        dir.path().join(CONFIGMAP_DATA_LINK),
    )
    .unwrap();
    for name in &names {
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.path().join(name)).unwrap();
    }
    let s = load_settled(dir.path(), "Shop").unwrap();
    assert_eq!(s.hash, load(&shipped(), "Shop").unwrap().hash);
    assert!(s.files.iter().all(|p| !p.file.starts_with('.')));
}

#[test]
fn texts_in_memory_load_as_the_directory_does_and_are_validated_alike() {
    let dir = shipped();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let files: Vec<(String, String)> = ["legal_entities.cedar", "orders.cedar", "products.cedar"]
        .iter()
        .map(|f| (f.to_string(), read(f)))
        .collect();
    let (schema, entities) = (read(SCHEMA_FILE), read(ENTITIES_FILE));
    let from_dir = load(&dir, "Shop").unwrap();
    let s = from_texts(&schema, &files, Some(&entities), "Shop", "h".into()).unwrap();
    let ids = |s: &Snapshot| s.files.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&s), ids(&from_dir));
    assert_eq!(s.entities.iter().count(), from_dir.entities.iter().count());
    // Strict validation as for a directory: a policy the schema rejects is refused.
    let bad = [(
        "bad.cedar".to_string(),
        r#"permit(principal, action, resource) when { resource.nope == 1 };"#.to_string(),
    )];
    assert!(from_texts(&schema, &bad, None, "Shop", "h".into()).is_err());
    assert!(from_texts(&schema, &[], None, "Shop", "h".into()).is_err());
}

/// `n` generated policies, one per three lines, with `extra` (three lines) after the `at`-th.
fn big_file(n: usize, at: usize, extra: &str) -> String {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("@id(\"gen-{i}\")\npermit (principal == Shop::Customer::\"C-{i}\", action == Shop::Action::\"viewOrder\", resource)\nwhen {{ resource.owner == principal }};\n"));
        if i == at {
            text.push_str(extra);
        }
    }
    text
}

#[test]
fn a_big_file_parsed_in_pieces_loads_every_policy() {
    let dir = copy_of_shipped();
    let n = 3 * super::chunks::PER_CHUNK + 5;
    std::fs::write(dir.path().join("big.cedar"), big_file(n, 0, "")).unwrap();
    let s = load(dir.path(), "Shop").unwrap();
    assert_eq!(s.files.iter().filter(|p| p.file == "big.cedar").count(), n);
    assert_eq!(s.policies.policies().count(), n + 5);
}

#[test]
fn a_type_error_deep_in_a_big_file_names_its_line() {
    let dir = copy_of_shipped();
    let at = 2 * super::chunks::PER_CHUNK + 10; // in the third piece
    let extra = "@id(\"typo\")\npermit (principal, action == Shop::Action::\"viewOrder\", resource is Shop::Order)\nwhen { resource.ownr == principal };\n";
    std::fs::write(dir.path().join("big.cedar"), big_file(500, at, extra)).unwrap();
    let err = load(dir.path(), "Shop").unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.file, "big.cedar", "{err}");
    assert_eq!(p.line, Some(3 * (at + 1) + 3), "{err}");
    assert!(p.snippet.as_deref().unwrap_or("").contains("ownr"), "{err}");
}

#[test]
fn a_syntax_error_deep_in_a_big_file_names_its_line() {
    let dir = copy_of_shipped();
    let at = 3 * super::chunks::PER_CHUNK + 1;
    let extra =
        "@id(\"broken\")\npermit (principal, action, resource)\nwhen { principal.email == };\n";
    std::fs::write(dir.path().join("big.cedar"), big_file(400, at, extra)).unwrap();
    let err = load(dir.path(), "Shop").unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.line, Some(3 * (at + 1) + 3), "{err}");
}

#[test]
fn policies_without_an_id_are_numbered_across_pieces() {
    let dir = copy_of_shipped();
    let n = super::chunks::PER_CHUNK + 3;
    let text =
        "forbid (principal, action == Shop::Action::\"cancelOrder\", resource) when { false };\n"
            .repeat(n);
    std::fs::write(dir.path().join("anon.cedar"), text).unwrap();
    let s = load(dir.path(), "Shop").unwrap();
    let last = format!("anon.cedar#{}", n - 1);
    assert!(s.files.iter().any(|p| p.id == last), "{:?}", s.files);
    assert_eq!(s.files.iter().filter(|p| p.file == "anon.cedar").count(), n);
}
