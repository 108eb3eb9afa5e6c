//! Small things every stage uses and none owns: the time source, time formatting and the boxed
//! future of `dyn` traits. A leaf: it imports nothing from the crate.

mod clock;

pub use clock::{rfc3339, Clock, ManualClock, SystemClock};

use std::{future::Future, pin::Pin};

/// A boxed future, for the async methods of `dyn` traits (entity source, rotation store).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
