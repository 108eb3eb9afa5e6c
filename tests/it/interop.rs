//! legate against real OAuth / JOSE client libraries, as a storefront developer would use them:
//! the real `legate` binary on a loopback port (ES256 dev key, one `[[clients]]` entry), driven by
//!
//! - `tests/interop/python_clients.py` — authlib (RFC 8414 / OIDC discovery validation, token
//!   exchange, refresh with rotation, revocation, error parsing), PyJWT (`PyJWKClient`) and joserfc
//!   (verification through the discovered `jwks_uri`, `client_id` required), from the virtual
//!   environment `.ci/run` makes (`TEST_VENV_BIN`, packages pinned in `tests/requirements.txt`);
//! - `tests/interop/node_clients.mjs` — openid-client (RFC 8414 discovery, token exchange, refresh,
//!   revocation, error parsing) and jose (`createRemoteJWKSet`, `requiredClaims: ["client_id"]`),
//!   installed by `npm ci` in `tests/interop/` (the test fails, saying how to install them, where
//!   `node` or the modules are missing, as every test of a real part does).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::common::{
    free_port,
    process::{LegateProcess, ServeDir},
};
use sha2::Digest;

const CLIENT_ID: &str = "storefront-web";
const CLIENT_SECRET: &str = "interop-secret-not-for-production";

/// A legate binary set up for the client libraries.
struct Setup {
    dir: ServeDir,
    legate: LegateProcess,
}

impl Setup {
    fn start() -> Self {
        let hex: String = sha2::Sha256::digest(CLIENT_SECRET.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // public_url must be known before the port is: take a free one first.
        let addr = format!("127.0.0.1:{}", free_port());
        let dir = ServeDir::new();
        let legate = dir.start(|t| {
            t.insert("listen".into(), addr.clone().into());
            t.insert("public_url".into(), format!("http://{addr}").into());
            let client: toml::Table = format!("id = \"{CLIENT_ID}\"\nsecret_sha256 = \"{hex}\"")
                .parse()
                .unwrap();
            t.insert("clients".into(), vec![toml::Value::from(client)].into());
        });
        Self { dir, legate }
    }

    /// An identity-provider token for C-1 without a legal entity (the login defaults it).
    fn idp_token(&self) -> String {
        self.dir.idp_token("C-1", None)
    }

    /// Runs a client script; its output is printed, and it must exit 0.
    fn run(&self, mut cmd: Command, what: &str) -> String {
        cmd.args([
            self.legate.base(),
            CLIENT_ID.to_string(),
            CLIENT_SECRET.to_string(),
            self.idp_token(),
        ]);
        cmd.current_dir(self.dir.dir.path());
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        println!("{what}:\n{stdout}");
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{stdout}\n{}\nlegate's log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.legate.log()
        );
        stdout
    }
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The JSON summary the scripts print last: what passed, with which library versions.
fn summary(stdout: &str) -> serde_json::Value {
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("no summary line in:\n{stdout}"))
}

#[test]
fn python_clients_authlib_pyjwt_joserfc() {
    let Some(bin) = std::env::var_os("TEST_VENV_BIN") else {
        panic!(
            "TEST_VENV_BIN is not set: the Python client libraries (authlib, PyJWT, joserfc) live in \
             the virtual environment `bash .ci/run` creates and installs tests/requirements.txt into \
             (locally: python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt && \
             export TEST_VENV_BIN=$PWD/.venv/bin)"
        );
    };
    let python = PathBuf::from(bin).join("python");
    assert!(
        python.exists(),
        "{} does not exist: run `bash .ci/run` to create the virtual environment",
        python.display()
    );
    let setup = Setup::start();
    let mut cmd = Command::new(python);
    cmd.arg(interop_dir().join("python_clients.py"));
    let s = summary(&setup.run(cmd, "python_clients.py"));
    assert_eq!(s["passed"].as_array().unwrap().len(), 8, "{s}");
}

#[test]
fn node_clients_openid_client_and_jose() {
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node_ok,
        "`node` is not on the PATH: openid-client and jose need Node.js and npm \
         (`bash .ci/run` installs Debian's nodejs and npm, then runs npm ci in tests/interop)"
    );
    let modules = interop_dir().join("node_modules");
    assert!(
        modules.join("openid-client").exists() && modules.join("jose").exists(),
        "tests/interop/node_modules is missing: `bash .ci/run` installs it (npm ci in tests/interop)"
    );
    let setup = Setup::start();
    let mut cmd = Command::new("node");
    cmd.arg(interop_dir().join("node_clients.mjs"));
    let s = summary(&setup.run(cmd, "node_clients.mjs"));
    assert_eq!(s["passed"].as_array().unwrap().len(), 7, "{s}");
}
