//! Hot reload, end to end: a file change on disk changes the next decision without a restart. Edits in
//! place, rename-over saves, Kubernetes ConfigMap `..data` swaps, a directory that disappears and
//! comes back, SIGHUP to the real binary, the periodic safety net, and a swap storm under load that
//! must not fail or mix a single request.
//!
//! Each watcher test turns the periodic check off (`check_interval_secs = 0`), so what it proves is
//! that the file events alone were enough.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::common::{self, configmap::ConfigMapDir, order, product, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// How long a change may take to be served (the issue's bound).
const WITHIN: Duration = Duration::from_secs(2);

/// `orders.cedar` without `entity-orders`: [`check`] flips from allow to deny.
const ORDERS_OWN_ONLY: &str = r#"// Only a customer's own orders.
@id("own-orders")
permit (
  principal,
  action in [Shop::Action::"viewOrder", Shop::Action::"listOrders"],
  resource is Shop::Order
)
when { resource.owner == principal };
"#;

/// A syntax error on line 5.
const ORDERS_SYNTAX_ERROR: &str = r#"// Broken on purpose.
@id("own-orders")
permit (
  principal,
  action in [Shop::Action::"viewOrder" Shop::Action::"listOrders"],
  resource is Shop::Order
);
"#;

/// Parses, but strict validation fails on line 7 (`Order` has no `priority`).
const ORDERS_INVALID_ATTR: &str = r#"// Valid syntax, invalid against the schema.
@id("own-orders")
permit (
  principal,
  action == Shop::Action::"viewOrder",
  resource is Shop::Order
) when { resource.priority == "high" };
"#;

fn shipped(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("policies")
            .join(name),
    )
    .unwrap()
}

/// The fixed check: C-1, acting for LE-1, views an order of LE-1 it does not own. The shipped
/// `entity-orders` allows it; [`ORDERS_OWN_ONLY`] does not.
fn check() -> Value {
    order("O-9", "C-2", Some("LE-1"))
}

/// The decision for [`check`]; panics on anything but 200.
async fn decision(app: &TestApp, token: &str) -> String {
    let (s, b) = app.authorize(token, check()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["decision"].as_str().unwrap().to_string()
}

/// Polls `probe` until it returns true or `within` has passed; returns how long it took.
async fn eventually<F, Fut>(within: Duration, mut probe: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if probe().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Polls `/v1/policies` until `want` holds (panics after [`WITHIN`]); returns that answer.
async fn policies_until(app: &TestApp, want: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (_, p) = app.get("/v1/policies", None).await;
        if want(&p) {
            return p;
        }
        assert!(
            started.elapsed() < WITHIN,
            "not shown within {WITHIN:?}: {p}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TestApp whose config `edit` may change after the periodic check was turned off. Its watch
/// is armed once it has answered a request (`app::serve` arms it before accepting).
async fn app_without_periodic_check(edit: impl FnOnce(&mut toml::Table)) -> TestApp {
    TestApp::spawn_with(|t| {
        t["policies"]["check_interval_secs"] = 0.into();
        edit(t);
    })
    .await
}

#[tokio::test]
async fn an_edit_in_place_changes_the_decision_within_two_seconds() {
    let app = app_without_periodic_check(|_| {}).await;
    let token = app.token("C-1", Some("LE-1"));
    assert_eq!(decision(&app, &token).await, "allow");
    let (_, before) = app.get("/v1/policies", None).await;

    std::fs::write(app.policy_dir().join("orders.cedar"), ORDERS_OWN_ONLY).unwrap();
    let took = eventually(WITHIN, || async { decision(&app, &token).await == "deny" }).await;
    assert!(took.is_some(), "the edit was not served within {WITHIN:?}");

    let (_, after) = app.get("/v1/policies", None).await;
    assert_ne!(after["hash"], before["hash"]);
    assert_eq!(after["last_reload"]["ok"], true, "{after}");
    let ids: Vec<&str> = after["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"entity-orders"), "{ids:?}");
    assert!(ids.contains(&"own-orders"), "{ids:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_edit_keeps_the_old_decisions_shows_file_and_line_and_a_fix_recovers() {
    let app = app_without_periodic_check(|_| {}).await;
    let token = app.token("C-1", Some("LE-1"));
    let (_, good) = app.get("/v1/policies", None).await;

    for (text, line) in [(ORDERS_SYNTAX_ERROR, 5), (ORDERS_INVALID_ATTR, 7)] {
        std::fs::write(app.policy_dir().join("orders.cedar"), text).unwrap();
        let shown = policies_until(&app, |p| {
            p["last_reload"]["ok"] == false && p["last_reload"]["problems"][0]["line"] == line
        })
        .await;
        let error = shown["last_reload"]["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("orders.cedar:{line}:")),
            "{error}"
        );
        assert_eq!(shown["last_reload"]["problems"][0]["file"], "orders.cedar");
        // The last good set keeps serving, unchanged.
        assert_eq!(shown["hash"], good["hash"]);
        assert_eq!(shown["policies"], good["policies"]);
        assert_eq!(decision(&app, &token).await, "allow");
    }

    std::fs::write(app.policy_dir().join("orders.cedar"), ORDERS_OWN_ONLY).unwrap();
    let took = eventually(WITHIN, || async { decision(&app, &token).await == "deny" }).await;
    assert!(took.is_some(), "the fix was not served");
    let (_, fixed) = app.get("/v1/policies", None).await;
    assert_eq!(fixed["last_reload"]["ok"], true, "{fixed}");
    assert_eq!(fixed["last_reload"]["error"], Value::Null);
    assert_eq!(fixed["last_reload"]["problems"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_rename_over_save_is_picked_up() {
    let app = app_without_periodic_check(|_| {}).await;
    let token = app.token("C-1", Some("LE-1"));
    assert_eq!(decision(&app, &token).await, "allow");
    let dir = app.policy_dir();
    std::fs::write(dir.join("orders.cedar.tmp"), ORDERS_OWN_ONLY).unwrap();
    std::fs::rename(dir.join("orders.cedar.tmp"), dir.join("orders.cedar")).unwrap();
    let took = eventually(WITHIN, || async { decision(&app, &token).await == "deny" }).await;
    assert!(took.is_some(), "the renamed file was not served");
    app.stop().await;
}

#[tokio::test]
async fn files_added_and_removed_in_a_subdirectory_are_picked_up() {
    let app = app_without_periodic_check(|_| {}).await;
    let token = app.token("C-1", Some("LE-1"));
    assert_eq!(decision(&app, &token).await, "allow");
    let sub = app.policy_dir().join("overrides");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("freeze.cedar"),
        "@id(\"freeze-orders\")\nforbid (principal, action == Shop::Action::\"viewOrder\", resource);\n",
    )
    .unwrap();
    let took = eventually(WITHIN, || async { decision(&app, &token).await == "deny" }).await;
    let (_, p) = app.get("/v1/policies", None).await;
    assert!(took.is_some(), "the added file was not served: {p}");
    std::fs::remove_dir_all(&sub).unwrap();
    let took = eventually(WITHIN, || async { decision(&app, &token).await == "allow" }).await;
    assert!(took.is_some(), "the removal was not served");
    app.stop().await;
}

/// The shipped policy files, with `overrides` replacing some of them.
fn files(overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut f: BTreeMap<String, String> = [
        "schema.cedarschema",
        "entities.json",
        "orders.cedar",
        "products.cedar",
        "legal_entities.cedar",
    ]
    .into_iter()
    .map(|n| (n.to_string(), shipped(n)))
    .collect();
    for (name, text) in overrides {
        f.insert(name.to_string(), text.to_string());
    }
    f
}

/// A TestApp serving a ConfigMap-style directory built from `initial`, periodic check off. The
/// directory lives in the returned temp dir.
async fn app_on_configmap(
    initial: &BTreeMap<String, String>,
) -> (TestApp, ConfigMapDir, tempfile::TempDir) {
    let holder = tempfile::tempdir().unwrap();
    let cm = ConfigMapDir::create(&holder.path().join("policies"), initial);
    let root = cm.root.clone();
    let app = app_without_periodic_check(|t| {
        t["policies"]["dir"] = root.display().to_string().into();
    })
    .await;
    (app, cm, holder)
}

#[tokio::test]
async fn a_configmap_data_swap_is_picked_up() {
    let (app, mut cm, _holder) = app_on_configmap(&files(&[])).await;
    let token = app.token("C-1", Some("LE-1"));
    assert_eq!(decision(&app, &token).await, "allow");

    cm.swap(&files(&[("orders.cedar", ORDERS_OWN_ONLY)]));
    let took = eventually(WITHIN, || async { decision(&app, &token).await == "deny" }).await;
    assert!(took.is_some(), "the ..data swap was not served");

    // And back: a second swap is seen too (the watch survived the first one).
    cm.swap(&files(&[]));
    let took = eventually(WITHIN, || async { decision(&app, &token).await == "allow" }).await;
    assert!(took.is_some(), "the second ..data swap was not served");
    let (_, p) = app.get("/v1/policies", None).await;
    let files: Vec<&str> = p["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert!(files.iter().all(|f| !f.starts_with('.')), "{files:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_directory_disappearing_and_coming_back_is_watched_again() {
    let app = app_without_periodic_check(|_| {}).await;
    let token = app.token("C-1", Some("LE-1"));
    let dir = app.policy_dir();
    let (_, good) = app.get("/v1/policies", None).await;

    std::fs::rename(&dir, app.dir.path().join("policies.old")).unwrap();
    let shown = policies_until(&app, |p| p["last_reload"]["ok"] == false).await;
    assert_eq!(shown["hash"], good["hash"], "the old set keeps serving");
    assert_eq!(decision(&app, &token).await, "allow");

    // A new directory under the same name, with different content.
    common::copy_policies(&dir);
    std::fs::write(dir.join("orders.cedar"), ORDERS_OWN_ONLY).unwrap();
    let took = eventually(WITHIN, || async { decision(&app, &token).await == "deny" }).await;
    assert!(took.is_some(), "the returning directory was not loaded");

    // The watch is armed on the new directory: an edit there is seen.
    std::fs::write(dir.join("orders.cedar"), shipped("orders.cedar")).unwrap();
    let took = eventually(WITHIN, || async { decision(&app, &token).await == "allow" }).await;
    assert!(
        took.is_some(),
        "an edit in the returned directory was not seen"
    );
    app.stop().await;
}

/// `orders.cedar` as a symlink to a file outside the directory: an in-place edit of the target
/// produces no event in the watched directory (inotify watches directories, not link targets), so
/// only the periodic check or SIGHUP can notice it.
fn link_orders_outside(policy_dir: &Path, outside: &Path) -> PathBuf {
    std::fs::create_dir_all(outside).unwrap();
    let target = outside.join("orders.cedar");
    std::fs::write(&target, shipped("orders.cedar")).unwrap();
    std::fs::remove_file(policy_dir.join("orders.cedar")).unwrap();
    std::os::unix::fs::symlink(&target, policy_dir.join("orders.cedar")).unwrap();
    target
}

#[tokio::test]
async fn the_periodic_check_catches_a_change_no_event_reported() {
    let holder = tempfile::tempdir().unwrap();
    let policies = holder.path().join("policies");
    common::copy_policies(&policies);
    let target = link_orders_outside(&policies, &holder.path().join("elsewhere"));
    let app = TestApp::spawn_with(|t| {
        t["policies"]["dir"] = policies.display().to_string().into();
        t["policies"]["check_interval_secs"] = 1.into();
    })
    .await;
    let token = app.token("C-1", Some("LE-1"));
    assert_eq!(decision(&app, &token).await, "allow");
    std::fs::write(&target, ORDERS_OWN_ONLY).unwrap();
    let took = eventually(Duration::from_secs(4), || async {
        decision(&app, &token).await == "deny"
    })
    .await;
    assert!(took.is_some(), "the periodic check did not reload");
    app.stop().await;
}

#[tokio::test]
async fn every_request_and_batch_sees_one_whole_version_during_a_swap_storm() {
    // Two valid versions that both allow the checks, through differently named policies, so that a
    // mixed, partial or empty set would show as an answer neither version gives.
    const ORDERS_B: &str = r#"@id("entity-orders-b")
permit (principal, action == Shop::Action::"viewOrder", resource is Shop::Order)
when { context has legalEntity && principal in context.legalEntity &&
       resource has legalEntity && resource.legalEntity == context.legalEntity };
"#;
    const PRODUCTS_B: &str = r#"@id("public-products-b")
permit (principal, action == Shop::Action::"viewProduct", resource is Shop::Product)
when { resource.segments.isEmpty() };
"#;
    let version_a = files(&[]);
    let version_b = files(&[("orders.cedar", ORDERS_B), ("products.cedar", PRODUCTS_B)]);
    let broken = [
        files(&[
            ("orders.cedar", ORDERS_SYNTAX_ERROR),
            ("products.cedar", PRODUCTS_B),
        ]),
        files(&[("orders.cedar", ORDERS_INVALID_ATTR)]),
        // Valid files, but the same @id twice.
        files(&[("products.cedar", ORDERS_B), ("orders.cedar", ORDERS_B)]),
    ];
    let (app, mut cm, _holder) = app_on_configmap(&version_a).await;
    let app = Arc::new(app);

    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let mut clients = Vec::new();
    for n in 0..4 {
        let (app, stop, answers, failures, seen) = (
            app.clone(),
            stop.clone(),
            answers.clone(),
            failures.clone(),
            seen.clone(),
        );
        clients.push(tokio::spawn(async move {
            // One client each: its own connection.
            let client = reqwest::Client::new();
            let token = app.token("C-1", Some("LE-1"));
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (path, body) = if (i + n).is_multiple_of(2) {
                    ("/v1/authorize", check())
                } else {
                    let checks = json!([check(), product("P-1", &[])]);
                    ("/v1/authorize/batch", json!({"checks": checks}))
                };
                let resp = client
                    .post(format!("{}{path}", app.base))
                    .bearer_auth(&token)
                    .json(&body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                let (status, b) = match resp {
                    Ok(r) => (r.status(), r.json::<Value>().await.unwrap_or(Value::Null)),
                    Err(e) => {
                        failures.lock().unwrap().push(format!("{path}: {e}"));
                        continue;
                    }
                };
                answers.fetch_add(1, Ordering::Relaxed);
                let version = match (path, &b) {
                    _ if status != StatusCode::OK => None,
                    ("/v1/authorize", b) => match (&b["decision"], &b["policies"]) {
                        (d, p) if d == "allow" && p == &json!(["entity-orders"]) => Some("a"),
                        (d, p) if d == "allow" && p == &json!(["entity-orders-b"]) => Some("b"),
                        _ => None,
                    },
                    (_, b) => {
                        let policies: Vec<&Value> = b["results"]
                            .as_array()
                            .map(|r| r.iter().map(|d| &d["policies"]).collect())
                            .unwrap_or_default();
                        let a = [&json!(["entity-orders"]), &json!(["public-products"])];
                        let bb = [&json!(["entity-orders-b"]), &json!(["public-products-b"])];
                        if policies == a {
                            Some("a")
                        } else if policies == bb {
                            Some("b")
                        } else {
                            None
                        }
                    }
                };
                match version {
                    Some(v) => *seen.lock().unwrap().entry(v.to_string()).or_default() += 1,
                    None => failures
                        .lock()
                        .unwrap()
                        .push(format!("{path}: {status} {b}")),
                }
            }
        }));
    }

    // B, a broken one, A, in turn: 24 swaps, each confirmed served (or refused) before the next.
    let probe = app.token("C-1", Some("LE-1"));
    let served = |policy: &'static str| {
        let (app, probe) = (&app, &probe);
        move || async move {
            let (_, b) = app.authorize(probe, check()).await;
            b["policies"] == json!([policy])
        }
    };
    let mut swaps = 0;
    for round in 0..8 {
        cm.swap(&version_b);
        let b_served = eventually(WITHIN, served("entity-orders-b")).await;
        assert!(b_served.is_some(), "swap {swaps}: version B not served");
        cm.swap(&broken[round % broken.len()]);
        policies_until(&app, |p| p["last_reload"]["ok"] == false).await;
        cm.swap(&version_a);
        let a_served = eventually(WITHIN, served("entity-orders")).await;
        assert!(a_served.is_some(), "swap {swaps}: version A not served");
        swaps += 3;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }

    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} bad answers, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let seen = seen.lock().unwrap();
    eprintln!("storm: {swaps} swaps, {answers:?} answers, {seen:?}");
    assert!(swaps >= 20);
    assert!(
        answers.load(Ordering::Relaxed) > 100,
        "too few answers: {answers:?}"
    );
    assert!(
        seen.get("a").is_some_and(|&n| n > 0) && seen.get("b").is_some_and(|&n| n > 0),
        "both versions should have been served: {seen:?}"
    );
}

#[tokio::test]
async fn sighup_makes_the_real_binary_reload() {
    use aws_lc_rs::signature::Ed25519KeyPair;
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    common::copy_policies(&policies);
    let target = link_orders_outside(&policies, &dir.path().join("elsewhere"));
    let keys = common::Keys::generate();
    std::fs::write(dir.path().join("idp-jwks.json"), keys.jwks().to_string()).unwrap();
    let legate_key = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    std::fs::write(
        dir.path().join("legate.pem"),
        pem::encode(&pem::Pem::new("PRIVATE KEY", legate_key.as_ref().to_vec())),
    )
    .unwrap();
    let mut table = common::base_config(dir.path(), "127.0.0.1:0".parse().unwrap());
    table["policies"]["check_interval_secs"] = 0.into();
    let config = dir.path().join("legate.toml");
    std::fs::write(&config, table.to_string()).unwrap();

    let mut cmd = common::process::legate();
    cmd.args(["--config", &config.display().to_string(), "serve"])
        .args(["--listen", "127.0.0.1:0"])
        .env("LEGATE_LOG", "info");
    let legate = common::process::LegateProcess::start(cmd);
    let client = reqwest::Client::new();
    let token = common::sign(&keys.rsa, &common::claims("C-1", Some("LE-1")));
    let decide = || async {
        let r = client
            .post(format!("{}/v1/authorize", legate.base()))
            .bearer_auth(&token)
            .json(&check())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["decision"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let last_reload = || async {
        client
            .get(format!("{}/v1/policies", legate.base()))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["last_reload"]
            .clone()
    };
    assert_eq!(decide().await, "allow");
    assert_eq!(last_reload().await, Value::Null, "no reload yet");

    // A change no file event reports, and no periodic check: it stays unseen ...
    std::fs::write(&target, ORDERS_OWN_ONLY).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(decide().await, "allow", "the change should need SIGHUP");
    // ... until SIGHUP.
    legate.signal("HUP");
    let took = eventually(WITHIN, || async { decide().await == "deny" }).await;
    assert!(took.is_some(), "SIGHUP did not reload: {:?}", legate.log());
    assert_eq!(last_reload().await["ok"], true);
    // And the process is still serving after the signal.
    assert_eq!(decide().await, "deny");
}
