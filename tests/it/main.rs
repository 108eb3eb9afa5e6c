//! The integration tests, one binary: each module is one area (the file names say which), and
//! `common`, `proxies` and `manifests` are the harness they share. One binary links legate and its
//! dependencies once instead of once per area.
//!
//! The tests share one process: the tracing subscriber and the metrics recorder are process-wide
//! (installed once, see `token::observe` and `legate::telemetry::install`), so a test that reads
//! a metric compares before and after rather than expecting an exact value of its own.

mod authorize;
mod b2b;
mod batch;
mod cli;
mod common;
mod decision_log;
mod demo;
mod entities_http;
mod env;
mod forward_auth;
mod forward_auth_caddy;
mod forward_auth_nginx;
mod forward_auth_traefik;
mod forward_auth_vetting;
mod hot_reload;
mod http_errors;
mod input_hygiene;
mod interop;
mod jwks_url;
mod kubernetes;
mod limits;
mod manifests;
mod no_switching;
mod oauth;
mod openapi;
mod operations;
mod plan;
mod proxies;
mod redis_failover;
mod redis_store;
mod refresh_decision;
mod shutdown;
mod startup;
mod token;
mod token_cache;
mod token_rejections;
mod toolkit;
mod verify;
