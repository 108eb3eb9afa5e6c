//! `POST /oauth2/revoke` (RFC 7009), logout: form `token` (a refresh or access token legate issued)
//! and an optional `token_type_hint`. Always 200 with an empty body for a well-formed request —
//! also for an unknown, foreign or already revoked token (§2.2) — after client authentication
//! where `[[clients]]` are configured. Glue only: the work is `issue::Issuer::revoke`.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    error::{ApiError, OAuthError},
    extract::AppForm,
    token::Params,
};
use crate::{issue::Revoked, state::AppState};

/// `POST /oauth2/revoke`
pub(crate) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<AppForm, ApiError>,
) -> Result<Response, OAuthError> {
    let AppForm(pairs) = form?;
    let params = Params(pairs);
    let client = params.client(&state, &headers)?;
    let token = params
        .get("token")?
        .ok_or_else(|| ApiError::InvalidRequest("`token` is required".into()))?;
    // §2.1: the hint only speeds up the lookup; legate reads the token itself, so it is ignored.
    params.get("token_type_hint")?;
    let revoked = state
        .issuer
        .revoke(&token, client.as_ref().map(|c| c.id.as_str()))
        .await
        .map_err(|e| ApiError::StoreUnavailable(e.to_string()))?;
    if revoked == Revoked::OtherClient {
        return Err(
            ApiError::UnauthorizedClient("the token was issued to another client".into()).into(),
        );
    }
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response())
}
