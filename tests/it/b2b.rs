//! The B2B pack (`examples/b2b/`) end to end on the real binary: `legate serve` on the pack with
//! the HTTP entity source, a test double of the customer-management service giving roles per
//! assignment. An identity provider's token is refreshed to one legal entity, then to another: the
//! roles change with it, and so do decisions, `/v1/me` and `/v1/plan` answers. A caller-supplied
//! `context.roles` is refused; roles that are not a list of strings fail closed. And the pack's own
//! `examples/b2b/legate.toml` starts as it is.

use std::{net::SocketAddr, path::Path};

use crate::common::{
    claims,
    process::{self, legate, LegateProcess},
    sign, Keys, AUD, IDP,
};
use axum::{extract::Path as UrlPath, routing::get, Json, Router};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The pretend customer-management service: assignments with roles per legal entity. C-GUS exists
/// only here (not in entities.json); C-BAD's answer has roles that are not a list of strings.
async fn legal_entities(UrlPath(customer): UrlPath<String>) -> Json<Value> {
    Json(match customer.as_str() {
        "C-ANNA" => json!([
            {"id": "LE-ACME", "name": "Acme Group AG", "segments": ["wholesale"],
             "roles": ["admin"], "default": true},
            {"id": "LE-ACME-DE", "name": "Acme Deutschland GmbH", "segments": ["wholesale"],
             "roles": ["buyer"]}]),
        "C-GUS" => json!([
            {"id": "LE-ACME-DE-B", "segments": ["retail"], "roles": ["approver"]},
            {"id": "LE-GLOBEX", "segments": []}]),
        "C-BAD" => json!([{"id": "LE-ACME", "segments": [], "roles": "admin"}]),
        _ => json!([]),
    })
}

async fn start_service() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = Router::new().route("/customers/{customer}/legal-entities", get(legal_entities));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

/// `examples/b2b/legate.toml` with the test IdP trusted, the HTTP entity source at `service` and
/// a free port; written to `dir`.
fn config(dir: &Path, keys: &Keys, service: SocketAddr) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("examples/b2b/legate.toml")).unwrap();
    let mut t: toml::Table = text.parse().unwrap();
    std::fs::write(dir.join("idp-jwks.json"), keys.jwks().to_string()).unwrap();
    let trust: toml::Table = format!(
        "issuer = \"{IDP}\"\naudience = [\"{AUD}\"]\njwks = \"{}\"\nalgorithms = [\"RS256\"]",
        dir.join("idp-jwks.json").display()
    )
    .parse()
    .unwrap();
    t.insert("trust".into(), toml::Value::Array(vec![trust.into()]));
    let entities: toml::Table = format!(
        "source = \"http\"\nurl = \"http://{service}/customers/{{customer}}/legal-entities\"\ncache_ttl_secs = 0"
    )
    .parse()
    .unwrap();
    t.insert("entities".into(), entities.into());
    t.insert("listen".into(), "127.0.0.1:0".into());
    let path = dir.join("legate.toml");
    std::fs::write(&path, t.to_string()).unwrap();
    path
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// The decision for `check`, which must be answered 200.
    async fn decide(&self, token: &str, check: Value) -> Value {
        let (s, d) = self.post("/v1/authorize", token, check).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        d
    }

    /// `/v1/plan` for `action` on orders, which must be answered 200.
    async fn plan(&self, token: &str, action: &str) -> Value {
        let body = json!({"action": action, "resource": {"type": "Order"}});
        let (s, p) = self.post("/v1/plan", token, body).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        p
    }
}

fn order(id: &str, owner: &str, le: &str, status: &str) -> Value {
    json!({"action": "viewOrder", "resource": {"type": "Order", "id": id, "attrs": {
        "owner": {"type": "Customer", "id": owner}, "legalEntity": {"type": "LegalEntity", "id": le},
        "total": 250000, "status": status}}})
}

fn with_action(mut check: Value, action: &str) -> Value {
    check["action"] = json!(action);
    check
}

fn place(action: &str, owner: &str, le: &str, total: i64) -> Value {
    json!({"action": action, "context": {"total": total}, "resource": {"type": "Cart", "id": "K-1",
        "attrs": {"owner": {"type": "Customer", "id": owner},
                  "legalEntity": {"type": "LegalEntity", "id": le}}}})
}

/// The entity ids a plan's filter compares `legalEntity` with.
fn entities_in(filter: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(eq)) = m.get("eq") {
                    if eq[0] == json!({"attr": "legalEntity"}) {
                        out.push(eq[1]["value"]["id"].as_str().unwrap().to_string());
                    }
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(filter, &mut out);
    out.sort();
    out
}

fn serve(config: &Path) -> LegateProcess {
    let mut cmd = legate();
    cmd.arg("--config")
        .arg(config)
        .arg("serve")
        .env("LEGATE_LOG__DECISIONS", "off");
    LegateProcess::start(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_entity_changes_roles_decisions_and_plans() {
    let (service, task) = start_service().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let server = serve(&config(dir.path(), &keys, service));
    let c = Client {
        base: server.base(),
        http: reqwest::Client::new(),
    };
    let idp = sign(&keys.rsa, &claims("C-ANNA", None));

    // Refresh the IdP token to LE-ACME, where the service says Anna is admin.
    let (s, acme) = c
        .post(
            "/v1/token/refresh",
            &idp,
            json!({"legal_entity_id": "LE-ACME"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{acme}");
    let at_acme = acme["access_token"].as_str().unwrap().to_string();
    let (s, me) = c.get("/v1/me", &at_acme).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(
        me["legal_entities"],
        json!([{"id": "LE-ACME", "name": "Acme Group AG", "roles": ["admin"]},
               {"id": "LE-ACME-DE", "name": "Acme Deutschland GmbH", "roles": ["buyer"]}])
    );

    // As the parent's admin: a subsidiary's order is visible (LE-ACME-DE comes from the service
    // and keeps its parent from entities.json), a big cart is placed, pending orders are approved.
    let bens = order("O-1", "C-BEN", "LE-ACME-DE", "open");
    let d = c.decide(&at_acme, bens.clone()).await;
    assert_eq!(d["decision"], "allow", "{d}");
    assert_eq!(d["policies"], json!(["b2b-parent-admin-sees-subsidiaries"]));
    let grandchild = order("O-2", "C-BEN", "LE-ACME-DE-B", "open");
    assert_eq!(c.decide(&at_acme, grandchild).await["decision"], "allow");
    let big = place("placeOrder", "C-ANNA", "LE-ACME", 500_000);
    assert_eq!(c.decide(&at_acme, big).await["decision"], "allow");
    let pending = order("O-3", "C-BEN", "LE-ACME", "pending_approval");
    let approve = with_action(pending.clone(), "approveOrder");
    assert_eq!(
        c.decide(&at_acme, approve.clone()).await["decision"],
        "allow"
    );
    let own_pending = with_action(
        order("O-4", "C-ANNA", "LE-ACME", "pending_approval"),
        "approveOrder",
    );
    let d = c.decide(&at_acme, own_pending.clone()).await;
    assert_eq!(d["decision"], "deny", "separation of duties: {d}");

    let list = c.plan(&at_acme, "listOrders").await;
    assert_eq!(list["kind"], "conditional", "{list}");
    assert_eq!(list["errors"], json!([]), "{list}");
    assert_eq!(
        entities_in(&list["filter"]),
        ["LE-ACME", "LE-ACME-DE", "LE-ACME-DE-B", "LE-ACME-FR"],
        "{list}"
    );
    let params = list["sql"]["params"].to_string();
    assert!(params.contains("LE-ACME-DE-B"), "{list}");
    let approvable = c.plan(&at_acme, "approveOrder").await;
    assert_eq!(approvable["kind"], "conditional", "{approvable}");
    assert_eq!(approvable["policies"], json!(["b2b-approve-entity-orders"]));

    // Switch to LE-ACME-DE with the refresh token: there Anna is only a buyer.
    let (s, de) = c
        .post(
            "/v1/token/refresh",
            &at_acme,
            json!({"refresh_token": acme["refresh_token"], "legal_entity_id": "LE-ACME-DE"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{de}");
    let at_de = de["access_token"].as_str().unwrap().to_string();
    assert_eq!(de["legal_entity_id"], "LE-ACME-DE");

    let d = c.decide(&at_de, bens).await;
    assert_eq!(d["decision"], "deny", "a buyer sees only own orders: {d}");
    let big = place("placeOrder", "C-ANNA", "LE-ACME-DE", 500_000);
    assert_eq!(c.decide(&at_de, big).await["decision"], "deny");
    let small = place("placeOrder", "C-ANNA", "LE-ACME-DE", 50_000);
    let d = c.decide(&at_de, small).await;
    assert_eq!(
        d["policies"],
        json!(["b2b-buyer-places-up-to-limit"]),
        "{d}"
    );
    let submit = place("submitForApproval", "C-ANNA", "LE-ACME-DE", 500_000);
    assert_eq!(c.decide(&at_de, submit).await["decision"], "allow");
    let pending_de = with_action(
        order("O-5", "C-BEN", "LE-ACME-DE", "pending_approval"),
        "approveOrder",
    );
    assert_eq!(c.decide(&at_de, pending_de).await["decision"], "deny");

    let list = c.plan(&at_de, "listOrders").await;
    assert_eq!(
        list["filter"],
        json!({"eq": [{"attr": "owner"}, {"value": {"type": "Shop::Customer", "id": "C-ANNA"}}]}),
        "{list}"
    );
    assert_eq!(list["sql"]["params"], json!(["C-ANNA"]));
    let approvable = c.plan(&at_de, "approveOrder").await;
    assert_eq!(approvable["kind"], "always_denied", "{approvable}");

    // The caller may not bring roles of their own, to authorize or to plan.
    let mut forged = place("placeOrder", "C-ANNA", "LE-ACME-DE", 500_000);
    forged["context"]["roles"] = json!(["admin"]);
    let (s, b) = c.post("/v1/authorize", &at_de, forged).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "invalid_request");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("roles"),
        "{b}"
    );
    let body = json!({"action": "listOrders", "resource": {"type": "Order"},
                      "context": {"roles": ["admin"]}});
    let (s, b) = c.post("/v1/plan", &at_de, body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "invalid_request");
    drop(server);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_come_from_the_service_and_bad_roles_fail_closed() {
    let (service, task) = start_service().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let server = serve(&config(dir.path(), &keys, service));
    let c = Client {
        base: server.base(),
        http: reqwest::Client::new(),
    };
    // Gus is known only to the service: approver in LE-ACME-DE-B, no roles in LE-GLOBEX.
    let gus_b = sign(&keys.rsa, &claims("C-GUS", Some("LE-ACME-DE-B")));
    let pending = with_action(
        order("O-1", "C-BEN", "LE-ACME-DE-B", "pending_approval"),
        "approveOrder",
    );
    let d = c.decide(&gus_b, pending).await;
    assert_eq!(d["decision"], "allow", "{d}");
    assert_eq!(d["errors"], json!([]));
    let gus_globex = sign(&keys.rsa, &claims("C-GUS", Some("LE-GLOBEX")));
    let pending = with_action(
        order("O-2", "C-BEN", "LE-GLOBEX", "pending_approval"),
        "approveOrder",
    );
    assert_eq!(c.decide(&gus_globex, pending).await["decision"], "deny");

    // C-BAD's answer has `"roles": "admin"`: the whole answer is refused, so no assignment and no
    // role; the decision says why, and no token is issued for the entity.
    let bad = sign(&keys.rsa, &claims("C-BAD", Some("LE-ACME")));
    let d = c
        .decide(&bad, order("O-3", "C-BEN", "LE-ACME", "open"))
        .await;
    assert_eq!(d["decision"], "deny", "{d}");
    assert!(d["errors"].to_string().contains("entity source"), "{d}");
    let (s, b) = c
        .post(
            "/v1/token/refresh",
            &bad,
            json!({"legal_entity_id": "LE-ACME"}),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    let p = c.plan(&bad, "listOrders").await;
    assert_eq!(
        p["filter"],
        json!({"eq": [{"attr": "owner"}, {"value": {"type": "Shop::Customer", "id": "C-BAD"}}]}),
        "{p}"
    );
    drop(server);
    task.abort();
}

#[tokio::test]
async fn the_packs_own_config_starts_and_serves_the_pack() {
    let mut cmd = process::serve("examples/b2b/legate.toml");
    cmd.env("LEGATE_LOG__DECISIONS", "off");
    let server = LegateProcess::start(cmd);
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/readyz", server.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let policies: Value = http
        .get(format!("{}/v1/policies", server.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = policies.to_string();
    assert!(
        text.contains("b2b-parent-admin-sees-subsidiaries"),
        "{text}"
    );
    assert!(text.contains("b2b-no-self-approval"), "{text}");
}
