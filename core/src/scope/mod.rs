//! Cancel scopes: cancellation with a reason, deadlines, nesting and shields.

mod error;

pub use error::{CancelReason, Cancelled};
