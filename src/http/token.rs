//! `POST /v1/token/refresh` (JSON) and `POST /oauth2/token` (form-encoded, RFC 6749 `refresh_token`
//! and RFC 8693 token exchange): switch legal entity by re-issuing tokens. Glue only: the flow is in
//! `issue::refresh`, client authentication in `issue::clients`. Every answer of both endpoints,
//! errors included, carries `Cache-Control: no-store`.

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    error::{ApiError, OAuthError},
    extract::{AppForm, AppJson, MaybeBearer},
};
use crate::{
    issue::{Client, Credentials, Grant, Issued, RefreshRequest},
    state::AppState,
    verify::LegalEntityId,
};

/// RFC 8693 grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token type of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `{"refresh_token"?, "legal_entity_id"?, "client_id"?, "client_secret"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: Option<String>,
    legal_entity_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl std::fmt::Debug for RefreshBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and secrets are never printed.
        f.debug_struct("RefreshBody")
            .field("legal_entity_id", &self.legal_entity_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
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
        Some(s) if !crate::shared::is_valid_id(&s) => Err(ApiError::InvalidRequest(
            "`legal_entity_id` must be 1–256 characters without control characters".into(),
        )),
        other => Ok(other.map(LegalEntityId)),
    }
}

async fn reissue(
    state: &AppState,
    grant: Grant,
    target: Option<LegalEntityId>,
    client: Option<Client>,
    audience: Option<Vec<String>>,
) -> Result<Issued, crate::issue::Error> {
    state
        .issuer
        .refresh(RefreshRequest {
            grant,
            target,
            snapshot: state.policies.snapshot(),
            entities: state.entities.as_ref(),
            verifier: &state.verifier,
            client,
            audience,
        })
        .await
}

/// `client_secret_basic` credentials from `Authorization: Basic`, if that is the header's scheme.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Ok(value) = value.to_str() else {
        return Err(crate::issue::ClientError::Malformed.into());
    };
    Credentials::basic_header(value)
        .transpose()
        .map_err(ApiError::from)
}

/// Middleware for `/v1/token/refresh`: no answer of it may be cached, errors included.
pub async fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// `POST /v1/token/refresh`: a refresh token in the body, else the bearer access token.
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeBearer(bearer): MaybeBearer,
    AppJson(body): AppJson<RefreshBody>,
) -> Result<TokenAnswer, ApiError> {
    // The bearer form keeps `Authorization` for the token; then only the body can hold
    // credentials.
    let basic = match bearer {
        Some(_) => None,
        None => basic_credentials(&headers)?,
    };
    let client = state.issuer.clients().authenticate(&Credentials {
        basic,
        id: body.client_id,
        secret: body.client_secret,
    })?;
    let grant = match (body.refresh_token, bearer) {
        (Some(rt), _) => Grant::RefreshToken(rt),
        (None, Some(at)) => Grant::AccessToken(at),
        (None, None) => return Err(ApiError::MissingToken),
    };
    let issued = reissue(&state, grant, target(body.legal_entity_id)?, client, None).await?;
    Ok(TokenAnswer::new(issued, false))
}

/// `POST /oauth2/token`
pub async fn oauth_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<AppForm, ApiError>,
) -> Result<TokenAnswer, OAuthError> {
    let AppForm(pairs) = form?;
    let params = Params(pairs);
    let client = params.client(&state, &headers)?;
    let target = target(params.get("legal_entity_id")?)?;
    let (grant, exchange) = params.grant()?;
    let audience = params.audience(state.issuer.audience())?;
    let issued = reissue(&state, grant, target, client, audience).await?;
    Ok(TokenAnswer::new(issued, exchange))
}

/// Form parameters; RFC 6749 §3.2: none may appear twice (but RFC 8693's `audience` and
/// `resource`), unknown ones are ignored.
pub struct Params(pub Vec<(String, String)>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values hold tokens and secrets: only the names are printed.
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Params {
    /// The client, authenticated by `client_secret_basic` or `client_secret_post`, or public.
    pub fn client(
        &self,
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Option<Client>, ApiError> {
        let credentials = Credentials {
            basic: basic_credentials(headers)?,
            id: self.get("client_id")?,
            secret: self.get("client_secret")?,
        };
        Ok(state.issuer.clients().authenticate(&credentials)?)
    }

    /// RFC 8693 `audience` and `resource` values (each may repeat); every one must be in
    /// `allowed`, else `invalid_target`. `None`: the request names none.
    fn audience(&self, allowed: &[String]) -> Result<Option<Vec<String>>, ApiError> {
        let mut asked: Vec<String> = Vec::new();
        for (k, v) in &self.0 {
            if k == "audience" || k == "resource" {
                if !allowed.iter().any(|a| a == v) {
                    return Err(ApiError::InvalidTarget(format!(
                        "legate issues no tokens for {k} {v:?} (issue.audience lists the targets)"
                    )));
                }
                if !asked.contains(v) {
                    asked.push(v.clone());
                }
            }
        }
        Ok((!asked.is_empty()).then_some(asked))
    }

    /// The parameter `name` (empty counts as absent); repeated is `invalid_request`.
    pub fn get(&self, name: &str) -> Result<Option<String>, ApiError> {
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
