-- 0003: what the balance tick records beyond 0001: why an ad-hoc run was started, which path
-- delivered charger state, history fallbacks, the policy's hold/reassert/phase state, and the
-- outcome of every write (a separate table, because outbox merges never update a row).

ALTER TABLE ticks ADD COLUMN IF NOT EXISTS run_reason VARCHAR;
ALTER TABLE ticks ADD COLUMN IF NOT EXISTS state_source VARCHAR;
ALTER TABLE ticks ADD COLUMN IF NOT EXISTS history_unavailable BOOLEAN;
ALTER TABLE ticks ADD COLUMN IF NOT EXISTS error VARCHAR;

ALTER TABLE decisions ADD COLUMN IF NOT EXISTS hold VARCHAR;
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS reassert BOOLEAN;
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS phase_state JSON;
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS notes JSON;

CREATE TABLE IF NOT EXISTS write_results (
    intent_id UUID NOT NULL,
    tick_id UUID,
    installation_id VARCHAR,
    finished_at TIMESTAMP WITH TIME ZONE,
    outcome VARCHAR,
    status INTEGER,
    attempts INTEGER,
    error VARCHAR,
    PRIMARY KEY (intent_id)
);
