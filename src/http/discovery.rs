//! `GET /.well-known/jwks.json` (legate's public keys, every configured `kid`) and the two metadata
//! documents, `GET /.well-known/oauth-authorization-server` (RFC 8414) and
//! `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0), so a service can verify
//! legate's tokens and a client can find its endpoints with any OAuth or JWT library.
//!
//! Both documents carry the same members: every one the two specifications mark REQUIRED, plus the
//! endpoints legate has. URLs are absolute, built on `public_url`.

use axum::{extract::State, http::header, response::IntoResponse};
use serde_json::{json, Value};

use super::{
    error::{ApiError, OAuthError},
    extract::AppJson,
    token::TOKEN_EXCHANGE,
};
use crate::state::AppState;

/// Where the authorization endpoint would be. legate has none of its own (customers log in at the
/// identity provider); OpenID Connect Discovery requires the member, so the path answers every
/// request with `unsupported_response_type`.
pub(crate) const AUTHORIZE_PATH: &str = "/oauth2/authorize";

/// `GET /.well-known/jwks.json`
pub(crate) async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        AppJson(state.issuer.keys().jwks()),
    )
}

/// The metadata both well-known documents answer.
pub(crate) fn metadata(state: &AppState) -> Value {
    let base = &state.config.public_url;
    let auth_methods = state.issuer.clients().auth_methods();
    let algorithms: Vec<String> = state
        .issuer
        .keys()
        .algorithms()
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    // OpenID Connect Discovery §3: RS256 MUST be listed for ID tokens. legate issues no ID
    // tokens, so the list only satisfies validators; access tokens are signed with `algorithms`.
    let mut id_token_algs = vec!["RS256".to_string()];
    id_token_algs.extend(algorithms.iter().filter(|a| *a != "RS256").cloned());
    json!({
        "issuer": state.issuer.issuer(),
        "authorization_endpoint": format!("{base}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{base}/oauth2/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{base}/oauth2/revoke"),
        "response_types_supported": ["none"],
        "grant_types_supported": ["refresh_token", TOKEN_EXCHANGE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": id_token_algs,
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "access_token_signing_alg_values_supported": algorithms,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time",
                             "client_id", "sid", state.config.claims.legal_entity],
        "service_documentation": format!("{base}/openapi.json"),
    })
}

/// `GET|POST /oauth2/authorize`: 400 `unsupported_response_type`, always.
pub(crate) async fn authorize() -> OAuthError {
    OAuthError(ApiError::UnsupportedResponseType)
}

/// `GET /.well-known/openid-configuration`
pub(crate) async fn openid_configuration(State(state): State<AppState>) -> AppJson<Value> {
    AppJson(metadata(&state))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3)
pub(crate) async fn authorization_server(State(state): State<AppState>) -> AppJson<Value> {
    AppJson(metadata(&state))
}
