use serde_json::json;

use super::config::RouteResource;
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

fn with_attrs(mut r: RouteConfig, attrs: &str) -> RouteConfig {
    r.resource.attrs = Some(attrs.parse().unwrap());
    r
}

fn table(routes: &[RouteConfig]) -> RouteTable {
    RouteTable::compile(routes).unwrap_or_else(|p| panic!("{p:?}"))
}

fn problems(routes: &[RouteConfig]) -> String {
    RouteTable::compile(routes).unwrap_err().join("\n")
}

fn find(t: &RouteTable, method: &str, uri: &str) -> Option<(usize, Vec<String>)> {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    t.find(&m, &segments(uri).unwrap())
        .map(|m| (m.route.number, m.params))
}

fn c1() -> CustomerId {
    CustomerId("C-1".into())
}

fn le1() -> LegalEntityId {
    LegalEntityId("LE-1".into())
}

#[test]
fn params_match_one_decoded_segment() {
    let t = table(&[route("GET", "/orders/{id}", "viewOrder", "Order", "{id}")]);
    assert_eq!(
        find(&t, "GET", "/orders/O-1"),
        Some((1, vec!["O-1".into()]))
    );
    assert_eq!(
        find(&t, "GET", "/orders/O%201?x=1"),
        Some((1, vec!["O 1".into()]))
    );
    assert_eq!(find(&t, "GET", "/orders"), None);
    assert_eq!(find(&t, "GET", "/orders/"), None, "a param is never empty");
    assert_eq!(find(&t, "GET", "/orders/O-1/lines"), None);
    assert_eq!(
        find(&t, "GET", "/Orders/O-1"),
        None,
        "literals are case-sensitive"
    );
}

#[test]
fn methods_match_exactly_get_answers_head_and_star_any() {
    let t = table(&[
        route("get", "/a", "viewOrder", "Order", "a"),
        route("*", "/b", "viewOrder", "Order", "b"),
    ]);
    assert_eq!(find(&t, "GET", "/a").map(|m| m.0), Some(1));
    assert_eq!(find(&t, "HEAD", "/a").map(|m| m.0), Some(1));
    assert_eq!(find(&t, "POST", "/a"), None);
    for m in ["GET", "POST", "DELETE", "PATCH", "OPTIONS"] {
        assert_eq!(find(&t, m, "/b").map(|m| m.0), Some(2), "{m}");
    }
}

#[test]
fn the_first_matching_route_wins() {
    let t = table(&[
        route("GET", "/orders/new", "listOrders", "Order", "new"),
        route("GET", "/orders/{id}", "viewOrder", "Order", "{id}"),
        route("*", "/orders/{id}", "cancelOrder", "Order", "{id}"),
    ]);
    assert_eq!(find(&t, "GET", "/orders/new").map(|m| m.0), Some(1));
    assert_eq!(find(&t, "GET", "/orders/O-1").map(|m| m.0), Some(2));
    assert_eq!(find(&t, "POST", "/orders/O-1").map(|m| m.0), Some(3));
}

#[test]
fn rest_params_take_the_remaining_segments() {
    let t = table(&[route(
        "GET",
        "/files/{*path}",
        "viewOrder",
        "Order",
        "{path}",
    )]);
    assert_eq!(
        find(&t, "GET", "/files/a/b%20c/d"),
        Some((1, vec!["a/b c/d".into()]))
    );
    assert_eq!(find(&t, "GET", "/files/a"), Some((1, vec!["a".into()])));
    assert_eq!(find(&t, "GET", "/files/"), None);
    assert_eq!(find(&t, "GET", "/files"), None);
}

#[test]
fn trailing_slashes_and_the_root_are_their_own_paths() {
    let t = table(&[
        route("GET", "/", "viewOrder", "Order", "root"),
        route("GET", "/orders/", "listOrders", "Order", "list"),
    ]);
    assert_eq!(find(&t, "GET", "/").map(|m| m.0), Some(1));
    assert_eq!(find(&t, "GET", "/?q=1").map(|m| m.0), Some(1));
    assert_eq!(find(&t, "GET", "/orders/").map(|m| m.0), Some(2));
    assert_eq!(find(&t, "GET", "/orders"), None);
}

#[test]
fn templates_fill_params_customer_and_legal_entity() {
    let t = table(&[with_attrs(
        route(
            "GET",
            "/entities/{le}/orders/{id}",
            "viewOrder",
            "Shop::Order",
            "{le}:{id}:{{literal}}",
        ),
        r#"owner = { type = "Customer", id = "{customer}" }
           legalEntity = { type = "LegalEntity", id = "{legal_entity}" }
           status = "open-in-{le}"
           lines = 3
           tags = ["a", "{id}"]
           urgent = false"#,
    )]);
    let m = t
        .find(
            &Method::GET,
            &segments("/entities/LE-2/orders/O-7").unwrap(),
        )
        .unwrap();
    let check = m.check(&c1(), Some(&le1())).unwrap();
    assert_eq!(check.action, "viewOrder");
    assert_eq!(check.resource.kind, "Shop::Order");
    assert_eq!(check.resource.id, "LE-2:O-7:{literal}");
    assert_eq!(
        serde_json::Value::Object(check.resource.attrs.unwrap()),
        json!({"owner": {"type": "Customer", "id": "C-1"},
               "legalEntity": {"type": "LegalEntity", "id": "LE-1"},
               "status": "open-in-LE-2", "lines": 3, "tags": ["a", "O-7"], "urgent": false})
    );
    assert!(check.context.is_none());
    // Without a selected legal entity the route cannot be asked: the caller denies.
    assert_eq!(
        m.check(&c1(), None).unwrap_err(),
        RenderError::NoLegalEntity
    );
}

#[test]
fn a_route_without_attrs_asks_about_a_reference() {
    let t = table(&[route(
        "GET",
        "/legal-entities/{id}",
        "selectLegalEntity",
        "LegalEntity",
        "{id}",
    )]);
    let m = t
        .find(&Method::GET, &segments("/legal-entities/LE-3").unwrap())
        .unwrap();
    let check = m.check(&c1(), None).unwrap();
    assert_eq!(check.resource.id, "LE-3");
    assert!(check.resource.attrs.is_none());
}

#[test]
fn bad_patterns_and_templates_are_listed_together() {
    let all = problems(&[
        route("GET", "orders/{id}", "viewOrder", "Order", "{id}"),
        route("GET", "/orders/o{id}", "viewOrder", "Order", "{id}"),
        route("GET", "/a/{id}/{id}", "viewOrder", "Order", "{id}"),
        route("GET", "/a/{*rest}/b", "viewOrder", "Order", "x"),
        route("GET", "/a/{customer}", "viewOrder", "Order", "x"),
        route("GET", "/a/{x-y}", "viewOrder", "Order", "x"),
        route("GET", "/a//b", "viewOrder", "Order", "x"),
        route("GET", "/a/../b", "viewOrder", "Order", "x"),
        route("GET", "/a?x=1", "viewOrder", "Order", "x"),
        route("GE T", "/b", "viewOrder", "Order", "x"),
        route("GET", "/c/{id}", "viewOrder", "Order", "{ID}"),
        route("GET", "/d/{id}", "viewOrder", "Order", "{id"),
        route("GET", "/e/{id}", "viewOrder", "Order", "id}"),
        route("GET", "/f", "", "", ""),
        with_attrs(route("GET", "/g", "viewOrder", "Order", "g"), "x = 1.5"),
        with_attrs(
            route("GET", "/h", "viewOrder", "Order", "h"),
            "x = \"{nope}\"",
        ),
    ]);
    for want in [
        "#1 (GET orders/{id}): `path` \"orders/{id}\" must start with `/`",
        "#2 (GET /orders/o{id}): `path` \"/orders/o{id}\": a parameter must be a whole segment",
        "#3 (GET /a/{id}/{id}): `path` \"/a/{id}/{id}\": {id} appears twice",
        "#4 (GET /a/{*rest}/b): `path` \"/a/{*rest}/b\": `{*…}` must be the last segment",
        "#5 (GET /a/{customer}): `path` \"/a/{customer}\": {customer} is reserved",
        "#6 (GET /a/{x-y}): `path` \"/a/{x-y}\": {x-y} is not a parameter name",
        "#7 (GET /a//b): `path` \"/a//b\" has an empty segment",
        "#8 (GET /a/../b): `path` \"/a/../b\" has a `.` or `..` segment",
        "#9 (GET /a?x=1): `path` \"/a?x=1\" may not contain `?`",
        "#10 (GE T /b): `method` \"GE T\" is not an HTTP method or `*`",
        "#11 (GET /c/{id}): `resource.id`: unknown placeholder {ID} in \"{ID}\" (known: {id}, {customer}, {legal_entity})",
        "#12 (GET /d/{id}): `resource.id`: unclosed `{`",
        "#13 (GET /e/{id}): `resource.id`: unmatched `}`",
        "#14 (GET /f): `action` is empty",
        "#14 (GET /f): `resource.type` is empty",
        "#14 (GET /f): `resource.id` is empty",
        "#15 (GET /g): `resource.attrs`: attribute value 1.5 is a float",
        "#16 (GET /h): `resource.attrs`: unknown placeholder {nope}",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}

#[test]
fn a_route_an_earlier_one_always_wins_over_is_refused() {
    let all = problems(&[
        route("GET", "/orders/{id}", "viewOrder", "Order", "{id}"),
        route("GET", "/orders/new", "listOrders", "Order", "new"),
        route("HEAD", "/orders/{x}", "viewOrder", "Order", "{x}"),
        route("*", "/files/{*p}", "viewOrder", "Order", "{p}"),
        route("PUT", "/files/a/{b}", "viewOrder", "Order", "{b}"),
    ]);
    assert!(
        all.contains("#2 (GET /orders/new) can never match: #1 (GET /orders/{id}) comes first"),
        "{all}"
    );
    assert!(
        all.contains("#3 (HEAD /orders/{x}) can never match: #1"),
        "{all}"
    );
    assert!(
        all.contains("#5 (PUT /files/a/{b}) can never match: #4"),
        "{all}"
    );
    // Narrower first, or different methods or shapes, is fine.
    table(&[
        route("GET", "/orders/new", "listOrders", "Order", "new"),
        route("GET", "/orders/{id}", "viewOrder", "Order", "{id}"),
        route("POST", "/orders/{id}", "cancelOrder", "Order", "{id}"),
        route("GET", "/orders/{id}/lines", "viewOrder", "Order", "{id}"),
        route("GET", "/files/{*p}", "viewOrder", "Order", "{p}"),
        route("GET", "/files/", "listOrders", "Order", "all"),
        route("*", "/orders/{id}", "viewOrder", "Order", "{id}"),
    ]);
}
