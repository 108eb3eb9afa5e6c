//! End to end: Debian's Caddy (`/usr/bin/caddy`, `forward_auth`) running `examples/Caddyfile` as
//! shipped in front of an echoing upstream, with the real `legate` binary deciding. The Caddyfile
//! reads its addresses from the environment, so the test only sets variables.

mod common;
mod proxies;

use std::process::Command;

use proxies::{check_proxy, free_port, installed, Legate, Process, Upstream};

const CADDY: &str = "/usr/bin/caddy";

#[tokio::test]
async fn caddy_forward_auth_injects_the_identity_and_keeps_refused_requests_out() {
    assert!(
        installed(CADDY),
        "{CADDY} is not installed: `bash .ci/run` installs caddy"
    );
    let upstream = Upstream::start().await;
    let legate = Legate::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();

    let mut cmd = Command::new(CADDY);
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
