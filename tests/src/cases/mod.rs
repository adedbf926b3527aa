//! The conformance cases, one module per primitive. Each module ends with a
//! `*_cases!` macro that lists its cases for [`for_each_case!`](crate::for_each_case).

pub mod breaker;
pub mod composition;
pub mod extremes;
pub mod gather;
pub mod group;
pub mod queue;
pub mod rate;
pub mod runtime;
pub mod scope;
pub mod timing;
