-- Core schema on SQLite. Decimals are TEXT (exact; arithmetic happens in Rust), times are
-- fixed-width UTC text (`2026-11-27T10:00:07.000000Z`) so text order is time order.

CREATE TABLE recommendations (
    id                      INTEGER PRIMARY KEY,
    expert_id               INTEGER NOT NULL,
    symbol                  TEXT    NOT NULL,
    action                  TEXT    NOT NULL,
    confidence              TEXT    NOT NULL,
    expected_profit_percent TEXT    NOT NULL,
    price_at_date           TEXT    NOT NULL,
    risk_level              TEXT    NOT NULL,
    time_horizon            TEXT    NOT NULL,
    target_price            TEXT,
    details                 TEXT,
    created_at              TEXT    NOT NULL,
    imported_at             TEXT    NOT NULL,
    -- B7: a recommendation's identity.
    UNIQUE (expert_id, symbol, created_at)
);
CREATE INDEX recommendations_window ON recommendations (expert_id, created_at);

CREATE TABLE transactions (
    id              INTEGER PRIMARY KEY,
    expert_id       INTEGER NOT NULL,
    account         TEXT    NOT NULL,
    symbol          TEXT    NOT NULL,
    side            TEXT    NOT NULL,
    quantity        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    reference_price TEXT,
    open_price      TEXT,
    close_price     TEXT,
    take_profit     TEXT,
    stop_loss       TEXT,
    opened_at       TEXT,
    closed_at       TEXT,
    close_reason    TEXT,
    created_at      TEXT    NOT NULL
);
-- B1: never two active transactions for one (expert, symbol), whatever the application does.
CREATE UNIQUE INDEX transactions_one_active ON transactions (expert_id, symbol)
    WHERE status IN ('WAITING', 'OPENED');
CREATE INDEX transactions_expert_status ON transactions (expert_id, status);

CREATE TABLE orders (
    id                INTEGER PRIMARY KEY,
    transaction_id    INTEGER NOT NULL REFERENCES transactions (id),
    expert_id         INTEGER NOT NULL,
    account           TEXT    NOT NULL,
    symbol            TEXT    NOT NULL,
    side              TEXT    NOT NULL,
    role              TEXT    NOT NULL,
    order_type        TEXT    NOT NULL,
    quantity          TEXT    NOT NULL,
    filled_quantity   TEXT    NOT NULL,
    limit_price       TEXT,
    stop_price        TEXT,
    avg_fill_price    TEXT,
    status            TEXT    NOT NULL,
    -- B3: the id the broker knows the order by; written before the broker is called.
    client_order_id   TEXT    NOT NULL UNIQUE,
    broker_order_id   TEXT,
    parent_order_id   INTEGER REFERENCES orders (id),
    trigger_status    TEXT,
    recommendation_id INTEGER,
    reason            TEXT,
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL
);
CREATE INDEX orders_status ON orders (status);
CREATE INDEX orders_transaction ON orders (transaction_id);
CREATE INDEX orders_expert ON orders (expert_id);

CREATE TABLE outcomes (
    id                INTEGER PRIMARY KEY,
    recommendation_id INTEGER NOT NULL,
    expert_id         INTEGER NOT NULL,
    symbol            TEXT    NOT NULL,
    use_case          TEXT    NOT NULL,
    outcome           TEXT    NOT NULL,
    detail            TEXT    NOT NULL,
    order_id          INTEGER,
    decided_at        TEXT    NOT NULL
);
CREATE INDEX outcomes_recommendation ON outcomes (recommendation_id);
CREATE INDEX outcomes_expert ON outcomes (expert_id);

-- The paper broker's own state: what a real broker would keep on its servers.
CREATE TABLE paper_accounts (
    account TEXT PRIMARY KEY,
    cash    TEXT NOT NULL
);
CREATE TABLE paper_positions (
    account  TEXT NOT NULL,
    symbol   TEXT NOT NULL,
    quantity TEXT NOT NULL,
    PRIMARY KEY (account, symbol)
);
CREATE TABLE paper_orders (
    id              INTEGER PRIMARY KEY,
    account         TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL,
    order_type      TEXT NOT NULL,
    quantity        TEXT NOT NULL,
    limit_price     TEXT,
    stop_price      TEXT,
    status          TEXT NOT NULL,
    filled_quantity TEXT NOT NULL,
    avg_fill_price  TEXT,
    reason          TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (account, client_order_id)
);
CREATE TABLE quotes (
    account TEXT NOT NULL,
    symbol  TEXT NOT NULL,
    price   TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (account, symbol)
);
