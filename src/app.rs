//! The application: [`AppState`] built from a [`Config`], the [`router`] with its layers, and
//! [`serve`] with graceful shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use axum::{extract::DefaultBodyLimit, middleware, Router};
use jsonwebtoken::Algorithm;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tower_http::{timeout::TimeoutLayer, trace::TraceLayer};

use crate::{
    audit::{Audit, DecisionLog},
    config::{Config, EntitySourceKind, StoreKind},
    decide::Decider,
    entities::{EntitySource, FileSource, HttpSource},
    http,
    issue::{Clock, Issuer, KeyRing, MemoryStore, RedisStore, RotationStore, SystemClock},
    policy::PolicyStore,
    routes::RouteTable,
    verify::{ClaimNames, KeySet, KeySource, TrustedIssuer, VerifiedToken, Verifier},
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
    /// Refresh-token rotation state (the same store the issuer and verifier use).
    pub rotation: Arc<dyn RotationStore>,
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

/// Everything that kept legate from starting.
#[derive(Debug, thiserror::Error)]
#[error("legate cannot start:\n  - {}", .problems.join("\n  - "))]
pub struct StartupError {
    /// One entry per problem.
    pub problems: Vec<String>,
}

/// Builds the state: reads every key set and the policies, collecting all problems.
pub async fn build(config: Config) -> Result<AppState, StartupError> {
    build_with_clock(config, Arc::new(SystemClock)).await
}

/// [`build`] with the time source injected (tests move a [`crate::issue::ManualClock`]).
pub async fn build_with_clock(
    config: Config,
    clock: Arc<dyn Clock>,
) -> Result<AppState, StartupError> {
    // First, so that what the steps below record (JWKS fetches) is counted.
    let prometheus = crate::telemetry::install();
    let mut problems = Vec::new();
    let mut issuers = Vec::new();
    for t in &config.trust {
        let algorithms: Vec<Algorithm> =
            t.algorithms.iter().filter_map(|a| a.parse().ok()).collect();
        let source = KeySource::parse(&t.jwks);
        match KeySet::load(source, Duration::from_secs(t.jwks_min_refresh_secs)).await {
            Ok(keys) => issuers.push(TrustedIssuer::new(
                &t.issuer,
                &t.audience,
                &algorithms,
                config.claims.leeway_secs,
                keys,
                None,
            )),
            Err(e) => problems.push(format!("[[trust]] {:?}: {e}", t.issuer)),
        }
    }
    let decision_log = match DecisionLog::open(&config.log.decisions) {
        Ok(log) => log,
        Err(e) => {
            problems.push(format!(
                "`log.decisions` {:?} cannot be opened: {e}",
                config.log.decisions
            ));
            None
        }
    };
    let policies = match PolicyStore::open(config.policies.dir.clone(), &config.namespace) {
        Ok(p) => Some(p),
        Err(e) => {
            problems.extend(e.problems.iter().map(|p| format!("policy {p}")));
            None
        }
    };
    let routes = match RouteTable::compile(&config.routes) {
        Ok(t) => t,
        Err(p) => {
            problems.extend(p);
            RouteTable::default()
        }
    };
    if let Some(p) = &policies {
        problems.extend(routes.check_schema(&p.snapshot()));
    }
    let keys = KeyRing::load(&config.issue.keys)
        .map_err(|p| problems.extend(p))
        .ok();
    let rotation: Option<Arc<dyn RotationStore>> = match config.store.kind {
        StoreKind::Memory => Some(Arc::new(MemoryStore::new(clock.clone()))),
        StoreKind::Redis => RedisStore::new(config.store.url.as_deref().unwrap_or_default())
            .map(|s| Arc::new(s) as Arc<dyn RotationStore>)
            .map_err(|p| problems.push(p))
            .ok(),
    };
    let entities: Option<Arc<dyn EntitySource>> = match config.entities.source {
        EntitySourceKind::File => Some(Arc::new(FileSource)),
        EntitySourceKind::Http => HttpSource::new(&config.entities, clock.clone())
            .map(|s| Arc::new(s) as Arc<dyn EntitySource>)
            .map_err(|p| problems.push(p))
            .ok(),
    };
    let (Some(policies), Some(keys), Some(rotation), Some(entities)) =
        (policies, keys, rotation, entities)
    else {
        return Err(StartupError { problems });
    };
    if !problems.is_empty() {
        return Err(StartupError { problems });
    }
    let names = ClaimNames::from(&config.claims);
    let audit = Arc::new(Audit::new(decision_log, config.log.allow_sample_rate));
    let issuer = Issuer::new(&config, keys, clock, rotation.clone(), audit.clone());
    // legate trusts its own access tokens (typ at+jwt), never its refresh tokens.
    issuers.push(issuer.trusted_issuer());
    let verifier = Verifier::new(issuers, names);
    verifier.spawn_key_retries();
    Ok(AppState {
        verifier: Arc::new(verifier),
        policies: Arc::new(policies),
        audit,
        prometheus,
        issuer: Arc::new(issuer),
        entities,
        rotation,
        routes: Arc::new(routes),
        config: Arc::new(config),
    })
}

/// The full router: endpoints, JSON error shapes, body limit, timeout and request tracing.
pub fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    http::router()
        .fallback(|| async { http::ApiError::NotFound })
        .method_not_allowed_fallback(|| async { http::ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn(http::error::ensure_json))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(http::observe::span))
        .layer(middleware::from_fn(http::observe::track))
        .layer(middleware::from_fn(http::observe::request_id))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish for up to
/// `shutdown.grace_secs`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = Duration::from_secs(state.config.shutdown.grace_secs);
    // Hot reload runs as long as the server does; SIGHUP asks it for a reload.
    let watcher = crate::policy::spawn_watcher(state.policies.clone(), &state.config.policies);
    crate::signals::spawn_sighup(watcher.reload_trigger());
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(state);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    });
    let deadline = async move {
        if stopping_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = server => result,
        _ = deadline => {
            tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish within the grace period");
            Ok(())
        }
    };
    watcher.stop().await;
    result
}
