//! The original request's path, as the proxy reports it: raw `path?query` in, decoded segments out.
//!
//! The query string is dropped before matching. A `#` anywhere is refused: a request target never
//! has a fragment (RFC 9112 §3.2), so one in `X-Original-URI` is a raw `#` the upstream receives as
//! part of the path or query, and cutting there (`/legal-entities/LE-1#/../LE-3`) would decide on a
//! path the upstream never sees. Each segment is percent-decoded once. Paths that a
//! service behind the proxy could read differently from legate are refused instead of guessed at:
//! `.`/`..` segments (also encoded), empty inner segments (`//`), encoded or backslash separators
//! (`%2F`, `%5C`, `\`), `;` path parameters (which Java servers strip), bad percent-encodings and
//! control characters. Otherwise `/a/%2e%2e/b` or `/orders;x/O-1` could be matched here as one route
//! and served there as another.

use percent_encoding::percent_decode_str;

/// Why an original path cannot be matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not origin-form (`/…`): `*`, an absolute URI, or nothing.
    #[error("the original URI must be a path starting with `/`")]
    NotAPath,
    /// A `.` or `..` segment, plain or percent-encoded.
    #[error("the original path has a `.` or `..` segment")]
    DotSegment,
    /// `//` inside the path.
    #[error("the original path has an empty segment (`//`)")]
    EmptySegment,
    /// `%2F`, `%5C` or a raw `\`.
    #[error("the original path has an encoded `/` or a `\\`")]
    Separator,
    /// A raw `;`, which some servers treat as the start of path parameters.
    #[error("the original path has a `;`")]
    Semicolon,
    /// `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded.
    #[error("the original path has an invalid percent-encoding")]
    BadEncoding,
    /// A control character (e.g. NUL), raw or decoded.
    #[error("the original path has a control character")]
    Control,
    /// A raw `#`: request targets have no fragment, and the upstream would not cut there.
    #[error("the original URI has a `#`; a request target has no fragment")]
    Fragment,
}

/// Splits `uri` (`/a/b?q`) into its decoded path segments (`["a", "b"]`). The root `/` is `[""]`
/// and a trailing slash keeps an empty last segment (`/a/` is `["a", ""]`), so `/a` and `/a/` are
/// different paths, as they are to most routers.
pub fn segments(uri: &str) -> Result<Vec<String>, PathError> {
    if uri.contains('#') {
        return Err(PathError::Fragment);
    }
    let path = uri.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathError::NotAPath);
    };
    let raw: Vec<&str> = rest.split('/').collect();
    let last = raw.len() - 1;
    raw.iter()
        .enumerate()
        .map(|(i, s)| segment(s, i == last))
        .collect()
}

fn segment(raw: &str, last: bool) -> Result<String, PathError> {
    if raw.is_empty() {
        return if last {
            Ok(String::new())
        } else {
            Err(PathError::EmptySegment)
        };
    }
    if raw.contains('\\') {
        return Err(PathError::Separator);
    }
    if raw.contains(';') {
        return Err(PathError::Semicolon);
    }
    if !well_encoded(raw) {
        return Err(PathError::BadEncoding);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::BadEncoding)?;
    if decoded.contains(['/', '\\']) {
        return Err(PathError::Separator);
    }
    if decoded.chars().any(char::is_control) {
        return Err(PathError::Control);
    }
    if decoded == "." || decoded == ".." {
        return Err(PathError::DotSegment);
    }
    Ok(decoded.into_owned())
}

/// Every `%` starts a two-hex-digit escape (percent-encoding leaves stray `%`s alone; we refuse them).
fn well_encoded(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(uri: &str) -> Vec<String> {
        segments(uri).unwrap_or_else(|e| panic!("{uri}: {e}"))
    }

    #[test]
    fn splits_decodes_and_drops_the_query() {
        assert_eq!(ok("/orders/O-1?expand=lines"), ["orders", "O-1"]);
        assert_eq!(ok("/a%20b/caf%C3%A9"), ["a b", "café"]);
        assert_eq!(ok("/"), [""]);
        assert_eq!(ok("/orders/"), ["orders", ""]);
        assert_eq!(ok("/orders?a=/../x"), ["orders"]);
        // Decoded once: `%2541` is the three characters `%41`, not `A`.
        assert_eq!(ok("/x/%2541"), ["x", "%41"]);
    }

    #[test]
    fn refuses_paths_a_service_could_read_differently() {
        use PathError::*;
        let cases = [
            ("orders/O-1", NotAPath),
            ("*", NotAPath),
            ("http://h/orders", NotAPath),
            ("", NotAPath),
            ("/a/../b", DotSegment),
            ("/a/./b", DotSegment),
            ("/a/%2e%2E/b", DotSegment),
            ("/a/%2e", DotSegment),
            ("/..", DotSegment),
            ("//orders", EmptySegment),
            ("/orders//O-1", EmptySegment),
            ("/orders/a%2Fb", Separator),
            ("/orders/a%5cb", Separator),
            ("/orders\\O-1", Separator),
            ("/orders;jsessionid=1/O-1", Semicolon),
            ("/orders/%zz", BadEncoding),
            ("/orders/%4", BadEncoding),
            ("/orders/%ff", BadEncoding),
            ("/orders/a%00b", Control),
            ("/orders/a%0Ab", Control),
            ("/legal-entities/LE-1#/../LE-3", Fragment),
            ("/orders/O-1#", Fragment),
            ("/orders/O-1?expand=lines#top", Fragment),
            ("#/orders", Fragment),
        ];
        for (uri, want) in cases {
            assert_eq!(segments(uri), Err(want), "{uri}");
        }
    }
}
