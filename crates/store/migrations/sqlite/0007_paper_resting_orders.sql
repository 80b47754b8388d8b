-- The paper broker keeps orders resting until a quote crosses them, cancels the orders of a
-- one-cancels-other group when one fills, and keeps each position's average price (the cost
-- basis of its unrealised profit and loss). A position held before this version takes its
-- latest quote as its average price: its unrealised profit and loss starts at zero.
ALTER TABLE paper_orders ADD COLUMN oco_group TEXT;
ALTER TABLE paper_positions ADD COLUMN avg_price TEXT NOT NULL DEFAULT '0';
UPDATE paper_positions SET avg_price = COALESCE(
    (SELECT q.price FROM quotes q WHERE q.account = paper_positions.account AND q.symbol = paper_positions.symbol),
    '0'
);
-- A new quote looks up the resting orders of its symbols; a new leg, its group's orders.
CREATE INDEX paper_orders_resting ON paper_orders (account, symbol) WHERE status = 'accepted';
CREATE INDEX paper_orders_oco ON paper_orders (account, oco_group) WHERE oco_group IS NOT NULL;
