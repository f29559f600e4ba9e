//! tidemark-sim: loopback HTTP simulators of the platforms tidemark syncs, for tests,
//! benchmarks and the demo. Each speaks its platform's wire format for the calls tidemark's
//! connectors make, keeps a deterministic seeded catalogue in memory, enforces the platform's
//! limits and reproduces its traps (`reference/platforms.md` §5), and injects faults on demand.
//!
//! Boundary: depends only on `tidemark-core` (for seeded sample records) and axum; it never
//! uses tidemark's connectors, so passing against it means the connectors speak the platform.
//! See `README.md` beside this crate for every admin call and fault knob.

pub mod faults;
pub mod harness;
pub mod images;
pub mod mercadolibre;
pub mod shopify;
pub mod stats;
pub mod woocommerce;

pub use faults::{Fault, FaultConfig, Faults};
pub use harness::{Harness, RunningSim};
pub use stats::{Stats, StatsSnapshot};
