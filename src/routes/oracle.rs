//! The most forgiving path normalisation a service behind the proxy could apply: the oracle that
//! the property tests (`proptests.rs`) and the `forward_auth_path` fuzz target (`fuzz/`) hold path
//! vetting to. Not used on the request path.

/// The most forgiving reading a service could give a raw path: the query cut at the first raw
/// `?` (a `#` is no delimiter in a request target, so it stays in the path), `;…` path parameters stripped (Java), each segment percent-decoded (also
/// `%2F`, `%5C`), `\` taken as `/`, empty inner segments merged (`//`), `.` and `..` resolved
/// (RFC 3986 §5.2.4). A trailing slash is kept, as routers keep it.
pub fn normalise(uri: &str) -> Vec<String> {
    let path = uri.split('?').next().unwrap_or_default();
    let path = path.strip_prefix('/').unwrap_or(path);
    let mut pieces: Vec<String> = Vec::new();
    for raw in path.split('/') {
        let raw = raw.split(';').next().unwrap_or_default();
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .replace('\\', "/");
        pieces.extend(decoded.split('/').map(str::to_string));
    }
    let trailing = pieces.last().is_some_and(String::is_empty);
    let mut out: Vec<String> = Vec::new();
    for p in pieces {
        match p.as_str() {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(p),
        }
    }
    if trailing || out.is_empty() {
        out.push(String::new());
    }
    out
}
