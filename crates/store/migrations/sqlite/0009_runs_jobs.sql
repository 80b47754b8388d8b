-- Issue 11. A run record says whose run it was, what started it (`cli`, `api`, `jobs`,
-- `schedule`) and what it counted (the run's counts as JSON text). Records written before
-- have no trigger and no counts; their expert and use case are read from their lock key
-- (`expert_{id}_usecase_{use_case}`; an account's refresh has neither).
ALTER TABLE runs ADD COLUMN expert_id INTEGER;
ALTER TABLE runs ADD COLUMN use_case TEXT;
ALTER TABLE runs ADD COLUMN trigger TEXT;
ALTER TABLE runs ADD COLUMN counts TEXT;
UPDATE runs
SET expert_id = CAST(substr(lock_key, 8, instr(lock_key, '_usecase_') - 8) AS INTEGER),
    use_case = substr(lock_key, instr(lock_key, '_usecase_') + 9)
WHERE lock_key LIKE 'expert\_%\_usecase\_%' ESCAPE '\';
CREATE INDEX runs_expert ON runs (expert_id, id);

-- Analysis jobs: an expert announces the symbols it analyses; its runs of that use case wait
-- until every job has ended (`completed`, with the recommendation it produced or none, or
-- `failed`, with why).
CREATE TABLE analysis_jobs (
    id                INTEGER PRIMARY KEY,
    expert_id         INTEGER NOT NULL,
    use_case          TEXT NOT NULL,
    symbol            TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'completed', 'failed')),
    reason            TEXT,
    recommendation_id INTEGER REFERENCES recommendations (id),
    created_at        TEXT NOT NULL,
    ended_at          TEXT
);
CREATE INDEX analysis_jobs_expert ON analysis_jobs (expert_id, id);
CREATE INDEX analysis_jobs_pending ON analysis_jobs (expert_id, use_case) WHERE status = 'pending';
CREATE INDEX analysis_jobs_pending_since ON analysis_jobs (created_at) WHERE status = 'pending';
