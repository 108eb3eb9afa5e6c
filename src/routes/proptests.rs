//! Property tests of path vetting and route matching: a path legate accepts reads the same to
//! every way a service behind the proxy might normalise it, so no accepted path normalises to a
//! different route (or different parameters) than the one it matched.

use axum::http::Method;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use proptest::prelude::*;

use super::config::RouteResource;
use super::oracle::normalise;
use super::*;

fn route(method: &str, path: &str, action: &str, kind: &str, id: &str) -> RouteConfig {
    RouteConfig {
        method: method.into(),
        path: path.into(),
        action: action.into(),
        resource: RouteResource {
            kind: kind.into(),
            id: id.into(),
            attrs: None,
        },
    }
}

/// Routes in the shapes of `examples/legate.toml`, plus a rest parameter and a literal.
fn table() -> RouteTable {
    RouteTable::compile(&[
        route(
            "GET",
            "/legal-entities/{id}",
            "selectLegalEntity",
            "LegalEntity",
            "{id}",
        ),
        route("GET", "/orders/new", "listOrders", "Order", "new"),
        route("GET", "/orders/{id}", "viewOrder", "Order", "{id}"),
        route(
            "GET",
            "/entities/{le}/orders/{id}",
            "viewOrder",
            "Order",
            "{id}",
        ),
        route("GET", "/files/{*path}", "viewOrder", "Order", "{path}"),
        route("GET", "/", "listOrders", "Order", "root"),
    ])
    .unwrap_or_else(|p| panic!("{p:?}"))
}

/// Raw path pieces an attacker would try, glued together.
fn raw_uri() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/",
        "//",
        ".",
        "..",
        "%2e",
        "%2E%2e",
        "%2f",
        "%2F",
        "%5c",
        "\\",
        ";",
        ";x=1",
        "%3b",
        "?",
        "%3f",
        "#",
        "%23",
        "%",
        "%zz",
        "%00",
        "%0a",
        "%20",
        " ",
        "%25",
        "%C3%A9",
        "é",
        "%ff",
        "a",
        "LE-1",
        "LE-3",
        "O-1",
        "orders",
        "legal-entities",
        "entities",
        "files",
        "new",
        "-",
        "_",
        "~",
        "*",
        "+",
        "=",
        "&",
        "@",
    ]);
    let prefix = prop::sample::select(vec![
        "/",
        "/orders/",
        "/legal-entities/",
        "/entities/LE-1/orders/",
        "/files/",
        "",
    ]);
    (prefix, prop::collection::vec(piece, 0..8)).prop_map(|(p, v)| format!("{p}{}", v.concat()))
}

/// What a match is: route number and parameters.
fn matched(t: &RouteTable, segments: &[String]) -> Option<(usize, Vec<String>)> {
    t.find(&Method::GET, segments)
        .map(|m| (m.route.number, m.params))
}

proptest! {
    // Failures are reported with their minimal input; nothing is written into the repository.
    #![proptest_config(ProptestConfig { cases: 4096, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_accepted_path_normalises_to_itself_and_to_the_same_route(uri in raw_uri()) {
        if let Ok(accepted) = segments(&uri) {
            let normal = normalise(&uri);
            prop_assert_eq!(&accepted, &normal, "{} read differently", uri);
            let t = table();
            prop_assert_eq!(matched(&t, &accepted), matched(&t, &normal), "{}", uri);
        }
    }

    #[test]
    fn a_template_filled_with_any_encoded_id_matches_that_route_with_that_id(
        id in "\\PC{1,12}",
        which in 0usize..3,
    ) {
        let encoded = utf8_percent_encode(&id, NON_ALPHANUMERIC).to_string();
        let (uri, route) = match which {
            0 => (format!("/legal-entities/{encoded}"), 1),
            1 => (format!("/orders/{encoded}"), 3),
            _ => (format!("/entities/LE-1/orders/{encoded}"), 4),
        };
        let t = table();
        match segments(&uri) {
            Ok(accepted) => {
                prop_assert_eq!(&accepted, &normalise(&uri), "{}", uri);
                let (number, params) = matched(&t, &accepted).expect("a filled template matches");
                // `/orders/new` is its own route; every other id is the template's.
                if which == 1 && id == "new" {
                    prop_assert_eq!(number, 2);
                } else {
                    prop_assert_eq!(number, route, "{}", uri);
                    prop_assert_eq!(params.last(), Some(&id), "{}", uri);
                }
            }
            // Refused ids are the ones a service could read as something else.
            Err(e) => prop_assert!(
                id == "." || id == ".." || id.chars().any(|c| c == '/' || c == '\\' || c.is_control()),
                "{} refused: {}", uri, e
            ),
        }
    }
}
