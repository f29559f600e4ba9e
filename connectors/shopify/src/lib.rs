//! tidemark-shopify: the Shopify Admin GraphQL API connector (`reference/platforms.md` §1),
//! against API version 2025-01.
//!
//! - `config`: typed settings and credentials, the registry factory;
//! - `client`: GraphQL calls through the shared client — products paged in `updatedAt` order
//!   with `updated_at:>=` for incremental scans, variants and media beyond the first page per
//!   product, bulk full scans, orders, writes (productSet, productVariantsBulkUpdate,
//!   inventorySetQuantities compare-and-set, fileUpdate detach; a write waits for the images it
//!   added and rejects a FAILED one), cost-aware pacing from `throttleStatus`;
//! - `bulk`: bulk query results streamed line by line and reassembled into products;
//! - `documents`: every GraphQL document sent, validated against the real schema by a test;
//! - `mapping`: Shopify JSON (GraphQL and REST webhook bodies) ↔ canonical records;
//! - `webhook`: `X-Shopify-Hmac-Sha256` verification and parsing.

pub mod bulk;
pub mod client;
pub mod config;
pub mod documents;
pub mod mapping;
pub mod webhook;

pub use client::Shopify;
pub use config::{Keys, Settings, ShopifyFactory};
