//! tidemark-woocommerce: the WooCommerce REST API v3 connector (`reference/platforms.md` §2).
//!
//! - `config`: typed settings and credentials, the registry factory;
//! - `client`: HTTP calls through the shared client — `orderby=id` offset paging with a
//!   continuity check, `modified_after` + `dates_are_gmt`, one variations request per variable
//!   product, writes with SKU adoption, images by id, stock as deltas;
//! - `mapping`: WooCommerce JSON ↔ canonical records;
//! - `webhook`: `X-WC-Webhook-Signature` verification and parsing.

pub mod client;
pub mod config;
pub mod mapping;
pub mod webhook;

pub use client::WooCommerce;
pub use config::{Keys, Settings, WooCommerceFactory};
