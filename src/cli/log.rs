//! The process's log: `tracing` to stderr, text or JSON, every event on exactly one line.
//!
//! Client input reaches log fields in many places (an unknown JSON member named in a `reason=`, a
//! token header's `alg` in an error, a `legal_entity_id`); the text format writes `Display` values
//! as they are. Rather than escape at each of those places, the writer escapes: an event arrives
//! here formatted, as one `write`, and every line break or other control character in it except the
//! final newline is written as an escape (`\n`, `\r`, `\x1b`, `\u2028`: in JSON, a valid escape inside a string), so no client input can
//! start a new line — in either format (JSON already escapes inside strings; this is the backstop).

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the process's subscriber (first call only): `LEGATE_LOG` or `level`, to stderr.
pub(super) fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(OneLine {
            make: io::stderr,
            keep_ansi: ansi,
        });
    let _ = if format == LogFormat::Json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// A [`MakeWriter`] whose writers escape every line break but an event's last.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneLine<M> {
    /// Makes the underlying writer.
    pub(crate) make: M,
    /// Keep ESC (the colours of a terminal's text format), escaped otherwise.
    pub(crate) keep_ansi: bool,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter {
            inner: self.make.make_writer(),
            keep_ansi: self.keep_ansi,
        }
    }
}

/// The writer [`OneLine`] makes.
#[derive(Debug)]
pub(crate) struct OneLineWriter<W> {
    inner: W,
    keep_ansi: bool,
}

impl<W: Write> Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_all(&escape(buf, self.keep_ansi))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `buf` (one formatted event) with every control character and Unicode line break escaped, except
/// a final `\n` (and tabs; ESC too when `keep_ansi`).
pub(crate) fn escape(buf: &[u8], keep_ansi: bool) -> Vec<u8> {
    let (body, end) = match buf.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (buf, &b""[..]),
    };
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            '\u{1b}' if keep_ansi => out.push(c),
            '\u{85}' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    let mut out = out.into_bytes();
    out.extend_from_slice(end);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::escape;

    #[test]
    fn keeps_the_last_newline_only() {
        assert_eq!(escape(b"a\nb\r\nc\n", false), b"a\\nb\\r\\nc\n");
        assert_eq!(escape(b"\x1b[1mx\x00\n", false), b"\\x1b[1mx\\x00\n");
        assert_eq!(escape(b"\x1b[1mx\n", true), b"\x1b[1mx\n");
        assert_eq!(escape("a\u{2028}b".as_bytes(), false), b"a\\u2028b");
    }

    proptest! {
        /// Whatever an event holds, it stays one line.
        #[test]
        fn one_event_one_line(s in any::<Vec<u8>>(), ansi in any::<bool>()) {
            let mut event = s.clone();
            event.push(b'\n');
            let out = String::from_utf8(escape(&event, ansi)).unwrap();
            prop_assert_eq!(out.lines().count(), 1);
            prop_assert!(out.ends_with('\n'));
            prop_assert_eq!(out.matches(['\n', '\r']).count(), 1);
        }
    }
}
