//! Conformance cases for `scope` (being written).

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! scope_cases {
    ($m:ident) => {};
}
