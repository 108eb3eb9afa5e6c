//! End to end: the real nginx (`/usr/sbin/nginx`, `auth_request`) running `examples/nginx.conf` in
//! front of an echoing upstream, with the real `legate` binary deciding. The shipped file is used as
//! is; only its three loopback addresses are replaced by the ports this test chose.

use std::{net::SocketAddr, process::Command};

use crate::common::free_port;
use crate::proxies::{check_proxy, installed, Legate, Process, Upstream};

const NGINX: &str = "/usr/sbin/nginx";

/// `examples/nginx.conf` with the test's addresses. Every default address must be found, so a
/// change to the example that this rendering would miss fails here instead of testing nothing.
fn render(legate: SocketAddr, upstream: SocketAddr, listen: SocketAddr) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/nginx.conf"))
        .unwrap();
    let mut out = text.clone();
    for (default, ours) in [
        ("server 127.0.0.1:8181;", format!("server {legate};")),
        ("server 127.0.0.1:8080;", format!("server {upstream};")),
        ("listen 127.0.0.1:8000;", format!("listen {listen};")),
    ] {
        assert_eq!(
            text.matches(default).count(),
            1,
            "{default:?} in examples/nginx.conf"
        );
        out = out.replace(default, &ours);
    }
    out
}

#[tokio::test]
async fn nginx_auth_request_injects_the_identity_and_keeps_refused_requests_out() {
    assert!(
        installed(NGINX),
        "{NGINX} is not installed: `bash .ci/run` installs nginx-light"
    );
    let upstream = Upstream::start().await;
    let legate = Legate::start().await;
    let dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, render(legate.addr, upstream.addr, listen)).unwrap();

    let mut cmd = Command::new(NGINX);
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"]);
    let mut nginx = Process::spawn("nginx", cmd, dir.path().join("nginx.out"));
    nginx.wait_for_port(listen).await;

    check_proxy(&format!("http://{listen}"), &upstream, &legate, false).await;
}
