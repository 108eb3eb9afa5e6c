//! Parsing, defaults, the environment overlay and the checks.

use super::*;
use crate::audit::DecisionsTo;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_file_gives_the_documented_defaults() {
    let c = Config::parse("", env(&[])).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8181");
    assert_eq!(c.public_url, "http://127.0.0.1:8181");
    assert_eq!(c.issuer(), "http://127.0.0.1:8181");
    assert_eq!(c.namespace, "Shop");
    assert_eq!(c.claims.customer, "sub");
    assert_eq!(c.claims.legal_entity, "legalEntityId");
    assert_eq!(c.claims.leeway_secs, 30);
    assert_eq!(c.limits.batch_max, 1000);
    assert_eq!(c.limits.body_bytes, 1_048_576);
    assert_eq!(c.issue.access_ttl_secs, 900);
    assert_eq!(c.entities.source, EntitySourceKind::File);
    assert_eq!(c.store.kind, StoreKind::Memory);
}

#[test]
fn env_overrides_file_at_top_level_and_in_sections() {
    let c = Config::parse(
        "listen = \"127.0.0.1:1\"\n[limits]\nbatch_max = 5\n",
        env(&[
            ("LEGATE_LISTEN", "127.0.0.1:9999"),
            ("LEGATE_LIMITS__BATCH_MAX", "7"),
            ("LEGATE_CLAIMS__LEGAL_ENTITY", "le"),
            ("HOME", "/root"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9999);
    assert_eq!(c.limits.batch_max, 7);
    assert_eq!(c.claims.legal_entity, "le");
}

#[test]
fn every_problem_is_listed_at_once() {
    let err = Config::parse(
        "listen = \"nowhere\"\nbogus = 1\n[limits]\nbatch_max = \"many\"\n\
         [[trust]]\nissuer = \"https://idp\"\naudience = []\njwks = \"k.json\"\nalgorithms = [\"none\", \"HS256\"]\n",
        env(&[]),
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    assert!(all.contains("unknown key `bogus`"), "{all}");
    assert!(all.contains("`limits`"), "{all}");
    assert!(all.contains("`listen`"), "{all}");
    assert!(all.contains("\"none\" is not allowed"), "{all}");
    assert!(all.contains("\"HS256\" is not allowed"), "{all}");
    assert!(all.contains("`audience` is empty"), "{all}");
    assert!(err.problems.len() >= 6, "{all}");
}

#[test]
fn unknown_key_inside_a_section_is_refused() {
    let err = Config::parse("[claims]\ncustomr = \"sub\"\n", env(&[])).unwrap_err();
    assert!(err.problems[0].contains("customr"), "{:?}", err.problems);
}

#[test]
fn issue_audience_may_not_be_legates_own_issuer() {
    let err = Config::parse(
        "public_url = \"http://l:1\"\n[issue]\naudience = [\"http://l:1\"]\n",
        env(&[]),
    )
    .unwrap_err();
    assert!(
        err.problems[0].contains("refresh tokens"),
        "{:?}",
        err.problems
    );
}

#[test]
fn issue_issuer_may_not_be_a_trusted_issuer() {
    let err = Config::parse(
        "[[trust]]\nissuer = \"https://x\"\naudience = [\"a\"]\njwks = \"j\"\n[issue]\nissuer = \"https://x\"\n",
        env(&[]),
    )
    .unwrap_err();
    assert!(err.problems[0].contains("told apart"));
}

#[test]
fn bad_forward_auth_settings_are_config_problems_and_routes_are_only_parsed() {
    let err = Config::parse(
        "listen = \"nowhere\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/orders/{id}\"\naction = \"viewOrder\"\n\
         resource = { type = \"Order\", id = \"{order}\" }\n\
         [[routes]]\nmethod = \"GET\"\npath = \"orders\"\naction = \"listOrders\"\n\
         resource = { type = \"Order\", id = \"all\" }\n\
         [forward_auth]\nlegal_entity_header = \"legal entity\"\ncookie = \"a;b\"\n",
        env(&[]),
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    assert!(all.contains("`listen`"), "{all}");
    // Routes are compiled (and refused) once, by `app::build`; parsing only reads them.
    assert!(!all.contains("[[routes]]"), "{all}");
    assert!(all.contains("`forward_auth.legal_entity_header`"), "{all}");
    assert!(all.contains("`forward_auth.cookie`"), "{all}");
}

#[test]
fn routes_parse_with_the_documented_defaults() {
    let c = Config::parse(
        "[[routes]]\nmethod = \"GET\"\npath = \"/legal-entities/{id}\"\n\
         action = \"selectLegalEntity\"\nresource = { type = \"LegalEntity\", id = \"{id}\" }\n",
        env(&[]),
    )
    .unwrap();
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.forward_auth.unmatched, Unmatched::Deny);
    assert_eq!(c.forward_auth.customer_header, "X-Customer-Id");
    assert_eq!(c.forward_auth.legal_entity_header, "legalEntityId");
    assert_eq!(c.forward_auth.cookie, None);
}

#[test]
fn string_valued_keys_are_typed_and_other_values_refused() {
    let c = Config::parse(
        "[forward_auth]\nunmatched = \"allow\"\n[log]\nformat = \"json\"\ndecisions = \"off\"\n",
        env(&[]),
    )
    .unwrap();
    assert_eq!(c.forward_auth.unmatched, Unmatched::Allow);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.decisions, DecisionsTo::Off);
    let c = Config::parse("[log]\ndecisions = \"/var/log/d.jsonl\"\n", env(&[])).unwrap();
    assert_eq!(
        c.log.decisions,
        DecisionsTo::File("/var/log/d.jsonl".into())
    );
    assert_eq!(
        Config::parse("", env(&[])).unwrap().log.decisions,
        DecisionsTo::Stderr
    );
    let err = Config::parse(
        "[forward_auth]\nunmatched = \"maybe\"\n[log]\nformat = \"xml\"\n",
        env(&[]),
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    assert!(
        all.contains("`forward_auth`") && all.contains("maybe"),
        "{all}"
    );
    assert!(all.contains("`log`") && all.contains("xml"), "{all}");
}

#[test]
fn a_legate_variable_that_is_no_key_is_a_warning_and_the_log_filter_not_even_that() {
    // DESIGN.md: a LEGATE_ variable that names no key is ignored with a warning.
    let c = Config::parse("", env(&[("LEGATE_TEST_SOMETHING", "1")])).unwrap();
    assert_eq!(
        c.warnings,
        ["LEGATE_TEST_SOMETHING names no configuration key; ignored"]
    );
    let c = Config::parse("", env(&[("LEGATE_LOG", "debug")])).unwrap();
    assert!(c.warnings.is_empty());
}

#[test]
fn connection_limits_default_as_documented_and_refuse_zero_or_absurd_values() {
    let c = Config::parse("", env(&[])).unwrap();
    assert_eq!(c.limits.header_timeout_secs, 5);
    assert_eq!(c.limits.idle_timeout_secs, 60);
    assert_eq!(c.limits.max_connections, 10_000);
    let err = Config::parse(
        "[limits]\nheader_timeout_secs = 0\nidle_timeout_secs = 1000000\n",
        env(&[("LEGATE_LIMITS__MAX_CONNECTIONS", "0")]),
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    for key in [
        "header_timeout_secs",
        "idle_timeout_secs",
        "max_connections",
    ] {
        assert!(
            all.contains(&format!("`limits.{key}`")) && all.contains("must be between 1 and"),
            "{key}: {all}"
        );
    }
    let err = Config::parse("[limits]\nmax_connections = 2000000\n", env(&[])).unwrap_err();
    assert!(
        err.problems[0].contains("`limits.max_connections` = 2000000"),
        "{err:?}"
    );
    let c = Config::parse(
        "[limits]\nheader_timeout_secs = 300\nidle_timeout_secs = 3600\nmax_connections = 1\n",
        env(&[]),
    )
    .unwrap();
    assert_eq!(c.limits.max_connections, 1);
}

#[test]
fn section_keys_are_read_off_the_section_structs() {
    let limits = env::fields_of::<LimitsConfig>();
    for key in [
        "body_bytes",
        "batch_max",
        "max_connections",
        "idle_timeout_secs",
    ] {
        assert!(limits.contains(&key), "{limits:?}");
    }
    assert!(env::fields_of::<LogConfig>().contains(&"format"));
}

#[test]
fn legate_variables_that_name_no_key_are_warned_about_and_ignored() {
    let kubernetes = [
        ("LEGATE_PORT", "tcp://10.96.0.12:8181"),
        ("LEGATE_SERVICE_HOST", "10.96.0.12"),
        ("LEGATE_SERVICE_PORT", "8181"),
        ("LEGATE_PORT_8181_TCP_ADDR", "10.96.0.12"),
        ("LEGATE_LIMITS__NO_SUCH_KEY", "1"),
        ("LEGATE_NOSECTION__KEY", "1"),
        ("LEGATE_LISTEN__PORT", "1"),
    ];
    let c = Config::parse("", env(&kubernetes)).unwrap();
    assert_eq!(c.warnings.len(), kubernetes.len(), "{:?}", c.warnings);
    for (name, _) in kubernetes {
        assert!(
            c.warnings
                .iter()
                .any(|w| w == &format!("{name} names no configuration key; ignored")),
            "{name}: {:?}",
            c.warnings
        );
    }
    // A key with a bad value is still an error; an array of tables is not settable.
    let err = Config::parse(
        "",
        env(&[
            ("LEGATE_LIMITS__BATCH_MAX", "many"),
            ("LEGATE_TRUST__ISSUER", "x"),
            ("LEGATE_PORT", "tcp://x"),
        ]),
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    assert!(all.contains("`limits`"), "{all}");
    assert!(all.contains("LEGATE_TRUST__ISSUER"), "{all}");
    assert!(!all.contains("LEGATE_PORT"), "{all}");
}

#[test]
fn the_default_issuer_may_not_be_a_trusted_issuer() {
    let trust = "[[trust]]\nissuer = \"https://shop.example/\"\naudience = [\"a\"]\n\
                 jwks = \"k.json\"\nalgorithms = [\"RS256\"]\n";
    let err = Config::parse(
        &format!("public_url = \"https://shop.example\"\n{trust}"),
        env(&[]),
    )
    .unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.contains("`public_url` \"https://shop.example\"")
                && p.contains("[[trust]] issuer")),
        "{:?}",
        err.problems
    );
    // With an issuer of its own, that public_url is fine.
    let c = Config::parse(
        &format!(
            "public_url = \"https://shop.example\"\n[issue]\nissuer = \"https://legate.shop.example\"\n{trust}"
        ),
        env(&[]),
    )
    .unwrap();
    assert_eq!(c.issuer(), "https://legate.shop.example");
}

#[test]
fn clients_are_checked_and_never_printed_with_their_hash() {
    let good = "a".repeat(64);
    let c = Config::parse(
        &format!("[[clients]]\nid = \"shop\"\nsecret_sha256 = \"{good}\"\n"),
        env(&[]),
    )
    .unwrap();
    assert_eq!(c.clients.len(), 1);
    assert!(
        !format!("{c:?}").contains(&good),
        "the hash is not in Debug output"
    );
    assert_eq!(c.issue.default_client_id, "legate");
    assert!(c.issue.default_entity);
    let err = Config::parse(
        &format!(
            "[issue]\ndefault_client_id = \"\"\n\
             [[clients]]\nid = \"\"\nsecret_sha256 = \"xyz\"\n\
             [[clients]]\nid = \"a\"\nsecret_sha256 = \"{good}\"\n\
             [[clients]]\nid = \"a\"\nsecret_sha256 = \"{good}\"\n"
        ),
        env(&[]),
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    assert!(all.contains("`issue.default_client_id` is empty"), "{all}");
    assert!(all.contains("#1 (\"\"): `id` must be non-empty"), "{all}");
    assert!(
        all.contains("#1 (\"\"): `secret_sha256` must be 64 hex digits"),
        "{all}"
    );
    assert!(all.contains("#3 (\"a\"): client listed twice"), "{all}");
}

#[test]
fn claim_names_legate_sets_itself_are_refused() {
    for (key, name) in [
        ("legal_entity", "sid"),
        ("legal_entity", "exp"),
        ("legal_entity", "sub"),
        ("customer", "exp"),
        ("customer", "client_id"),
    ] {
        let err = Config::parse(&format!("[claims]\n{key} = \"{name}\"\n"), env(&[]))
            .expect_err(&format!("claims.{key} = {name:?} must be refused"));
        let all = err.problems.join("\n");
        assert!(
            all.contains(&format!("`claims.{key}` = \"{name}\"")) && all.contains("sets itself"),
            "{all}"
        );
    }
    let err = Config::parse(
        "[claims]\ncustomer = \"cid\"\nlegal_entity = \"cid\"\n",
        env(&[]),
    )
    .unwrap_err();
    assert!(err.problems.join("\n").contains("different claims"));
    // `sub` is the default customer claim (it carries the same value as legate's own `sub`), and
    // a name of one's own is fine.
    Config::parse(
        "[claims]\ncustomer = \"sub\"\nlegal_entity = \"le\"\n",
        env(&[]),
    )
    .unwrap();
    Config::parse("[claims]\ncustomer = \"customer_id\"\n", env(&[])).unwrap();
}
