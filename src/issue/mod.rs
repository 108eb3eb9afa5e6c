//! The other direction: legate's own signing keys (and, with them, the tokens it issues).

pub mod keys;

pub use keys::{KeyError, SigningKey};
