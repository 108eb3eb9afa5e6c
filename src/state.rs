//! [`AppState`]: the handles every handler shares, built once by `app::build`.
//!
//! One `#[derive(Clone)]` struct of `Arc` handles (swappable parts behind `dyn` traits), passed to
//! handlers with axum's `State`. It imports the stages; no stage imports it, only `http/`.

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::{
    audit::Audit,
    config::Config,
    decide::Decider,
    entities::EntitySource,
    issue::Issuer,
    policy::PolicyStore,
    routes::RouteTable,
    verify::{VerifiedToken, Verifier},
};

/// Everything a handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Token verification for every trusted issuer.
    pub verifier: Arc<Verifier>,
    /// The current policy snapshot.
    pub policies: Arc<PolicyStore>,
    /// Decision events.
    pub audit: Arc<Audit>,
    /// Renders `/metrics`; `None` when another metrics recorder was installed first.
    pub prometheus: Option<PrometheusHandle>,
    /// Forward-auth routes, compiled.
    pub routes: Arc<RouteTable>,
    /// Mints legate's own tokens (keys, rotation state, clock).
    pub issuer: Arc<Issuer>,
    /// Assignments and legal-entity data.
    pub entities: Arc<dyn EntitySource>,
    /// `/openapi.json` as served (rendered on first request, then kept).
    pub openapi: Arc<OnceLock<Result<Bytes, String>>>,
}

impl AppState {
    /// A recording [`Decider`] for `token`: the current snapshot, taken once, and the entity
    /// source's answer for the token's customer, asked once.
    pub async fn decider<'a>(&'a self, token: &'a VerifiedToken) -> Decider<'a> {
        Decider::fetch(
            self.policies.snapshot(),
            self.entities.as_ref(),
            token,
            &self.audit,
        )
        .await
    }
}
