//! Stage 1, HTTP in: thin handlers, one file per endpoint group, and the router that joins them.

pub mod authorize;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod forward_auth;
pub mod me;
pub mod observe;
pub mod ops;
pub mod revoke;
pub mod token;

use axum::{
    middleware::map_response,
    routing::{any, get, post},
    Router,
};

use crate::app::AppState;
pub use error::ApiError;

/// Every endpoint, unlayered (see `app::router` for limits, timeouts and tracing).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/authorize", post(authorize::authorize))
        .route("/v1/authorize/batch", post(authorize::authorize_batch))
        .route(forward_auth::PATH, any(forward_auth::forward_auth))
        .route("/v1/forward-auth/", any(forward_auth::forward_auth))
        .route("/v1/forward-auth/{*path}", any(forward_auth::forward_auth))
        .route("/v1/policies", get(ops::policies))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/v1/me", get(me::me))
        .route(
            "/v1/token/refresh",
            post(token::refresh).layer(map_response(token::no_store)),
        )
        .route("/oauth2/token", post(token::oauth_token))
        .route("/oauth2/revoke", post(revoke::revoke))
        .route(discovery::AUTHORIZE_PATH, any(discovery::authorize))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::authorization_server),
        )
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
}
