//! tidemark-mercadolibre: the MercadoLibre REST API connector (`reference/platforms.md` §3).
//!
//! - `config`: typed settings and credentials, the registry factory;
//! - `client`: HTTP calls through the shared client — item scans by `search_type=scan` +
//!   `scroll_id` then multiget in twenties, orders by `order.date_last_updated.from`, item
//!   updates with list-replace pictures and variations, stock as read-then-write deltas,
//!   creates that look the SKU up first, OAuth refresh under a lock with the rotated pair
//!   kept in memory first and then persisted (retried until stored), client-side pacing at about 5 req/s;
//! - `mapping`: MercadoLibre JSON ↔ canonical records (prices parsed as decimals from the JSON
//!   text, never through `f64`);
//! - `webhook`: notifications, which are unsigned hints naming a resource to fetch.

pub mod client;
pub mod config;
pub mod mapping;
pub mod webhook;

pub use client::MercadoLibre;
pub use config::{MercadoLibreFactory, Settings, Tokens};
