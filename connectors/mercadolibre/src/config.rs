//! Typed settings and credentials of a MercadoLibre connection, and the registry factory.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use tidemark_connector::{
    BuildContext, Connector, ConnectorFactory, CredentialSink, Credentials, FieldInput, Section,
    SettingField, SettingsError, SettingsSchema, parse_settings,
};
use tidemark_core::PlatformKind;

use crate::client::MercadoLibre;

/// Platform settings (plain, shown by the API).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `MLA`, `MLB`, `MLM`…
    pub site_id: String,
    /// The seller's user id (`/users/me`).
    pub user_id: u64,
    /// The application's client id.
    pub client_id: String,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Category for created items whose canonical category is not a MercadoLibre id.
    #[serde(default)]
    pub default_category_id: Option<String>,
    /// Client-side pacing (MercadoLibre answers 429 at about 5–7 req/s).
    #[serde(default = "default_rps")]
    pub requests_per_second: f64,
    /// The largest `offset` `/orders/search` accepts (about 10,000 on MercadoLibre); order
    /// scans cut their date range into windows that each fit under it.
    #[serde(default = "default_offset_cap")]
    pub orders_offset_cap: usize,
    /// How long the `seller_sku` search may take to show a created item. A create whose
    /// outcome is unknown blocks repeats of the same SKU for this long (they answer
    /// `Transient`) unless the search finds the item first.
    #[serde(default = "default_sku_search_lag_ms")]
    pub sku_search_lag_ms: u64,
}

fn default_sku_search_lag_ms() -> u64 {
    120_000
}

fn default_offset_cap() -> usize {
    10_000
}

fn default_base_url() -> String {
    "https://api.mercadolibre.com".to_owned()
}

fn default_rps() -> f64 {
    5.0
}

impl Settings {
    pub fn new(site_id: &str, user_id: u64, client_id: &str) -> Self {
        Self {
            site_id: site_id.to_owned(),
            user_id,
            client_id: client_id.to_owned(),
            base_url: default_base_url(),
            default_category_id: None,
            requests_per_second: default_rps(),
            orders_offset_cap: default_offset_cap(),
            sku_search_lag_ms: default_sku_search_lag_ms(),
        }
    }
}

/// The secret part: the client secret and the current OAuth pair.
#[derive(Clone)]
pub struct Tokens {
    pub client_secret: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens([REDACTED])")
    }
}

impl Tokens {
    pub fn from_credentials(credentials: &Credentials) -> Result<Self, SettingsError> {
        Ok(Self {
            client_secret: credentials.require("client_secret")?.expose().to_owned(),
            access_token: credentials.require("access_token")?.expose().to_owned(),
            refresh_token: credentials.require("refresh_token")?.expose().to_owned(),
        })
    }

    pub fn to_credentials(&self) -> Credentials {
        Credentials::new()
            .with("client_secret", self.client_secret.clone())
            .with("access_token", self.access_token.clone())
            .with("refresh_token", self.refresh_token.clone())
    }
}

pub fn schema() -> SettingsSchema {
    let text = || FieldInput::Text { placeholder: None };
    SettingsSchema::new(vec![
        SettingField::new("site_id", Section::Settings, "Site", text())
            .required()
            .help("MLA (Argentina), MLB (Brazil), MLM (Mexico)…"),
        SettingField::new(
            "user_id",
            Section::Settings,
            "Seller user id",
            FieldInput::Integer {
                min: Some(1),
                max: None,
            },
        )
        .required(),
        SettingField::new(
            "client_id",
            Section::Settings,
            "Application client id",
            text(),
        )
        .required(),
        SettingField::new("base_url", Section::Settings, "API URL", FieldInput::Url)
            .default_value(json!("https://api.mercadolibre.com")),
        SettingField::new(
            "default_category_id",
            Section::Settings,
            "Category for new items",
            text(),
        ),
        SettingField::new(
            "requests_per_second",
            Section::Settings,
            "Requests per second",
            FieldInput::Integer {
                min: Some(1),
                max: Some(50),
            },
        )
        .default_value(json!(5)),
        SettingField::new(
            "client_secret",
            Section::Credentials,
            "Client secret",
            FieldInput::Secret,
        )
        .required(),
        SettingField::new(
            "access_token",
            Section::Credentials,
            "Access token",
            FieldInput::Secret,
        )
        .required(),
        SettingField::new(
            "refresh_token",
            Section::Credentials,
            "Refresh token",
            FieldInput::Secret,
        )
        .required()
        .help("Single use: tidemark stores each new one before using it"),
    ])
}

/// Registers MercadoLibre in the connector registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct MercadoLibreFactory;

impl ConnectorFactory for MercadoLibreFactory {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Mercadolibre
    }

    fn settings_schema(&self) -> SettingsSchema {
        schema()
    }

    fn build(&self, cx: BuildContext<'_>) -> Result<Arc<dyn Connector>, SettingsError> {
        let settings: Settings = parse_settings(cx.settings)?;
        let tokens = Tokens::from_credentials(cx.credentials)?;
        let sink: Arc<dyn CredentialSink> = Arc::clone(cx.credential_sink);
        let connector = MercadoLibre::new(settings, tokens, cx.connection, sink).map_err(|e| {
            SettingsError::Invalid {
                section: Section::Settings,
                message: e.to_string(),
            }
        })?;
        Ok(Arc::new(connector))
    }
}
