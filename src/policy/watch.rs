//! Hot reload: file events, SIGHUP and a periodic content check in; [`PolicyStore::reload`] out.
//!
//! One background task owns everything. notify (debounced by notify-debouncer-full) watches the
//! policy **directory**, recursively, so in-place writes, rename-over saves, symlinked files, added
//! and removed files and a Kubernetes ConfigMap's `..data` swap all show up. It also watches the
//! directory's parent, non-recursively, to see the directory itself vanish and come back, and then
//! re-arms the watch. notify calls back on its own thread; the callback filters the events to our
//! files and forwards a wake-up into a tokio channel with `blocking_send`. SIGHUP feeds the same
//! channel. Every `check_interval_secs` the task hashes the files (no parsing) and reloads when the
//! hash differs from the serving snapshot's: a safety net for filesystems that lose events.
//!
//! A reload re-reads, parses and validates the whole directory on a blocking thread; the store swaps
//! only a valid, changed set. Nothing here ends the task: a failed watch is logged and retried with
//! backoff, a failed reload keeps the old set serving.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use notify_debouncer_full::{
    new_debouncer,
    notify::{
        event::{AccessKind, AccessMode},
        Event, EventKind, RecommendedWatcher, RecursiveMode,
    },
    DebounceEventResult, Debouncer, RecommendedCache,
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{fingerprint, PolicyStore, CONFIGMAP_DATA_LINK, ENTITIES_FILE, SCHEMA_FILE};

/// Wake-ups waiting to be handled; a burst collapses into one reload, so a few slots are plenty.
const CHANNEL_SLOTS: usize = 16;
/// First and longest wait between attempts to (re-)arm a watch that failed.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// Problems logged one by one per refused reload; `/v1/policies` has them all.
const LOGGED_PROBLEMS: usize = 20;

/// The running watcher. Dropping it aborts the task; [`WatchHandle::stop`] ends it cleanly.
#[derive(Debug)]
pub struct WatchHandle {
    wake: mpsc::Sender<()>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl WatchHandle {
    /// A sender that asks for a full reload (what SIGHUP uses).
    pub fn reload_trigger(&self) -> mpsc::Sender<()> {
        self.wake.clone()
    }

    /// Stops watching and waits for the task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts watching `store`'s directory; reloads it on every relevant change, on
/// `WatchHandle::reload_trigger` and, when the content hash changed, every
/// `check_every` (`policies.check_interval_secs`; `None` = no periodic check). `debounce` is how
/// long a burst of file events may settle (`policies.debounce_ms`).
pub fn spawn_watcher(
    store: Arc<PolicyStore>,
    debounce: Duration,
    check_every: Option<Duration>,
) -> WatchHandle {
    let (wake, rx) = mpsc::channel(CHANNEL_SLOTS);
    let (stop, stopped) = oneshot::channel();
    let dir = std::path::absolute(store.dir()).unwrap_or_else(|_| store.dir().to_path_buf());
    let mut watcher = Watcher {
        parent: dir.parent().map(Path::to_path_buf),
        dir,
        store,
        debounce: debounce.max(Duration::from_millis(1)),
        check_every,
        wake: wake.clone(),
        rx,
        rearm: Arc::new(AtomicBool::new(false)),
        debouncer: None,
        armed: false,
        warned: false,
        failed_hash: None,
    };
    // Armed before this returns, so a server that answers is a server that watches. Whatever
    // changed between the first load and now produced no event for us: compare hashes once.
    watcher.arm();
    if fingerprint(&watcher.dir).ok().as_deref() != Some(watcher.store.snapshot().hash.as_str()) {
        let _ = wake.try_send(());
    }
    WatchHandle {
        wake,
        stop: Some(stop),
        task: Some(tokio::spawn(watcher.run(stopped))),
    }
}

/// The task's state.
struct Watcher {
    /// Absolute, so events (which carry absolute paths) compare equal.
    dir: PathBuf,
    /// Watched to see `dir` itself removed, created or renamed.
    parent: Option<PathBuf>,
    store: Arc<PolicyStore>,
    debounce: Duration,
    check_every: Option<Duration>,
    /// Cloned into notify's callback.
    wake: mpsc::Sender<()>,
    rx: mpsc::Receiver<()>,
    /// Set by the callback when `dir` itself changed or notify reported an error.
    rearm: Arc<AtomicBool>,
    /// Kept here on purpose: dropping the debouncer silently stops event delivery.
    debouncer: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
    /// Whether `dir` is under watch right now.
    armed: bool,
    /// Whether the current failure to watch was logged already.
    warned: bool,
    /// Content hash of the last set that failed to load, so the periodic check reports a broken
    /// set once rather than on every tick.
    failed_hash: Option<String>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("dir", &self.dir)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        metrics::gauge!("legate_policies_loaded").set(self.store.snapshot().files.len() as f64);
        let mut retry = RETRY_MIN;
        let mut check = self.check_every.map(|every| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                Some(()) = self.rx.recv() => {
                    // Collapse a burst (events, SIGHUPs) into one reload.
                    while self.rx.try_recv().is_ok() {}
                    if self.rearm.swap(false, Ordering::AcqRel) {
                        self.arm();
                    }
                    self.reload().await;
                }
                _ = tokio::time::sleep(retry), if !self.armed => {
                    self.arm();
                    if self.armed {
                        retry = RETRY_MIN;
                        self.reload().await;
                    } else {
                        retry = (retry * 2).min(RETRY_MAX);
                    }
                }
                _ = async { check.as_mut().expect("guarded").tick().await }, if check.is_some() => {
                    self.check().await;
                }
            }
        }
        if let Some(d) = self.debouncer.take() {
            d.stop_nonblocking();
        }
        tracing::debug!(dir = %self.dir.display(), "policy watcher stopped");
    }

    /// (Re-)creates the watches. Failures leave `armed` false; the run loop retries with backoff.
    fn arm(&mut self) {
        if self.debouncer.is_none() {
            match new_debouncer(self.debounce, None, self.callback()) {
                Ok(d) => self.debouncer = Some(d),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the policy file watcher; retrying");
                    self.armed = false;
                    return;
                }
            }
        }
        let debouncer = self.debouncer.as_mut().expect("just set");
        if let Some(parent) = &self.parent {
            // Re-added every time: the parent may have been replaced too. Best effort; without it
            // the retry timer and the periodic check still notice a returning directory.
            let _ = debouncer.unwatch(parent);
            if let Err(e) = debouncer.watch(parent, RecursiveMode::NonRecursive) {
                tracing::debug!(dir = %parent.display(), error = %e, "cannot watch the policy directory's parent");
            }
        }
        // The old watch may point at a directory that was removed or renamed away.
        let _ = debouncer.unwatch(&self.dir);
        match debouncer.watch(&self.dir, RecursiveMode::Recursive) {
            Ok(()) => {
                if !self.armed {
                    tracing::info!(dir = %self.dir.display(), "watching the policy directory");
                }
                self.armed = true;
                self.warned = false;
            }
            Err(e) => {
                // Once per outage, not on every retry.
                if self.armed || !self.warned {
                    tracing::warn!(dir = %self.dir.display(), error = %e,
                        "cannot watch the policy directory; the current policies keep serving, retrying");
                }
                self.armed = false;
                self.warned = true;
            }
        }
    }

    /// notify's callback, run on the debouncer's thread.
    fn callback(&self) -> impl FnMut(DebounceEventResult) + Send + 'static {
        let (dir, wake, rearm) = (self.dir.clone(), self.wake.clone(), self.rearm.clone());
        move |result: DebounceEventResult| {
            let wanted = match result {
                Ok(events) => events.iter().fold(false, |wanted, e| {
                    let (reload, rearm_too) = triage(&dir, e);
                    if rearm_too {
                        rearm.store(true, Ordering::Release);
                    }
                    wanted || reload
                }),
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(error = %e, "policy watcher error; re-arming the watch");
                    }
                    rearm.store(true, Ordering::Release);
                    true
                }
            };
            // Fails only once the task is gone, when nobody needs the wake-up any more.
            if wanted {
                let _ = wake.blocking_send(());
            }
        }
    }

    /// The periodic safety net: hash the files and reload only when something differs.
    async fn check(&mut self) {
        let dir = self.dir.clone();
        let hash = match tokio::task::spawn_blocking(move || fingerprint(&dir)).await {
            Ok(Ok(h)) => h,
            // Unreadable now: a reload records why, once.
            Ok(Err(e)) => format!("error: {e}"),
            Err(e) => {
                tracing::warn!(error = %e, "periodic policy check failed");
                return;
            }
        };
        let serving = hash == self.store.snapshot().hash;
        let last_ok = self.store.last_reload().is_none_or(|s| s.ok);
        if (serving && last_ok) || self.failed_hash.as_deref() == Some(hash.as_str()) {
            return;
        }
        tracing::info!("policy files changed without a file event; reloading");
        self.reload().await;
    }

    /// Loads, validates and swaps on a blocking thread; logs and counts the outcome.
    async fn reload(&mut self) {
        let store = self.store.clone();
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let result = store.reload();
            // For a refused set, remember which content failed (see `failed_hash`).
            let failed = result
                .is_err()
                .then(|| fingerprint(store.dir()).unwrap_or_else(|e| format!("error: {e}")));
            (result, failed)
        })
        .await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let result = match outcome {
            Ok((Ok(true), _)) => {
                self.failed_hash = None;
                let snapshot = self.store.snapshot();
                metrics::gauge!("legate_policies_loaded").set(snapshot.files.len() as f64);
                tracing::info!(hash = %snapshot.hash, policies = snapshot.files.len(), elapsed_ms,
                    "policies reloaded");
                "ok"
            }
            Ok((Ok(false), _)) => {
                self.failed_hash = None;
                tracing::debug!(elapsed_ms, "policies unchanged");
                "unchanged"
            }
            Ok((Err(e), failed)) => {
                self.failed_hash = failed;
                tracing::error!(dir = %self.dir.display(), problems = e.problems.len(),
                    "policy reload refused; the previous policies keep serving");
                for p in e.problems.iter().take(LOGGED_PROBLEMS) {
                    let at = match (p.line, p.column) {
                        (Some(l), Some(c)) => format!("{}:{l}:{c}", p.file),
                        (Some(l), None) => format!("{}:{l}", p.file),
                        _ => p.file.clone(),
                    };
                    tracing::error!(at = %at, "{}", p.message);
                }
                "error"
            }
            Err(e) => {
                tracing::error!(error = %e, "policy reload panicked; the previous policies keep serving");
                "error"
            }
        };
        metrics::counter!("legate_policy_reloads_total", "result" => result).increment(1);
    }
}

/// What an event asks for: (reload, re-arm the watch). Reads are ignored: inotify reports every
/// `open` and `close` (the loader's own reads among them), and reloading on those would loop.
fn triage(dir: &Path, event: &Event) -> (bool, bool) {
    if event.need_rescan() {
        return (true, true);
    }
    if let EventKind::Access(kind) = event.kind {
        if kind != AccessKind::Close(AccessMode::Write) {
            return (false, false);
        }
    }
    let rearm = event.paths.iter().any(|p| p == dir);
    let reload = rearm || event.paths.iter().any(|p| is_relevant(dir, p));
    (reload, rearm)
}

/// Whether an event on `path` may change the policy set under `dir`: `*.cedar`, the schema, the
/// entity data, the ConfigMap `..data` link, or what may be a subdirectory (a name without an
/// extension). Hidden names (editor swap files, `..data_tmp`) and temp files are not.
fn is_relevant(dir: &Path, path: &Path) -> bool {
    if !path.starts_with(dir) {
        return false;
    }
    if path == dir {
        return true;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return true; // not UTF-8: reloading costs less than missing a change
    };
    if name == CONFIGMAP_DATA_LINK
        || name.ends_with(".cedar")
        || name == SCHEMA_FILE
        || name == ENTITIES_FILE
    {
        return true;
    }
    !(name.starts_with('.') || name.ends_with('~') || name.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_files_schema_entities_and_the_configmap_link_are_relevant() {
        let dir = Path::new("/etc/legate/policies");
        for name in [
            "orders.cedar",
            "shop/extra.cedar",
            "schema.cedarschema",
            "entities.json",
            "..data",
            "..2026_11_21_10_00_00.000000001/orders.cedar",
            "tenants",
        ] {
            assert!(is_relevant(dir, &dir.join(name)), "{name}");
        }
        assert!(is_relevant(dir, dir), "the directory itself");
    }

    #[test]
    fn reads_are_ignored_and_changes_to_the_directory_itself_rearm() {
        use notify_debouncer_full::notify::event::{CreateKind, DataChange, ModifyKind};
        let dir = Path::new("/etc/legate/policies");
        let ev = |kind, path: &Path| Event::new(kind).add_path(path.to_path_buf());
        let file = dir.join("orders.cedar");
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let read_done = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let write_done = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let modified = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert_eq!(triage(dir, &ev(open, &file)), (false, false));
        assert_eq!(triage(dir, &ev(read_done, &file)), (false, false));
        assert_eq!(triage(dir, &ev(open, dir)), (false, false));
        assert_eq!(triage(dir, &ev(write_done, &file)), (true, false));
        assert_eq!(triage(dir, &ev(modified, &file)), (true, false));
        let created = EventKind::Create(CreateKind::Folder);
        assert_eq!(triage(dir, &ev(created, dir)), (true, true));
        let rescan = Event::new(EventKind::Other)
            .set_flag(notify_debouncer_full::notify::event::Flag::Rescan);
        assert_eq!(triage(dir, &rescan), (true, true));
    }

    #[test]
    fn temp_files_hidden_names_and_other_directories_are_not() {
        let dir = Path::new("/etc/legate/policies");
        for name in [
            "orders.cedar.tmp",
            ".orders.cedar.swp",
            "orders.cedar~",
            "..data_tmp",
            "README.md",
            "notes.txt",
        ] {
            assert!(!is_relevant(dir, &dir.join(name)), "{name}");
        }
        assert!(!is_relevant(dir, Path::new("/etc/legate/legate.toml")));
        assert!(!is_relevant(
            dir,
            Path::new("/etc/legate/policies-old/orders.cedar")
        ));
    }
}
