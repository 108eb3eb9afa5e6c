//! I-JSON (RFC 7493) member names: a JSON text with a repeated member name in any object, at any
//! depth, is refused before it is read into a type — never "last one wins".

use std::{collections::HashSet, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// `Err` with the repeated name when an object of `bytes` (a JSON text) has a member name twice;
/// `Ok` otherwise, also for text that is not JSON (the typed read reports that).
pub fn check_unique_members(bytes: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match Unique.deserialize(&mut de) {
        Err(e) if e.is_data() => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// Walks any JSON value, refusing an object with a repeated member name.
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Unique)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if let Some(name) = seen.replace(name) {
                // The name is client text: quoted with escapes, so it stays on one line.
                return Err(de::Error::custom(format!("member {name:?} is repeated")));
            }
            map.next_value_seed(Unique)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check_unique_members;

    #[test]
    fn a_repeated_member_at_any_depth_is_refused() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"owner":{"type":"Customer","id":"C-2","id":"C-1"}}}"#,
            r#"{"checks":[{},{"context":{"total":9,"total":1}}]}"#,
            r#"[[{"\u0061":1,"a":2}]]"#,
        ] {
            assert!(check_unique_members(text.as_bytes()).is_err(), "{text}");
        }
        for text in [
            r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#,
            "not json",
            "[1,2]",
        ] {
            assert!(check_unique_members(text.as_bytes()).is_ok(), "{text}");
        }
    }
}
