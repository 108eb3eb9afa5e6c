//! The decision log's writer. Lines go to stderr or a file (`log.decisions`). A writer thread owns
//! the output: a decision only hands its line to a bounded channel, and the thread writes whatever
//! has queued, then flushes. A decision never waits for the log: when the channel is full (the
//! destination is slower than the decisions, or stopped reading) the line is dropped and counted in
//! `legate_decision_log_dropped_total`, and a warning says so at most once per
//! [`DROP_WARN_EVERY`]. The decision itself, its counters and its answer are unaffected.

use std::{
    fs::OpenOptions,
    io::{self, BufWriter, Write},
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    time::{Duration, Instant},
};

use serde::Serialize;

/// `log.decisions`: where the decision log goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "String")]
pub enum DecisionsTo {
    /// `"off"`: no decision log (counters still count).
    Off,
    /// `"stderr"` (the default).
    Stderr,
    /// Any other value: a file, appended to and created when missing.
    File(PathBuf),
}

impl std::fmt::Display for DecisionsTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecisionsTo::Off => f.write_str("off"),
            DecisionsTo::Stderr => f.write_str("stderr"),
            DecisionsTo::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl From<String> for DecisionsTo {
    fn from(s: String) -> Self {
        match s.as_str() {
            "off" => DecisionsTo::Off,
            "stderr" => DecisionsTo::Stderr,
            _ => DecisionsTo::File(PathBuf::from(s)),
        }
    }
}

/// Lines that may wait for the writer; beyond it lines are dropped (and counted).
const QUEUE: usize = 8192;

/// At most one "decision log lines dropped" warning per this interval.
pub(crate) const DROP_WARN_EVERY: Duration = Duration::from_secs(10);

/// How long dropping the log waits for the writer to finish (a destination that stopped reading
/// must not keep the process from exiting).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the writer lets lines gather after a write: the most a line waits to reach the log.
const GATHER: Duration = Duration::from_millis(5);

/// The decision log's output, owned by a writer thread. Dropping it writes what is queued, flushes
/// and waits for the thread, so no line is lost at shutdown.
#[derive(Debug)]
pub struct DecisionLog {
    lines: Option<SyncSender<String>>,
    /// Closed (sender dropped) by the writer thread when it has written and flushed everything.
    finished: std::sync::Mutex<Option<Receiver<()>>>,
    dropped: AtomicU64,
    /// Milliseconds after `started` of the last drop warning (0: none yet).
    last_warning_ms: AtomicU64,
    started: Instant,
}

impl DecisionLog {
    /// Opens the destination named by `log.decisions`: `off` gives `None`, `stderr` the process's
    /// stderr, a file is appended to (created when missing).
    pub fn open(destination: &DecisionsTo) -> io::Result<Option<Self>> {
        let out: Box<dyn Write + Send> = match destination {
            DecisionsTo::Off => return Ok(None),
            DecisionsTo::Stderr => Box::new(io::stderr()),
            DecisionsTo::File(path) => {
                Box::new(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        Self::to_writer(out).map(Some)
    }

    /// A log writing to `out`.
    pub fn to_writer(out: Box<dyn Write + Send>) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        let (done_tx, done_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("legate-decision-log".into())
            .spawn(move || {
                write_lines(rx, out);
                drop(done_tx);
            })?;
        Ok(Self {
            lines: Some(tx),
            finished: std::sync::Mutex::new(Some(done_rx)),
            dropped: AtomicU64::new(0),
            last_warning_ms: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// Lines dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues one line (serialized to JSON) for the writer; drops and counts it when the queue is full.
    pub(super) fn write(&self, line: &impl Serialize) {
        let Some(tx) = &self.lines else { return };
        match serde_json::to_string(line) {
            // Never `send`: it blocks the calling thread, a tokio worker, while the queue is full.
            Ok(text) => match tx.try_send(text) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => self.count_drop(),
                Err(TrySendError::Disconnected(_)) => {
                    self.count_drop();
                    tracing::error!(
                        "the decision log writer has stopped; a decision was not logged"
                    );
                }
            },
            Err(e) => tracing::error!(error = %e, "cannot serialize a decision log line"),
        }
    }

    fn count_drop(&self) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::counter!("legate_decision_log_dropped_total").increment(1);
        let now_ms = (self.started.elapsed().as_millis() as u64).max(1);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= DROP_WARN_EVERY.as_millis() as u64;
        if due
            && self
                .last_warning_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                dropped_total = total,
                "the decision log cannot keep up (its destination is slow or not reading); lines are being dropped"
            );
        }
    }
}

impl Drop for DecisionLog {
    /// Writes what is queued and flushes, waiting at most 2 s (`DRAIN_TIMEOUT`) for a destination that
    /// stopped reading.
    fn drop(&mut self) {
        drop(self.lines.take());
        let done = self
            .finished
            .get_mut()
            .map(Option::take)
            .unwrap_or_default();
        if let Some(done) = done {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(DRAIN_TIMEOUT) {
                tracing::warn!(
                    "the decision log destination is not reading; queued lines are lost"
                );
            }
        }
    }
}

/// The writer thread: blocks for a line, writes every line already queued, flushes, then rests for
/// [`GATHER`] before it looks again; ends when every sender is gone.
///
/// The rest is what makes the log cheap under load: while the writer is not waiting on the channel,
/// a decision's `send` wakes no thread, and the lines that gather meanwhile go out in one `write`.
/// Without it a batch of 100 checks cost 100 wake-ups and 100 writes.
fn write_lines(rx: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    while let Ok(first) = rx.recv() {
        let mut result = writeln!(out, "{first}");
        while result.is_ok() {
            let Ok(next) = rx.try_recv() else { break };
            result = writeln!(out, "{next}");
        }
        if let Err(e) = result.and_then(|()| out.flush()) {
            tracing::error!(error = %e, "cannot write the decision log");
        }
        std::thread::sleep(GATHER);
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read after the log is dropped.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dropping_the_log_writes_every_queued_line() {
        let out = Shared::default();
        let log = DecisionLog::to_writer(Box::new(out.clone())).unwrap();
        let tx = log.lines.clone().unwrap();
        for i in 0..1000 {
            tx.send(format!("{{\"n\":{i}}}")).unwrap();
        }
        drop(tx);
        drop(log);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[999], "{\"n\":999}");
    }
}
