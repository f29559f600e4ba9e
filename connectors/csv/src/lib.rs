//! tidemark-csv: product CSV files as a connection (DESIGN §5, `connectors/csv`).
//!
//! - As a **source** it reads Shopify product CSV exports (the current layout with `Status`,
//!   `Product Category` and per-market columns, and the older layout with Google Shopping
//!   columns and no `Status`) and WooCommerce product CSV exports, detecting the layout from
//!   the header, and maps them to canonical [`tidemark_core::Product`]s.
//! - As a **target** it holds a catalogue in one Shopify-format product CSV (current layout,
//!   plus a few `product.metafields.tidemark.*` columns for what Shopify's columns cannot hold)
//!   and rewrites it atomically (temporary file in the same folder, then rename) for every
//!   batch of writes.
//!
//! The crate has the shape of every connector: [`config`] (typed settings, the factory),
//! [`client`] (file reads, fingerprints, atomic writes), [`mapping`] (CSV rows ↔ canonical
//! products), [`webhook`] (none: files have no webhooks) and the [`Connector`] implementation in
//! [`connector`].
//!
//! A CSV file has no modification times and no incremental filter: every scan reads the whole
//! file, and the engine's content hashes tell changed records from unchanged ones.
//!
//! A record that cannot be read is never left out of a full scan as if it were gone: the full
//! scan serves the readable products and then fails, naming the unreadable records, so mark and
//! sweep infers no deletion (see [`CsvConnector`]'s `scan_page`). Files larger than
//! [`CsvConfig::max_file_bytes`] are refused.
//!
//! Boundary: never touches the store.
//!
//! [`Connector`]: tidemark_connector::Connector

pub mod client;
pub mod config;
pub mod connector;
pub mod error;
pub mod mapping;
pub mod webhook;

pub use config::{CsvConfig, CsvFactory, LayoutSetting, Mode};
pub use connector::CsvConnector;
pub use error::{CsvError, RecordIssue};
pub use mapping::{Catalog, Layout, read_catalog};
