//! Reading: which files make a policy directory and their text, hashed in the order read, so the
//! snapshot hash and the watcher's cheap [`fingerprint`](super::fingerprint) agree.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{LoadError, ENTITIES_FILE, MAX_DEPTH, SCHEMA_FILE};

/// The text of a policy directory: schema, policy files (relative path, text) and entity data.
pub(super) struct Texts {
    pub(super) schema: String,
    pub(super) policies: Vec<(String, String)>,
    /// `None` when there is no `entities.json`.
    pub(super) entities: Option<String>,
    /// SHA-256 over every file read, hex.
    pub(super) hash: String,
}

/// Reads every file of `dir` that a snapshot is made of.
pub(super) fn read_all(dir: &Path) -> Result<Texts, LoadError> {
    let files = collect(dir)?;
    let mut hasher = Sha256::new();
    let mut read = |rel: &str, path: &Path| -> Result<String, LoadError> {
        let text = read_text(rel, path)?;
        hash_file(&mut hasher, rel, &text);
        Ok(text)
    };
    let schema = read(SCHEMA_FILE, &dir.join(SCHEMA_FILE))?;
    let policies = files
        .iter()
        .map(|(rel, path)| Ok((rel.clone(), read(rel, path)?)))
        .collect::<Result<Vec<_>, LoadError>>()?;
    let entities_path = dir.join(ENTITIES_FILE);
    let entities = if entities_path.exists() {
        Some(read(ENTITIES_FILE, &entities_path)?)
    } else {
        None
    };
    Ok(Texts {
        schema,
        policies,
        entities,
        hash: hex(&hasher.finalize()),
    })
}

/// The content hash [`read_all`] gives `dir`, without keeping the text.
pub(super) fn hash_only(dir: &Path) -> Result<String, LoadError> {
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

/// Every file read goes into the snapshot hash as `name NUL text NUL`, in the order read.
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
