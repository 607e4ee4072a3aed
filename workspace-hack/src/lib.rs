//! Empty on purpose: this crate only declares features of shared dependencies
//! (Cargo.toml), so that the binaries' build and the tests' build compile each
//! registry crate once.
