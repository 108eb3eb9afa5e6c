//! `POST /v1/token/refresh` (JSON) and `POST /oauth2/token` (form-encoded, RFC 6749 `refresh_token`
//! and RFC 8693 token exchange): switch legal entity by re-issuing tokens. Glue only: the flow is in
//! `issue::refresh`.

use axum::{
    extract::{rejection::FormRejection, State},
    http::header,
    response::{IntoResponse, Response},
    Form,
};
use serde::{Deserialize, Serialize};

use super::{
    error::{ApiError, OAuthError},
    extract::{AppJson, MaybeBearer},
};
use crate::{
    issue::{Grant, Issued, RefreshRequest},
    state::AppState,
    verify::LegalEntityId,
};

/// RFC 8693 grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token type of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `{"refresh_token"?, "legal_entity_id"?}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: Option<String>,
    legal_entity_id: Option<String>,
}

/// A new token pair.
#[derive(Debug, Serialize)]
pub struct TokenAnswer {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    legal_entity_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<&'static str>,
}

impl TokenAnswer {
    fn new(issued: Issued, exchange: bool) -> Self {
        Self {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token,
            legal_entity_id: issued.legal_entity.map(|l| l.0),
            issued_token_type: exchange.then_some(ACCESS_TOKEN_TYPE),
        }
    }
}

impl IntoResponse for TokenAnswer {
    fn into_response(self) -> Response {
        // RFC 6749 §5.1: token answers must not be cached.
        (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            AppJson(self),
        )
            .into_response()
    }
}

fn target(raw: Option<String>) -> Result<Option<LegalEntityId>, ApiError> {
    match raw {
        Some(s) if s.is_empty() => Err(ApiError::InvalidRequest(
            "`legal_entity_id` may not be empty".into(),
        )),
        other => Ok(other.map(LegalEntityId)),
    }
}

async fn reissue(
    state: &AppState,
    grant: Grant,
    target: Option<LegalEntityId>,
) -> Result<Issued, crate::issue::Error> {
    state
        .issuer
        .refresh(RefreshRequest {
            grant,
            target,
            snapshot: state.policies.snapshot(),
            entities: state.entities.as_ref(),
            verifier: &state.verifier,
        })
        .await
}

/// `POST /v1/token/refresh`: a refresh token in the body, else the bearer access token.
pub async fn refresh(
    State(state): State<AppState>,
    MaybeBearer(bearer): MaybeBearer,
    AppJson(body): AppJson<RefreshBody>,
) -> Result<TokenAnswer, ApiError> {
    let grant = match (body.refresh_token, bearer) {
        (Some(rt), _) => Grant::RefreshToken(rt),
        (None, Some(at)) => Grant::AccessToken(at),
        (None, None) => return Err(ApiError::MissingToken),
    };
    let issued = reissue(&state, grant, target(body.legal_entity_id)?).await?;
    Ok(TokenAnswer::new(issued, false))
}

/// `POST /oauth2/token`
pub async fn oauth_token(
    State(state): State<AppState>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<TokenAnswer, OAuthError> {
    let Form(pairs) = form.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let params = Params(pairs);
    let target = target(params.get("legal_entity_id")?)?;
    let (grant, exchange) = params.grant()?;
    let issued = reissue(&state, grant, target).await?;
    Ok(TokenAnswer::new(issued, exchange))
}

/// Form parameters; RFC 6749 §3.2: none may appear twice, unknown ones are ignored.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Result<Option<String>, ApiError> {
        let mut found = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (found.next(), found.next()) {
            (_, Some(_)) => Err(ApiError::InvalidRequest(format!(
                "parameter `{name}` is repeated"
            ))),
            (Some(v), None) if v.is_empty() => Ok(None),
            (v, None) => Ok(v.cloned()),
        }
    }

    fn required(&self, name: &str) -> Result<String, ApiError> {
        self.get(name)?
            .ok_or_else(|| ApiError::InvalidRequest(format!("`{name}` is required")))
    }

    /// The grant the parameters describe, and whether it is a token exchange.
    fn grant(&self) -> Result<(Grant, bool), ApiError> {
        match self.required("grant_type")?.as_str() {
            "refresh_token" => Ok((Grant::RefreshToken(self.required("refresh_token")?), false)),
            TOKEN_EXCHANGE => {
                if self.required("subject_token_type")? != ACCESS_TOKEN_TYPE {
                    return Err(ApiError::InvalidRequest(format!(
                        "`subject_token_type` must be {ACCESS_TOKEN_TYPE}"
                    )));
                }
                if self
                    .get("requested_token_type")?
                    .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
                {
                    return Err(ApiError::InvalidRequest(format!(
                        "legate issues only {ACCESS_TOKEN_TYPE}"
                    )));
                }
                Ok((Grant::AccessToken(self.required("subject_token")?), true))
            }
            other => Err(ApiError::UnsupportedGrantType(format!(
                "grant_type {other:?} is not supported (use refresh_token or {TOKEN_EXCHANGE})"
            ))),
        }
    }
}
