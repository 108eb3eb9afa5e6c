//! Loading: a policy directory in, a validated [`Snapshot`] or every [`Problem`] with file:line out.
//!
//! The set is every `*.cedar` file under the directory, recursively, skipping names that begin with
//! `.` (a Kubernetes ConfigMap's `..data` and `..2026_…` entries are reached only through the
//! top-level links), plus `schema.cedarschema` and `entities.json` at the top. Each policy's id is
//! its `@id` annotation, which must be unique across files. The set is validated strictly against
//! the schema; an empty set is an error, never something to serve.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::SystemTime,
};

use cedar_policy::{
    Effect, Entities, EntityTypeName, PolicyId, PolicySet, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use super::{AttrType, ClaimType, PolicyInfo, Shape, Snapshot};

/// The schema file's name at the top of the policy directory.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// The entity data file's name at the top of the policy directory.
pub const ENTITIES_FILE: &str = "entities.json";
/// The Kubernetes ConfigMap link that is swapped atomically to publish a new version.
pub const CONFIGMAP_DATA_LINK: &str = "..data";
const MAX_DEPTH: usize = 16;
/// How often [`load_settled`] reads when a ConfigMap swap raced with the read.
const SETTLE_ATTEMPTS: usize = 10;

/// One thing wrong with the policy directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file, relative to the policy directory where possible.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// The offending line of text, when known.
    pub snippet: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(s) = &self.snippet {
            write!(f, "\n    | {}", s.trim_end())?;
        }
        Ok(())
    }
}

/// Why a policy directory could not be loaded: every problem found.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LoadError {
    /// At least one.
    pub problems: Vec<Problem>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl LoadError {
    fn one(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                file: file.into(),
                line: None,
                column: None,
                message: message.into(),
                snippet: None,
            }],
        }
    }
}

/// Loads and validates the policy directory `dir`.
pub fn load(dir: &Path, namespace: &str) -> Result<Snapshot, LoadError> {
    let files = collect(dir)?;
    let mut hasher = Sha256::new();
    let mut read = |rel: &str, path: &Path| -> Result<String, LoadError> {
        let text = read_text(rel, path)?;
        hash_file(&mut hasher, rel, &text);
        Ok(text)
    };

    let schema_text = read(SCHEMA_FILE, &dir.join(SCHEMA_FILE))?;
    let schema = match Schema::from_cedarschema_str(&schema_text) {
        Ok((schema, _warnings)) => schema,
        Err(e) => {
            return Err(LoadError {
                problems: diagnostics(SCHEMA_FILE, &schema_text, &e),
            })
        }
    };

    let mut problems = Vec::new();
    let mut set = PolicySet::new();
    let mut infos = Vec::new();
    // Each policy's file name and text, for validation errors: one shared copy per file (a clone of
    // the text per policy made one file of 10,000 policies take gigabytes).
    let mut origin: HashMap<PolicyId, (Arc<str>, Arc<str>)> = HashMap::new();
    for (rel, path) in &files {
        let text: Arc<str> = read(rel, path)?.into();
        let rel_shared: Arc<str> = rel.as_str().into();
        let parsed = match PolicySet::from_str(&text) {
            Ok(p) => p,
            Err(e) => {
                problems.extend(diagnostics(rel, &text, &e));
                continue;
            }
        };
        if parsed.templates().next().is_some() {
            let slot = ["?principal", "?resource"]
                .iter()
                .filter_map(|s| text.find(s))
                .min();
            problems.push(problem(
                rel,
                &text,
                slot,
                "templates are not supported; write static policies".into(),
            ));
        }
        for (n, policy) in parsed.policies().enumerate() {
            let id = policy
                .annotation("id")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{rel}#{n}"));
            let pid = PolicyId::new(&id);
            if let Some((other, _)) = origin.get(&pid) {
                // Cedar keeps no source location on a parsed policy: point at its annotation.
                let at = text
                    .find(&format!("@id(\"{id}\")"))
                    .or_else(|| text.find(&format!("@id(\"{}\")", id.escape_default())));
                problems.push(problem(
                    rel,
                    &text,
                    at,
                    format!("policy id {id:?} is also used in {other}"),
                ));
                continue;
            }
            origin.insert(pid.clone(), (rel_shared.clone(), text.clone()));
            infos.push(PolicyInfo {
                id: id.clone(),
                file: rel.clone(),
            });
            if let Err(e) = set.add(policy.new_id(pid)) {
                problems.push(problem(rel, &text, None, e.to_string()));
            }
        }
    }
    if files.is_empty() {
        problems.push(problem(
            &dir.display().to_string(),
            "",
            None,
            "no *.cedar policy files found".into(),
        ));
    }
    if !problems.is_empty() {
        return Err(LoadError { problems });
    }

    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    for e in result.validation_errors() {
        let (file, text) = origin
            .get(e.policy_id())
            .cloned()
            .unwrap_or_else(|| ("?".into(), "".into()));
        problems.extend(diagnostics(&file, &text, e));
    }
    if !problems.is_empty() {
        return Err(LoadError { problems });
    }

    let entities_path = dir.join(ENTITIES_FILE);
    let entities = if entities_path.exists() {
        let text = read(ENTITIES_FILE, &entities_path)?;
        Entities::from_json_str(&text, Some(&schema)).map_err(|e| LoadError {
            problems: diagnostics(ENTITIES_FILE, &text, &e),
        })?
    } else {
        Entities::empty()
    };

    let forbids: HashSet<PolicyId> = set
        .policies()
        .filter(|p| p.effect() == Effect::Forbid)
        .map(|p| p.id().clone())
        .collect();
    infos.sort_by(|a, b| a.id.cmp(&b.id));
    let mut entity_types = HashMap::new();
    for t in schema.entity_types() {
        if t.namespace() == namespace {
            entity_types.insert(t.basename().to_string(), t.clone());
        }
        entity_types.insert(t.to_string(), t.clone());
    }
    let actions = schema
        .actions()
        .map(|a| (a.id().unescaped().to_string(), a.clone()))
        .collect();
    let shapes = super::shape::shapes(&schema_text, namespace, &entity_types);
    let customer_attrs = customer_attrs(&shapes, namespace);
    let all_actions = schema
        .action_entities()
        .map_err(|e| LoadError::one(SCHEMA_FILE, e.to_string()))?;
    let action_entities = all_actions
        .iter()
        .map(|a| {
            let uid = a.uid();
            let groups = all_actions.ancestors(&uid).into_iter().flatten();
            let slice = std::iter::once(a.clone())
                .chain(groups.filter_map(|g| all_actions.get(g).cloned()))
                .collect();
            (uid, slice)
        })
        .collect();

    let index = super::PolicyIndex::build(&set, super::SPLIT_AT);
    Ok(Snapshot {
        namespace: namespace.to_string(),
        schema,
        index,
        policies: set,
        entities,
        files: infos,
        forbids,
        entity_types,
        actions,
        action_entities,
        shapes,
        customer_attrs,
        hash: hex(&hasher.finalize()),
        loaded_at: SystemTime::now(),
    })
}

/// [`load`], read again while a Kubernetes ConfigMap swap (the `..data` link re-pointed) raced with
/// the read, so a snapshot never mixes files of two versions.
pub fn load_settled(dir: &Path, namespace: &str) -> Result<Snapshot, LoadError> {
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
    let files = collect(dir)?;
    let mut hasher = Sha256::new();
    let schema = dir.join(SCHEMA_FILE);
    hash_file(&mut hasher, SCHEMA_FILE, &read_text(SCHEMA_FILE, &schema)?);
    for (rel, path) in &files {
        hash_file(&mut hasher, rel, &read_text(rel, path)?);
    }
    let entities = dir.join(ENTITIES_FILE);
    if entities.exists() {
        hash_file(
            &mut hasher,
            ENTITIES_FILE,
            &read_text(ENTITIES_FILE, &entities)?,
        );
    }
    Ok(hex(&hasher.finalize()))
}

fn read_text(rel: &str, path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|e| LoadError::one(rel, format!("cannot read: {e}")))
}

/// Every file read goes into the snapshot hash as `name NUL text NUL`, in the order [`load`] reads.
fn hash_file(hasher: &mut Sha256, rel: &str, text: &str) {
    hasher.update(rel.as_bytes());
    hasher.update([0]);
    hasher.update(text.as_bytes());
    hasher.update([0]);
}

/// Every `*.cedar` file under `dir`, as (relative path, path), sorted.
fn collect(dir: &Path) -> Result<Vec<(String, PathBuf)>, LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::one(
            dir.display().to_string(),
            "policy directory does not exist or is not a directory",
        ));
    }
    let mut out = Vec::new();
    walk(dir, dir, 0, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), LoadError> {
    if depth > MAX_DEPTH {
        return Err(LoadError::one(
            dir.display().to_string(),
            "directories nested too deep (a symlink loop?)",
        ));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| LoadError::one(dir.display().to_string(), format!("cannot list: {e}")))?;
    for entry in entries {
        let entry = entry
            .map_err(|e| LoadError::one(dir.display().to_string(), format!("cannot list: {e}")))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // `metadata` follows symlinks: ConfigMap files are links into `..data`.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // a dangling link, e.g. mid-swap: the next reload sees the settled state
        };
        if meta.is_dir() {
            walk(root, &path, depth + 1, out)?;
        } else if name.ends_with(".cedar") {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path));
        }
    }
    Ok(())
}

/// Turns a Cedar diagnostic (and the ones related to it) into problems with line and column.
fn diagnostics(file: &str, text: &str, diag: &dyn Diagnostic) -> Vec<Problem> {
    let one = |d: &dyn Diagnostic| {
        let offset = d.labels().and_then(|mut l| l.next()).map(|l| l.offset());
        let mut message = d.to_string();
        // Some diagnostics (entity data) say what failed only in their causes.
        let mut cause = d.source();
        while let Some(c) = cause {
            let c_msg = c.to_string();
            if !message.contains(&c_msg) {
                message = format!("{message}: {c_msg}");
            }
            cause = c.source();
        }
        if let Some(help) = d.help() {
            message = format!("{message} ({help})");
        }
        let offset = offset.or_else(|| locate(text, &message));
        problem(file, text, offset, message)
    };
    let related: Vec<Problem> = diag.related().into_iter().flatten().map(one).collect();
    if related.is_empty() {
        vec![one(diag)]
    } else {
        related
    }
}

/// Where in `text` a diagnostic without a source label points: serde's `at line L column C`, or
/// the `"uid"` of the entity named `Type::"id"` in the message (entity data errors).
fn locate(text: &str, message: &str) -> Option<usize> {
    if let Some(rest) = message.rsplit_once(" at line ").map(|(_, r)| r) {
        let mut words = rest.split_whitespace();
        let line: usize = words.next()?.parse().ok()?;
        let column: usize = match (words.next(), words.next()) {
            (Some("column"), Some(c)) => c
                .trim_end_matches(|ch: char| !ch.is_ascii_digit())
                .parse()
                .ok()?,
            _ => 1,
        };
        let start: usize = text
            .split_inclusive('\n')
            .take(line.checked_sub(1)?)
            .map(str::len)
            .sum();
        return Some((start + column.saturating_sub(1)).min(text.len()));
    }
    let (_, after) = message.split_once("::\"")?;
    let id = &after[..after.find('"')?];
    let quoted = format!("\"{id}\"");
    let mut from = 0;
    while let Some(i) = text[from..].find("\"uid\"") {
        let at = from + i;
        let window = &text[at..text.len().min(at + 120)];
        let uid_end = window.find('}').unwrap_or(window.len());
        if window[..uid_end].contains(&quoted) {
            return Some(at);
        }
        from = at + 5;
    }
    None
}

fn problem(file: &str, text: &str, offset: Option<usize>, message: String) -> Problem {
    let (line, column, snippet) = match offset {
        Some(off) if off <= text.len() => {
            let before = &text[..off];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = text[start..off].chars().count() + 1;
            let snippet = text[start..].lines().next().unwrap_or("").to_string();
            (Some(line), Some(column), Some(snippet))
        }
        _ => (None, None, None),
    };
    Problem {
        file: file.to_string(),
        line,
        column,
        message,
        snippet,
    }
}

/// The principal type's (`<namespace>::Customer`) primitive attributes, which token claims fill.
fn customer_attrs(
    shapes: &HashMap<EntityTypeName, Shape>,
    namespace: &str,
) -> HashMap<String, ClaimType> {
    let customer = shapes
        .iter()
        .find(|(t, _)| t.basename() == "Customer" && t.namespace() == namespace);
    customer
        .into_iter()
        .flat_map(|(_, shape)| shape.attrs.iter())
        .filter_map(|(name, (ty, _))| {
            let kind = match ty.as_ref()? {
                AttrType::String => ClaimType::String,
                AttrType::Long => ClaimType::Long,
                AttrType::Bool => ClaimType::Bool,
                _ => return None,
            };
            Some((name.clone(), kind))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
