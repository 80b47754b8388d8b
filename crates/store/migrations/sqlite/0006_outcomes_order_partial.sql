-- Only an entry's outcome has an order_id: index those alone. Every run writes one outcome
-- per recommendation it considers, nearly all of them skips, and indexing their NULLs
-- doubled the cost of writing them.
DROP INDEX outcomes_order;
CREATE INDEX outcomes_order ON outcomes (order_id) WHERE order_id IS NOT NULL;
