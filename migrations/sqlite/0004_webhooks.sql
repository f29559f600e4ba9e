-- Webhook deliveries already acted on, by the platform's delivery id, so a repeated delivery
-- (a platform retry, or a replay of a captured one) causes no second fetch. Kept for a week:
-- longer than Shopify's 48-hour retry window; older ones are pruned by the reconciler.
CREATE TABLE webhook_deliveries (
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    delivery_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, delivery_id)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
