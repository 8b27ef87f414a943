"""The ledger's state: an append-only event log and audit trail, and the read model.

Every read-model column group carries a version (`*_v`); an event only overwrites a
group whose version is older. That makes the read model a function of the *set* of
events seen: replays, duplicates and out-of-order delivery all end in the same rows.

A group has one author, and its version is that author's own order: a participant's
lifecycle (the deployer's) is ordered by the deployment generation and then the
kind of fact (failed < running < stopped), never by arrival or by comparing clocks
of different services; a certificate by its not_after, then the provisioner's clock (a
renewal wins); a site's
health by its one agent's clock; the server's engine by the job-controller's.
"""
from arcflare.ledger.console_model import CONSOLE_SCHEMA

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    message_id TEXT PRIMARY KEY, type TEXT NOT NULL, federation TEXT, site TEXT,
    correlation_id TEXT, causation_id TEXT, issued_by TEXT, occurred_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_federation ON events (federation, occurred_at);

CREATE TABLE IF NOT EXISTS audit (
    message_id TEXT PRIMARY KEY, command_id TEXT NOT NULL, command_type TEXT,
    outcome_type TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT, issued_by TEXT,
    federation TEXT, occurred_at TEXT NOT NULL, v TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_federation ON audit (federation, v);

CREATE TABLE IF NOT EXISTS federations (
    name TEXT PRIMARY KEY,
    server_endpoint TEXT, ca_fingerprint TEXT, admin_name TEXT, admins TEXT,
    provisioned_at TEXT, provisioned_v TEXT,
    lifecycle TEXT, lifecycle_reason TEXT, lifecycle_v TEXT,
    server_status TEXT, running_jobs TEXT, observed_clients TEXT, observed_at TEXT,
    observed_v TEXT
);

CREATE TABLE IF NOT EXISTS sites (
    federation TEXT NOT NULL, site TEXT NOT NULL,
    org TEXT, kit_ref TEXT, cert_fingerprint TEXT, compute TEXT, provisioned_v TEXT,
    lifecycle TEXT, lifecycle_reason TEXT, handle TEXT, lifecycle_v TEXT,
    health TEXT, diagnosis TEXT, health_at TEXT, health_v TEXT,
    last_heartbeat TEXT, pid INTEGER, current_job TEXT, uptime_s REAL, heartbeat_v TEXT,
    last_connect_time TEXT,
    PRIMARY KEY (federation, site)
);

CREATE TABLE IF NOT EXISTS certificates (
    federation TEXT NOT NULL, participant TEXT NOT NULL, kind TEXT NOT NULL,
    fingerprint TEXT, not_after TEXT, days_left INTEGER, v TEXT,
    PRIMARY KEY (federation, participant, kind)
);

CREATE TABLE IF NOT EXISTS jobs (
    federation TEXT NOT NULL, job_id TEXT NOT NULL,
    name TEXT, sites TEXT, rounds INTEGER, submitted_at TEXT, submit_v TEXT,
    status TEXT, status_at TEXT, status_v TEXT,
    duration_s REAL, result_ref TEXT, reason TEXT, outcome_v TEXT,
    model_name TEXT, model_version TEXT, run_id TEXT, model_v TEXT,
    PRIMARY KEY (federation, job_id)
);

CREATE TABLE IF NOT EXISTS job_status_history (
    message_id TEXT PRIMARY KEY, federation TEXT NOT NULL, job_id TEXT NOT NULL,
    status TEXT NOT NULL, occurred_at TEXT NOT NULL, v TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_job ON job_status_history (federation, job_id, v);

CREATE TABLE IF NOT EXISTS job_metrics (
    federation TEXT NOT NULL, job_id TEXT NOT NULL, site TEXT NOT NULL, key TEXT NOT NULL,
    value REAL NOT NULL, step INTEGER NOT NULL, v TEXT NOT NULL,
    PRIMARY KEY (federation, job_id, site, key)
);

CREATE TABLE IF NOT EXISTS log_tails (
    message_id TEXT PRIMARY KEY, federation TEXT NOT NULL, site TEXT NOT NULL,
    file TEXT NOT NULL, lines TEXT NOT NULL, truncated INTEGER NOT NULL,
    redacted_count INTEGER NOT NULL, request_id TEXT, occurred_at TEXT NOT NULL, v TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tails_by_site ON log_tails (federation, site, v);

CREATE TABLE IF NOT EXISTS flare_events (
    message_id TEXT PRIMARY KEY, federation TEXT NOT NULL, job_id TEXT, site TEXT,
    event TEXT NOT NULL, detail TEXT NOT NULL, occurred_at TEXT NOT NULL, v TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS flare_events_by_federation ON flare_events (federation, v);

CREATE TABLE IF NOT EXISTS alerts (
    message_id TEXT PRIMARY KEY, rule TEXT NOT NULL, severity TEXT NOT NULL,
    summary TEXT NOT NULL, federation TEXT, site TEXT, source_type TEXT,
    source_message_id TEXT, occurred_at TEXT NOT NULL, v TEXT NOT NULL
);
"""

#: the server as a participant of its own (lifecycle from the deployer, by generation), the
#: sites' generation and diagnosis code, who a command's outcome acted for (and, refused,
#: who it claimed and proved to be), the NVFlare id a job waiting for clients went on under
PARTICIPANTS_AND_COMMANDS = """
ALTER TABLE federations ADD COLUMN server_lifecycle TEXT;
ALTER TABLE federations ADD COLUMN server_lifecycle_reason TEXT;
ALTER TABLE federations ADD COLUMN server_handle TEXT;
ALTER TABLE federations ADD COLUMN server_generation INTEGER;
ALTER TABLE federations ADD COLUMN server_lifecycle_at TEXT;
ALTER TABLE federations ADD COLUMN server_lifecycle_v TEXT;
ALTER TABLE sites ADD COLUMN generation INTEGER;
ALTER TABLE sites ADD COLUMN lifecycle_at TEXT;
ALTER TABLE sites ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN diagnosis_code TEXT;
ALTER TABLE audit ADD COLUMN correlation_id TEXT;
ALTER TABLE audit ADD COLUMN on_behalf_of TEXT;
ALTER TABLE audit ADD COLUMN note TEXT;
ALTER TABLE audit ADD COLUMN claimed_by TEXT;
ALTER TABLE audit ADD COLUMN proven_by TEXT;
ALTER TABLE jobs ADD COLUMN submitted_as TEXT;
UPDATE sites SET lifecycle_v = NULL;
UPDATE certificates SET v = NULL;
DELETE FROM sites WHERE site = 'server';
"""

#: the trace of each command (OpenTelemetry trace id, 32 hex digits), when it was traced
TRACE_IDS = "ALTER TABLE audit ADD COLUMN trace_id TEXT"

#: a certificate's version gains the provisioner's time (renewals the CA's end cuts short
#: keep the same not_after): older versions are reset, the next fact of each rewrites it.
#: A site's kit and certificate are a group of their own, in the certificates' order.
RENEWALS = """
UPDATE certificates SET v = NULL;
ALTER TABLE sites ADD COLUMN kit_v TEXT;
"""

MIGRATIONS = [SCHEMA, PARTICIPANTS_AND_COMMANDS, CONSOLE_SCHEMA, TRACE_IDS, RENEWALS]
