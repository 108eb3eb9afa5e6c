//! legate: an authorization sidecar for B2B storefronts.
//!
//! A request flows through the stages in the order of the modules below:
//!
//! ```text
//! HTTP in (http)  ->  verify the bearer JWT (verify)  ->  decide (decide: one snapshot, the
//!                     entity source's answer, then per check: build the Cedar request (request),
//!                     evaluate (policy), record (audit))  ->  Decision
//! ```
//!
//! `entities` supplies what the token does not say (assignments, legal-entity data); `issue` goes the
//! other way: it mints legate's own tokens when a customer switches legal entity. `plan` answers a
//! list question instead of one check (`/v1/plan`: a filter and SQL, from the same snapshot and
//! entity data a decision uses). `state` holds the
//! handles every handler shares, `app` builds them and serves; `shared` is the leaf every stage may
//! use (clock, time format, boxed futures). ARCHITECTURE.md walks through the files.

mod app;
#[cfg(test)]
mod architecture;
mod audit;
mod cli;
mod config;
mod decide;
mod decision;
mod entities;
mod http;
mod issue;
mod plan;
mod policy;
mod request;
mod routes;
mod server;
mod shared;
mod signals;
mod state;
mod telemetry;
pub mod testing;
mod toolkit;
mod verify;

pub use cli::{run, Cli};
