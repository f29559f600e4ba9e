-- Records a fetch saw on a platform but did not absorb (the connection does not absorb new
-- records and nothing canonical matched them): listed for the merchant to link or import.
CREATE TABLE unlinked_records (
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    external_id TEXT NOT NULL,
    sku TEXT,
    title TEXT NOT NULL,
    platform_updated_at BIGINT,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (connection_id, kind, external_id)
);

-- A record deleted on a platform by its merchant: the binding is gone, and this keeps
-- "clone new records here" from creating it there again.
CREATE TABLE platform_deletions (
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    internal_id BIGINT NOT NULL,
    external_id TEXT NOT NULL,
    deleted_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, kind, internal_id)
);
CREATE INDEX platform_deletions_internal ON platform_deletions (kind, internal_id);

-- An issue about a record tidemark has not bound (it could not be read or absorbed) is kept
-- apart per external id, so two such records do not share one issue.
ALTER TABLE issues ADD COLUMN subject TEXT NOT NULL DEFAULT '';
DROP INDEX issues_open;
CREATE UNIQUE INDEX issues_open
    ON issues (connection_id, record_kind, record_id, subject, code) WHERE resolved_at IS NULL;
