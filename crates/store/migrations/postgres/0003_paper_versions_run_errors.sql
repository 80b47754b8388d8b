-- The paper broker saves its books optimistically: every save bumps the account's version
-- and is refused against an older one. A run record keeps its status word and, apart, why
-- a failed run stopped.
ALTER TABLE paper_accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN error TEXT;
