//! Stage 4, policies: load them, hold the current set, swap it atomically, evaluate against it.
//!
//! A [`Snapshot`] is immutable: schema, policy set, entities and the facts derived from them (policy
//! ids, forbid ids, known types and actions), built once per load. The [`PolicyStore`] holds the
//! current one in an `ArcSwap`; a request takes one `load_full()` and decides everything against
//! that snapshot, so a reload can never show it a half-loaded set.

mod evaluate;
mod index;
mod load;
mod roles;
mod shape;
mod watch;

pub use evaluate::evaluate;
pub(crate) use index::PolicyIndex;
pub use load::{fingerprint, from_texts, load, ENTITIES_FILE, SCHEMA_FILE};
pub(crate) use load::{load_settled, LoadError, Problem, CONFIGMAP_DATA_LINK};
pub(crate) use roles::own_context;
pub(crate) use roles::{LEGAL_ENTITY_KEY, ROLES_KEY};
pub(crate) use shape::{AttrType, Shape};
pub use watch::spawn_watcher;

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use arc_swap::ArcSwap;
use cedar_policy::{Entities, EntityTypeName, EntityUid, PolicyId, PolicySet, Schema};

/// A policy and the file it came from, for `/v1/policies`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyInfo {
    /// The `@id` annotation (or `file#n` when there is none).
    pub id: String,
    /// Path relative to the policy directory.
    pub file: String,
}

/// A primitive attribute of the principal type that may be filled from a token claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimType {
    /// Cedar `String`
    String,
    /// Cedar `Long`
    Long,
    /// Cedar `Bool`
    Bool,
}

/// One loaded, validated, immutable policy set with everything derived from it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Namespace short type names resolve in.
    namespace: String,
    /// The schema everything was validated against.
    schema: Schema,
    /// The policies; each `PolicyId` is its `@id`.
    policies: PolicySet,
    /// `policies` bucketed by scope, which evaluation uses; [`Snapshot::reindex`] after changing
    /// `policies`.
    index: PolicyIndex,
    /// Entity data from `entities.json` (assignments, legal entities and their segments).
    entities: Entities,
    /// Every policy with its file, sorted by id.
    files: Vec<PolicyInfo>,
    /// Ids of `forbid` policies: an error in one of them denies the request.
    forbids: HashSet<PolicyId>,
    /// Entity types the schema declares, by qualified name and, inside `namespace`, by short name
    /// (parsing a type name goes through Cedar's parser: too slow to do per request).
    entity_types: HashMap<String, EntityTypeName>,
    /// Actions the schema declares, by plain name (`viewOrder`).
    actions: HashMap<String, EntityUid>,
    /// For each action, its entity and the entities of the action groups it is in: a request's slice
    /// gets only its own action's, so `action in <group>` works without re-validating per request.
    action_entities: HashMap<EntityUid, Vec<cedar_policy::Entity>>,
    /// Attribute shapes by entity type, for the resource fast path.
    shapes: HashMap<EntityTypeName, Shape>,
    /// Principal attributes that token claims of the same name fill.
    customer_attrs: HashMap<String, ClaimType>,
    /// Actions whose context declares `roles: Set<String>`, which legate fills (see [`ROLES_KEY`]).
    role_actions: HashSet<EntityUid>,
    /// The (action, resource type, legal entity selected) combinations for which a request by a
    /// `Customer` whose context holds only legate's own keys fits the schema: such a request is
    /// built without Cedar re-checking it against the schema (about 12,000 instructions a check).
    /// Every other request, and every request with the caller's context keys, is checked.
    fitting: HashSet<(EntityUid, EntityTypeName, bool)>,
    /// SHA-256 over every file read, hex.
    hash: String,
    /// When this snapshot was built.
    loaded_at: SystemTime,
}

impl Snapshot {
    /// Namespace short type names resolve in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The schema everything was validated against.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The policies; each `PolicyId` is its `@id`.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// Entity data from `entities.json` (assignments, legal entities and their segments).
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// Every policy with its file, sorted by id.
    pub fn files(&self) -> &Vec<PolicyInfo> {
        &self.files
    }

    /// Ids of `forbid` policies: an error in one of them denies the request.
    pub fn forbids(&self) -> &HashSet<PolicyId> {
        &self.forbids
    }

    /// Entity types the schema declares, by qualified name and, inside `namespace`, by short name
    /// (parsing a type name goes through Cedar's parser: too slow to do per request).
    pub fn entity_types(&self) -> &HashMap<String, EntityTypeName> {
        &self.entity_types
    }

    /// Actions the schema declares, by plain name (`viewOrder`).
    pub fn actions(&self) -> &HashMap<String, EntityUid> {
        &self.actions
    }

    /// For each action, its entity and the entities of the action groups it is in: a request's slice
    /// gets only its own action's, so `action in <group>` works without re-validating per request.
    pub fn action_entities(&self) -> &HashMap<EntityUid, Vec<cedar_policy::Entity>> {
        &self.action_entities
    }

    /// Attribute shapes by entity type, for the resource fast path.
    pub fn shapes(&self) -> &HashMap<EntityTypeName, Shape> {
        &self.shapes
    }

    /// Principal attributes that token claims of the same name fill.
    pub fn customer_attrs(&self) -> &HashMap<String, ClaimType> {
        &self.customer_attrs
    }

    /// Actions whose context declares `roles: Set<String>`, which legate fills (see `ROLES_KEY`).
    pub fn role_actions(&self) -> &HashSet<EntityUid> {
        &self.role_actions
    }

    /// The (action, resource type, legal entity selected) combinations for which a request by a
    /// `Customer` whose context holds only legate's own keys fits the schema: such a request is
    /// built without Cedar re-checking it against the schema (about 12,000 instructions a check).
    /// Every other request, and every request with the caller's context keys, is checked.
    pub fn fitting(&self) -> &HashSet<(EntityUid, EntityTypeName, bool)> {
        &self.fitting
    }

    /// SHA-256 over every file read, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// When this snapshot was built.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Rebuilds `Snapshot::index` from [`Snapshot::policies`].
    pub fn reindex(&mut self) {
        self.index = PolicyIndex::build(&self.policies);
    }

    /// A copy with `entities` added to (or replacing, by uid) the entity data, checked against the
    /// schema (`legate test`'s per-case entities).
    pub fn with_entities(
        &self,
        entities: impl IntoIterator<Item = cedar_policy::Entity>,
    ) -> Result<Snapshot, String> {
        let mut out = self.clone();
        out.entities = out
            .entities
            .upsert_entities(entities, Some(&self.schema))
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// A copy with `extra` policies added (ids kept), the index rebuilt.
    #[cfg(test)]
    pub(crate) fn with_policies(&self, extra: &PolicySet) -> Snapshot {
        let mut out = self.clone();
        for p in extra.policies() {
            out.policies.add(p.clone()).expect("distinct policy ids");
        }
        out.reindex();
        out
    }

    /// `Order` → `Shop::Order`; names that already have `::` are kept.
    pub fn qualify(&self, type_name: &str) -> String {
        if type_name.contains("::") {
            type_name.to_string()
        } else {
            format!("{}::{type_name}", self.namespace)
        }
    }

    /// The declared entity type for `type_name` (with or without namespace).
    pub fn entity_type(&self, type_name: &str) -> Option<EntityTypeName> {
        self.entity_types.get(type_name).cloned()
    }
}

/// The outcome of the most recent reload attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadStatus {
    /// When it ran (RFC 3339).
    pub at: String,
    /// Whether the new set was accepted (or was unchanged).
    pub ok: bool,
    /// Why it was refused: every problem as `file:line:column: message`, one per line.
    pub error: Option<String>,
    /// The same problems, structured (empty when `ok`).
    pub problems: Vec<Problem>,
}

/// The current snapshot, swapped atomically by reloads.
#[derive(Debug)]
pub struct PolicyStore {
    dir: PathBuf,
    namespace: String,
    current: ArcSwap<Snapshot>,
    /// Written by the reloader, read by `/v1/policies`; a std mutex is enough because it is held only
    /// to copy a small struct, never across an `.await`.
    last_reload: Mutex<Option<ReloadStatus>>,
}

impl PolicyStore {
    /// Loads `dir` once; fails if the set is not valid (legate never starts with no policies).
    pub fn open(dir: PathBuf, namespace: &str) -> Result<Self, LoadError> {
        let snapshot = load_settled(&dir, namespace)?;
        Ok(Self::new(dir, namespace, snapshot))
    }

    /// A store over an already built snapshot (tests, `legate authorize`).
    pub fn new(dir: PathBuf, namespace: &str, snapshot: Snapshot) -> Self {
        Self {
            dir,
            namespace: namespace.to_string(),
            current: ArcSwap::from_pointee(snapshot),
            last_reload: Mutex::new(None),
        }
    }

    /// The snapshot to decide one request (or one batch) against.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The directory the policies are read from.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Replaces the current snapshot.
    pub fn swap(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// Reads the directory again. A valid, changed set replaces the current one; an invalid one is
    /// refused and the current one keeps serving. Returns whether a swap happened.
    pub fn reload(&self) -> Result<bool, LoadError> {
        let result = load_settled(&self.dir, &self.namespace);
        let status = |ok: bool, error: Option<&LoadError>| ReloadStatus {
            at: crate::shared::rfc3339(SystemTime::now()),
            ok,
            error: error.map(LoadError::to_string),
            problems: error.map(|e| e.problems.clone()).unwrap_or_default(),
        };
        match result {
            Ok(snapshot) => {
                let changed = snapshot.hash != self.current.load().hash;
                if changed {
                    self.swap(snapshot);
                }
                *self.last_reload.lock().expect("poisoned") = Some(status(true, None));
                Ok(changed)
            }
            Err(e) => {
                *self.last_reload.lock().expect("poisoned") = Some(status(false, Some(&e)));
                Err(e)
            }
        }
    }

    /// The most recent reload attempt, if any.
    pub fn last_reload(&self) -> Option<ReloadStatus> {
        self.last_reload.lock().expect("poisoned").clone()
    }
}

/// The shipped policies' directory (`policies/` in the repository).
#[cfg(test)]
pub(crate) fn shipped_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// The shipped policies (namespace `Shop`), loaded: what unit tests across the crate decide
/// against.
#[cfg(test)]
pub(crate) fn shipped() -> Snapshot {
    load(&shipped_dir(), "Shop").expect("the shipped policies load")
}
