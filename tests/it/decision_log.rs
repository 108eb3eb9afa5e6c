//! The decision log never holds up a request: the real binary logs decisions into a FIFO that nobody
//! reads, and after far more decisions than the pipe and the log's queue hold, `/healthz` and
//! `/v1/authorize` still answer at once and the dropped lines are counted.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use crate::common::{
    claims, order,
    process::{self, ServeDir},
    sign,
};
use serde_json::{json, Value};

/// Batches of 1,000 checks sent while the log is stuck: 12,000 lines, more than the pipe (64 KiB)
/// and the queue (8,192 lines) together.
const BATCHES: usize = 12;

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils) runs")
        .success();
    assert!(ok, "mkfifo {} failed", path.display());
}

fn dropped(metrics: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with("legate_decision_log_dropped_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_log_that_stops_reading_blocks_no_request() {
    let dir = ServeDir::new();
    let fifo = dir.dir.path().join("decisions.fifo");
    mkfifo(&fifo);
    // Held open for reading (read+write, so opening does not wait for a writer) and never read.
    let _stuck_reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();

    let legate = dir.start(|t| {
        let log = t["log"].as_table_mut().unwrap();
        log.insert("decisions".into(), fifo.to_str().unwrap().into());
        log.insert("allow_sample_rate".into(), 1.0.into());
    });
    let base = legate.base();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let token = sign(&dir.idp.ed, &claims("C-1", Some("LE-1")));
    let checks: Vec<Value> = (0..1000)
        .map(|i| order(&format!("O-{i}"), "C-2", None))
        .collect();
    let batch = json!({ "checks": checks });
    for n in 0..BATCHES {
        let resp = client
            .post(format!("{base}/v1/authorize/batch"))
            .bearer_auth(&token)
            .json(&batch)
            .send()
            .await
            .unwrap_or_else(|e| panic!("batch {n} got no answer: {e}\n{}", legate.log()));
        assert_eq!(resp.status(), 200, "batch {n}");
    }

    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let health = quick.get(format!("{base}/healthz")).send().await;
    assert_eq!(health.expect("/healthz answers").status(), 200);
    let authorize = quick
        .post(format!("{base}/v1/authorize"))
        .bearer_auth(&token)
        .json(&order("O-1", "C-1", None))
        .send()
        .await
        .expect("/v1/authorize answers");
    assert_eq!(authorize.status(), 200);
    let body: Value = authorize.json().await.unwrap();
    assert_eq!(body["decision"], "allow", "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));

    let metrics = process::metrics(&base).await;
    assert!(
        dropped(&metrics) > 0.0,
        "dropped lines are counted:\n{metrics}"
    );
    assert!(
        legate.log().contains("lines are being dropped"),
        "{}",
        legate.log()
    );
}
