//! The application's life: [`build`] the [`AppState`] from a [`Config`] (every start-up problem
//! collected at once), then [`serve`] it with graceful shutdown. The routes and their layers are
//! `http::router`'s.

use std::{future::Future, sync::Arc, time::Duration};

use jsonwebtoken::Algorithm;
use tokio::net::TcpListener;

use crate::{
    audit::{Audit, DecisionLog},
    config::{Config, EntitySourceKind, StoreKind},
    entities::{EntitySource, FileSource, HttpSource},
    issue::{Issuer, KeyRing, MemoryStore, RedisStore, RotationStore},
    policy::PolicyStore,
    routes::RouteTable,
    shared::{Clock, SystemClock},
    verify::{ClaimNames, KeySet, KeySource, TrustedIssuer, Verifier},
};

pub use crate::state::AppState;

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

/// [`build`] with the time source injected (tests move a [`crate::shared::ManualClock`]).
pub async fn build_with_clock(
    config: Config,
    clock: Arc<dyn Clock>,
) -> Result<AppState, StartupError> {
    // First, so that what the steps below record (JWKS fetches) is counted.
    let prometheus = crate::telemetry::install();
    let mut problems = Vec::new();
    let mut issuers = trusted_issuers(&config, &mut problems).await;
    let decision_log = DecisionLog::open(&config.log.decisions)
        .map_err(|e| {
            problems.push(format!(
                "`log.decisions` {:?} cannot be opened: {e}",
                config.log.decisions.to_string()
            ))
        })
        .ok()
        .flatten();
    let policies = PolicyStore::open(config.policies.dir.clone(), &config.namespace)
        .map_err(|e| problems.extend(e.problems.iter().map(|p| format!("policy {p}"))))
        .ok();
    let routes = RouteTable::compile(&config.routes)
        .map_err(|p| problems.extend(p))
        .unwrap_or_default();
    if let Some(p) = &policies {
        problems.extend(routes.check_schema(&p.snapshot()));
        problems.extend(crate::plan::check_tables(&config.plan, &p.snapshot()));
    }
    let keys = KeyRing::load(&config.issue.keys)
        .map_err(|p| problems.extend(p))
        .ok();
    let rotation = rotation_store(&config, &clock, &mut problems);
    let entities = entity_source(&config, &clock, &mut problems);
    let (Some(policies), Some(keys), Some(rotation), Some(entities), true) =
        (policies, keys, rotation, entities, problems.is_empty())
    else {
        return Err(StartupError { problems });
    };
    let audit = Arc::new(Audit::new(decision_log, config.log.allow_sample_rate));
    let issuer = Issuer::new(&config, keys, clock, rotation, audit.clone());
    // legate trusts its own access tokens (typ at+jwt), never its refresh tokens.
    issuers.push(issuer.trusted_issuer());
    let verifier = Verifier::new(issuers, ClaimNames::from(&config.claims));
    Ok(AppState {
        verifier: Arc::new(verifier),
        policies: Arc::new(policies),
        audit,
        prometheus,
        issuer: Arc::new(issuer),
        entities,
        routes: Arc::new(routes),
        config: Arc::new(config),
        openapi: Arc::default(),
    })
}

/// One verifier rule set per `[[trust]]` entry, its key set loaded (or a problem recorded).
async fn trusted_issuers(config: &Config, problems: &mut Vec<String>) -> Vec<TrustedIssuer> {
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
    issuers
}

/// The refresh-token rotation store `store.kind` names.
fn rotation_store(
    config: &Config,
    clock: &Arc<dyn Clock>,
    problems: &mut Vec<String>,
) -> Option<Arc<dyn RotationStore>> {
    match config.store.kind {
        StoreKind::Memory => Some(Arc::new(MemoryStore::new(clock.clone()))),
        StoreKind::Redis => RedisStore::new(config.store.url.as_deref().unwrap_or_default())
            .map(|s| Arc::new(s) as Arc<dyn RotationStore>)
            .map_err(|p| problems.push(p))
            .ok(),
    }
}

/// The entity source `entities.source` names.
fn entity_source(
    config: &Config,
    clock: &Arc<dyn Clock>,
    problems: &mut Vec<String>,
) -> Option<Arc<dyn EntitySource>> {
    match config.entities.source {
        EntitySourceKind::File => Some(Arc::new(FileSource)),
        EntitySourceKind::Http => HttpSource::new(&config.entities, clock.clone())
            .map(|s| Arc::new(s) as Arc<dyn EntitySource>)
            .map_err(|p| problems.push(p))
            .ok(),
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish for up to
/// `shutdown.grace_secs`. Background tasks (policy watcher, SIGHUP forwarder, JWKS retries) run
/// as long as the server does.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = Duration::from_secs(state.config.shutdown.grace_secs);
    // Hot reload runs as long as the server does; SIGHUP asks it for a reload.
    let p = &state.config.policies;
    let watcher =
        crate::policy::spawn_watcher(state.policies.clone(), p.debounce(), p.check_every());
    crate::signals::spawn_sighup(watcher.reload_trigger());
    let mut key_retries = state.verifier.spawn_key_retries();
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let limits = crate::server::ConnectionLimits::from(&state.config.limits);
    let app = crate::http::router(state);
    let server = crate::server::run(listener, app, limits, async move {
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
    key_retries.abort_all();
    watcher.stop().await;
    result
}
