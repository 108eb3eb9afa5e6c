//! The `LEGATE_*` rule of DESIGN.md with the real binary, for `serve` and every subcommand: a
//! variable that names no key (the ones Kubernetes service links put into every pod of a namespace
//! with a Service named `legate`) gets one warning and is ignored; one that names a key with a bad
//! value is an error.

use std::{
    io::{Read, Write},
    process::{Command, Output},
};

use crate::common::process::{legate, serve, LegateProcess};

/// What Kubernetes sets for `Service/legate` with port 8181 (`enableServiceLinks`, the default).
const SERVICE_LINKS: &[(&str, &str)] = &[
    ("LEGATE_PORT", "tcp://10.96.0.12:8181"),
    ("LEGATE_SERVICE_HOST", "10.96.0.12"),
    ("LEGATE_SERVICE_PORT", "8181"),
    ("LEGATE_SERVICE_PORT_HTTP", "8181"),
    ("LEGATE_PORT_8181_TCP", "tcp://10.96.0.12:8181"),
    ("LEGATE_PORT_8181_TCP_ADDR", "10.96.0.12"),
    ("LEGATE_PORT_8181_TCP_PORT", "8181"),
    ("LEGATE_PORT_8181_TCP_PROTO", "tcp"),
];

fn with_service_links(mut cmd: Command) -> Command {
    cmd.envs(SERVICE_LINKS.iter().copied());
    cmd
}

/// Each service-link variable is warned about exactly once in `stderr`.
fn assert_one_warning_each(stderr: &str) {
    for (name, _) in SERVICE_LINKS {
        let warning = format!("{name} names no configuration key; ignored");
        let count = stderr.matches(&warning).count();
        assert_eq!(count, 1, "{name}: {count} warnings in\n{stderr}");
    }
}

fn run(args: &[&str]) -> Output {
    let mut cmd = with_service_links(legate());
    cmd.args(["--config", "examples/legate.toml"]).args(args);
    cmd.output().unwrap()
}

#[test]
fn serve_starts_with_kubernetes_service_link_variables_and_warns_once_each() {
    let cmd = with_service_links(serve("examples/legate.toml"));
    let legate = LegateProcess::start(cmd);
    let mut s = std::net::TcpStream::connect(legate.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: legate\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_one_warning_each(&legate.log());
    assert!(legate.log().contains("WARN"), "{}", legate.log());
}

#[test]
fn every_subcommand_runs_with_kubernetes_service_link_variables() {
    let subcommands: &[&[&str]] = &[
        &["validate"],
        &["validate", "policies"],
        &["test"],
        &[
            "authorize",
            "--customer",
            "C-1",
            "--legal-entity",
            "LE-1",
            "--action",
            "viewOrder",
            "--resource",
            r#"{"type": "Order", "id": "O-1", "attrs": {"owner": {"type": "Customer", "id": "C-2"},
                "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}"#,
        ],
        &[
            "token",
            "--sub",
            "C-1",
            "--key",
            "examples/keys/idp-dev-private.pem",
        ],
    ];
    for args in subcommands {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?}\n{stderr}", out.status);
        assert!(!stderr.contains("unknown key"), "{args:?}: {stderr}");
        assert_one_warning_each(&stderr);
    }
    // Without a config file too (the defaults plus the environment).
    let mut cmd = with_service_links(legate());
    cmd.args([
        "--config",
        "/nonexistent/legate.toml",
        "validate",
        "policies",
    ]);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_one_warning_each(&stderr);
}

#[test]
fn a_variable_that_names_a_key_with_a_bad_value_is_still_an_error() {
    for args in [&["serve", "--listen", "127.0.0.1:0"][..], &["validate"]] {
        let mut cmd = with_service_links(legate());
        cmd.args(["--config", "examples/legate.toml"])
            .args(args)
            .env("LEGATE_LIMITS__MAX_CONNECTIONS", "lots")
            .env("LEGATE_LISTEN", "nowhere");
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains("`limits`"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("`listen` = \"nowhere\""),
            "{args:?}: {stderr}"
        );
    }
}
