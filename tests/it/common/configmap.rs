//! A directory laid out the way the kubelet projects a ConfigMap (or Secret) volume, and its
//! atomic update, for tests that must meet what a pod really sees.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// A policy directory laid out the way kubelet projects a ConfigMap: the files live in a
/// timestamped hidden directory, `..data` links to it, and each top-level name links through
/// `..data`. An update writes a new timestamped directory, points `..data_tmp` at it, renames that
/// over `..data` (the one atomic step) and deletes the old directory.
pub(crate) struct ConfigMapDir {
    pub(crate) root: PathBuf,
    current: String,
    version: u32,
}

impl ConfigMapDir {
    pub(crate) fn create(root: &Path, files: &BTreeMap<String, String>) -> Self {
        std::fs::create_dir_all(root).unwrap();
        let mut cm = Self {
            root: root.to_path_buf(),
            current: String::new(),
            version: 0,
        };
        cm.current = cm.write_version(files);
        std::os::unix::fs::symlink(&cm.current, root.join("..data")).unwrap();
        for name in files.keys() {
            std::os::unix::fs::symlink(format!("..data/{name}"), root.join(name)).unwrap();
        }
        cm
    }

    fn write_version(&mut self, files: &BTreeMap<String, String>) -> String {
        self.version += 1;
        let ts = format!("..2026_11_21_10_00_00.{:09}", self.version);
        let dir = self.root.join(&ts);
        std::fs::create_dir(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        ts
    }

    /// Publishes `files` (same names as before) the way kubelet does.
    pub(crate) fn swap(&mut self, files: &BTreeMap<String, String>) {
        let ts = self.write_version(files);
        let tmp = self.root.join("..data_tmp");
        std::os::unix::fs::symlink(&ts, &tmp).unwrap();
        std::fs::rename(&tmp, self.root.join("..data")).unwrap();
        std::fs::remove_dir_all(self.root.join(&self.current)).unwrap();
        self.current = ts;
    }
}
