//! Conformance cases for `breaker` (being written).

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! breaker_cases {
    ($m:ident) => {};
}
