-- tidemark schema, SQLite dialect. Kept parallel to migrations/postgres/0001_initial.sql:
-- BIGINT ids and epoch-millisecond timestamps, TEXT decimals, hashes and JSON, BLOB ciphertext.

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE connections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    name TEXT NOT NULL,
    settings TEXT NOT NULL,
    platform_settings TEXT NOT NULL,
    credentials BLOB,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    last_fetch_at BIGINT,
    last_send_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE clocks (
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    scan_kind TEXT NOT NULL,
    clock_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, scan_kind)
);

CREATE TABLE scan_generations (
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    generation BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, kind)
);

CREATE TABLE products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    sku TEXT,
    -- tidemark_core::normalize::sku_key of sku (case-folded, whitespace removed): what
    -- coincidences are matched by. Computed in Rust so both databases hold the same bytes.
    sku_key TEXT,
    title TEXT NOT NULL,
    brand TEXT,
    brand_key TEXT,
    vendor TEXT,
    category TEXT,
    barcode TEXT,
    -- The barcode as tidemark_core::normalize::normalize_barcode keeps it, for matching.
    barcode_key TEXT,
    status TEXT NOT NULL,
    has_description BOOLEAN NOT NULL,
    has_weight BOOLEAN NOT NULL,
    tag_count BIGINT NOT NULL,
    attribute_count BIGINT NOT NULL,
    currency TEXT NOT NULL,
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    field_times TEXT NOT NULL,
    -- Optimistic concurrency: every update checks and bumps it.
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX products_account ON products (account_id, id);
CREATE INDEX products_sku ON products (account_id, sku_key);
CREATE INDEX products_barcode ON products (account_id, barcode_key);
CREATE INDEX products_brand ON products (account_id, brand_key);

CREATE TABLE product_variants (
    product_id BIGINT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    sku TEXT,
    sku_key TEXT,
    barcode TEXT,
    barcode_key TEXT,
    color TEXT,
    size TEXT,
    price TEXT,
    -- Exact price in ten-thousandths (ISO 4217 goes to 4 minor digits), saturated to the
    -- BIGINT range: the set filters compare on it; `price` keeps the decimal itself.
    price_units BIGINT,
    compare_at_price TEXT,
    compare_at_units BIGINT,
    stock BIGINT,
    has_weight BOOLEAN NOT NULL,
    PRIMARY KEY (product_id, position),
    UNIQUE (product_id, sku)
);
CREATE INDEX product_variants_sku ON product_variants (sku_key);
CREATE INDEX product_variants_barcode ON product_variants (barcode_key);
CREATE INDEX product_variants_color ON product_variants (color);
CREATE INDEX product_variants_size ON product_variants (size);

CREATE TABLE product_images (
    product_id BIGINT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    src TEXT NOT NULL,
    PRIMARY KEY (product_id, position),
    UNIQUE (product_id, content_hash)
);
CREATE INDEX product_images_hash ON product_images (content_hash);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- No foreign key: orders are never deleted, not even with their origin connection.
    origin_connection_id BIGINT NOT NULL,
    number TEXT NOT NULL,
    placed_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    currency TEXT NOT NULL,
    total TEXT NOT NULL,
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    field_times TEXT NOT NULL,
    -- Optimistic concurrency: every update checks and bumps it.
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (account_id, origin_connection_id, number)
);
CREATE INDEX orders_account ON orders (account_id, id);
CREATE INDEX orders_placed ON orders (account_id, placed_at);

CREATE TABLE bindings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    external_id TEXT NOT NULL,
    internal_id BIGINT NOT NULL,
    internal_key TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (connection_id, kind, external_id),
    UNIQUE (connection_id, kind, internal_id, internal_key)
);
CREATE INDEX bindings_internal ON bindings (kind, internal_id);

CREATE TABLE snapshots (
    connection_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    external_id TEXT NOT NULL,
    internal_id BIGINT NOT NULL,
    schema_version BIGINT NOT NULL,
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    platform_updated_at BIGINT,
    seen_generation BIGINT NOT NULL,
    status TEXT,
    category_key TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, kind, external_id),
    FOREIGN KEY (connection_id, kind, external_id)
        REFERENCES bindings (connection_id, kind, external_id) ON DELETE CASCADE
);
CREATE INDEX snapshots_internal ON snapshots (kind, internal_id, connection_id);
CREATE INDEX snapshots_schema ON snapshots (schema_version);

CREATE TABLE pending_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    record_kind TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    op TEXT NOT NULL,
    fields TEXT NOT NULL,
    image_hash TEXT NOT NULL DEFAULT '',
    image_external_id TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- At most one insert-or-update row per (connection, record); image deletes one per image.
CREATE UNIQUE INDEX pending_changes_record
    ON pending_changes (connection_id, record_kind, record_id) WHERE op <> 'image_delete';
CREATE UNIQUE INDEX pending_changes_image
    ON pending_changes (connection_id, record_kind, record_id, image_hash) WHERE op = 'image_delete';
CREATE INDEX pending_changes_due ON pending_changes (connection_id, next_attempt_at, id);
CREATE INDEX pending_changes_by_record ON pending_changes (record_kind, record_id);

CREATE TABLE issues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    -- '' and 0 when the issue is about the connection rather than one record.
    record_kind TEXT NOT NULL DEFAULT '',
    record_id BIGINT NOT NULL DEFAULT 0,
    external_id TEXT,
    severity TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    field TEXT,
    payload TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    count BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE UNIQUE INDEX issues_open
    ON issues (connection_id, record_kind, record_id, code) WHERE resolved_at IS NULL;
CREATE INDEX issues_record ON issues (record_kind, record_id) WHERE resolved_at IS NULL;
CREATE INDEX issues_connection ON issues (connection_id, id);

CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    triggered_by TEXT NOT NULL,
    state TEXT NOT NULL,
    progress TEXT NOT NULL,
    counts TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    checkpoint TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    heartbeat_at BIGINT
);
CREATE INDEX job_runs_connection ON job_runs (connection_id, id);
CREATE INDEX job_runs_state ON job_runs (state, next_attempt_at);

-- connection_id 0 names a lease that is not about one connection (e.g. the scheduler).
CREATE TABLE leases (
    connection_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, kind)
);

CREATE TABLE cooldowns (
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    cooldown_key TEXT NOT NULL,
    until_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, cooldown_key)
);
