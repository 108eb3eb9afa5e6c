//! Parsing a big policy file a few policies at a time, so the parse's peak memory stays small.
//!
//! Cedar parses a text into a concrete syntax tree first and turns that into policies after: for
//! one file of 10,000 policies the whole tree (about 4.5 KB a policy) was alive at once, and the
//! allocator kept that peak as the process's RSS after the tree was freed (measured: 117 MB peak,
//! 133 MB RSS after load). [`split`] cuts the text at the `;` that ends a policy — outside string
//! literals and `//` comments, the only places a `;` can hide in Cedar — into pieces of
//! [`PER_CHUNK`] policies; each piece is parsed on its own and its tree freed before the next.
//!
//! A piece keeps its byte offset in the file, so a validation error's position (relative to the
//! piece Cedar parsed) is placed in the file exactly. When any piece fails to parse, the caller
//! parses the whole file once more, so syntax errors are reported exactly as before.

/// Policies parsed at once.
pub(super) const PER_CHUNK: usize = 64;

/// `text` cut after every `per`-th policy-ending `;`: each piece with its byte offset in `text`.
/// The last piece holds whatever follows the last cut (possibly only whitespace and comments).
pub(super) fn split(text: &str, per: usize) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut ends) = (0, 0);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b';' => {
                ends += 1;
                if ends == per {
                    out.push((start, &text[start..=i]));
                    start = i + 1;
                    ends = 0;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() || out.is_empty() {
        out.push((start, &text[start.min(text.len())..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str, per: usize) -> Vec<&str> {
        let parts = split(text, per);
        // The pieces are the text, in order, with exact offsets.
        let mut at = 0;
        for (offset, piece) in &parts {
            assert_eq!(*offset, at);
            assert_eq!(&text[at..at + piece.len()], *piece);
            at += piece.len();
        }
        assert_eq!(at, text.len());
        parts.into_iter().map(|(_, p)| p).collect()
    }

    #[test]
    fn cuts_after_every_nth_policy() {
        let text = "permit(principal,action,resource);\npermit(principal,action,resource);\nforbid(principal,action,resource);\n";
        assert_eq!(
            pieces(text, 2),
            [
                "permit(principal,action,resource);\npermit(principal,action,resource);",
                "\nforbid(principal,action,resource);\n"
            ]
        );
        assert_eq!(pieces(text, 5).len(), 1);
    }

    #[test]
    fn a_semicolon_in_a_string_or_comment_is_not_a_cut() {
        let text = "@id(\"a;b\\\";c\")\npermit(principal,action,resource) when { context.x like \"*;*\" }; // x; y\npermit(principal,action,resource);";
        let p = pieces(text, 1);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].ends_with("\"*;*\" };"));
        assert!(p[1].starts_with(" // x; y\npermit"));
    }

    #[test]
    fn unterminated_text_is_one_last_piece() {
        assert_eq!(
            pieces("permit(principal, action", 1),
            ["permit(principal, action"]
        );
        assert_eq!(pieces("", 1), [""]);
        assert_eq!(pieces("\"never closed ;", 1), ["\"never closed ;"]);
    }
}
