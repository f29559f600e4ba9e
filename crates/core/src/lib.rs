//! tidemark-core: the domain model and every sync rule of DESIGN §3–§4 as pure functions.
//!
//! Invariant: no I/O, no async, no clock reads. Time is passed in as [`model::Timestamp`].

pub mod diff;
pub mod error;
pub mod hash;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod plan;
pub mod sample;
pub mod sets;
pub mod settings;
pub mod snapshot;
pub mod transform;
pub mod troubleshoot;

pub use error::CoreError;
pub use model::*;
