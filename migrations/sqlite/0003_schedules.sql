-- Per-connection scan schedules, changeable at run time. A periodic fetch every
-- `fetch_interval_ms` (NULL: none) and a full scan per `full_scan_cron` (NULL: none; the store
-- keeps the expression, the scheduler parses it). `next_fetch_at` / `next_full_scan_at` are
-- when each is next due; a daemon claims a due scan by moving it forward with a
-- compare-and-set, so several daemons fire it once.
CREATE TABLE schedules (
    connection_id BIGINT NOT NULL PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    fetch_interval_ms BIGINT,
    full_scan_cron TEXT,
    next_fetch_at BIGINT,
    next_full_scan_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX schedules_next_fetch ON schedules (next_fetch_at) WHERE next_fetch_at IS NOT NULL;
CREATE INDEX schedules_next_full_scan
    ON schedules (next_full_scan_at) WHERE next_full_scan_at IS NOT NULL;
