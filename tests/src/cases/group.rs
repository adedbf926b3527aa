//! Conformance cases for `group` (being written).

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! group_cases {
    ($m:ident) => {};
}
