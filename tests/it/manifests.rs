//! The Kubernetes manifests of `deploy/kubernetes/` read for tests: every YAML document, the
//! `shop` pod and its legate sidecar, and `PodFs`, the sidecar's file system as the kubelet
//! would mount it (below a temp root), with the config's paths moved there.

use std::{collections::BTreeMap, path::PathBuf};

use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::common::{self, configmap::ConfigMapDir, Keys};

pub(crate) const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

/// Every document of every `*.yaml` in deploy/kubernetes/.
pub(crate) fn manifests() -> Vec<Value> {
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
pub(crate) fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} {name:?} in {DIR}");
    found[0]
}

/// A list field as a slice (absent = empty).
pub(crate) fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The shop Deployment's pod spec and its legate sidecar.
pub(crate) struct Pod<'a> {
    pub(crate) spec: &'a Value,
    pub(crate) legate: &'a Value,
}

pub(crate) fn pod(docs: &[Value]) -> Pod<'_> {
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
    pub(crate) fn config_path(&self) -> String {
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
    pub(crate) fn volume_holding(&self, path: &str) -> (String, &Value) {
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
pub(crate) fn config_text(docs: &[Value]) -> String {
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
pub(crate) struct PodFs {
    pub(crate) root: tempfile::TempDir,
    pub(crate) volumes: BTreeMap<String, ConfigMapDir>,
    /// The config as the sidecar reads it, with the paths moved below `root`.
    pub(crate) config: toml::Table,
    /// `--config`, moved below `root`.
    pub(crate) config_path: PathBuf,
    idp: Keys,
}

impl PodFs {
    pub(crate) fn lay_out(docs: &[Value]) -> Self {
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
    pub(crate) fn token(&self, sub: &str, legal_entity: Option<&str>) -> String {
        let trust = &self.config["trust"][0];
        let mut claims = common::claims(sub, legal_entity);
        claims["iss"] = json!(trust["issuer"].as_str().unwrap());
        claims["aud"] = json!(trust["audience"][0].as_str().unwrap());
        common::sign(&self.idp.rsa, &claims)
    }
}

/// Applies `f` to every string in `table` (recursively) outside `[[routes]]` (whose strings are
/// URL paths, not files), replacing it when `f` says so.
pub(crate) fn rewrite_paths(table: &mut toml::Table, f: &mut impl FnMut(&str) -> Option<String>) {
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

pub(crate) fn p256_pem() -> String {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        key.to_pkcs8v1().unwrap().as_ref().to_vec(),
    ))
}

/// The `@id`s in the policies ConfigMap's `*.cedar` files, sorted.
pub(crate) fn policy_ids(docs: &[Value]) -> Vec<String> {
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
