//! Stage 1, HTTP in: thin handlers, one file per endpoint group, and the router that joins them.

pub mod authorize;
pub(crate) mod discovery;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod forward_auth;
pub(crate) mod me;
pub(crate) mod observe;
pub mod ops;
pub(crate) mod plan;
pub(crate) mod revoke;
mod router;
pub mod token;

pub(crate) use error::ApiError;
pub use router::{router, ENDPOINTS};
