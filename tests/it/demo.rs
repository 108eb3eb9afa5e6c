//! `examples/demo.sh`, the newcomer's story, run as a newcomer runs it: the real binary serving
//! `examples/legate.toml`, the script driving it with curl (login, `/v1/me`, select an entity, its
//! orders, switch with the refresh token, the product list changing, what is refused).

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::process::{serve, LegateProcess};

#[test]
fn the_demo_tells_the_whole_story_against_a_running_legate() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = serve("examples/legate.toml");
    cmd.env("LEGATE_LOG__DECISIONS", "off");
    let server = LegateProcess::start(cmd);
    let addr = server.addr;

    let mut demo = Command::new("bash")
        .arg("examples/demo.sh")
        .current_dir(root)
        .env("DEMO_URL", format!("http://{addr}"))
        .env("DEMO_LEGATE", env!("CARGO_BIN_EXE_legate"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while demo.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = demo.kill();
            panic!("demo.sh did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = demo.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo.sh failed:\n{stdout}\n{stderr}");

    // The picker lists C-1's two entities; the selection and the switch took effect.
    assert!(stdout.contains("\"Acme Wholesale GmbH\""), "{stdout}");
    assert!(
        stdout.contains("legal_entity_id: LE-1, expires_in: 900s"),
        "{stdout}"
    );
    // Orders as LE-1: the entity's, not another's, and one's own.
    assert!(stdout.contains("order O-100 (owner C-2, entity LE-1): allow [\"entity-orders\"]"));
    assert!(stdout.contains("order O-200 (owner C-2, entity LE-2): deny []"));
    // The product list changes with the switch from LE-1 (wholesale) to LE-2 (retail).
    let (as_le1, as_le2) = stdout.split_once("== 7.").expect("step 7 ran");
    assert!(as_le1.contains("P-2 (wholesale): allow") && as_le1.contains("P-3 (retail): deny"));
    assert!(as_le2.contains("P-2 (wholesale): deny") && as_le2.contains("P-3 (retail): allow"));
    // What is refused, and why.
    assert!(stdout.contains("\"invalid_grant\""), "{stdout}");
    assert!(stdout.contains("\"legal_entity_not_assigned\""), "{stdout}");
    assert!(stdout.contains("\"invalid_token\""), "{stdout}");
}
