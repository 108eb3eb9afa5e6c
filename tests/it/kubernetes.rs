//! The Kubernetes manifests in `deploy/kubernetes/` against the real binary, so they cannot drift
//! from the code: the legate config and the policies are taken out of their ConfigMaps, laid out
//! the way the kubelet projects the pod's volumes (at the container's mount paths, below a temp
//! root), and run through `legate validate` and `legate serve` with the container's own arguments.
//! Only what a test machine cannot reach is replaced: the identity provider's JWKS URL (by a file
//! with the test IdP's keys), the listen address (a free loopback port) and the signing key, which
//! the manifests leave to a Secret created at install time (a generated key here).
//!
//! The manifests' schema is checked by `kubernetes-validate --strict` in `.ci/run`; these tests
//! check what a schema cannot: that the pieces fit legate and each other.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use crate::common::process::{legate, LegateProcess};
use crate::manifests::{config_text, find, list, manifests, pod, policy_ids, PodFs};
use reqwest::StatusCode;
use serde_json::Value;

fn probe_path(container: &Value, probe: &str) -> (String, Value) {
    let get = &container[probe]["httpGet"];
    (
        get["path"].as_str().unwrap_or_default().to_string(),
        get["port"].clone(),
    )
}

#[test]
fn the_sidecar_is_wired_to_what_legate_reads_and_serves() {
    let docs = manifests();
    let pod = pod(&docs);
    let config: toml::Table = config_text(&docs).parse().unwrap();

    // A native sidecar, with no service links (a Service named `legate` would inject LEGATE_*).
    assert_eq!(pod.legate["restartPolicy"], "Always");
    assert_eq!(pod.spec["enableServiceLinks"], false);
    let has_legate_service = docs
        .iter()
        .any(|d| d["kind"] == "Service" && d["metadata"]["name"] == "legate");
    assert!(has_legate_service, "the token endpoints' Service");

    // Probes on the port legate listens on, at the paths it serves.
    let listen = config["listen"].as_str().unwrap();
    let port: u64 = listen.rsplit(':').next().unwrap().parse().unwrap();
    let ports = list(&pod.legate["ports"]);
    let named = ports
        .iter()
        .find(|p| p["containerPort"] == port)
        .unwrap_or_else(|| panic!("no container port {port} ({listen})"));
    assert!(
        listen.starts_with("0.0.0.0:"),
        "probes and the Service come in on the pod IP: {listen}"
    );
    for (probe, path) in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ] {
        let (p, port_ref) = probe_path(pod.legate, probe);
        assert_eq!(p, path, "{probe}");
        assert!(
            port_ref == named["name"] || port_ref == port,
            "{probe} on {port_ref}, not legate's port {port}"
        );
    }
    let service = find(&docs, "Service", "legate");
    assert!(list(&service["spec"]["ports"])
        .iter()
        .all(|p| p["targetPort"] == named["name"] || p["targetPort"] == port));

    // Locked down, with a memory limit.
    let security = &pod.legate["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(pod.spec["securityContext"]["runAsNonRoot"], true);
    assert!(pod.legate["resources"]["limits"]["memory"].is_string());
    assert!(pod.legate["resources"]["requests"]["memory"].is_string());

    // The grace period outlasts legate's own.
    let grace = config
        .get("shutdown")
        .and_then(|s| s.get("grace_secs"))
        .and_then(|g| g.as_integer())
        .unwrap_or(20);
    let period = pod.spec["terminationGracePeriodSeconds"].as_i64().unwrap();
    assert!(
        period > grace,
        "terminationGracePeriodSeconds {period} <= shutdown.grace_secs {grace}"
    );

    // Policies from a ConfigMap directory, keys from a Secret.
    let dir = config["policies"]["dir"].as_str().unwrap();
    let (mount, volume) = pod.volume_holding(&format!("{dir}/schema.cedarschema"));
    assert_eq!(
        mount, dir,
        "policies.dir is the ConfigMap's mount path itself"
    );
    assert!(volume["configMap"]["name"].is_string());
    let keys = config["issue"]["keys"].as_array().expect("issue.keys");
    assert!(!keys.is_empty(), "replicas must share a signing key");
    for k in keys {
        let (_, volume) = pod.volume_holding(k.as_str().unwrap());
        assert!(
            volume["secret"]["secretName"].is_string(),
            "{k} from a Secret"
        );
    }

    // More than one replica: rotation state in the Redis of these manifests.
    let replicas = find(&docs, "Deployment", "shop")["spec"]["replicas"]
        .as_i64()
        .unwrap_or(1);
    if replicas > 1 {
        assert_eq!(config["store"]["kind"].as_str(), Some("redis"));
        let url = config["store"]["url"].as_str().unwrap();
        let host_port = url.strip_prefix("redis://").unwrap();
        let (host, port) = host_port.split_once(':').unwrap();
        let port: u64 = port.parse().unwrap();
        let redis = find(&docs, "Service", host);
        assert!(
            list(&redis["spec"]["ports"])
                .iter()
                .any(|p| p["port"] == port),
            "Service {host} has no port {port}"
        );
    }
}

#[test]
fn legate_validate_accepts_the_configmaps_config_and_policies() {
    let docs = manifests();
    let fs = PodFs::lay_out(&docs);
    let out = legate()
        .arg("--config")
        .arg(&fs.config_path)
        .arg("validate")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let ids = policy_ids(&docs);
    assert!(!ids.is_empty());
    assert!(
        stdout.contains(&format!("{} policies valid", ids.len())),
        "{stdout}"
    );
    for id in &ids {
        assert!(stdout.contains(id.as_str()), "{id} not listed:\n{stdout}");
    }
}

/// Polls `probe` every 50 ms until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn forward_auth(base: &str, token: &str, uri: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{base}/v1/forward-auth"))
        .bearer_auth(token)
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Uri", uri)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn legate_serves_the_manifests_config_and_follows_a_policy_configmap_update() {
    let docs = manifests();
    let mut fs = PodFs::lay_out(&docs);
    let mut cmd = legate();
    cmd.arg("--config")
        .arg(&fs.config_path)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let server = LegateProcess::start(cmd);
    let base = server.base();
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status("/healthz").await, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(10), || async {
            status("/readyz").await == StatusCode::OK
        })
        .await,
        "not ready with the manifests' config:\n{}",
        server.log()
    );

    // A route of the ConfigMap's config, decided with the ConfigMap's policies and entity data.
    let token = fs.token("C-1", Some("LE-1"));
    assert_eq!(
        forward_auth(&base, &token, "/legal-entities/LE-2").await,
        StatusCode::OK,
        "{}",
        server.log()
    );
    assert_eq!(
        forward_auth(&base, &token, "/legal-entities/LE-3").await,
        StatusCode::FORBIDDEN
    );

    // `kubectl apply` of an edited policies ConfigMap: the kubelet swaps `..data`; the running
    // legate follows without a restart.
    let policies = find(&docs, "ConfigMap", "legate-policies")["data"]
        .as_object()
        .unwrap();
    let mut files: BTreeMap<String, String> = policies
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let name = files
        .iter()
        .find(|(_, text)| text.contains("@id(\"select-assigned-entity\")"))
        .map(|(k, _)| k.clone())
        .expect("the ConfigMap holds select-assigned-entity");
    files.insert(
        name,
        "@id(\"no-selection\")\nforbid (principal, action, resource is Shop::LegalEntity);\n"
            .into(),
    );
    let dir = fs.config["policies"]["dir"].as_str().unwrap().to_string();
    let mount = fs
        .volumes
        .keys()
        .find(|m| fs.root.path().join(m.trim_start_matches('/')) == Path::new(&dir))
        .cloned()
        .unwrap();
    fs.volumes.get_mut(&mount).unwrap().swap(&files);
    assert!(
        eventually(Duration::from_secs(10), || async {
            forward_auth(&base, &token, "/legal-entities/LE-2").await == StatusCode::FORBIDDEN
        })
        .await,
        "the ConfigMap update was not served:\n{}",
        server.log()
    );
    let answer: Value = client
        .get(format!("{base}/v1/policies"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list(&answer["policies"])
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(ids.contains(&"no-selection"), "{answer}");
    assert!(!ids.contains(&"select-assigned-entity"), "{answer}");
}
