//! The registry builds connectors by platform kind from settings JSON and credentials, and
//! refuses settings it does not understand.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::json;
use tidemark_connector::{
    Authenticity, BuildContext, Capabilities, Connector, ConnectorError, ConnectorFactory,
    ConnectorRegistry, CredentialSink, Credentials, Cursor, FieldInput, NoCredentialRotation,
    ScanPage, ScanScope, Section, SettingField, SettingsError, SettingsSchema, WebhookEvent,
    WebhookSupport, Write, WriteResult, parse_settings,
};
use tidemark_core::{ConnectionId, ExternalId, ExternalRecord, PlatformKind, ScanKind, Sku};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedSettings {
    path: String,
    #[serde(default)]
    delimiter: Option<String>,
}

#[derive(Debug)]
struct FeedConnector {
    settings: FeedSettings,
}

fn schema() -> SettingsSchema {
    SettingsSchema::new(vec![
        SettingField::new("path", Section::Settings, "File", FieldInput::Path).required(),
        SettingField::new(
            "delimiter",
            Section::Settings,
            "Delimiter",
            FieldInput::Text { placeholder: None },
        ),
    ])
}

#[async_trait]
impl Connector for FeedConnector {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Csv
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_size: 1,
            kinds: Default::default(),
            webhooks: WebhookSupport::None,
            bulk_full_scan: false,
            upsert_by_sku: false,
            recommended_overlap: Duration::ZERO,
        }
    }

    fn settings_schema(&self) -> SettingsSchema {
        schema()
    }

    async fn scan_page(
        &self,
        _kind: ScanKind,
        _scope: &ScanScope,
        _cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError> {
        Ok(ScanPage::new(vec![], None, Some(0)))
    }

    async fn fetch_one(
        &self,
        _kind: ScanKind,
        _id: &ExternalId,
    ) -> Result<Option<ExternalRecord>, ConnectorError> {
        Ok(None)
    }

    async fn find_by_sku(&self, _sku: &Sku) -> Result<Option<ExternalRecord>, ConnectorError> {
        Ok(None)
    }

    async fn apply_writes(&self, writes: &[Write]) -> Result<Vec<WriteResult>, ConnectorError> {
        Ok(writes
            .iter()
            .map(|w| WriteResult {
                key: w.key.clone(),
                outcome: Err(ConnectorError::rejected(
                    "read_only",
                    "this feed is read-only",
                )),
            })
            .collect())
    }

    fn verify_webhook(
        &self,
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<WebhookEvent, ConnectorError> {
        Err(ConnectorError::fatal(format!(
            "csv feed {} (delimiter {:?}) has no webhooks",
            self.settings.path, self.settings.delimiter
        )))
    }
}

struct FeedFactory;

impl ConnectorFactory for FeedFactory {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Csv
    }

    fn settings_schema(&self) -> SettingsSchema {
        schema()
    }

    fn build(&self, cx: BuildContext<'_>) -> Result<Arc<dyn Connector>, SettingsError> {
        Ok(Arc::new(FeedConnector {
            settings: parse_settings(cx.settings)?,
        }))
    }
}

fn sink() -> Arc<dyn CredentialSink> {
    Arc::new(NoCredentialRotation)
}

fn registry() -> ConnectorRegistry {
    ConnectorRegistry::new().with(Arc::new(FeedFactory))
}

#[tokio::test]
async fn builds_a_shared_connector_by_kind() {
    let connector = registry()
        .build(
            PlatformKind::Csv,
            ConnectionId(1),
            &json!({"path": "/tmp/feed.csv", "delimiter": ";"}),
            &Credentials::new(),
            &sink(),
        )
        .unwrap();
    assert_eq!(connector.platform(), PlatformKind::Csv);
    let page = connector
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap();
    assert!(page.is_last());
    // Not implemented by this connector: refused, never a false "not found".
    let err = connector.find_order_by_number("1001").await.unwrap_err();
    assert!(matches!(err, ConnectorError::Fatal { .. }), "{err}");
    let debug = format!("{connector:?}");
    assert!(debug.contains("/tmp/feed.csv"), "{debug}");
    let _ = Authenticity::Signed; // the enum is part of the public surface
}

#[test]
fn unknown_settings_and_credentials_are_rejected() {
    let reg = registry();
    let err = reg
        .build(
            PlatformKind::Csv,
            ConnectionId(1),
            &json!({"path": "/tmp/feed.csv", "delimter": ";"}),
            &Credentials::new(),
            &sink(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, SettingsError::UnknownField { field, .. } if field == "delimter"),
        "{err}"
    );
    let err = reg
        .build(
            PlatformKind::Csv,
            ConnectionId(1),
            &json!({"path": "/tmp/feed.csv"}),
            &Credentials::new().with("token", "abcdefgh"),
            &sink(),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("credentials field `token`"),
        "{err}"
    );
    let err = reg
        .build(
            PlatformKind::Csv,
            ConnectionId(1),
            &json!({}),
            &Credentials::new(),
            &sink(),
        )
        .unwrap_err();
    assert!(matches!(err, SettingsError::MissingField { .. }), "{err}");
}

#[test]
fn unknown_platform_is_an_error() {
    let err = registry()
        .build(
            PlatformKind::Shopify,
            ConnectionId(1),
            &json!({}),
            &Credentials::new(),
            &sink(),
        )
        .unwrap_err();
    assert_eq!(err, SettingsError::UnknownPlatform("shopify".into()));
    assert_eq!(
        registry().platforms().collect::<Vec<_>>(),
        vec![PlatformKind::Csv]
    );
}
