//! Forward-auth path vetting and route matching: the original method and URI a proxy reports,
//! against the `[[routes]]` of `examples/legate.toml` or a fuzzed route table.
//!
//! Input: method `\0` original URI `\0` customer `\0` legal entity `\0` optional `[[routes]]` TOML.
//! With a table that compiles, that table is used; otherwise the example's.
//! Properties: no panic; an accepted path reads the same as the most forgiving normalisation a
//! service behind the proxy could apply (so it can never normalise to another route or other
//! parameters than the ones it matched); a match fills the route's check without a panic.
#![no_main]

use axum::http::Method;
use legate::testing::{
    routes::{segments, RouteConfig, RouteTable},
    verify::{CustomerId, LegalEntityId},
};
use legate_fuzz::{example_routes, normalise, parts};
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
struct Routes {
    routes: Vec<RouteConfig>,
}

fn text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 5);
    let (Some(uri), Some(customer), Some(le), Some(table_text)) =
        (text(p[1]), text(p[2]), text(p[3]), text(p[4]))
    else {
        return;
    };
    let own;
    let table: &RouteTable = match toml::from_str::<Routes>(table_text) {
        Ok(r) => match RouteTable::compile(&r.routes) {
            Ok(t) => {
                own = t;
                &own
            }
            Err(problems) => {
                assert!(!problems.is_empty());
                return;
            }
        },
        Err(_) => example_routes(),
    };
    let Ok(method) = Method::from_bytes(p[0]) else {
        return;
    };
    let Ok(accepted) = segments(uri) else {
        return;
    };
    let normal = normalise(uri);
    assert_eq!(
        accepted, normal,
        "{uri:?} is read differently behind the proxy"
    );
    let found = table.find(&method, &accepted);
    let again = table.find(&method, &normal);
    assert_eq!(
        found.as_ref().map(|m| (m.route.number, &m.params)),
        again.as_ref().map(|m| (m.route.number, &m.params)),
        "{uri:?}"
    );
    if let Some(m) = found {
        let customer = CustomerId(customer.to_string());
        let le = (!le.is_empty()).then(|| LegalEntityId(le.to_string()));
        let _ = m.check(&customer, le.as_ref());
    }
});
