//! The layering test (in the manner of rust-analyzer's tidy tests): reads every `crate::` path in
//! the non-test code of `src/` and fails on an import cycle between top-level modules, or on an arrow
//! the layering in ARCHITECTURE.md forbids, naming the file and line.
//!
//! Test code is left out (files named `tests.rs`, `proptests.rs` or `*_tests.rs`, and everything
//! after a `#[cfg(test)]` that opens a module): a unit test may reach anywhere.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The layers, lowest first. A module may import from a lower layer only (or, for the few pairs in
/// [`SAME_LAYER`], from its own). Every top-level module of `src/` is in exactly one layer: the test
/// fails on one that is missing, so a new module must be placed. ARCHITECTURE.md ("Layers") explains
/// the order.
const LAYERS: &[&[&str]] = &[
    // The leaf every stage may use.
    &["shared"],
    &["decision", "telemetry", "signals"],
    // The stages, in the order a decision needs them. None imports deciding, state, serving or HTTP.
    &["verify"],
    &["policy"],
    &["entities"],
    &["request"],
    &["routes", "audit"],
    // The one decision door, and what is built over it.
    &["decide"],
    &["plan"],
    // Config reads the sections the stages own (a stage never imports `config` for its own section).
    &["config"],
    &["issue", "server", "toolkit"],
    &["state"],
    &["http"],
    &["app"],
    &["cli"],
    // What tests, benches and fuzz targets reach, re-exported.
    &["testing"],
    // The crate map and the binary.
    &["lib", "main"],
];

/// Arrows allowed inside one layer (from, to). None today.
const SAME_LAYER: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Why `from -> to` is not allowed, if it is not.
fn forbidden(from: &str, to: &str) -> Option<String> {
    let (Some(f), Some(t)) = (layer_of(from), layer_of(to)) else {
        return Some(format!(
            "`{}` has no layer in src/architecture.rs (LAYERS): place it",
            if layer_of(from).is_none() { from } else { to }
        ));
    };
    if t < f || (t == f && SAME_LAYER.contains(&(from, to))) {
        None
    } else if t == f {
        Some(format!(
            "`{from}` and `{to}` are in one layer and the arrow is not in SAME_LAYER"
        ))
    } else {
        Some(format!(
            "`{from}` (layer {f}) imports `{to}` (layer {t}, higher): arrows point down"
        ))
    }
}

/// One `crate::x` reference: the importing file's top-level module, the imported one, where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Arrow {
    from: String,
    to: String,
    file: PathBuf,
    line: usize,
}

fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs"
        || name == "proptests.rs"
        || name.ends_with("_tests.rs")
        || name == "architecture.rs"
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") && !is_test_file(&p) {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/policy/load/index.rs` -> `policy`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/");
    let first = rel
        .components()
        .next()
        .expect("non-empty")
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The non-test part of a file: everything before a `#[cfg(test)]` line whose next line opens a
/// module (`mod tests {`; a `mod tests;` line points at a test file, which is skipped anyway).
fn non_test_part(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]")
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with("mod ") && next.contains('{'))
        {
            break;
        }
        // Comments may name paths that are not imports.
        let code = line.split("//").next().unwrap_or("");
        out.push_str(code);
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules named after each `crate::` in `code`, with their line numbers:
/// `crate::a::b` gives `a`; `crate::{a::b, c}` gives `a` and `c` (the group may span lines).
fn references(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut rest = code;
    let mut offset = 0;
    while let Some(at) = rest.find("crate::") {
        let start = offset + at + "crate::".len();
        let after = &code[start..];
        let line = code[..start].matches('\n').count() + 1;
        if let Some(group) = after.strip_prefix('{') {
            // Names at depth 1 of the brace group.
            let (mut depth, mut expect_name) = (1usize, true);
            let mut i = 0;
            let bytes = group.as_bytes();
            while i < bytes.len() && depth > 0 {
                let c = bytes[i] as char;
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => expect_name = true,
                    c if c.is_whitespace() => {}
                    _ if depth == 1 && expect_name => {
                        let name = ident_at(&group[i..]);
                        if !name.is_empty() {
                            let line = line + group[..i].matches('\n').count();
                            out.push((name.to_string(), line));
                            i += name.len();
                            expect_name = false;
                            continue;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let name = ident_at(after);
            if !name.is_empty() {
                out.push((name.to_string(), line));
            }
        }
        offset = start;
        rest = &code[start..];
    }
    out
}

fn arrows() -> Vec<Arrow> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(&src, f)).collect();
    let mut out = Vec::new();
    for file in files {
        let from = top_module(&src, &file);
        let text = fs::read_to_string(&file).expect("readable source");
        for (to, line) in references(&non_test_part(&text)) {
            if to != from && modules.contains(&to) {
                out.push(Arrow {
                    from: from.clone(),
                    to,
                    file: file.strip_prefix(&src).expect("under src").to_path_buf(),
                    line,
                });
            }
        }
    }
    out
}

/// A cycle through `edge`, if one exists: the path back from `edge.to` to `edge.from`.
fn cycle_through(
    graph: &BTreeMap<&str, BTreeSet<&str>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![vec![to.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("non-empty").clone();
        if last == from {
            return Some(path);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in graph.get(last.as_str()).into_iter().flatten() {
            let mut p = path.clone();
            p.push((*next).to_string());
            stack.push(p);
        }
    }
    None
}

#[test]
fn no_cycle_between_top_level_modules() {
    let arrows = arrows();
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for a in &arrows {
        graph.entry(&a.from).or_default().insert(&a.to);
    }
    let mut problems = BTreeSet::new();
    for a in &arrows {
        if let Some(path) = cycle_through(&graph, &a.from, &a.to) {
            problems.insert(format!(
                "src/{}:{}: `{}` imports `{}`, and `{}` leads back: {} -> {}",
                a.file.display(),
                a.line,
                a.from,
                a.to,
                a.to,
                a.from,
                path.join(" -> ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "import cycles between top-level modules:\n{}",
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn arrows_point_down() {
    let problems: BTreeSet<String> = arrows()
        .into_iter()
        .filter_map(|a| {
            forbidden(&a.from, &a.to)
                .map(|why| format!("src/{}:{}: {why}", a.file.display(), a.line))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "arrows the layering forbids (ARCHITECTURE.md, \"Layers\"):\n{}",
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// The one decision door: Cedar's evaluation (`policy::evaluate`) is called from `decide/` only, and
/// partial evaluation (`.tpe(`) from `plan/tpe/` only.
#[test]
fn cedar_is_asked_only_through_the_decider() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src").to_path_buf();
        let text = non_test_part(&fs::read_to_string(&file).expect("readable source"));
        let top = top_module(&src, &file);
        for (n, line) in text.lines().enumerate() {
            let calls_evaluate = line.contains("policy::evaluate")
                || (line.contains("use crate::policy") && line.contains("evaluate"));
            if calls_evaluate && !["decide", "policy", "testing"].contains(&top.as_str()) {
                problems.push(format!(
                    "src/{}:{}: Cedar evaluation outside decide/",
                    rel.display(),
                    n + 1
                ));
            }
            if line.contains(".tpe(") && !rel.starts_with("plan/tpe") {
                problems.push(format!(
                    "src/{}:{}: partial evaluation outside plan/tpe/",
                    rel.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reader_finds_paths_and_groups() {
    let code = "use crate::{\n    config::DecisionsTo, decision::{Decision, X},\n    shared::rfc3339,\n};\nfn f() { crate::request::own(); }\n";
    let found = references(code);
    assert_eq!(
        found,
        vec![
            ("config".to_string(), 2),
            ("decision".to_string(), 2),
            ("shared".to_string(), 3),
            ("request".to_string(), 5),
        ]
    );
    // Test modules are not read.
    let code = "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n";
    let found = references(&non_test_part(code));
    assert_eq!(found, vec![("a".to_string(), 1)]);
}

#[test]
fn a_cycle_is_reported() {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    graph.entry("audit").or_default().insert("config");
    graph.entry("config").or_default().insert("plan");
    graph.entry("plan").or_default().insert("audit");
    assert_eq!(
        cycle_through(&graph, "audit", "config"),
        Some(vec!["config".into(), "plan".into(), "audit".into()])
    );
    assert!(forbidden("policy", "request").is_some());
    assert!(forbidden("request", "policy").is_none());
    assert!(forbidden("audit", "config").is_some());
    assert!(forbidden("routes", "audit").is_some());
    assert!(forbidden("nowhere", "shared").is_some());
}
