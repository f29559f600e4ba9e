//! tidemark-connector: the connector plugin boundary of DESIGN §5.
//!
//! - [`Connector`]: the async trait every platform implements (scan a page, fetch one, find by
//!   SKU, apply writes, verify a webhook, capabilities, settings schema);
//! - [`ConnectorError`]: the error taxonomy the engine acts on;
//! - [`http::HttpClient`]: the shared HTTP client (pacing, timeouts, retries that honour
//!   `Retry-After` and never blindly repeat a create, bounded bodies, redaction);
//! - [`webhook`]: HMAC-SHA256 signature helpers;
//! - [`ConnectorRegistry`]: platform kind → factory, so the engine finds connectors by kind;
//! - [`sealing`]: credentials encrypted at rest (AES-256-GCM) and the daemon's secret key.
//!
//! Boundary: connectors never touch the store; bindings, snapshots and clocks are the engine's.
//!
//! How a connector uses it:
//! - build one [`http::HttpClient`] per connection from an [`http::HttpClientConfig`]: auth
//!   with `secret_header` (scrubbed from every message, sent only to the base origin), a
//!   [`http::Rate`] for platforms with a known limit (MercadoLibre ~5 req/s);
//! - declare every POST's [`http::Idempotency`]: a GraphQL query is idempotent, a create or a
//!   batch with creates is not (it is then never repeated after an ambiguous failure);
//! - Shopify: give requests their estimated `cost` ([`http::cost_units`] for the platform's
//!   float), feed `throttleStatus` to [`http::Pacer::set_budget`] (which refuses a restore rate
//!   that is not a finite positive number: log it and carry on), and turn a THROTTLED 200 into
//!   `RateLimited` in an `inspect` hook so the client retries it like a 429;
//! - stock: write [`WriteOp::UpdateProduct`]'s `stock` moves as deltas to the platform's current
//!   quantity, never a variant's quantity as an absolute value, in non-idempotent requests;
//! - per-item failures in batch answers: [`ConnectorError::rejected`] with `with_field`;
//! - webhooks: [`webhook::verify_shopify`] / [`webhook::verify_woocommerce`] on the raw body.

pub mod connector;
pub mod error;
pub mod http;
pub mod registry;
pub mod sealing;
pub mod settings;
pub mod webhook;

pub use connector::{
    Authenticity, Capabilities, Confirmed, Connector, Cursor, IncrementalFilter, KindCapabilities,
    ScanPage, ScanScope, WebhookEvent, WebhookResource, WebhookSupport, Write, WriteKey, WriteOp,
    WriteResult,
};
pub use error::ConnectorError;
pub use registry::{
    BuildContext, ConnectorFactory, ConnectorRegistry, CredentialSink, NoCredentialRotation,
};
pub use settings::{
    Credentials, FieldInput, Secret, Section, SettingField, SettingsError, SettingsSchema,
    parse_settings,
};
