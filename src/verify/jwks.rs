//! Key sets: the public keys of one issuer, from a JWKS file, an http(s) URL, or legate's own keys.
//!
//! A key set is read at start. When a token names a `kid` the set does not have, the source is read
//! again, at most once per `min_refresh`, so a flood of made-up `kid`s cannot turn legate into a
//! load generator against the identity provider. A failed fetch keeps the last good keys.
//! Keys with `use` other than `sig`, symmetric (`oct`) keys and RSA keys under 2048 bits are dropped.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk},
    Algorithm, DecodingKey,
};

use super::Error;

/// Where a key set comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS file.
    File(PathBuf),
    /// A JWKS URL.
    Url(String),
    /// Keys handed over in memory (legate's own issuing keys); never refreshed.
    Static,
}

impl KeySource {
    /// `http(s)://…` is a URL, anything else a file path.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("https://") || s.starts_with("http://") {
            KeySource::Url(s.to_string())
        } else {
            KeySource::File(PathBuf::from(s))
        }
    }
}

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
pub fn parse_jwks(text: &str, origin: &str) -> Result<Vec<VerifyKey>, JwksError> {
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

type KeyMap = HashMap<String, Arc<VerifyKey>>;

/// The current keys of one issuer.
#[derive(Debug)]
pub struct KeySet {
    source: KeySource,
    keys: ArcSwap<KeyMap>,
    min_refresh: Duration,
    /// Time of the last fetch attempt. A tokio mutex: it is held across the fetch so that a burst of
    /// unknown kids triggers one fetch, not one per request.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    loaded: std::sync::atomic::AtomicBool,
    /// Bumped whenever keys are installed: the token cache serves no entry made under older keys.
    generation: std::sync::atomic::AtomicU64,
    client: Option<reqwest::Client>,
}

fn to_map(keys: Vec<VerifyKey>) -> KeyMap {
    keys.into_iter()
        .map(|k| (k.kid.clone(), Arc::new(k)))
        .collect()
}

impl KeySet {
    /// Keys held in memory, never refreshed.
    pub fn fixed(keys: Vec<VerifyKey>) -> Self {
        Self {
            source: KeySource::Static,
            keys: ArcSwap::from_pointee(to_map(keys)),
            min_refresh: Duration::from_secs(u64::MAX / 4),
            last_fetch: tokio::sync::Mutex::new(None),
            loaded: true.into(),
            generation: 0.into(),
            client: None,
        }
    }

    /// Reads the keys from `source`. A file that cannot be read is an error; a URL that cannot be
    /// fetched gives an empty, not-yet-loaded set that is fetched again on demand.
    pub async fn load(source: KeySource, min_refresh: Duration) -> Result<Self, JwksError> {
        let client = match &source {
            KeySource::Url(_) => Some(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| JwksError::Fetch {
                        url: String::new(),
                        reason: e.to_string(),
                    })?,
            ),
            _ => None,
        };
        let set = Self {
            source,
            keys: ArcSwap::from_pointee(KeyMap::new()),
            min_refresh,
            last_fetch: tokio::sync::Mutex::new(Some(Instant::now())),
            loaded: false.into(),
            generation: 0.into(),
            client,
        };
        match set.fetch().await {
            Ok(keys) => set.install(keys),
            Err(e @ JwksError::Fetch { .. }) => {
                tracing::warn!(error = %e, "JWKS not available at start; tokens of this issuer are refused until it is");
            }
            Err(e) => return Err(e),
        }
        Ok(set)
    }

    /// True once a key set has been read.
    pub fn loaded(&self) -> bool {
        self.loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Changes whenever the keys are replaced (a refetch, even of the same keys).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn install(&self, keys: Vec<VerifyKey>) {
        self.keys.store(Arc::new(to_map(keys)));
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.loaded
            .store(true, std::sync::atomic::Ordering::Release);
    }

    async fn fetch(&self) -> Result<Vec<VerifyKey>, JwksError> {
        let result = match &self.source {
            KeySource::Static => {
                return Ok(self.keys.load().values().map(|k| (**k).clone()).collect())
            }
            KeySource::File(path) => {
                let text =
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|source| JwksError::Read {
                            path: path.clone(),
                            source,
                        })?;
                parse_jwks(&text, &path.display().to_string())
            }
            KeySource::Url(url) => {
                let client = self.client.as_ref().expect("URL sources have a client");
                let fetch = |reason: String| JwksError::Fetch {
                    url: url.clone(),
                    reason,
                };
                let resp = client
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| fetch(e.to_string()))?;
                if !resp.status().is_success() {
                    return Err(fetch(format!("status {}", resp.status())));
                }
                let text = resp.text().await.map_err(|e| fetch(e.to_string()))?;
                parse_jwks(&text, url)
            }
        };
        metrics::counter!("legate_jwks_fetches_total", "result" => if result.is_ok() { "ok" } else { "error" }).increment(1);
        result
    }

    /// Re-reads the source unless it was read less than `min_refresh` ago. Keeps the old keys on
    /// failure. Returns whether new keys were installed.
    pub async fn refresh(&self) -> bool {
        if matches!(self.source, KeySource::Static) {
            return false;
        }
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return false;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS refreshed");
                self.install(keys);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping the last good keys");
                false
            }
        }
    }

    /// How long to wait between two fetches.
    pub fn min_refresh(&self) -> Duration {
        self.min_refresh
    }

    /// The key for `kid`, refreshing the set once (rate limited) when it is unknown.
    ///
    /// The keys are looked at again whatever `refresh` answers: requests that arrive with a new
    /// kid while another request's fetch is under way wait for that fetch (the lock) and then find
    /// themselves rate limited, but the keys they need have just been installed. (Found by the
    /// soak run: every first use of a rotated key answered a burst of 401s.)
    pub async fn get(&self, kid: &str) -> Result<Arc<VerifyKey>, Error> {
        if let Some(k) = self.keys.load().get(kid) {
            return Ok(k.clone());
        }
        self.refresh().await;
        self.keys.load().get(kid).cloned().ok_or(Error::UnknownKid)
    }

    /// For a token without `kid`: the one key that fits `alg`, if exactly one does.
    pub fn only_key_for(&self, alg: Algorithm) -> Result<Arc<VerifyKey>, Error> {
        let keys = self.keys.load();
        let mut fitting = keys.values().filter(|k| k.check(alg).is_ok());
        match (fitting.next(), fitting.next()) {
            (Some(k), None) => Ok(k.clone()),
            (None, _) => Err(Error::UnknownKid),
            _ => Err(Error::MissingKid),
        }
    }
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
    fn without_kid_only_a_single_fitting_key_is_used() {
        let dev = include_str!("../../examples/keys/idp-dev-jwks.json");
        let one = parse_jwks(dev, "dev").unwrap();
        let set = KeySet::fixed(one.clone());
        assert!(set.only_key_for(Algorithm::RS256).is_ok());
        assert_eq!(
            set.only_key_for(Algorithm::ES256).unwrap_err(),
            Error::UnknownKid
        );
        let mut second = one[0].clone();
        second.kid = "second".into();
        let two = KeySet::fixed(vec![one[0].clone(), second]);
        assert_eq!(
            two.only_key_for(Algorithm::RS256).unwrap_err(),
            Error::MissingKid
        );
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

    #[tokio::test]
    async fn a_refresh_to_an_ambiguous_set_keeps_the_last_good_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let dev = include_str!("../../examples/keys/idp-dev-jwks.json");
        std::fs::write(&path, dev).unwrap();
        let kid = parse_jwks(dev, "dev").unwrap()[0].kid.clone();
        let set = KeySet::load(KeySource::File(path.clone()), Duration::ZERO)
            .await
            .unwrap();
        let mut doc: serde_json::Value = serde_json::from_str(dev).unwrap();
        let key = doc["keys"][0].clone();
        doc["keys"].as_array_mut().unwrap().push(key);
        std::fs::write(&path, doc.to_string()).unwrap();
        assert!(!set.refresh().await, "an ambiguous set is not installed");
        assert!(set.get(&kid).await.is_ok());
        assert!(matches!(
            KeySet::load(KeySource::File(path), Duration::ZERO).await,
            Err(JwksError::AmbiguousKids { .. })
        ));
    }

    #[tokio::test]
    async fn requests_waiting_on_another_fetch_find_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let dev: serde_json::Value =
            serde_json::from_str(include_str!("../../examples/keys/idp-dev-jwks.json")).unwrap();
        let mut old = dev.clone();
        old["keys"][0]["kid"] = "old".into();
        std::fs::write(&path, old.to_string()).unwrap();
        let set = KeySet::load(KeySource::File(path.clone()), Duration::from_secs(60))
            .await
            .unwrap();
        let mut rotated = old.clone();
        let mut new = dev["keys"][0].clone();
        new["kid"] = "new".into();
        rotated["keys"].as_array_mut().unwrap().push(new);
        std::fs::write(&path, rotated.to_string()).unwrap();
        // Let min_refresh allow one fetch, then ask for the new kid three times at once: the first
        // fetches, the other two wait for it and must find the key it installed.
        *set.last_fetch.lock().await = None;
        let (a, b, c) = tokio::join!(set.get("new"), set.get("new"), set.get("new"));
        assert!(a.is_ok() && b.is_ok() && c.is_ok(), "{a:?} {b:?} {c:?}");
        assert_eq!(set.get("unknown").await.unwrap_err(), Error::UnknownKid);
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
