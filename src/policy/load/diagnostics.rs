//! What is wrong with a policy directory, said with file, line, column and the offending line:
//! [`Problem`] and [`LoadError`], and the translation of Cedar's (miette) diagnostics into them.

use std::fmt;

use miette::Diagnostic;

/// One thing wrong with the policy directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file, relative to the policy directory where possible.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// The offending line of text, when known.
    pub snippet: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(s) = &self.snippet {
            write!(f, "\n    | {}", s.trim_end())?;
        }
        Ok(())
    }
}

/// Why a policy directory could not be loaded: every problem found.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LoadError {
    /// At least one.
    pub problems: Vec<Problem>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl LoadError {
    pub(super) fn one(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                file: file.into(),
                line: None,
                column: None,
                message: message.into(),
                snippet: None,
            }],
        }
    }
}

/// Turns a Cedar diagnostic (and the ones related to it) into problems with line and column.
pub(super) fn diagnostics(file: &str, text: &str, diag: &dyn Diagnostic) -> Vec<Problem> {
    diagnostics_at(file, text, 0, diag)
}

/// [`diagnostics`] for a diagnostic whose source positions are relative to the piece of `text`
/// that starts at byte `base` (a file parsed in pieces).
pub(super) fn diagnostics_at(
    file: &str,
    text: &str,
    base: usize,
    diag: &dyn Diagnostic,
) -> Vec<Problem> {
    let one = |d: &dyn Diagnostic| {
        let offset = d
            .labels()
            .and_then(|mut l| l.next())
            .map(|l| base + l.offset());
        // Some diagnostics (entity data) say what failed only in their causes.
        let mut message = crate::shared::error_chain(d);
        if let Some(help) = d.help() {
            message = format!("{message} ({help})");
        }
        let offset = offset.or_else(|| locate(text, &message));
        problem(file, text, offset, message)
    };
    let related: Vec<Problem> = diag.related().into_iter().flatten().map(one).collect();
    if related.is_empty() {
        vec![one(diag)]
    } else {
        related
    }
}

/// Where in `text` a diagnostic without a source label points: serde's `at line L column C`, or
/// the `"uid"` of the entity named `Type::"id"` in the message (entity data errors).
fn locate(text: &str, message: &str) -> Option<usize> {
    if let Some(rest) = message.rsplit_once(" at line ").map(|(_, r)| r) {
        let mut words = rest.split_whitespace();
        let line: usize = words.next()?.parse().ok()?;
        let column: usize = match (words.next(), words.next()) {
            (Some("column"), Some(c)) => c
                .trim_end_matches(|ch: char| !ch.is_ascii_digit())
                .parse()
                .ok()?,
            _ => 1,
        };
        let start: usize = text
            .split_inclusive('\n')
            .take(line.checked_sub(1)?)
            .map(str::len)
            .sum();
        return Some((start + column.saturating_sub(1)).min(text.len()));
    }
    let (_, after) = message.split_once("::\"")?;
    let id = &after[..after.find('"')?];
    let quoted = format!("\"{id}\"");
    let mut from = 0;
    while let Some(i) = text[from..].find("\"uid\"") {
        let at = from + i;
        let window = &text[at..text.len().min(at + 120)];
        let uid_end = window.find('}').unwrap_or(window.len());
        if window[..uid_end].contains(&quoted) {
            return Some(at);
        }
        from = at + 5;
    }
    None
}

pub(super) fn problem(file: &str, text: &str, offset: Option<usize>, message: String) -> Problem {
    let (line, column, snippet) = match offset {
        Some(off) if off <= text.len() => {
            let before = &text[..off];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = text[start..off].chars().count() + 1;
            let snippet = text[start..].lines().next().unwrap_or("").to_string();
            (Some(line), Some(column), Some(snippet))
        }
        _ => (None, None, None),
    };
    Problem {
        file: file.to_string(),
        line,
        column,
        message,
        snippet,
    }
}
