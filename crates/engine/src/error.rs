//! The engine's errors: what stops a whole procedure. A problem with one record is not an
//! error here: it becomes an issue on that record and the procedure goes on.

use tidemark_connector::ConnectorError;
use tidemark_core::ConnectionId;
use tidemark_store::StoreError;

use crate::control::StopReason;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("connection {0} does not exist")]
    UnknownConnection(ConnectionId),

    #[error("connection {0} is paused")]
    Paused(ConnectionId),

    /// The job was told to stop (lease lost, paused, cancelled, shutting down); its
    /// checkpoint is saved and a later run resumes from it.
    #[error("stopped: {0}")]
    Stopped(StopReason),

    #[error("connection {connection}: cannot build its connector: {message}")]
    Connector {
        connection: ConnectionId,
        message: String,
    },

    #[error("connection {connection}: {context}: {source}")]
    Platform {
        connection: ConnectionId,
        context: String,
        #[source]
        source: Box<ConnectorError>,
    },

    #[error("store: {0}")]
    Store(#[from] StoreError),

    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    pub fn platform(
        connection: ConnectionId,
        context: impl Into<String>,
        source: ConnectorError,
    ) -> Self {
        Self::Platform {
            connection,
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// Worth running the job again later (the platform or the database was unavailable, or the
    /// job was stopped with its checkpoint saved), as opposed to a failure that needs a person.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Platform { source, .. } => source.is_retryable(),
            Self::Store(e) => !matches!(
                e,
                StoreError::Corrupt { .. } | StoreError::Invalid { .. } | StoreError::Migrate(_)
            ),
            Self::Stopped(_) => true,
            Self::UnknownConnection(_)
            | Self::Paused(_)
            | Self::Connector { .. }
            | Self::Internal(_) => false,
        }
    }
}
