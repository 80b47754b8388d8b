-- B1 covers a position being closed: until its close fills, a CLOSING transaction still holds
-- the position at the broker, and a refused close puts it back to OPENED. A second position of
-- the same expert and symbol in the meantime would double the exposure and make that return
-- impossible, so CLOSING counts as held.
DROP INDEX transactions_one_active;
CREATE UNIQUE INDEX transactions_one_active ON transactions (expert_id, symbol)
    WHERE status IN ('WAITING', 'OPENED', 'CLOSING');
