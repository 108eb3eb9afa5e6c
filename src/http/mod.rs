//! Stage 1, HTTP in: thin handlers, one file per endpoint group, and the router that joins them.

pub mod authorize;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod forward_auth;
pub mod me;
pub mod observe;
pub mod ops;
mod router;
pub mod token;

pub use error::ApiError;
pub use router::router;
