//! The engine's end-to-end tests, one test binary: the shared set-up (`common`, `shops`) is
//! compiled and the stack (store, simulators, connectors) linked once, not once per file.
//! Each module below is one area of the engine's acceptance; `cargo test -p tidemark-engine
//! --test engine <module>::` runs one of them.

mod common;
mod shops;

mod conflicts;
mod deletions;
mod incremental;
mod integrity;
mod issues;
mod jobruns;
mod orders;
mod products;
mod propagation;
mod resilience;
mod scopes;
