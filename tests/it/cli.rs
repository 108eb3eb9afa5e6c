//! The real `legate` binary: exit codes and messages at start-up, `legate token`, and what it logs.

use std::{path::Path, time::Duration};

use crate::common::process::{legate, serve, succeeded, LegateProcess};

#[test]
fn a_bad_config_exits_non_zero_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\nmystery = true\n[limits]\nbatch_max = \"lots\"\n\
         [[trust]]\nissuer = \"https://idp\"\naudience = [\"a\"]\njwks = \"/nonexistent/jwks.json\"\nalgorithms = [\"none\"]\n",
    )
    .unwrap();
    let out = legate()
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key `mystery`"), "{err}");
    assert!(err.contains("`limits`"), "{err}");
    assert!(err.contains("\"none\" is not allowed"), "{err}");
}

#[test]
fn unreadable_jwks_and_invalid_policies_are_listed_together() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    std::fs::copy(
        shipped.join("schema.cedarschema"),
        policies.join("schema.cedarschema"),
    )
    .unwrap();
    std::fs::write(
        policies.join("broken.cedar"),
        "permit (principal, action, resource)\nwhen { resource.nope };\n",
    )
    .unwrap();
    let cfg = dir.path().join("legate.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:0\"\n[policies]\ndir = \"{}\"\n[[trust]]\nissuer = \"https://idp\"\naudience = [\"a\"]\njwks = \"{}/missing.json\"\n",
            policies.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = legate()
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.json"), "{err}");
    assert!(err.contains("broken.cedar:2"), "{err}");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = legate()
        .args(["--config", "/nonexistent/legate.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/legate.toml"));
}

#[test]
fn env_overrides_reach_the_server_config() {
    let out = legate()
        .args(["--config", "examples/legate.toml", "serve"])
        .env("LEGATE_LIMITS__BATCH_MAX", "zero")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`limits`"));
}

#[test]
fn token_mints_a_dev_token_that_the_dev_jwks_verifies() {
    let out = succeeded(
        legate()
            .args([
                "--config",
                "examples/legate.toml",
                "token",
                "--key",
                "examples/keys/idp-dev-private.pem",
            ])
            .args([
                "--sub",
                "C-1",
                "--legal-entity",
                "LE-2",
                "--claim",
                "email=ann@example.com",
            ]),
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("idp-dev-rsa-1"));
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&std::fs::read_to_string("examples/keys/idp-dev-jwks.json").unwrap())
            .unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["storefront"]);
    v.set_issuer(&["https://idp.example.com"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).unwrap();
    assert_eq!(data.claims["sub"], "C-1");
    assert_eq!(data.claims["legalEntityId"], "LE-2");
    assert_eq!(data.claims["email"], "ann@example.com");
}

#[test]
fn the_server_never_logs_a_token_and_stops_cleanly_on_sigterm() {
    let mut cmd = serve("examples/legate.toml");
    cmd.env("LEGATE_LOG", "debug");
    let mut server = LegateProcess::start(cmd);
    let addr = server.addr;

    let token = String::from_utf8(
        legate()
            .args([
                "--config",
                "examples/legate.toml",
                "token",
                "--key",
                "examples/keys/idp-dev-private.pem",
                "--sub",
                "C-1",
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        for t in [&token, &tampered] {
            let r = client
                .post(format!("http://{addr}/v1/authorize"))
                .bearer_auth(t)
                .json(&serde_json::json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O"}}))
                .send()
                .await
                .unwrap();
            assert!(r.status() == 200 || r.status() == 401);
        }
    });
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    let log = server.log();
    assert!(
        log.contains("token refused"),
        "the refusal is logged:\n{log}"
    );
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !log.contains(signature),
        "a token signature appeared in the log"
    );
    assert!(!log.contains(&token[..40]), "a token appeared in the log");
}
