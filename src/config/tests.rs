//! Parsing, defaults, the environment overlay and the checks.

use super::*;

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
fn every_legate_variable_but_the_log_filter_is_a_key() {
    // Config knows no test suite's names: a LEGATE_ variable that is no key is refused.
    let err = Config::parse("", env(&[("LEGATE_TEST_SOMETHING", "1")])).unwrap_err();
    assert!(
        err.problems[0].contains("unknown key `test_something`"),
        "{:?}",
        err.problems
    );
    assert!(Config::parse("", env(&[("LEGATE_LOG", "debug")])).is_ok());
}
