-- The database's installation id, part of every client_order_id it gives out from now on
-- (`tw-{installation}-{transaction}-{role}`): transaction ids restart at 1 in every
-- database, so two databases sharing a broker account, or one reset, would otherwise give the
-- same ids. Written once, at random (40 bits as 10 hex digits); orders stored before keep the
-- ids they were sent with.
CREATE TABLE installation (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id        TEXT NOT NULL
);
INSERT INTO installation (singleton, id) VALUES (1, lower(hex(randomblob(5))));

-- An entry's outcome is written with its position, provisional, and completed with the
-- broker's answer: `decision` keeps the decision's own words (rule, sizing) so that the
-- completed detail is `decision` followed by what became of the order. NULL for skips and
-- for rows written before.
ALTER TABLE outcomes ADD COLUMN decision TEXT;
CREATE INDEX outcomes_order ON outcomes (order_id);
