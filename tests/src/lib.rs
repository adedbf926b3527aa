//! staunch conformance suite.
