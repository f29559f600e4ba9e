//! Typed settings of a CSV connection, its settings schema, and the factory the registry
//! builds it with.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidemark_connector::{
    BuildContext, Connector, ConnectorFactory, FieldInput, Section, SettingField, SettingsError,
    SettingsSchema, parse_settings,
};
use tidemark_core::{Currency, PlatformKind};

use crate::connector::CsvConnector;

/// Which layout the file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutSetting {
    /// Detected from the header on every read.
    #[default]
    Auto,
    /// A Shopify product CSV (current or older layout).
    Shopify,
    /// A WooCommerce product CSV export (source only).
    Woocommerce,
}

/// Whether tidemark only reads the file or also writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Read only (a supplier feed, an export from another shop).
    #[default]
    Source,
    /// tidemark owns the file: it writes the catalogue it holds there, in Shopify's layout.
    Target,
}

/// The settings of one CSV connection (no credentials: the file is on the daemon's host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// The CSV file. For a target it need not exist yet: the first write creates it.
    pub path: PathBuf,
    #[serde(default)]
    pub layout: LayoutSetting,
    #[serde(default)]
    pub mode: Mode,
    /// The currency the file's prices are in (CSV exports do not say).
    #[serde(default)]
    pub currency: Currency,
    /// Products per scan page.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// The largest file read or written, in bytes: the whole file is held in memory, so a
    /// wrong `path` (a log, a disk image) is refused rather than read.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
}

pub const DEFAULT_PAGE_SIZE: usize = 250;
pub const MAX_PAGE_SIZE: usize = 10_000;
/// 256 MiB: far above real product exports (Shopify imports at most 15 MB), far below what
/// would strain the daemon's host.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// The most `max_file_bytes` may be set to (4 GiB).
pub const MAX_MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

fn default_page_size() -> usize {
    DEFAULT_PAGE_SIZE
}

fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

impl CsvConfig {
    /// A source reading `path` with the layout detected, prices in USD.
    pub fn source(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            layout: LayoutSetting::Auto,
            mode: Mode::Source,
            currency: Currency::USD,
            page_size: DEFAULT_PAGE_SIZE,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }

    /// A target writing Shopify CSV to `path`, prices in USD.
    pub fn target(path: impl Into<PathBuf>) -> Self {
        Self {
            mode: Mode::Target,
            layout: LayoutSetting::Shopify,
            ..Self::source(path)
        }
    }

    /// From the connection's settings JSON (unknown keys are refused).
    pub fn from_settings(settings: &serde_json::Value) -> Result<Self, SettingsError> {
        let config: Self = parse_settings(settings)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |message: String| SettingsError::Invalid {
            section: Section::Settings,
            message,
        };
        if self.path.as_os_str().is_empty() {
            return Err(invalid("`path` is empty".to_owned()));
        }
        if self.mode == Mode::Target && self.layout == LayoutSetting::Woocommerce {
            return Err(invalid(
                "a target is written as Shopify product CSV; `layout` must be `auto` or `shopify`"
                    .to_owned(),
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(invalid(format!(
                "`page_size` is {}; it must be between 1 and {MAX_PAGE_SIZE}",
                self.page_size
            )));
        }
        if !(1..=MAX_MAX_FILE_BYTES).contains(&self.max_file_bytes) {
            return Err(invalid(format!(
                "`max_file_bytes` is {}; it must be between 1 and {MAX_MAX_FILE_BYTES}",
                self.max_file_bytes
            )));
        }
        Ok(())
    }

    /// The file name for messages (`apparel.csv`), the path when it has none.
    pub fn file_label(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        )
    }
}

/// The settings the console renders for a CSV connection.
pub fn settings_schema() -> SettingsSchema {
    SettingsSchema::new(vec![
        SettingField::new("path", Section::Settings, "CSV file", FieldInput::Path)
            .required()
            .help("Path of the product CSV on the daemon's host."),
        SettingField::new(
            "layout",
            Section::Settings,
            "Layout",
            FieldInput::Choice {
                options: vec!["auto".into(), "shopify".into(), "woocommerce".into()],
            },
        )
        .default_value(json!("auto"))
        .help("Shopify or WooCommerce product export; auto tells them apart by the header."),
        SettingField::new(
            "mode",
            Section::Settings,
            "Mode",
            FieldInput::Choice {
                options: vec!["source".into(), "target".into()],
            },
        )
        .default_value(json!("source"))
        .help(
            "Source: tidemark only reads the file. Target: tidemark writes its catalogue there \
             as Shopify product CSV, replacing the file atomically.",
        ),
        SettingField::new(
            "currency",
            Section::Settings,
            "Currency",
            FieldInput::Text {
                placeholder: Some("USD".into()),
            },
        )
        .default_value(json!("USD"))
        .help("ISO 4217 code of the prices in the file."),
        SettingField::new(
            "page_size",
            Section::Settings,
            "Products per scan page",
            FieldInput::Integer {
                min: Some(1),
                max: Some(MAX_PAGE_SIZE as i64),
            },
        )
        .default_value(json!(DEFAULT_PAGE_SIZE)),
        SettingField::new(
            "max_file_bytes",
            Section::Settings,
            "Largest file (bytes)",
            FieldInput::Integer {
                min: Some(1),
                max: i64::try_from(MAX_MAX_FILE_BYTES).ok(),
            },
        )
        .default_value(json!(DEFAULT_MAX_FILE_BYTES))
        .help(
            "A larger file is refused with an error instead of being read: the whole file is \
             held in memory.",
        ),
    ])
}

/// Builds [`CsvConnector`]s for the registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvFactory;

impl ConnectorFactory for CsvFactory {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Csv
    }

    fn settings_schema(&self) -> SettingsSchema {
        settings_schema()
    }

    fn build(&self, cx: BuildContext<'_>) -> Result<Arc<dyn Connector>, SettingsError> {
        let config = CsvConfig::from_settings(cx.settings)?;
        Ok(Arc::new(CsvConnector::new(config)))
    }
}
