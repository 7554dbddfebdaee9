-- The submission ledger: one row per submission id.
CREATE TABLE submission_ledger (
    submission_id    uuid        PRIMARY KEY,
    device_id        uuid        NOT NULL,
    content_digest   bytea       NOT NULL,
    event_count      integer     NOT NULL CHECK (event_count >= 0),
    published_count  integer     NOT NULL DEFAULT 0
                                 CHECK (published_count >= 0 AND published_count <= event_count),
    lease_owner      text,
    lease_expires_at timestamptz,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
);

-- The retention clean-up deletes by age.
CREATE INDEX submission_ledger_first_seen_at ON submission_ledger (first_seen_at);

-- One row per processor process: when it last recorded a batch. Written by the outcome statement
-- itself (no extra round trip) and read by the health check.
CREATE TABLE processor_heartbeat (
    worker_id          text        PRIMARY KEY,
    last_batch_at      timestamptz NOT NULL,
    last_batch_size    integer     NOT NULL
);
