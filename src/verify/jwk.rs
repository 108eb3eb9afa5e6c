//! One JSON Web Key and a JWKS document: which keys legate can use, for which algorithms.
//!
//! Keys with `use` other than `sig`, symmetric (`oct`) keys and RSA keys under 2048 bits are dropped;
//! a key fits only the algorithms of its type (and curve), so a token cannot pick a weaker check.

use std::path::PathBuf;

use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk},
    Algorithm, DecodingKey,
};

use super::Error;

/// Why a key set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The file could not be read.
    #[error("cannot read JWKS file {path}: {source}")]
    Read {
        /// the file
        path: PathBuf,
        /// why
        source: std::io::Error,
    },
    /// The URL could not be fetched.
    #[error("cannot fetch JWKS from {url}: {reason}")]
    Fetch {
        /// the URL
        url: String,
        /// why
        reason: String,
    },
    /// Not a JWKS document.
    #[error("{origin} is not a JWKS document (an object with a `keys` array): {reason}")]
    Parse {
        /// file or URL
        origin: String,
        /// why
        reason: String,
    },
    /// No usable signing key.
    #[error("{0} has no usable signing key")]
    Empty(String),
    /// Several usable keys, and one has no `kid` or two share one: a token could not be matched
    /// to one key, so the whole set is refused (at start-up an error, on refresh the last good set
    /// is kept).
    #[error("{origin} has several signing keys and {reason}; every key needs its own `kid`")]
    AmbiguousKids {
        /// file or URL
        origin: String,
        /// which `kid` is missing or repeated
        reason: String,
    },
}

/// A public key ready to verify, with what it may be used for.
#[derive(Clone)]
pub struct VerifyKey {
    /// `kid` (empty when the JWK has none).
    pub kid: String,
    /// The JWK's `alg`, when it pins one.
    pub alg: Option<Algorithm>,
    /// Which algorithms this key's type and curve can verify.
    pub fits: &'static [Algorithm],
    /// The key itself.
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("fits", &self.fits)
            .finish_non_exhaustive()
    }
}

const RSA_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

impl VerifyKey {
    /// Builds a key from a JWK; `None` for keys legate must not use for signatures.
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if let Some(u) = &jwk.common.public_key_use {
            if *u != jsonwebtoken::jwk::PublicKeyUse::Signature {
                return None;
            }
        }
        let (fits, decoding): (&'static [Algorithm], DecodingKey) = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let n = base64::Engine::decode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    rsa.n.trim_end_matches('='),
                )
                .ok()?;
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if bits < 2048 {
                    return None;
                }
                (
                    RSA_ALGS,
                    DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?,
                )
            }
            AlgorithmParameters::EllipticCurve(ec) => {
                let fits: &'static [Algorithm] = match ec.curve {
                    EllipticCurve::P256 => &[Algorithm::ES256],
                    EllipticCurve::P384 => &[Algorithm::ES384],
                    _ => return None,
                };
                (fits, DecodingKey::from_ec_components(&ec.x, &ec.y).ok()?)
            }
            AlgorithmParameters::OctetKeyPair(okp) => {
                if okp.curve != EllipticCurve::Ed25519 {
                    return None;
                }
                (
                    &[Algorithm::EdDSA],
                    DecodingKey::from_ed_components(&okp.x).ok()?,
                )
            }
            AlgorithmParameters::OctetKey(_) => return None,
        };
        let alg = match jwk.common.key_algorithm {
            // `alg` pins the key to one algorithm; one legate cannot verify makes the key unusable.
            Some(a) => Some(
                serde_json::to_value(a)
                    .ok()?
                    .as_str()?
                    .parse::<Algorithm>()
                    .ok()?,
            ),
            None => None,
        };
        Some(Self {
            kid: jwk.common.key_id.clone().unwrap_or_default(),
            alg,
            fits,
            decoding,
        })
    }

    /// RFC 8725 §3.1: the key must be of the algorithm's type, and of the JWK's pinned `alg`.
    pub fn check(&self, alg: Algorithm) -> Result<(), Error> {
        if !self.fits.contains(&alg) || self.alg.is_some_and(|a| a != alg) {
            return Err(Error::KeyAlgorithmMismatch);
        }
        Ok(())
    }
}

/// Parses a JWKS document, skipping (not failing on) keys legate cannot or must not use. Of the
/// usable keys, a single one may lack `kid`; with several, each needs its own `kid` or the document
/// is refused ([`JwksError::AmbiguousKids`]) rather than letting the last of a `kid` win.
pub(crate) fn parse_jwks(text: &str, origin: &str) -> Result<Vec<VerifyKey>, JwksError> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| JwksError::Parse {
        origin: origin.to_string(),
        reason: e.to_string(),
    })?;
    let Some(keys) = doc.get("keys").and_then(|k| k.as_array()) else {
        return Err(JwksError::Parse {
            origin: origin.to_string(),
            reason: "no `keys` array".into(),
        });
    };
    let mut out = Vec::new();
    for k in keys {
        match serde_json::from_value::<Jwk>(k.clone())
            .ok()
            .and_then(|jwk| VerifyKey::from_jwk(&jwk))
        {
            Some(key) => out.push(key),
            None => {
                tracing::warn!(%origin, kid = ?k.get("kid"), "skipping a JWKS key that is not a usable signing key")
            }
        }
    }
    if out.is_empty() {
        return Err(JwksError::Empty(origin.to_string()));
    }
    if out.len() > 1 {
        let ambiguous = |reason: String| JwksError::AmbiguousKids {
            origin: origin.to_string(),
            reason,
        };
        let mut seen = std::collections::HashSet::new();
        for k in &out {
            if k.kid.is_empty() {
                return Err(ambiguous("one has no `kid`".into()));
            }
            if !seen.insert(k.kid.as_str()) {
                return Err(ambiguous(format!("`kid` {:?} is used twice", k.kid)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"ec1",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn ec_key_fits_only_its_curve_algorithm() {
        let jwk: Jwk = serde_json::from_str(EC_JWK).unwrap();
        let key = VerifyKey::from_jwk(&jwk).unwrap();
        assert!(key.check(Algorithm::ES256).is_ok());
        assert_eq!(
            key.check(Algorithm::RS256),
            Err(Error::KeyAlgorithmMismatch)
        );
        assert_eq!(
            key.check(Algorithm::ES384),
            Err(Error::KeyAlgorithmMismatch)
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_dropped() {
        let doc = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"},
            {"kty":"EC","crv":"P-256","use":"enc","kid":"e",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        assert!(matches!(parse_jwks(doc, "t"), Err(JwksError::Empty(_))));
    }

    #[test]
    fn unusable_keys_are_skipped_not_fatal() {
        let doc = format!(r#"{{"keys":[{{"kty":"weird"}},{EC_JWK}]}}"#);
        let keys = parse_jwks(&doc, "t").unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid, "ec1");
    }

    #[test]
    fn several_keys_without_or_with_a_repeated_kid_are_refused() {
        let dev: serde_json::Value =
            serde_json::from_str(include_str!("../../examples/keys/idp-dev-jwks.json")).unwrap();
        let key = dev["keys"][0].clone();
        let with_kid = |kid: Option<&str>| {
            let mut k = key.clone();
            let o = k.as_object_mut().unwrap();
            o.remove("kid");
            if let Some(kid) = kid {
                o.insert("kid".into(), kid.into());
            }
            k
        };
        let doc = |keys: Vec<serde_json::Value>| serde_json::json!({ "keys": keys }).to_string();
        // One key without kid is fine: a token without kid is matched to it.
        assert_eq!(
            parse_jwks(&doc(vec![with_kid(None)]), "t").unwrap().len(),
            1
        );
        assert_eq!(
            parse_jwks(&doc(vec![with_kid(Some("a")), with_kid(Some("b"))]), "t")
                .unwrap()
                .len(),
            2
        );
        for keys in [
            vec![with_kid(None), with_kid(Some("b"))],
            vec![with_kid(None), with_kid(None)],
            vec![with_kid(Some("a")), with_kid(Some("a"))],
        ] {
            let e = parse_jwks(&doc(keys), "t").unwrap_err();
            assert!(matches!(e, JwksError::AmbiguousKids { .. }), "{e}");
        }
    }

    #[test]
    fn not_a_jwks_is_an_error() {
        assert!(matches!(
            parse_jwks("[]", "t"),
            Err(JwksError::Parse { .. })
        ));
        assert!(matches!(
            parse_jwks("nope", "t"),
            Err(JwksError::Parse { .. })
        ));
    }
}
