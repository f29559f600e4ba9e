//! Webhooks: a file sends none. A delivery addressed to a CSV connection is refused.

use tidemark_connector::ConnectorError;

pub fn not_supported() -> ConnectorError {
    ConnectorError::fatal(
        "csv connections have no webhooks: the file is read by scans (fetch) only",
    )
}
