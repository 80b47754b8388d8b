-- Cross-process processing locks (B2) and the record of every run (for audits and for the
-- overlap check of the multi-process tests).

-- One row per held lock key. A holder renews `expires_at` while it runs; a holder that dies
-- stops renewing and anyone may take the key once it has expired.
CREATE TABLE leases (
    key        TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    lock_key    TEXT NOT NULL,
    owner       TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE INDEX runs_key ON runs (lock_key, started_at);

-- Differences between a broker's positions and the open transactions, found by
-- reconciliation. Reported, never acted on: a person decides.
CREATE TABLE reconciliation_findings (
    id                INTEGER PRIMARY KEY,
    account           TEXT NOT NULL,
    symbol            TEXT NOT NULL,
    broker_quantity   TEXT NOT NULL,
    recorded_quantity TEXT NOT NULL,
    detail            TEXT NOT NULL,
    found_at          TEXT NOT NULL
);
