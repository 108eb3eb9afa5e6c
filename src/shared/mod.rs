//! Small things every stage uses and none owns: the time source, time formatting, error cause
//! chains and the boxed future of `dyn` traits. A leaf: it imports nothing from the crate.

mod clock;
mod json;

pub(crate) use clock::rfc3339;
pub use clock::{Clock, ManualClock, SystemClock};
pub use json::check_unique_members;

use std::{future::Future, pin::Pin};

/// An error's text with its cause chain, on one line (`outer: cause: root`), each cause added
/// only when the text so far does not already say it. Cedar's errors often name what failed only
/// in their causes.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg = format!("{msg}: {s_msg}");
        }
        src = s.source();
    }
    msg
}

/// Longest id legate accepts (customer, legal entity, resource, entity reference).
pub(crate) const MAX_ID_CHARS: usize = 256;

/// An id legate accepts from a token or a body: 1–256 characters, none of them a control character
/// (NUL, CR, LF, ...), so no database driver can cut it short and no log line can be split by it.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_ID_CHARS && !id.chars().any(char::is_control)
}

/// A boxed future, for the async methods of `dyn` traits (entity source, rotation store).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
