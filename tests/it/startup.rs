//! Start-up refusals of the real binary that protect token verification.

use std::{
    io::Read,
    process::Stdio,
    time::{Duration, Instant},
};

use crate::common::process::legate;

#[test]
fn serve_refuses_a_public_url_that_is_also_a_trusted_issuer_when_issue_issuer_is_unset() {
    // examples/legate.toml trusts https://idp.example.com; legate's issuer defaulting to the
    // same URL would shadow the identity provider.
    let mut child = legate()
        .args([
            "--config",
            "examples/legate.toml",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("LEGATE_PUBLIC_URL", "https://idp.example.com")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a legate that accepts the config starts serving and never exits by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("legate started with public_url equal to a [[trust]] issuer");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("`public_url` \"https://idp.example.com\" is legate's issuer"),
        "{stderr}"
    );
}
