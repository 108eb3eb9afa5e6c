//! The config parser: TOML text plus the `LEGATE_*` environment overlay, then what start-up does
//! with an accepted config before serving (compile `[[routes]]`, check them and `[plan.tables]`
//! against the shipped schema).
//!
//! Input: the file's text `\0` environment lines `NAME=VALUE`.
//! Properties: no panic; an accepted config keeps the checked bounds (limits in range, legate's own
//! issuer no `[[trust]]` issuer); a refused one lists at least one problem.
#![no_main]

use legate::testing::{config::Config, routes::RouteTable};
use legate_fuzz::{parts, shipped};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 2);
    let (Ok(text), Ok(env)) = (std::str::from_utf8(p[0]), std::str::from_utf8(p[1])) else {
        return;
    };
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match Config::parse(text, env) {
        Ok(c) => {
            let l = &c.limits;
            assert!((1..=1_000_000).contains(&l.max_connections));
            assert!(l.header_timeout_secs >= 1 && l.idle_timeout_secs >= 1);
            assert!(c.trust.iter().all(|t| t.issuer != c.issuer()));
            if let Ok(routes) = RouteTable::compile(&c.routes) {
                let _ = routes.check_schema(&shipped());
            }
            let _ = legate::testing::plan::check_tables(&c.plan, &shipped());
        }
        Err(e) => assert!(!e.problems.is_empty()),
    }
});
