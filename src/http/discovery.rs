//! `GET /.well-known/jwks.json` (legate's public keys, every configured `kid`) and
//! `GET /.well-known/openid-configuration` (`issuer`, `jwks_uri`, `token_endpoint`, absolute on
//! `public_url`), so a service can verify legate's tokens with any JWT library.

use axum::{extract::State, http::header, response::IntoResponse};
use serde_json::{json, Value};

use super::{extract::AppJson, token::TOKEN_EXCHANGE};
use crate::state::AppState;

/// `GET /.well-known/jwks.json`
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        AppJson(state.issuer.keys().jwks()),
    )
}

/// `GET /.well-known/openid-configuration`
pub async fn openid_configuration(State(state): State<AppState>) -> AppJson<Value> {
    let base = &state.config.public_url;
    AppJson(json!({
        "issuer": state.issuer.issuer(),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/oauth2/token"),
        "grant_types_supported": ["refresh_token", TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": ["none"],
    }))
}
