//! A small interpreter of the filter language (DESIGN.md `POST /v1/plan`), written from the contract
//! and independent of legate's code: a filter JSON and a resource's `attrs` (Cedar JSON, entity
//! references with full type names) in, true or false out. An operator other than `has` that reads
//! an absent attribute is false.

use serde_json::Value;

/// Evaluates `filter` on a resource with `attrs`.
pub(crate) fn eval(filter: &Value, attrs: &Value) -> bool {
    match filter {
        Value::Bool(b) => *b,
        Value::Object(m) => {
            assert_eq!(m.len(), 1, "one operator per node: {filter}");
            let (op, arg) = m.iter().next().unwrap();
            let args = || {
                arg.as_array()
                    .unwrap_or_else(|| panic!("{op} takes a list: {filter}"))
            };
            match op.as_str() {
                "and" => args().iter().all(|f| eval(f, attrs)),
                "or" => args().iter().any(|f| eval(f, attrs)),
                "not" => !eval(arg, attrs),
                "has" => attrs.get(arg.as_str().unwrap()).is_some(),
                "is_empty" => operand(arg, attrs)
                    .map(|v| v.as_array().expect("a set").is_empty())
                    .unwrap_or(false),
                "like" => {
                    let a = args();
                    match operand(&a[0], attrs) {
                        Some(Value::String(s)) => like(&s, a[1].as_str().unwrap()),
                        Some(other) => panic!("like on {other}"),
                        None => false,
                    }
                }
                _ => {
                    let a = args();
                    assert_eq!(a.len(), 2, "{filter}");
                    let (Some(x), Some(y)) = (operand(&a[0], attrs), operand(&a[1], attrs)) else {
                        return false;
                    };
                    binary(op, &x, &y)
                }
            }
        }
        other => panic!("not a filter: {other}"),
    }
}

fn operand(o: &Value, attrs: &Value) -> Option<Value> {
    if let Some(a) = o.get("attr") {
        return attrs.get(a.as_str().unwrap()).cloned();
    }
    Some(
        o.get("value")
            .unwrap_or_else(|| panic!("not an operand: {o}"))
            .clone(),
    )
}

fn set(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not a set: {v}"))
}

fn equal(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Array(a), Value::Array(b)) => {
            a.iter().all(|i| b.iter().any(|j| equal(i, j)))
                && b.iter().all(|j| a.iter().any(|i| equal(i, j)))
        }
        _ => x == y,
    }
}

fn binary(op: &str, x: &Value, y: &Value) -> bool {
    let long = |v: &Value| v.as_i64().unwrap_or_else(|| panic!("not a Long: {v}"));
    match op {
        "eq" => equal(x, y),
        "ne" => !equal(x, y),
        "lt" => long(x) < long(y),
        "le" => long(x) <= long(y),
        "gt" => long(x) > long(y),
        "ge" => long(x) >= long(y),
        "contains" => set(x).iter().any(|i| equal(i, y)),
        "contains_any" => set(y).iter().any(|j| set(x).iter().any(|i| equal(i, j))),
        "contains_all" => set(y).iter().all(|j| set(x).iter().any(|i| equal(i, j))),
        other => panic!("unknown operator {other}"),
    }
}

/// Cedar `like`: `*` any run of characters, `\*` a literal star, `\\` a backslash.
fn like(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        Char(char),
    }
    let mut p = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => p.push(P::Any),
            '\\' => p.push(P::Char(chars.next().expect("escape at end"))),
            c => p.push(P::Char(c)),
        }
    }
    let t: Vec<char> = text.chars().collect();
    // dp[j]: pattern[..i] matches text[..j]
    let mut dp = vec![false; t.len() + 1];
    dp[0] = true;
    for e in &p {
        let mut next = vec![false; t.len() + 1];
        match e {
            P::Any => {
                let mut any = false;
                for j in 0..=t.len() {
                    any |= dp[j];
                    next[j] = any;
                }
            }
            P::Char(c) => {
                for j in 1..=t.len() {
                    next[j] = dp[j - 1] && t[j - 1] == *c;
                }
            }
        }
        dp = next;
    }
    dp[t.len()]
}

#[test]
fn the_interpreter_follows_the_contract() {
    use serde_json::json;
    let attrs = json!({"owner": {"type": "Shop::Customer", "id": "C-1"}, "status": "open-1",
                       "segments": [{"type": "Shop::Segment", "id": "a"}]});
    let c1 = json!({"value": {"type": "Shop::Customer", "id": "C-1"}});
    assert!(eval(&json!({"eq": [{"attr": "owner"}, c1]}), &attrs));
    assert!(!eval(&json!({"eq": [{"attr": "legalEntity"}, c1]}), &attrs));
    assert!(!eval(&json!({"ne": [{"attr": "legalEntity"}, c1]}), &attrs));
    assert!(eval(
        &json!({"not": {"eq": [{"attr": "legalEntity"}, c1]}}),
        &attrs
    ));
    assert!(eval(
        &json!({"like": [{"attr": "status"}, "open*"]}),
        &attrs
    ));
    assert!(!eval(
        &json!({"like": [{"attr": "status"}, "open\\*"]}),
        &attrs
    ));
    assert!(eval(
        &json!({"contains_any": [{"attr": "segments"}, {"value": [{"type": "Shop::Segment", "id": "a"}]}]}),
        &attrs
    ));
    assert!(!eval(&json!({"is_empty": {"attr": "segments"}}), &attrs));
    assert!(eval(&json!({"or": [false, {"has": "status"}]}), &attrs));
}
