//! Loading: a policy directory in, a validated [`Snapshot`] or every [`Problem`] with file:line out.
//!
//! The set is every `*.cedar` file under the directory, recursively, skipping names that begin with
//! `.` (a Kubernetes ConfigMap's `..data` and `..2026_…` entries are reached only through the
//! top-level links), plus `schema.cedarschema` and `entities.json` at the top. Each policy's id is
//! its `@id` annotation, which must be unique across files. The set is validated strictly against
//! the schema; an empty set is an error, never something to serve.
//!
//! The steps, one file each: [`read`] the files (and hash them), [`parse`] and validate, [`index`]
//! into a snapshot (a big file is parsed a few policies at a time, [`chunks`]); [`diagnostics`] turns Cedar's errors into problems with a place.

mod chunks;
mod diagnostics;
mod index;
mod parse;
mod read;

pub(crate) use diagnostics::{LoadError, Problem};

use std::path::Path;

use super::Snapshot;

/// The schema file's name at the top of the policy directory.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// The entity data file's name at the top of the policy directory.
pub const ENTITIES_FILE: &str = "entities.json";
/// The Kubernetes ConfigMap link that is swapped atomically to publish a new version.
pub(crate) const CONFIGMAP_DATA_LINK: &str = "..data";
const MAX_DEPTH: usize = 16;
/// How often [`load_settled`] reads when a ConfigMap swap raced with the read.
const SETTLE_ATTEMPTS: usize = 10;

/// Loads and validates the policy directory `dir`.
pub fn load(dir: &Path, namespace: &str) -> Result<Snapshot, LoadError> {
    let texts = read::read_all(dir)?;
    let schema = parse::schema(&texts.schema)?;
    if texts.policies.is_empty() {
        return Err(LoadError::one(
            dir.display().to_string(),
            "no *.cedar policy files found",
        ));
    }
    finish(
        schema,
        &texts.schema,
        &texts.policies,
        texts.entities.as_deref(),
        namespace,
        texts.hash,
    )
}

/// [`load`] from texts in memory: the schema, the policy files (name, text), `entities.json` and
/// the snapshot's hash; the same parse, validation and indexing a directory gets. For the fuzz
/// targets (`fuzz/`), which make a snapshot per input without touching the file system.
#[doc(hidden)]
pub fn from_texts(
    schema_text: &str,
    policies: &[(String, String)],
    entities: Option<&str>,
    namespace: &str,
    hash: String,
) -> Result<Snapshot, LoadError> {
    let schema = parse::schema(schema_text)?;
    if policies.is_empty() {
        return Err(LoadError::one("policies", "no *.cedar policy files found"));
    }
    finish(schema, schema_text, policies, entities, namespace, hash)
}

fn finish(
    schema: cedar_policy::Schema,
    schema_text: &str,
    policies: &[(String, String)],
    entities: Option<&str>,
    namespace: &str,
    hash: String,
) -> Result<Snapshot, LoadError> {
    let parsed = parse::policies(policies)?;
    parsed.validate(&schema)?;
    let entities = parse::entities(entities, &schema)?;
    index::snapshot(namespace, schema, schema_text, parsed, entities, hash)
}

/// [`load`], read again while a Kubernetes ConfigMap swap (the `..data` link re-pointed) raced with
/// the read, so a snapshot never mixes files of two versions.
pub(crate) fn load_settled(dir: &Path, namespace: &str) -> Result<Snapshot, LoadError> {
    let data_target = || std::fs::read_link(dir.join(CONFIGMAP_DATA_LINK)).ok();
    for _ in 0..SETTLE_ATTEMPTS {
        let before = data_target();
        let result = load(dir, namespace);
        if data_target() == before {
            return result;
        }
    }
    Err(LoadError::one(
        CONFIGMAP_DATA_LINK,
        "the ConfigMap was swapped again during every read; the swap that follows reloads it",
    ))
}

/// The content hash [`load`] gives a valid `dir`, computed without parsing: the cheap "did anything
/// change?" check the watcher's periodic safety net runs.
pub fn fingerprint(dir: &Path) -> Result<String, LoadError> {
    read::hash_only(dir)
}

#[cfg(test)]
mod tests;
