//! What the fuzz targets share: the repository's shipped policies and example configuration, a
//! verifier that trusts the dev keys, the most forgiving path normaliser (the oracle of the
//! forward-auth property) and the check that a SQL fragment carries values only as parameters.
//!
//! Inputs that several parts make up are split at NUL bytes (`part0 \0 part1 \0 …`): seeds stay
//! readable text, and libFuzzer's mutations still reach each part.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
    time::Duration,
};

use jsonwebtoken::Algorithm;
use legate::testing::{
    issue::SigningKey,
    plan::Sql,
    policy::Snapshot,
    routes::{RouteConfig, RouteTable},
    verify::{ClaimNames, KeySet, KeySource, TrustedIssuer, Verifier, VerifyKey},
};

/// The issuer of the pretend identity provider in `examples/legate.toml`.
pub const IDP_ISSUER: &str = "https://idp.example.com";
/// legate's own issuer in `examples/legate.toml` (its `public_url`).
pub const LEGATE_ISSUER: &str = "http://127.0.0.1:8181";
/// The audience both accept.
pub const AUDIENCE: &str = "storefront";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ is inside the repository")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The shipped policy snapshot (`policies/`, namespace `Shop`), loaded once.
pub fn shipped() -> Arc<Snapshot> {
    static S: OnceLock<Arc<Snapshot>> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(legate::testing::policy::load(&repo().join("policies"), "Shop").expect("policies load"))
    })
    .clone()
}

/// The shipped schema's and entity data's text.
pub fn shipped_texts() -> &'static (String, String) {
    static T: OnceLock<(String, String)> = OnceLock::new();
    T.get_or_init(|| {
        (
            read("policies/schema.cedarschema"),
            read("policies/entities.json"),
        )
    })
}

/// `examples/legate.toml` as TOML.
pub fn example_config() -> &'static toml::Table {
    static C: OnceLock<toml::Table> = OnceLock::new();
    C.get_or_init(|| {
        read("examples/legate.toml")
            .parse()
            .expect("the example config is TOML")
    })
}

/// The `[[routes]]` of `examples/legate.toml`, compiled.
pub fn example_routes() -> &'static RouteTable {
    static R: OnceLock<RouteTable> = OnceLock::new();
    R.get_or_init(|| {
        let routes: Vec<RouteConfig> = example_config()["routes"]
            .clone()
            .try_into()
            .expect("the example routes read");
        RouteTable::compile(&routes).expect("the example routes compile")
    })
}

/// The `[plan]` of `examples/legate.toml`.
pub fn example_plan() -> &'static legate::testing::plan::PlanConfig {
    static P: OnceLock<legate::testing::plan::PlanConfig> = OnceLock::new();
    P.get_or_init(|| {
        example_config()["plan"]
            .clone()
            .try_into()
            .expect("the example [plan] reads")
    })
}

/// The claim names of the example configuration.
pub fn claim_names() -> ClaimNames {
    ClaimNames {
        customer: "sub".into(),
        legal_entity: "legalEntityId".into(),
    }
}

/// A verifier as `examples/legate.toml` configures one: the IdP's dev JWKS file (RS256 key; RS256,
/// ES256 and EdDSA allowed) and legate's own dev key (ES256, `typ` `at+jwt`). No revocation store:
/// nothing a fuzzed token carries gets that far without a valid signature.
pub fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        // The JWKS file as `[[trust]] jwks` reads it: an unknown `kid` re-reads it, at most once
        // a minute.
        let source = KeySource::File(repo().join("examples/keys/idp-dev-jwks.json"));
        let idp_keys = runtime()
            .block_on(KeySet::load(source, Duration::from_secs(60)))
            .expect("the dev JWKS loads");
        let idp = TrustedIssuer::new(
            IDP_ISSUER,
            &[AUDIENCE.to_string()],
            &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            30,
            idp_keys,
            None,
        );
        let own = SigningKey::from_pem(read("examples/keys/legate-dev.pem").as_bytes())
            .expect("the dev signing key reads");
        let own_key = VerifyKey::from_jwk(&own.jwk).expect("a usable verify key");
        let legate = TrustedIssuer::new(
            LEGATE_ISSUER,
            &[AUDIENCE.to_string()],
            &[Algorithm::ES256],
            30,
            KeySet::fixed(vec![own_key]),
            Some("at+jwt"),
        );
        Verifier::new(vec![idp, legate], claim_names())
    })
}

/// One single-threaded runtime for the async parts (verification).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static R: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    R.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

/// The input's NUL-separated parts (always `n` of them; missing ones are empty).
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    out.resize(n, &[]);
    out
}

/// The most forgiving reading a service behind the proxy could give a raw request target: the
/// oracle the library's property tests use too.
pub use legate::testing::routes::oracle::normalise;

/// Words a `WHERE` fragment may contain outside quoted identifiers and `$n` placeholders.
const SQL_WORDS: &[&str] = &[
    "TRUE",
    "FALSE",
    "AND",
    "OR",
    "NOT",
    "IS",
    "NULL",
    "ANY",
    "LIKE",
    "cardinality",
];

/// Operators and punctuation it may contain.
const SQL_SYMBOLS: &[&str] = &["@>", "<@", "&&", "<>", "<=", ">=", "=", "<", ">", "(", ")"];

/// Checks that `sql` carries every value as a parameter: outside `"…"` identifiers (with `""`
/// escapes) the fragment is only keywords, operators, `$n` placeholders and the `0` of
/// `cardinality(…) = 0`; no `'` literal, no other number, no stray text. Every placeholder is in
/// `1..=params.len()` and every parameter is used. `Err` says what is wrong.
pub fn check_sql(sql: &Sql) -> Result<(), String> {
    let text = sql.where_.as_str();
    let b = text.as_bytes();
    let mut used = vec![false; sql.params.len()];
    let mut i = 0;
    let mut prev_word = String::new();
    while i < b.len() {
        let c = b[i];
        if c == b' ' {
            i += 1;
        } else if c == b'"' {
            // A quoted identifier: ends at a `"` not followed by another.
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(format!("unterminated identifier in {text:?}")),
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            prev_word = "\"".into();
        } else if c == b'$' {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let n: usize = text[start..i]
                .parse()
                .map_err(|_| format!("bad placeholder at {start} in {text:?}"))?;
            if n == 0 || n > used.len() {
                return Err(format!("placeholder ${n} without a parameter in {text:?}"));
            }
            used[n - 1] = true;
            prev_word = "$".into();
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let w = &text[start..i];
            if !SQL_WORDS.contains(&w) {
                return Err(format!("word {w:?} outside an identifier in {text:?}"));
            }
            prev_word = w.to_string();
        } else if c == b'0' {
            // Only `cardinality(...) = 0`.
            if prev_word != "=" || !text[..i].contains("cardinality(") {
                return Err(format!("a number literal at {i} in {text:?}"));
            }
            i += 1;
            prev_word = "0".into();
        } else if let Some(s) = SQL_SYMBOLS.iter().find(|s| text[i..].starts_with(**s)) {
            i += s.len();
            prev_word = s.to_string();
        } else {
            return Err(format!(
                "{:?} at {i} outside an identifier in {text:?}",
                &text[i..].chars().next().unwrap_or('?')
            ));
        }
    }
    if let Some(n) = used.iter().position(|u| !u) {
        return Err(format!("parameter ${} is never used in {text:?}", n + 1));
    }
    Ok(())
}

/// `attrs` → columns for `to_sql`: every attribute its own column (the example's names where it
/// has one).
pub fn columns_for<'a>(attrs: impl IntoIterator<Item = &'a str>) -> HashMap<String, String> {
    attrs
        .into_iter()
        .map(|a| (a.to_string(), format!("col_{a}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sql(where_: &str, params: Vec<serde_json::Value>) -> Sql {
        Sql {
            where_: where_.into(),
            params,
        }
    }

    #[test]
    fn parameters_and_identifiers_pass() {
        let ok = sql(
            r#"("a""b" = $1 AND NOT ("c" IS NOT NULL AND cardinality("c") = 0))"#,
            vec![json!("x")],
        );
        assert_eq!(check_sql(&ok), Ok(()));
    }

    #[test]
    fn literals_and_unused_or_missing_parameters_fail() {
        for (w, n) in [
            (r#""a" = 'x'"#, 0),
            (r#""a" = 1"#, 0),
            (r#""a" = x"#, 0),
            (r#""a" = $2"#, 1),
            (r#""a" = 0"#, 0),
            (r#"TRUE"#, 1),
            (r#""a"#, 0),
        ] {
            assert!(check_sql(&sql(w, vec![json!(1); n])).is_err(), "{w}");
        }
    }
}
