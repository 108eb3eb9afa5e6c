//! How long from a policy file changing on disk to the new snapshot serving, through the real
//! watcher (notify, debounced) and a full reload. Each round rewrites `orders.cedar` in place,
//! then polls the store every 0.5 ms until the next request would get the new snapshot.
//!
//! `cargo run --release --example reload_latency -- [ROUNDS] [DEBOUNCE_MS]`

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use legate::testing::{config::Config, policy};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let debounce_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);

    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    let orders = dir.path().join("orders.cedar");
    let original = std::fs::read_to_string(&orders).unwrap();

    // The defaults, as `legate serve` would run them, with the periodic check off: only events count.
    let toml = format!(
        "[policies]\ndir = {:?}\ncheck_interval_secs = 0\ndebounce_ms = {debounce_ms}\n",
        dir.path().display().to_string()
    );
    let config = Config::parse(&toml, Vec::new()).expect("config");
    let store = Arc::new(policy::PolicyStore::open(dir.path().to_path_buf(), "Shop").unwrap());
    let watcher = policy::spawn_watcher(
        store.clone(),
        config.policies.debounce(),
        config.policies.check_every(),
    );

    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let before = store.snapshot().hash().to_string();
        let text = format!("{original}\n// round {round}\n");
        let started = Instant::now();
        std::fs::write(&orders, text).unwrap();
        while store.snapshot().hash() == before {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "round {round}: no reload"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        samples.push(started.elapsed());
        // Let the debouncer go quiet so rounds do not merge.
        tokio::time::sleep(Duration::from_millis(debounce_ms + 100)).await;
    }
    watcher.stop().await;

    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "file change -> new snapshot serving, debounce {debounce_ms} ms, {rounds} rounds: \
         median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}
