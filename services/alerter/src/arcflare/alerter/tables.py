"""The alerter's state: pending for-duration alerts, dedup memory, alerts and deliveries.

Deliveries are rows, not in-memory jobs, so a webhook that is down (or an
alerter restart) delays an alert but never loses it; a delivery that gives up
is kept with status 'failed' and its last error.
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    rule TEXT NOT NULL, key TEXT NOT NULL, started_at TEXT NOT NULL, due_at TEXT NOT NULL,
    source_type TEXT NOT NULL, source_message_id TEXT NOT NULL, fields TEXT NOT NULL,
    PRIMARY KEY (rule, key)
);
CREATE INDEX IF NOT EXISTS pending_due ON pending (due_at);
CREATE TABLE IF NOT EXISTS cleared (
    rule TEXT NOT NULL, key TEXT NOT NULL, cleared_at TEXT NOT NULL,
    PRIMARY KEY (rule, key)
);
CREATE TABLE IF NOT EXISTS last_raised (
    rule TEXT NOT NULL, key TEXT NOT NULL, raised_at TEXT NOT NULL,
    suppressed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule, key)
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY, rule TEXT NOT NULL, severity TEXT NOT NULL,
    summary TEXT NOT NULL, federation TEXT, site TEXT, key TEXT NOT NULL,
    source_type TEXT NOT NULL, source_message_id TEXT NOT NULL, raised_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id TEXT NOT NULL, sink TEXT NOT NULL,
    status TEXT NOT NULL,             -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL,
    last_error TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (alert_id, sink)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (sink, status, next_attempt_at);
"""

MIGRATIONS = [
    SCHEMA,
    # the trace of the event that raised the alert: its deliveries continue it
    "ALTER TABLE deliveries ADD COLUMN traceparent TEXT",
]
