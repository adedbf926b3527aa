//! # The staunch resilience lab
//!
//! One crawler, written once, crawls a simulated web ([`site`]) whose hosts
//! are flaky, slow, down, rate-limited, or never answer. Two strategies run
//! over the same web:
//!
//! - **naive**: every page of a level fetched at once with `join_all`, no
//!   timeout, no retry; only the crawl's overall budget stops it;
//! - **staunch**: `gather_limited`, retry with backoff honouring Retry-After,
//!   a per-attempt timeout, a circuit breaker per host, and the budget as a
//!   cancel scope around the whole crawl.
//!
//! The crawler is generic over staunch's [`Timer`](staunch::runtime::Timer),
//! so the same code runs in the browser (`staunch-web`), natively on smol
//! and tokio, and in virtual time in the tests.

pub mod crawler;
pub mod http;
pub mod report;
pub mod site;

#[cfg(not(target_arch = "wasm32"))]
pub mod service;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use crawler::{LabConfig, Strategy, crawl};
pub use report::{CrawlReport, HostReport, Outcome, PageEvent};
