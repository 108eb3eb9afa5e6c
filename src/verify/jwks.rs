//! Key sets: the public keys of one issuer, from a JWKS file, an http(s) URL, or legate's own keys.
//!
//! A key set is read at start. When a token names a `kid` the set does not have, the source is read
//! again, at most once per `min_refresh`, so a flood of made-up `kid`s cannot turn legate into a
//! load generator against the identity provider. A failed fetch keeps the last good keys.
//! Which keys of a document are usable is `jwk.rs`'s business.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use jsonwebtoken::Algorithm;

use super::{
    jwk::{parse_jwks, JwksError, VerifyKey},
    Error,
};

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
}
