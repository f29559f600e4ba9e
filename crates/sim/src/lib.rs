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

/// A `reqwest` client builder on rustls with the *ring* provider, installed here once for the
/// process (reqwest is built without a provider of its own: see the workspace `Cargo.toml`).
/// The connectors have the same in `tidemark_connector::http`, which the simulators do not
/// depend on.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // An error means a provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}
