//! Conformance cases for the runtime seam (being written).

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! runtime_cases {
    ($m:ident) => {};
}
