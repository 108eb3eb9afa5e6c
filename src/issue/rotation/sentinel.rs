//! `store.url` for Redis Sentinel: `redis+sentinel://[[user]:password@]host:port[,host:port…]/service[/db][?replicas=N]`.
//!
//! The hosts are the sentinels (port default 26379), `service` the name they monitor the primary
//! under (`sentinel monitor <service> …`). A user and password are for the Redis nodes (the
//! sentinels are asked without). `replicas` (default 1) is how many replicas must acknowledge each
//! write before it counts (`WAIT`); 0 turns that off, at the price that a failover can lose the
//! last writes, which may let a reused refresh token pass once.

use redis::{
    sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType},
    ConnectionAddr,
};

/// The scheme of a Sentinel `store.url`.
pub(super) const SCHEME: &str = "redis+sentinel://";

/// Default sentinel port.
const SENTINEL_PORT: u16 = 26379;

/// Whether `url` names a Sentinel deployment.
pub(super) fn is_sentinel_url(url: &str) -> bool {
    url.get(..SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

/// A parsed Sentinel URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SentinelUrl {
    pub(super) sentinels: Vec<(String, u16)>,
    pub(super) service: String,
    pub(super) db: i64,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) replicas: u32,
}

fn decode(s: &str) -> Result<String, String> {
    percent_decode(s).ok_or_else(|| "bad percent-encoding".to_string())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // [v6]:port or [v6]
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("sentinel address {s:?} has an unclosed `[`"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("sentinel address {s:?} is not host:port")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("sentinel address {s:?} has no host"));
    }
    let port = match port {
        None => SENTINEL_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("sentinel address {s:?} has no valid port"))?,
    };
    Ok((host.to_string(), port))
}

impl SentinelUrl {
    /// Parses `url`; the error says what is wrong without repeating the URL (it may hold a
    /// password).
    pub(super) fn parse(url: &str) -> Result<Self, String> {
        if !is_sentinel_url(url) {
            return Err(format!("it does not start with {SCHEME}"));
        }
        let rest = &url[SCHEME.len()..];
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = rest
            .split_once('/')
            .ok_or("it names no service (…/service_name)")?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (u, None),
                };
                let user = (!user.is_empty()).then(|| decode(user)).transpose()?;
                let pass = pass.filter(|p| !p.is_empty()).map(decode).transpose()?;
                (user, pass)
            }
        };
        let sentinels = hosts
            .split(',')
            .map(host_port)
            .collect::<Result<Vec<_>, _>>()?;
        let mut segments = path.split('/');
        let service = decode(segments.next().unwrap_or_default())?;
        if service.is_empty() {
            return Err("it names no service (…/service_name)".into());
        }
        let db = match segments.next() {
            None | Some("") => 0,
            Some(d) => d
                .parse::<i64>()
                .ok()
                .filter(|d| *d >= 0)
                .ok_or("the database after the service is not a number")?,
        };
        if segments.next().is_some() {
            return Err("the path is /service[/db]".into());
        }
        let mut replicas = 1;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some(("replicas", n)) => {
                    replicas = n
                        .parse()
                        .map_err(|_| "`replicas` is not a number".to_string())?;
                }
                _ => return Err("the only query parameter is `replicas`".into()),
            }
        }
        Ok(Self {
            sentinels,
            service,
            db,
            username,
            password,
            replicas,
        })
    }

    /// A client that asks the sentinels for the primary each time it connects.
    pub(super) fn client(&self) -> Result<SentinelClient, String> {
        let nodes = self
            .sentinels
            .iter()
            .map(|(h, p)| ConnectionAddr::Tcp(h.clone(), *p));
        let mut b =
            SentinelClientBuilder::new(nodes, self.service.clone(), SentinelServerType::Master)
                .map_err(|e| e.to_string())?
                .set_client_to_redis_db(self.db);
        if let Some(u) = &self.username {
            b = b.set_client_to_redis_username(u.clone());
        }
        if let Some(p) = &self.password {
            b = b.set_client_to_redis_password(p.clone());
        }
        b.build().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sentinels_service_db_credentials_and_replicas() {
        let u = SentinelUrl::parse(
            "redis+sentinel://:s%40cret@10.0.0.1:26380,sentinel-b,[::1]:26381/legate/2?replicas=2",
        )
        .unwrap();
        assert_eq!(
            u.sentinels,
            vec![
                ("10.0.0.1".to_string(), 26380),
                ("sentinel-b".to_string(), 26379),
                ("::1".to_string(), 26381)
            ]
        );
        assert_eq!(u.service, "legate");
        assert_eq!(u.db, 2);
        assert_eq!(u.username, None);
        assert_eq!(u.password.as_deref(), Some("s@cret"));
        assert_eq!(u.replicas, 2);
        let plain = SentinelUrl::parse("REDIS+SENTINEL://h:1/mymaster").unwrap();
        assert_eq!((plain.db, plain.replicas), (0, 1));
        assert!(plain.client().is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_read_without_echoing_the_password() {
        for bad in [
            "redis://h:1/legate",
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:0/legate",
            "redis+sentinel://h:x/legate",
            "redis+sentinel://:1/legate",
            "redis+sentinel://[::1/legate",
            "redis+sentinel://h:1/legate/x",
            "redis+sentinel://h:1/legate/0/1",
            "redis+sentinel://h:1/legate?replicas=many",
            "redis+sentinel://h:1/legate?wait=1",
            "redis+sentinel://:hunter2@h:1/",
        ] {
            let e = SentinelUrl::parse(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{bad}: {e}");
        }
    }
}
