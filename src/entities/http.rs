//! The `http` entity source: the customer-management service, asked
//! `GET <entities.url with {customer} replaced>` and answering
//! `[{"id": "LE-1", "name": "...", "segments": ["S-1"]}]` (an item may add `"default": true`: the
//! entity chosen at login, and `"roles": ["buyer", "approver"]`: the roles the customer holds in that
//! entity, `context.roles`), with a timeout and a TTL cache. An item that is not of this shape (e.g.
//! `roles` not an array of strings) makes the whole answer a bad answer.
//!
//! A legal entity keeps the parents `entities.json` gives it (a company hierarchy is policy data),
//! so a subsidiary the service names is still `in` its parent.
//!
//! The cache holds the service's raw answer per customer; it is turned into Cedar entities with the
//! schema of the snapshot the request is decided on, so a schema reload never meets stale entities.
//! Concurrent misses for one customer share one call (moka's `try_get_with`); failures are not
//! cached. Freshness is judged with the injected [`Clock`]; moka's own TTL only bounds memory.

use std::{sync::Arc, time::Duration};

use cedar_policy::{Entity, EntityId, EntityUid};
use moka::future::Cache;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{Assignments, EntitiesConfig, EntitySource, Error};
use crate::{
    policy::Snapshot,
    shared::{BoxFuture, Clock},
    verify::{CustomerId, LegalEntityId},
};

/// Everything but RFC 3986 unreserved characters is escaped, `/` included: the customer id is one
/// path segment (or query value) and can never reach another path.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Largest answer read from the service.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// One legal entity as the customer-management service describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct LegalEntityRecord {
    /// Legal entity id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Segment ids.
    #[serde(default)]
    pub segments: Vec<String>,
    /// The customer's default legal entity, chosen at login.
    #[serde(default)]
    pub default: bool,
    /// The roles the customer holds in this legal entity (absent: none).
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug)]
struct Cached {
    fetched_at: u64,
    records: Vec<LegalEntityRecord>,
}

/// Client of the customer-management service.
#[derive(Debug)]
pub(crate) struct HttpSource {
    url: String,
    timeout_ms: u64,
    ttl_secs: u64,
    client: reqwest::Client,
    cache: Cache<String, Arc<Cached>>,
    clock: Arc<dyn Clock>,
}

impl HttpSource {
    /// A client for `config.url`, which must contain `{customer}`.
    pub(crate) fn new(config: &EntitiesConfig, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let url = config
            .url
            .clone()
            .ok_or("`entities.url` is not set for the http entity source")?;
        if config.timeout_ms == 0 {
            return Err("`entities.timeout_ms` must be greater than 0".into());
        }
        if !url.contains("{customer}") {
            return Err(format!(
                "`entities.url` = {url:?} has no `{{customer}}` placeholder"
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the entity-source HTTP client: {e}"))?;
        let mut cache = Cache::builder().max_capacity(100_000);
        if config.cache_ttl_secs > 0 {
            cache = cache.time_to_live(Duration::from_secs(config.cache_ttl_secs));
        }
        Ok(Self {
            url,
            timeout_ms: config.timeout_ms,
            ttl_secs: config.cache_ttl_secs,
            client,
            cache: cache.build(),
            clock,
        })
    }

    /// The URL asked for `customer`.
    pub(crate) fn url_for(&self, customer: &CustomerId) -> String {
        let encoded = utf8_percent_encode(&customer.0, COMPONENT).to_string();
        self.url.replace("{customer}", &encoded)
    }

    async fn fetch(&self, customer: &CustomerId) -> Result<Vec<LegalEntityRecord>, Error> {
        let url = self.url_for(customer);
        let net = |e: reqwest::Error| {
            if e.is_timeout() {
                Error::Timeout(self.timeout_ms)
            } else {
                Error::Unreachable(e.without_url().to_string())
            }
        };
        let mut resp = self
            .client
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(net)?;
        metrics::counter!("legate_entity_source_calls_total", "status" => resp.status().as_u16().to_string()).increment(1);
        if !resp.status().is_success() {
            return Err(Error::Status(resp.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(net)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(Error::BadAnswer("larger than 1 MiB".into()));
            }
        }
        let records: Vec<LegalEntityRecord> =
            serde_json::from_slice(&body).map_err(|e| Error::BadAnswer(e.to_string()))?;
        if records.iter().any(|r| r.id.is_empty()) {
            return Err(Error::BadAnswer("a legal entity has an empty id".into()));
        }
        if records.iter().any(|r| r.roles.iter().any(String::is_empty)) {
            return Err(Error::BadAnswer("a legal entity has an empty role".into()));
        }
        Ok(records)
    }

    /// The customer's records: from the cache while fresh, else from the service.
    pub(crate) async fn records(
        &self,
        customer: &CustomerId,
    ) -> Result<Vec<LegalEntityRecord>, Error> {
        if self.ttl_secs == 0 {
            return self.fetch(customer).await;
        }
        let key = customer.0.clone();
        if let Some(c) = self.cache.get(&key).await {
            if self.clock.now() < c.fetched_at.saturating_add(self.ttl_secs) {
                return Ok(c.records.clone());
            }
            self.cache.invalidate(&key).await;
        }
        let cached = self
            .cache
            .try_get_with(key, async {
                let records = self.fetch(customer).await?;
                Ok::<_, Error>(Arc::new(Cached {
                    fetched_at: self.clock.now(),
                    records,
                }))
            })
            .await
            .map_err(|e| (*e).clone())?;
        Ok(cached.records.clone())
    }
}

/// The records as Cedar `LegalEntity` entities, read with the schema.
pub(super) fn to_assignments(
    snapshot: &Snapshot,
    records: &[LegalEntityRecord],
) -> Result<Assignments, Error> {
    let le_type = snapshot
        .entity_type("LegalEntity")
        .ok_or_else(|| Error::Schema("the schema declares no LegalEntity type".into()))?
        .to_string();
    let segment_type = snapshot.qualify("Segment");
    let mut out = Assignments::default();
    // One entity marked default is the default; several marked are as good as none.
    let mut defaults = records.iter().filter(|r| r.default);
    if let (Some(one), None) = (defaults.next(), defaults.next()) {
        out.default = Some(LegalEntityId(one.id.clone()));
    }
    for r in records {
        let mut attrs = Map::new();
        if let Some(name) = &r.name {
            attrs.insert("name".into(), json!(name));
        }
        let segments: Vec<Value> = r
            .segments
            .iter()
            .map(|s| json!({"__entity": {"type": segment_type, "id": s}}))
            .collect();
        attrs.insert("segments".into(), Value::Array(segments));
        // The hierarchy is `entities.json`'s (transitively closed there already).
        let parents: Vec<Value> = snapshot
            .entity_type("LegalEntity")
            .map(|t| EntityUid::from_type_name_and_id(t, EntityId::new(&r.id)))
            .and_then(|uid| {
                snapshot
                    .entities()
                    .ancestors(&uid)
                    .map(|a| a.cloned().collect::<Vec<_>>())
            })
            .unwrap_or_default()
            .iter()
            .map(|p| json!({"type": p.type_name().to_string(), "id": p.id().unescaped()}))
            .collect();
        if !r.roles.is_empty() {
            out.roles.insert(r.id.clone(), r.roles.clone());
        }
        let entity = Entity::from_json_value(
            json!({"uid": {"type": le_type, "id": r.id}, "attrs": attrs, "parents": parents}),
            Some(snapshot.schema()),
        )
        .map_err(|e| Error::Schema(format!("legal entity {:?}: {e}", r.id)))?;
        let uid: EntityUid = entity.uid();
        out.parents.push(uid);
        out.entities.push(entity);
    }
    Ok(out)
}

impl EntitySource for HttpSource {
    fn assignments<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Arc<Assignments>, Error>> {
        Box::pin(async move {
            let records = self.records(customer).await?;
            to_assignments(snapshot, &records).map(Arc::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{entities::EntitySourceKind, shared::SystemClock};

    fn source(url: &str) -> HttpSource {
        let config = EntitiesConfig {
            source: EntitySourceKind::Http,
            url: Some(url.into()),
            cache_ttl_secs: 60,
            timeout_ms: 100,
        };
        HttpSource::new(&config, Arc::new(SystemClock)).unwrap()
    }

    #[test]
    fn customer_id_is_one_encoded_component() {
        let s = source("http://cm/customers/{customer}/legal-entities");
        assert_eq!(
            s.url_for(&CustomerId("C/1 ä?x=../".into())),
            "http://cm/customers/C%2F1%20%C3%A4%3Fx%3D..%2F/legal-entities"
        );
        assert_eq!(
            s.url_for(&CustomerId("C-1.a_b~".into())),
            "http://cm/customers/C-1.a_b~/legal-entities"
        );
    }

    #[test]
    fn url_without_placeholder_is_refused() {
        let config = EntitiesConfig {
            source: EntitySourceKind::Http,
            url: Some("http://cm/all".into()),
            cache_ttl_secs: 60,
            timeout_ms: 100,
        };
        assert!(HttpSource::new(&config, Arc::new(SystemClock))
            .unwrap_err()
            .contains("{customer}"));
    }

    #[test]
    fn records_become_schema_typed_legal_entities() {
        let snapshot = crate::policy::shipped();
        let records: Vec<LegalEntityRecord> = serde_json::from_value(json!([
            {"id": "LE-7", "name": "Seven", "segments": ["retail"]},
            {"id": "LE-8", "extra": true, "default": true}
        ]))
        .unwrap();
        let a = to_assignments(&snapshot, &records).unwrap();
        assert_eq!(a.default, Some(LegalEntityId("LE-8".into())));
        assert_eq!(a.parents.len(), 2);
        assert_eq!(a.parents[0].to_string(), r#"Shop::LegalEntity::"LE-7""#);
        let name = a.entities[0].attr("name").unwrap().unwrap();
        assert_eq!(name, cedar_policy::EvalResult::String("Seven".into()));
        assert!(a.entities[1].attr("name").is_none());
    }

    #[test]
    fn roles_are_kept_per_entity_and_the_hierarchy_comes_from_entities_json() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/b2b/policies");
        let snapshot = crate::policy::load(&dir, "Shop").unwrap();
        let records: Vec<LegalEntityRecord> = serde_json::from_value(json!([
            {"id": "LE-ACME-DE-B", "segments": ["retail"], "roles": ["buyer", "approver"]},
            {"id": "LE-NEW"}
        ]))
        .unwrap();
        let a = to_assignments(&snapshot, &records).unwrap();
        assert_eq!(a.roles["LE-ACME-DE-B"], ["buyer", "approver"]);
        assert!(!a.roles.contains_key("LE-NEW"));
        let mut ancestors: Vec<String> = a.entities[0]
            .clone()
            .into_inner()
            .2
            .iter()
            .map(|p| p.id().unescaped().to_string())
            .collect();
        ancestors.sort();
        assert_eq!(ancestors, ["LE-ACME", "LE-ACME-DE"]);
        assert!(a.entities[1].clone().into_inner().2.is_empty());
    }

    #[test]
    fn roles_that_are_not_an_array_of_strings_are_a_bad_answer() {
        for bad in [json!("admin"), json!([1]), json!({"a": 1}), json!([null])] {
            let answer = json!([{"id": "LE-1", "roles": bad}]);
            assert!(
                serde_json::from_value::<Vec<LegalEntityRecord>>(answer).is_err(),
                "{bad}"
            );
        }
    }
}
