//! The registry of connector kinds: how the engine turns a stored connection (platform kind,
//! settings JSON, decrypted credentials) into an `Arc<dyn Connector>`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tidemark_core::{ConnectionId, PlatformKind};

use crate::connector::Connector;
use crate::error::ConnectorError;
use crate::settings::{Credentials, SettingsError, SettingsSchema};

/// Where a connector saves credentials it rotated itself. MercadoLibre refresh tokens are
/// single-use: the new one must be stored (encrypted, by the store) before the connector relies
/// on it, or a restart leaves the connection unable to authenticate. Connectors never touch
/// the store, so the engine passes this in.
#[async_trait]
pub trait CredentialSink: Send + Sync {
    /// Replaces the connection's stored credentials with `credentials`, atomically.
    async fn save(
        &self,
        connection: ConnectionId,
        credentials: &Credentials,
    ) -> Result<(), ConnectorError>;
}

/// A sink that refuses to save: for connectors that never rotate credentials, and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCredentialRotation;

#[async_trait]
impl CredentialSink for NoCredentialRotation {
    async fn save(
        &self,
        connection: ConnectionId,
        _credentials: &Credentials,
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::fatal(format!(
            "connection {connection} cannot store rotated credentials here"
        )))
    }
}

/// What a factory gets to build one connection's connector.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    /// For tracing fields and per-connection state; not sent to the platform.
    pub connection: ConnectionId,
    /// The platform-specific settings (shop domain, API version, site id…), already checked
    /// against the schema for unknown and missing keys.
    pub settings: &'a serde_json::Value,
    pub credentials: &'a Credentials,
    pub credential_sink: &'a Arc<dyn CredentialSink>,
}

impl fmt::Debug for BuildContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext")
            .field("connection", &self.connection)
            .field("settings", self.settings)
            .field("credentials", self.credentials)
            .finish_non_exhaustive()
    }
}

/// Builds connectors of one platform kind. Implemented by each `connectors/*` crate, usually
/// as a unit struct whose typed config does the work (`deny_unknown_fields`).
pub trait ConnectorFactory: Send + Sync {
    fn platform(&self) -> PlatformKind;

    /// The settings the console renders before a connection of this kind exists.
    fn settings_schema(&self) -> SettingsSchema;

    fn build(&self, cx: BuildContext<'_>) -> Result<Arc<dyn Connector>, SettingsError>;
}

/// Platform kind → factory. Built once at startup by the binary, then shared read-only.
#[derive(Default, Clone)]
pub struct ConnectorRegistry {
    factories: BTreeMap<PlatformKind, Arc<dyn ConnectorFactory>>,
}

impl ConnectorRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a factory; a second one for the same kind replaces the first (tests swap in
    /// fakes this way).
    pub fn register(&mut self, factory: Arc<dyn ConnectorFactory>) -> &mut Self {
        self.factories.insert(factory.platform(), factory);
        self
    }

    pub fn with(mut self, factory: Arc<dyn ConnectorFactory>) -> Self {
        self.register(factory);
        self
    }

    pub fn get(&self, platform: PlatformKind) -> Option<&Arc<dyn ConnectorFactory>> {
        self.factories.get(&platform)
    }

    pub fn platforms(&self) -> impl Iterator<Item = PlatformKind> + '_ {
        self.factories.keys().copied()
    }

    pub fn settings_schema(&self, platform: PlatformKind) -> Result<SettingsSchema, SettingsError> {
        Ok(self.factory(platform)?.settings_schema())
    }

    /// Checks `settings` and `credentials` against the kind's schema (unknown keys and
    /// missing required ones are errors), then builds the connector.
    pub fn build(
        &self,
        platform: PlatformKind,
        connection: ConnectionId,
        settings: &serde_json::Value,
        credentials: &Credentials,
        credential_sink: &Arc<dyn CredentialSink>,
    ) -> Result<Arc<dyn Connector>, SettingsError> {
        let factory = self.factory(platform)?;
        factory.settings_schema().check(settings, credentials)?;
        factory.build(BuildContext {
            connection,
            settings,
            credentials,
            credential_sink,
        })
    }

    fn factory(&self, platform: PlatformKind) -> Result<&Arc<dyn ConnectorFactory>, SettingsError> {
        self.factories
            .get(&platform)
            .ok_or_else(|| SettingsError::UnknownPlatform(platform.to_string()))
    }
}

impl fmt::Debug for ConnectorRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}
