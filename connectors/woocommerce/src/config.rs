//! Typed settings and credentials of a WooCommerce connection, and the registry factory.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use tidemark_connector::{
    BuildContext, Connector, ConnectorFactory, FieldInput, Section, SettingField, SettingsError,
    SettingsSchema, parse_settings,
};
use tidemark_core::PlatformKind;

use crate::client::WooCommerce;

/// Platform settings (plain, shown by the API).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The shop's address, e.g. `https://shop.example`.
    pub base_url: String,
    /// The REST path under it.
    #[serde(default = "default_api_path")]
    pub api_path: String,
    /// Page size of listings (WooCommerce caps it at 100).
    #[serde(default = "default_per_page")]
    pub per_page: u32,
    /// The store currency (WooCommerce products carry none).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Send the key and secret as query parameters when the server strips `Authorization`.
    #[serde(default)]
    pub query_string_auth: bool,
    /// How many variable products' variations requests a scan page runs at once (1–64). Each
    /// variable product costs one extra request; a PHP shop serves a handful in parallel.
    #[serde(default = "default_variation_concurrency")]
    pub variation_concurrency: u32,
    /// Seconds before an unanswered request is given up (and, for a write, reported as
    /// possibly applied).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u32,
}

fn default_api_path() -> String {
    "/wp-json/wc/v3".to_owned()
}

fn default_per_page() -> u32 {
    100
}

/// Most shops run 5–20 PHP workers; 8 keeps a scan quick without crowding out shoppers.
pub const DEFAULT_VARIATION_CONCURRENCY: u32 = 8;
/// The upper bound of `variation_concurrency`.
pub const MAX_VARIATION_CONCURRENCY: u32 = 64;

fn default_variation_concurrency() -> u32 {
    DEFAULT_VARIATION_CONCURRENCY
}

fn default_timeout_secs() -> u32 {
    30
}

fn default_currency() -> String {
    "USD".to_owned()
}

impl Settings {
    /// Checks the ranges the schema declares (serde only checks names and types).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.per_page) {
            return Err(format!(
                "per_page = {} is not between 1 and 100 (WooCommerce's maximum)",
                self.per_page
            ));
        }
        if !(1..=MAX_VARIATION_CONCURRENCY).contains(&self.variation_concurrency) {
            return Err(format!(
                "variation_concurrency = {} is not between 1 and {MAX_VARIATION_CONCURRENCY}",
                self.variation_concurrency
            ));
        }
        if let Err(e) = tidemark_core::Currency::parse(&self.currency) {
            return Err(format!(
                "currency = {:?} is not a three-letter ISO 4217 code: {e}",
                self.currency
            ));
        }
        if !(1..=600).contains(&self.timeout_secs) {
            return Err(format!(
                "timeout_secs = {} is not between 1 and 600",
                self.timeout_secs
            ));
        }
        Ok(())
    }

    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_path: default_api_path(),
            per_page: default_per_page(),
            currency: default_currency(),
            query_string_auth: false,
            variation_concurrency: default_variation_concurrency(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

/// The secret part: consumer key and secret, and the webhook secret (optional).
#[derive(Clone)]
pub struct Keys {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([REDACTED])")
    }
}

pub fn schema() -> SettingsSchema {
    SettingsSchema::new(vec![
        SettingField::new("base_url", Section::Settings, "Shop URL", FieldInput::Url)
            .required()
            .help("The shop's address, e.g. https://shop.example"),
        SettingField::new(
            "api_path",
            Section::Settings,
            "API path",
            FieldInput::Text { placeholder: None },
        )
        .default_value(json!("/wp-json/wc/v3")),
        SettingField::new(
            "per_page",
            Section::Settings,
            "Page size",
            FieldInput::Integer {
                min: Some(1),
                max: Some(100),
            },
        )
        .default_value(json!(100)),
        SettingField::new(
            "currency",
            Section::Settings,
            "Store currency",
            FieldInput::Text { placeholder: None },
        )
        .default_value(json!("USD")),
        SettingField::new(
            "query_string_auth",
            Section::Settings,
            "Send keys as query parameters",
            FieldInput::Bool,
        )
        .default_value(json!(false)),
        SettingField::new(
            "variation_concurrency",
            Section::Settings,
            "Parallel variation requests",
            FieldInput::Integer {
                min: Some(1),
                max: Some(i64::from(MAX_VARIATION_CONCURRENCY)),
            },
        )
        .default_value(json!(DEFAULT_VARIATION_CONCURRENCY))
        .help("How many variable products' variations a scan fetches at once"),
        SettingField::new(
            "timeout_secs",
            Section::Settings,
            "Request timeout (seconds)",
            FieldInput::Integer {
                min: Some(1),
                max: Some(600),
            },
        )
        .default_value(json!(30)),
        SettingField::new(
            "consumer_key",
            Section::Credentials,
            "Consumer key",
            FieldInput::Secret,
        )
        .required(),
        SettingField::new(
            "consumer_secret",
            Section::Credentials,
            "Consumer secret",
            FieldInput::Secret,
        )
        .required(),
        SettingField::new(
            "webhook_secret",
            Section::Credentials,
            "Webhook secret",
            FieldInput::Secret,
        ),
    ])
}

/// Registers WooCommerce in the connector registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct WooCommerceFactory;

impl ConnectorFactory for WooCommerceFactory {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Woocommerce
    }

    fn settings_schema(&self) -> SettingsSchema {
        schema()
    }

    fn build(&self, cx: BuildContext<'_>) -> Result<Arc<dyn Connector>, SettingsError> {
        let settings: Settings = parse_settings(cx.settings)?;
        settings
            .validate()
            .map_err(|message| SettingsError::Invalid {
                section: Section::Settings,
                message,
            })?;
        let keys = Keys {
            consumer_key: cx.credentials.require("consumer_key")?.expose().to_owned(),
            consumer_secret: cx
                .credentials
                .require("consumer_secret")?
                .expose()
                .to_owned(),
            webhook_secret: cx
                .credentials
                .get("webhook_secret")
                .map(|s| s.expose().to_owned()),
        };
        let connector = WooCommerce::new(settings, keys).map_err(|e| SettingsError::Invalid {
            section: Section::Settings,
            message: e.to_string(),
        })?;
        Ok(Arc::new(connector))
    }
}
