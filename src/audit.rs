//! Stage 5, audit: the decision counters and the decision log, one JSON line per decision; one
//! event per token issued or refused (target `legate::audit`), with `legate_tokens_issued_total` and
//! `legate_token_refusals_total{reason}`. Token contents never appear here beyond ids (`iss`, `jti`,
//! `sid`, customer, legal entity).
//!
//! A decision line holds who asked (issuer, `jti`, customer, legal entity), what (action, resource
//! type and id), the answer (decision, determining policies, errors), against which policy set (its
//! hash), how long it took, and the request's `x-request-id`. Allows are kept with probability
//! `log.allow_sample_rate`; denies are always kept.
//!
//! Lines go to stderr or a file (`log.decisions`). A writer thread owns the output: a decision only
//! hands its line to a bounded channel, and the thread writes whatever has queued, then flushes.
//! A decision never waits for the log: when the channel is full (the destination is slower than the
//! decisions, or stopped reading) the line is dropped and counted in
//! `legate_decision_log_dropped_total`, and a warning says so at most once per
//! [`DROP_WARN_EVERY`]. The decision itself, its counters and its answer are unaffected.

use std::{
    fs::OpenOptions,
    io::{self, BufWriter, Write},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    time::{Duration, Instant, SystemTime},
};

use serde::Serialize;

use crate::{
    config::DecisionsTo, decision::Decision, policy::Snapshot, request::Check, shared::rfc3339,
    verify::VerifiedToken,
};

/// The action an unmatched forward-auth allow is recorded under (never a schema action name:
/// those are identifiers, and this one is counted under its own label).
pub const UNMATCHED_ACTION: &str = "unmatched";

/// Lines that may wait for the writer; beyond it lines are dropped (and counted).
const QUEUE: usize = 8192;

/// At most one "decision log lines dropped" warning per this interval.
pub const DROP_WARN_EVERY: Duration = Duration::from_secs(10);

/// How long dropping the log waits for the writer to finish (a destination that stopped reading
/// must not keep the process from exiting).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the writer lets lines gather after a write: the most a line waits to reach the log.
const GATHER: Duration = Duration::from_millis(5);

tokio::task_local! {
    /// The `x-request-id` of the request being served on this task.
    static REQUEST_ID: String;
}

/// Runs `fut` (an HTTP request's handling) with `id` as the request id its decisions are logged
/// under. A task-local rather than a parameter: every stage that records a decision (authorize,
/// forward-auth, token refresh) gets it without threading it through its signature.
pub async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Counts decisions and writes the decision log.
#[derive(Debug, Default)]
pub struct Audit {
    log: Option<DecisionLog>,
    allow_sample_rate: f64,
}

impl Audit {
    /// Counters only, no decision log (`log.decisions = "off"`, the CLI).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Counters, and lines to `log` with allows kept with probability `allow_sample_rate`.
    pub fn new(log: Option<DecisionLog>, allow_sample_rate: f64) -> Self {
        Self {
            log,
            allow_sample_rate,
        }
    }

    /// Records one decision.
    pub fn decision(
        &self,
        token: &VerifiedToken,
        check: &Check,
        decision: &Decision,
        snapshot: &Snapshot,
        latency: Duration,
    ) {
        // Only actions the schema declares become label values: callers cannot add series.
        let action =
            if snapshot.actions.contains_key(&check.action) || check.action == UNMATCHED_ACTION {
                check.action.clone()
            } else {
                "unknown".to_string()
            };
        metrics::counter!("legate_decisions_total", "action" => action, "decision" => decision.as_str()).increment(1);
        metrics::histogram!("legate_decision_duration_seconds").record(latency.as_secs_f64());
        let Some(log) = &self.log else {
            return;
        };
        if decision.allow && !sampled(self.allow_sample_rate) {
            return;
        }
        let line = DecisionLine {
            time: timestamp(SystemTime::now()),
            request_id: current_request_id(),
            issuer: &token.issuer,
            jti: token.jti.as_deref(),
            customer: &token.customer.0,
            legal_entity: token.legal_entity.as_ref().map(|l| l.0.as_str()),
            action: &check.action,
            resource: ResourceIds {
                kind: &check.resource.kind,
                id: &check.resource.id,
            },
            decision: decision.as_str(),
            policies: &decision.policies,
            errors: &decision.errors,
            policy_hash: &snapshot.hash,
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        };
        log.write(&line);
    }
}

/// One line of the decision log.
#[derive(Debug, Serialize)]
struct DecisionLine<'a> {
    time: String,
    request_id: Option<String>,
    issuer: &'a str,
    jti: Option<&'a str>,
    customer: &'a str,
    legal_entity: Option<&'a str>,
    action: &'a str,
    resource: ResourceIds<'a>,
    decision: &'static str,
    policies: &'a [String],
    errors: &'a [String],
    policy_hash: &'a str,
    latency_us: u64,
}

/// The resource by type and id only: attributes may hold business data.
#[derive(Debug, Serialize)]
struct ResourceIds<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
}

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

    fn write(&self, line: &DecisionLine<'_>) {
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

/// RFC 3339 UTC with milliseconds.
fn timestamp(t: SystemTime) -> String {
    let secs = rfc3339(t);
    let millis = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    format!("{}.{millis:03}Z", secs.trim_end_matches('Z'))
}

/// What the audit log says about one token issue or refusal: ids only, never a token.
#[derive(Debug, Clone, Default)]
pub struct TokenEvent {
    /// `refresh_token` or `token_exchange`.
    pub grant: &'static str,
    /// The customer, once known.
    pub customer: Option<String>,
    /// The legal entity of the presented token.
    pub from_entity: Option<String>,
    /// The legal entity asked for.
    pub to_entity: Option<String>,
    /// `jti` of the presented token.
    pub old_jti: Option<String>,
    /// `jti` of the new access token.
    pub new_jti: Option<String>,
    /// `jti` of the new refresh token.
    pub new_refresh_jti: Option<String>,
    /// The rotation family (`sid`).
    pub family: Option<String>,
}

impl Audit {
    /// Records a token pair issued. Written whatever `log.decisions` says: issuing is rare and
    /// security-relevant.
    pub fn token_issued(&self, e: &TokenEvent) {
        metrics::counter!("legate_tokens_issued_total", "grant" => e.grant).increment(1);
        tracing::info!(
            target: "legate::audit",
            event = "token_issued",
            grant = e.grant,
            customer = e.customer.as_deref().unwrap_or(""),
            from_entity = e.from_entity.as_deref().unwrap_or(""),
            to_entity = e.to_entity.as_deref().unwrap_or(""),
            old_jti = e.old_jti.as_deref().unwrap_or(""),
            new_jti = e.new_jti.as_deref().unwrap_or(""),
            new_refresh_jti = e.new_refresh_jti.as_deref().unwrap_or(""),
            family = e.family.as_deref().unwrap_or(""),
            "token issued"
        );
    }

    /// Records a refusal: nothing was issued. `reason` is a short label, `detail` the error text.
    pub fn token_refused(&self, e: &TokenEvent, reason: &'static str, detail: &str) {
        metrics::counter!("legate_token_refusals_total", "reason" => reason).increment(1);
        tracing::warn!(
            target: "legate::audit",
            event = "token_refused",
            grant = e.grant,
            reason,
            detail,
            customer = e.customer.as_deref().unwrap_or(""),
            from_entity = e.from_entity.as_deref().unwrap_or(""),
            to_entity = e.to_entity.as_deref().unwrap_or(""),
            old_jti = e.old_jti.as_deref().unwrap_or(""),
            family = e.family.as_deref().unwrap_or(""),
            "token refused"
        );
    }
}

fn sampled(rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    // Not a UUID's bits: a v4 UUID fixes some of them (the low 64 start with `10`).
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return true; // when in doubt, keep the record
    }
    (u64::from_le_bytes(bytes) as f64 / u64::MAX as f64) < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_042);
        assert_eq!(timestamp(t), "2026-11-18T11:06:40.042Z");
    }

    #[test]
    fn sampling_keeps_all_none_or_some() {
        assert!((0..100).all(|_| sampled(1.0)));
        assert!((0..100).all(|_| !sampled(0.0)));
        let kept = (0..10_000).filter(|_| sampled(0.5)).count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
    }

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
