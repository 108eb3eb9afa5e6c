//! Property tests of the config parser: any file text and any `LEGATE_*` environment give a
//! config or a list of problems, never a panic, and an accepted config keeps the checked bounds.

use proptest::prelude::*;

use super::*;

/// File text glued from lines of the real format with wild values, and sometimes junk.
fn file_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        prop::sample::select(vec![
            "[limits]",
            "[issue]",
            "[claims]",
            "[forward_auth]",
            "[log]",
            "[store]",
            "[entities]",
            "[policies]",
            "[shutdown]",
            "[[trust]]",
            "[[routes]]",
            "[bogus]",
            "listen = \"127.0.0.1:0\"",
            "listen = \"nowhere\"",
            "public_url = \"https://x\"",
            "public_url = \"ftp://x\"",
            "namespace = \"\"",
            "max_connections = 0",
            "max_connections = 99999999999",
            "header_timeout_secs = 1",
            "idle_timeout_secs = -1",
            "batch_max = \"many\"",
            "issuer = \"https://idp\"",
            "audience = [\"a\"]",
            "jwks = \"k.json\"",
            "algorithms = [\"RS256\", \"none\"]",
            "method = \"GET\"",
            "path = \"/orders/{id}\"",
            "action = \"viewOrder\"",
            "resource = { type = \"Order\", id = \"{id}\" }",
            "customer_header = \"bad header\"",
            "cookie = \"a b\"",
            "allow_sample_rate = 2.5",
            "kind = \"redis\"",
            "source = \"http\"",
            "url = \"x\"",
            "= 1",
            "[",
            "\"",
            "a.b.c = 1",
        ])
        .prop_map(str::to_string),
        "\\PC{0,20}",
    ];
    prop::collection::vec(line, 0..12).prop_map(|v| v.join("\n"))
}

fn environment() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "LEGATE_PORT",
            "LEGATE_LISTEN",
            "LEGATE_LIMITS__MAX_CONNECTIONS",
            "LEGATE_LIMITS__NOPE",
            "LEGATE_TRUST__ISSUER",
            "LEGATE_LOG",
            "LEGATE_",
            "LEGATE___",
            "LEGATE_LIMITS",
            "LEGATE_ISSUE__ISSUER",
            "LEGATE_A__B__C",
            "HOME",
        ])
        .prop_map(str::to_string),
        "LEGATE_[A-Z_]{0,12}",
    ];
    let value = prop_oneof![
        prop::sample::select(vec!["0", "1", "true", "[1]", "{}", "x", "\"", "[", "1e999"])
            .prop_map(str::to_string),
        "\\PC{0,10}",
    ];
    prop::collection::vec((name, value), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_file_and_environment_parse_or_list_problems_without_a_panic(
        text in file_text(),
        env in environment(),
    ) {
        match Config::parse(&text, env) {
            Ok(c) => {
                let l = &c.limits;
                prop_assert!(l.max_connections >= 1 && l.max_connections <= 1_000_000);
                prop_assert!(l.header_timeout_secs >= 1 && l.idle_timeout_secs >= 1);
                prop_assert!(c.trust.iter().all(|t| t.issuer != c.issuer()));
            }
            Err(e) => prop_assert!(!e.problems.is_empty()),
        }
    }
}
