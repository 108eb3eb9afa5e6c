//! OAuth client authentication (RFC 6749 §2.3.1): who is asking for tokens.
//!
//! In: the `[[clients]]` table (`id`, `secret_sha256`) and what a request presents —
//! `Authorization: Basic` (`client_secret_basic`), `client_id` + `client_secret` in the form or JSON
//! body (`client_secret_post`), or a bare `client_id` (a public client). Out: the client id the new
//! tokens carry, or a [`ClientError`] (401 `invalid_client`, nothing issued).
//!
//! With no `[[clients]]` every caller is a public client: a bare `client_id` is taken as given, and
//! a presented secret is refused, since no secret can be right. With `[[clients]]` a secret is
//! required; it is hashed with SHA-256 and the digests compared in constant time, and an unknown id
//! is compared against a dummy digest so that timing does not tell known ids apart.

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

use crate::config::ClientConfig;

/// Why a client was not authenticated (401 `invalid_client`, or 400 `invalid_request` for
/// [`ClientError::Conflicting`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Clients are configured and the request names none.
    #[error("client authentication is required (client_secret_basic or client_secret_post)")]
    Missing,
    /// Unknown client, wrong secret, or a secret where no client is configured.
    #[error("client authentication failed")]
    Invalid,
    /// More than one authentication method, or a `client_id` that differs from the credentials'.
    #[error("{0}")]
    Conflicting(&'static str),
    /// An `Authorization: Basic` header that cannot be read.
    #[error("the Basic authorization header is malformed")]
    Malformed,
}

/// What a request presents about its client.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    /// `(id, secret)` from `Authorization: Basic`.
    pub basic: Option<(String, String)>,
    /// `client_id` from the body.
    pub id: Option<String>,
    /// `client_secret` from the body.
    pub secret: Option<String>,
}

impl Credentials {
    /// Reads an `Authorization` header value as `client_secret_basic` (`None`: another scheme).
    pub fn basic_header(value: &str) -> Option<Result<(String, String), ClientError>> {
        let (scheme, rest) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let parsed = decoded.and_then(|d| {
            let (id, secret) = d.split_once(':')?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before joining.
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            Some((dec(id)?, dec(secret)?))
        });
        Some(parsed.ok_or(ClientError::Malformed))
    }
}

/// A client that authenticated, or the public client a request named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its `client_id`.
    pub id: String,
    /// Whether it proved a secret.
    pub confidential: bool,
}

/// The configured clients.
#[derive(Clone, Default)]
pub struct Clients {
    list: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.list.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Clients").field("ids", &ids).finish()
    }
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn from_hex(h: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if h.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Clients {
    /// The clients of `[[clients]]` (already checked by the config).
    pub fn new(config: &[ClientConfig]) -> Self {
        Self {
            list: config
                .iter()
                .filter_map(|c| Some((c.id.clone(), from_hex(&c.secret_sha256)?)))
                .collect(),
        }
    }

    /// Whether callers must authenticate.
    pub fn required(&self) -> bool {
        !self.list.is_empty()
    }

    /// `token_endpoint_auth_methods_supported` for the discovery documents.
    pub fn auth_methods(&self) -> Vec<&'static str> {
        if self.required() {
            vec!["client_secret_basic", "client_secret_post"]
        } else {
            vec!["none"]
        }
    }

    /// Authenticates what a request presents. `Ok(None)`: a public client that named no id.
    pub fn authenticate(&self, c: &Credentials) -> Result<Option<Client>, ClientError> {
        let (id, secret) = match (&c.basic, &c.secret) {
            (Some(_), Some(_)) => {
                return Err(ClientError::Conflicting(
                    "use one client authentication method, not both Basic and client_secret",
                ))
            }
            (Some((id, secret)), None) => {
                if c.id.as_ref().is_some_and(|body| body != id) {
                    return Err(ClientError::Conflicting(
                        "`client_id` differs from the Basic credentials",
                    ));
                }
                (Some(id.clone()), Some(secret.clone()))
            }
            (None, secret) => (c.id.clone(), secret.clone()),
        };
        match (self.required(), id, secret) {
            (false, id, None) => Ok(id.map(|id| Client {
                id,
                confidential: false,
            })),
            (false, _, Some(_)) => Err(ClientError::Invalid),
            (true, None, _) | (true, Some(_), None) => Err(ClientError::Missing),
            (true, Some(id), Some(secret)) => {
                let presented = sha256(&secret);
                let dummy = [0u8; 32];
                let stored = self
                    .list
                    .iter()
                    .find(|(known, _)| *known == id)
                    .map(|(_, d)| d);
                let equal = aws_lc_rs::constant_time::verify_slices_are_equal(
                    &presented,
                    stored.unwrap_or(&dummy),
                )
                .is_ok();
                if equal && stored.is_some() {
                    Ok(Some(Client {
                        id,
                        confidential: true,
                    }))
                } else {
                    Err(ClientError::Invalid)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_secret(id: &str, secret: &str) -> Clients {
        let hex: String = sha256(secret).iter().map(|b| format!("{b:02x}")).collect();
        Clients::new(&[ClientConfig {
            id: id.into(),
            secret_sha256: hex,
        }])
    }

    fn basic(id: &str, secret: &str) -> Credentials {
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        let basic = Credentials::basic_header(&format!("Basic {v}"))
            .unwrap()
            .unwrap();
        Credentials {
            basic: Some(basic),
            ..Credentials::default()
        }
    }

    #[test]
    fn basic_and_post_credentials_authenticate_a_configured_client() {
        let c = with_secret("shop", "s3cret");
        let ok = Some(Client {
            id: "shop".into(),
            confidential: true,
        });
        assert_eq!(c.authenticate(&basic("shop", "s3cret")), Ok(ok.clone()));
        let post = Credentials {
            id: Some("shop".into()),
            secret: Some("s3cret".into()),
            ..Credentials::default()
        };
        assert_eq!(c.authenticate(&post), Ok(ok));
    }

    #[test]
    fn wrong_missing_or_unknown_credentials_are_refused() {
        let c = with_secret("shop", "s3cret");
        assert_eq!(
            c.authenticate(&basic("shop", "wrong")),
            Err(ClientError::Invalid)
        );
        assert_eq!(
            c.authenticate(&basic("evil", "s3cret")),
            Err(ClientError::Invalid)
        );
        assert_eq!(
            c.authenticate(&Credentials::default()),
            Err(ClientError::Missing)
        );
        let bare = Credentials {
            id: Some("shop".into()),
            ..Credentials::default()
        };
        assert_eq!(c.authenticate(&bare), Err(ClientError::Missing));
        let mut both = basic("shop", "s3cret");
        both.secret = Some("s3cret".into());
        assert!(matches!(
            c.authenticate(&both),
            Err(ClientError::Conflicting(_))
        ));
    }

    #[test]
    fn without_clients_callers_are_public_and_a_secret_is_refused() {
        let c = Clients::default();
        assert_eq!(c.auth_methods(), vec!["none"]);
        let bare = Credentials {
            id: Some("web".into()),
            ..Credentials::default()
        };
        assert_eq!(
            c.authenticate(&bare),
            Ok(Some(Client {
                id: "web".into(),
                confidential: false
            }))
        );
        assert_eq!(c.authenticate(&Credentials::default()), Ok(None));
        assert_eq!(
            c.authenticate(&basic("evil", "wrong")),
            Err(ClientError::Invalid)
        );
    }

    #[test]
    fn basic_parts_are_form_decoded_and_garbage_is_malformed() {
        let v = base64::engine::general_purpose::STANDARD.encode("my%3Aclient:a+b%25");
        assert_eq!(
            Credentials::basic_header(&format!("basic {v}")),
            Some(Ok(("my:client".into(), "a b%".into())))
        );
        assert_eq!(
            Credentials::basic_header("Basic !!!"),
            Some(Err(ClientError::Malformed))
        );
        assert_eq!(Credentials::basic_header("Bearer x"), None);
    }
}
