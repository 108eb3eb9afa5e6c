//! The environment overlay: `LEGATE_<KEY>` (top level) and `LEGATE_<SECTION>__<KEY>` (inside a
//! section) set values on the parsed file before it is read. `LEGATE_LOG` is the log filter, not a
//! key. Values are read as TOML (`60`, `true`, `["a"]`), else as a plain string.
//!
//! A `LEGATE_*` variable that names no key is ignored with one warning each: Kubernetes puts
//! `LEGATE_PORT`, `LEGATE_SERVICE_HOST`, `LEGATE_PORT_8181_TCP_ADDR`, … into every pod of a
//! namespace with a Service named `legate`. A variable that names a key is applied, so a bad value
//! is an error like the same value in the file. Which keys exist is read off the section structs
//! themselves ([`fields_of`]), so a key added to a section is settable without touching this file;
//! a new *section* needs an entry in [`KEYS`].

use serde::{de, Deserialize};

use super::sections::*;
use crate::entities::EntitiesConfig;

/// What a top-level key is, as far as the environment is concerned.
#[derive(Clone, Copy)]
enum Key {
    /// A plain value (`LEGATE_LISTEN`).
    Value,
    /// A table whose keys are the fields of a section struct (`LEGATE_LIMITS__BATCH_MAX`).
    Section(fn() -> &'static [&'static str]),
    /// An array of tables: only in the file.
    Array,
}

/// Every top-level key of the configuration file.
const KEYS: &[(&str, Key)] = &[
    ("listen", Key::Value),
    ("public_url", Key::Value),
    ("namespace", Key::Value),
    ("policies", Key::Section(fields_of::<PoliciesConfig>)),
    ("trust", Key::Array),
    ("claims", Key::Section(fields_of::<ClaimsConfig>)),
    ("issue", Key::Section(fields_of::<IssueConfig>)),
    ("entities", Key::Section(fields_of::<EntitiesConfig>)),
    ("store", Key::Section(fields_of::<StoreConfig>)),
    ("limits", Key::Section(fields_of::<LimitsConfig>)),
    ("routes", Key::Array),
    ("clients", Key::Array),
    ("plan", Key::Section(fields_of::<crate::plan::PlanConfig>)),
    ("forward_auth", Key::Section(fields_of::<ForwardAuthConfig>)),
    ("log", Key::Section(fields_of::<LogConfig>)),
    ("shutdown", Key::Section(fields_of::<ShutdownConfig>)),
];

/// Applies `LEGATE_KEY` / `LEGATE_SECTION__KEY` variables onto the parsed file; a variable that
/// names no key goes to `warnings` instead, a key that cannot be set from the environment to
/// `problems`.
pub(super) fn overlay(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    // One order whatever the environment's, so warnings and problems read the same every run.
    env.sort();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("LEGATE_") else {
            continue;
        };
        // `LEGATE_LOG` is the tracing filter (read by the CLI), not a configuration key.
        if rest.is_empty() || rest == "LOG" {
            continue;
        }
        let rest = rest.to_ascii_lowercase();
        let (top, inner) = match rest.split_once("__") {
            None => (rest.as_str(), None),
            Some((section, key)) => (section, Some(key)),
        };
        let ignored = || format!("{name} names no configuration key; ignored");
        let Some(&(_, kind)) = KEYS.iter().find(|(k, _)| *k == top) else {
            warnings.push(ignored());
            continue;
        };
        let value = env_value(&raw);
        match (kind, inner) {
            (Key::Array, _) => problems.push(format!(
                "{name}: `{top}` is an array of tables, which is set in the file only"
            )),
            (Key::Value, Some(_)) => warnings.push(ignored()),
            (Key::Value, None) | (Key::Section(_), None) => {
                table.insert(top.to_string(), value);
            }
            (Key::Section(fields), Some(key)) => {
                if !fields().contains(&key) {
                    warnings.push(ignored());
                    continue;
                }
                let entry = table
                    .entry(top.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry {
                    toml::Value::Table(t) => {
                        t.insert(key.to_string(), value);
                    }
                    _ => problems.push(format!(
                        "{name}: `{top}` is not a table in the file, so `{top}.{key}` cannot be set"
                    )),
                }
            }
        }
    }
}

/// Reads an environment value as a TOML value (`60`, `true`, `["a"]`), else as a plain string.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// The field names (as written in the file) of a struct that derives `Deserialize`: what the
/// derive hands its deserializer in `deserialize_struct`, caught by a deserializer that does
/// nothing else.
pub(super) fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

/// See [`fields_of`].
struct FieldProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("fields read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
