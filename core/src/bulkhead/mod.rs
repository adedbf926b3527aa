//! Bulkhead: bounded concurrency with a bounded queue and explicit rejection.

mod error;

pub use error::Rejected;
