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

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use common::{
    configmap::ConfigMapDir,
    process::{legate, LegateProcess},
    Keys,
};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

/// Every document of every `*.yaml` in deploy/kubernetes/.
fn manifests() -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {DIR}");
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    docs
}

/// The one object of `kind` named `name`.
fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} {name:?} in {DIR}");
    found[0]
}

/// A list field as a slice (absent = empty).
fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The shop Deployment's pod spec and its legate sidecar.
struct Pod<'a> {
    spec: &'a Value,
    legate: &'a Value,
}

fn pod(docs: &[Value]) -> Pod<'_> {
    let spec = &find(docs, "Deployment", "shop")["spec"]["template"]["spec"];
    let sidecars: Vec<&Value> = list(&spec["initContainers"])
        .iter()
        .filter(|c| c["name"] == "legate")
        .collect();
    assert_eq!(sidecars.len(), 1, "one init container named legate");
    Pod {
        spec,
        legate: sidecars[0],
    }
}

impl Pod<'_> {
    /// The value of `--config` in the sidecar's arguments.
    fn config_path(&self) -> String {
        let args: Vec<&str> = list(&self.legate["args"])
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let i = args
            .iter()
            .position(|a| *a == "--config")
            .expect("--config");
        args[i + 1].to_string()
    }

    /// The volume mounted at or above `path`: (mount path, volume).
    fn volume_holding(&self, path: &str) -> (String, &Value) {
        let mount = list(&self.legate["volumeMounts"])
            .iter()
            .find(|m| {
                let at = m["mountPath"].as_str().unwrap();
                path == at || path.starts_with(&format!("{at}/"))
            })
            .unwrap_or_else(|| panic!("no volume of the legate container holds {path}"));
        let volume = list(&self.spec["volumes"])
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume {}", mount["name"]));
        (mount["mountPath"].as_str().unwrap().to_string(), volume)
    }
}

/// legate's config text from the ConfigMap the sidecar's `--config` points into.
fn config_text(docs: &[Value]) -> String {
    let pod = pod(docs);
    let path = pod.config_path();
    let (mount, volume) = pod.volume_holding(&path);
    let name = volume["configMap"]["name"]
        .as_str()
        .expect("--config comes from a ConfigMap");
    let key = path.strip_prefix(&format!("{mount}/")).unwrap();
    find(docs, "ConfigMap", name)["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {name} has no key {key}"))
        .to_string()
}

/// A pod's file system for the legate container, below a temp root: every ConfigMap volume at its
/// mount path as the kubelet projects it, a generated P-256 key for each `issue.keys` file (they
/// must come from a Secret volume), and the test IdP's JWKS in place of the trusted issuer's URL.
struct PodFs {
    root: tempfile::TempDir,
    volumes: BTreeMap<String, ConfigMapDir>,
    /// The config as the sidecar reads it, with the paths moved below `root`.
    config: toml::Table,
    /// `--config`, moved below `root`.
    config_path: PathBuf,
    idp: Keys,
}

impl PodFs {
    fn lay_out(docs: &[Value]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let pod = pod(docs);
        let under = |p: &str| root.path().join(p.trim_start_matches('/'));
        let mut config: toml::Table = config_text(docs).parse().expect("legate.toml is TOML");

        let mut volumes = BTreeMap::new();
        for mount in list(&pod.legate["volumeMounts"]) {
            assert!(
                mount.get("subPath").is_none(),
                "a subPath mount never sees ConfigMap updates: {mount}"
            );
            let volume = list(&pod.spec["volumes"])
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap();
            let mount_path = mount["mountPath"].as_str().unwrap();
            let files: BTreeMap<String, String> =
                if let Some(name) = volume["configMap"]["name"].as_str() {
                    let data = find(docs, "ConfigMap", name)["data"].as_object().unwrap();
                    data.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                } else if volume["secret"].is_object() {
                    // Created at install time (`kubectl create secret`): generate what the config names.
                    let keys = config["issue"]["keys"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    keys.iter()
                        .filter_map(|k| k.as_str()?.strip_prefix(&format!("{mount_path}/")))
                        .map(|name| (name.to_string(), p256_pem()))
                        .collect()
                } else {
                    panic!("unexpected volume {volume}");
                };
            let dir = ConfigMapDir::create(&under(mount_path), &files);
            volumes.insert(mount_path.to_string(), dir);
        }

        // Paths the config names are the container's: move them below the root. Each must be
        // inside a mounted volume (the root file system is read-only).
        let mut moved = 0;
        rewrite_paths(&mut config, &mut |s: &str| {
            if !s.starts_with('/') {
                return None;
            }
            pod.volume_holding(s);
            moved += 1;
            Some(under(s).display().to_string())
        });
        assert!(moved >= 2, "policies.dir and issue.keys are mounted paths");

        let idp = Keys::generate();
        let jwks = root.path().join("idp-jwks.json");
        std::fs::write(&jwks, idp.jwks().to_string()).unwrap();
        for trust in config["trust"].as_array_mut().expect("[[trust]]") {
            trust["jwks"] = jwks.display().to_string().into();
        }

        // The config volume holds the rewritten text, as a kubelet-projected file like the rest.
        let container_path = pod.config_path();
        let (mount, _) = pod.volume_holding(&container_path);
        let key = container_path[mount.len() + 1..].to_string();
        let rewritten = BTreeMap::from([(key, config.to_string())]);
        volumes.get_mut(&mount).unwrap().swap(&rewritten);
        Self {
            config_path: under(&container_path),
            root,
            volumes,
            config,
            idp,
        }
    }

    /// A token from the first trusted issuer, for its first audience.
    fn token(&self, sub: &str, legal_entity: Option<&str>) -> String {
        let trust = &self.config["trust"][0];
        let mut claims = common::claims(sub, legal_entity);
        claims["iss"] = json!(trust["issuer"].as_str().unwrap());
        claims["aud"] = json!(trust["audience"][0].as_str().unwrap());
        common::sign(&self.idp.rsa, &claims)
    }
}

/// Applies `f` to every string in `table` (recursively) outside `[[routes]]` (whose strings are
/// URL paths, not files), replacing it when `f` says so.
fn rewrite_paths(table: &mut toml::Table, f: &mut impl FnMut(&str) -> Option<String>) {
    fn walk(v: &mut toml::Value, f: &mut impl FnMut(&str) -> Option<String>) {
        match v {
            toml::Value::String(s) => {
                if let Some(new) = f(s) {
                    *s = new;
                }
            }
            toml::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f)),
            toml::Value::Table(t) => t.iter_mut().for_each(|(_, x)| walk(x, f)),
            _ => {}
        }
    }
    table
        .iter_mut()
        .filter(|(k, _)| k.as_str() != "routes")
        .for_each(|(_, v)| walk(v, f));
}

fn p256_pem() -> String {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        key.to_pkcs8v1().unwrap().as_ref().to_vec(),
    ))
}

/// The `@id`s in the policies ConfigMap's `*.cedar` files, sorted.
fn policy_ids(docs: &[Value]) -> Vec<String> {
    let data = find(docs, "ConfigMap", "legate-policies")["data"]
        .as_object()
        .unwrap();
    let mut ids: Vec<String> = data
        .iter()
        .filter(|(k, _)| k.ends_with(".cedar"))
        .flat_map(|(_, v)| {
            v.as_str()
                .unwrap()
                .lines()
                .filter_map(|l| l.trim().strip_prefix("@id(\"")?.split('"').next())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids
}

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
