//! Typed settings and credentials of a Shopify connection, and the registry factory.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use tidemark_connector::{
    BuildContext, Connector, ConnectorFactory, FieldInput, Section, SettingField, SettingsError,
    SettingsSchema, parse_settings,
};
use tidemark_core::PlatformKind;

use crate::client::Shopify;

/// The API version every document is written (and schema-validated) against.
pub const API_VERSION: &str = "2025-01";

/// Platform settings (plain, shown by the API).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The shop's address, e.g. `https://example.myshopify.com`.
    pub shop_url: String,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// The shop currency (prices on products carry none).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// A full products scan of a shop with at least this many products (`productsCount`) runs
    /// as one bulk operation; `0` never uses bulk.
    #[serde(default = "default_bulk_threshold")]
    pub bulk_threshold: u64,
}

/// The default [`Settings::bulk_threshold`].
pub const DEFAULT_BULK_THRESHOLD: u64 = 5_000;

fn default_bulk_threshold() -> u64 {
    DEFAULT_BULK_THRESHOLD
}

fn default_api_version() -> String {
    API_VERSION.to_owned()
}

fn default_currency() -> String {
    "USD".to_owned()
}

impl Settings {
    pub fn new(shop_url: impl Into<String>) -> Self {
        Self {
            shop_url: shop_url.into(),
            api_version: default_api_version(),
            currency: default_currency(),
            bulk_threshold: default_bulk_threshold(),
        }
    }
}

/// The secret part: the Admin API access token and the webhook secret (optional).
#[derive(Clone)]
pub struct Keys {
    pub access_token: String,
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([REDACTED])")
    }
}

pub fn schema() -> SettingsSchema {
    SettingsSchema::new(vec![
        SettingField::new("shop_url", Section::Settings, "Shop URL", FieldInput::Url)
            .required()
            .help("The shop's address, e.g. https://example.myshopify.com"),
        SettingField::new(
            "api_version",
            Section::Settings,
            "API version",
            FieldInput::Choice {
                options: vec![API_VERSION.to_owned()],
            },
        )
        .default_value(json!(API_VERSION)),
        SettingField::new(
            "currency",
            Section::Settings,
            "Shop currency",
            FieldInput::Text { placeholder: None },
        )
        .default_value(json!("USD")),
        SettingField::new(
            "bulk_threshold",
            Section::Settings,
            "Bulk full scan from (products)",
            FieldInput::Integer {
                min: Some(0),
                max: None,
            },
        )
        .default_value(json!(DEFAULT_BULK_THRESHOLD))
        .help("Full scans of shops with at least this many products run as one bulk operation; 0 never"),
        SettingField::new(
            "access_token",
            Section::Credentials,
            "Admin API access token",
            FieldInput::Secret,
        )
        .required(),
        SettingField::new(
            "webhook_secret",
            Section::Credentials,
            "Webhook secret (app client secret)",
            FieldInput::Secret,
        ),
    ])
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ShopifyFactory;

impl ConnectorFactory for ShopifyFactory {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Shopify
    }

    fn settings_schema(&self) -> SettingsSchema {
        schema()
    }

    fn build(&self, cx: BuildContext<'_>) -> Result<Arc<dyn Connector>, SettingsError> {
        let settings: Settings = parse_settings(cx.settings)?;
        let keys = Keys {
            access_token: cx.credentials.require("access_token")?.expose().to_owned(),
            webhook_secret: cx
                .credentials
                .get("webhook_secret")
                .map(|s| s.expose().to_owned()),
        };
        let connector = Shopify::new(settings, keys).map_err(|e| SettingsError::Invalid {
            section: Section::Settings,
            message: e.to_string(),
        })?;
        Ok(Arc::new(connector))
    }
}
