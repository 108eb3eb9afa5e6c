//! The environment overlay: `LEGATE_<KEY>` (top level) and `LEGATE_<SECTION>__<KEY>` (inside a
//! section) set values on the parsed file before it is read. `LEGATE_LOG` is the log filter, not a
//! key. Values are read as TOML (`60`, `true`, `["a"]`), else as a plain string.

/// Applies `LEGATE_KEY` / `LEGATE_SECTION__KEY` variables onto the parsed file.
pub(super) fn overlay(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<String>,
) {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("LEGATE_") else {
            continue;
        };
        // `LEGATE_LOG` is the tracing filter (read by the CLI), not a configuration key.
        if rest.is_empty() || rest == "LOG" {
            continue;
        }
        let value = env_value(&raw);
        let rest = rest.to_ascii_lowercase();
        match rest.split_once("__") {
            None => {
                table.insert(rest, value);
            }
            Some((section, key)) => {
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry {
                    toml::Value::Table(t) => {
                        t.insert(key.to_string(), value);
                    }
                    _ => problems.push(format!(
                        "{name}: `{section}` is not a section that can be set from the environment"
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
