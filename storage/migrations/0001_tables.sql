-- 0001: the tables both flows write (through the Parquet outbox) and the merge log.
-- Idempotent: safe to run again on an up-to-date database.

CREATE TABLE IF NOT EXISTS ticks (
    tick_id UUID NOT NULL,
    installation_id VARCHAR,
    scheduled_at TIMESTAMP WITH TIME ZONE,
    started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE,
    flow_run_id VARCHAR,
    status VARCHAR,
    dry_run BOOLEAN,
    policy_version VARCHAR,
    requested_by VARCHAR,
    PRIMARY KEY (tick_id)
);

CREATE TABLE IF NOT EXISTS snapshots (
    tick_id UUID NOT NULL,
    installation_id VARCHAR,
    taken_at TIMESTAMP WITH TIME ZONE,
    mode INTEGER,
    max_current_a DOUBLE,
    available_current_l1_a DOUBLE,
    available_current_l2_a DOUBLE,
    available_current_l3_a DOUBLE,
    switch_current_a DOUBLE,
    meter_at TIMESTAMP WITH TIME ZONE,
    grid_current_l1_a DOUBLE,
    grid_current_l2_a DOUBLE,
    grid_current_l3_a DOUBLE,
    pv_power_w DOUBLE,
    ev_power_w DOUBLE,
    oldest_input_age_s DOUBLE,
    payload JSON,
    PRIMARY KEY (tick_id)
);

CREATE TABLE IF NOT EXISTS forecasts (
    tick_id UUID NOT NULL,
    installation_id VARCHAR,
    issued_at TIMESTAMP WITH TIME ZONE,
    target_start TIMESTAMP WITH TIME ZONE NOT NULL,
    horizon_s DOUBLE,
    provider VARCHAR NOT NULL,
    quantity VARCHAR NOT NULL,
    phase INTEGER NOT NULL,
    quantile DOUBLE NOT NULL,
    value DOUBLE,
    cold_start BOOLEAN,
    PRIMARY KEY (tick_id, provider, quantity, phase, quantile, target_start)
);

CREATE TABLE IF NOT EXISTS decisions (
    tick_id UUID NOT NULL,
    installation_id VARCHAR,
    decided_at TIMESTAMP WITH TIME ZONE,
    policy_mode VARCHAR,
    reason VARCHAR,
    binding_constraint VARCHAR,
    setpoint_l1_a DOUBLE,
    setpoint_l2_a DOUBLE,
    setpoint_l3_a DOUBLE,
    phases INTEGER,
    switch_current_a DOUBLE,
    write_needed BOOLEAN,
    safety_reduction BOOLEAN,
    dry_run BOOLEAN,
    policy_version VARCHAR,
    candidates JSON,
    PRIMARY KEY (tick_id)
);

CREATE TABLE IF NOT EXISTS write_intents (
    intent_id UUID NOT NULL,
    tick_id UUID,
    installation_id VARCHAR,
    created_at TIMESTAMP WITH TIME ZONE,
    payload JSON,
    outcome VARCHAR,
    PRIMARY KEY (intent_id)
);

CREATE TABLE IF NOT EXISTS api_calls (
    call_id UUID NOT NULL,
    tick_id UUID,
    installation_id VARCHAR,
    called_at TIMESTAMP WITH TIME ZONE,
    endpoint VARCHAR,
    method VARCHAR,
    status INTEGER,
    attempts INTEGER,
    latency_ms DOUBLE,
    error VARCHAR,
    PRIMARY KEY (call_id)
);

CREATE TABLE IF NOT EXISTS verifications (
    tick_id UUID NOT NULL,
    installation_id VARCHAR,
    verified_at TIMESTAMP WITH TIME ZONE,
    outcome VARCHAR,
    expected JSON,
    observed JSON,
    PRIMARY KEY (tick_id)
);

CREATE TABLE IF NOT EXISTS installation_settings_seen (
    installation_id VARCHAR NOT NULL,
    first_seen_at TIMESTAMP WITH TIME ZONE,
    settings JSON,
    PRIMARY KEY (installation_id)
);

CREATE TABLE IF NOT EXISTS charger_events (
    charger_id VARCHAR NOT NULL,
    state_id INTEGER NOT NULL,
    observed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    value VARCHAR,
    device_id VARCHAR,
    device_type INTEGER,
    installation_id VARCHAR,
    known_installation BOOLEAN,
    source VARCHAR,
    received_at TIMESTAMP WITH TIME ZONE,
    sequence_number BIGINT,
    PRIMARY KEY (charger_id, state_id, observed_at)
);

CREATE TABLE IF NOT EXISTS charger_state_latest (
    charger_id VARCHAR NOT NULL,
    state_id INTEGER NOT NULL,
    observed_at TIMESTAMP WITH TIME ZONE,
    value VARCHAR,
    source VARCHAR,
    received_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (charger_id, state_id)
);

CREATE TABLE IF NOT EXISTS event_quarantine (
    quarantine_id UUID NOT NULL,
    received_at TIMESTAMP WITH TIME ZONE,
    source VARCHAR,
    sequence_number BIGINT,
    message_id VARCHAR,
    error VARCHAR,
    raw BLOB,
    PRIMARY KEY (quarantine_id)
);

CREATE TABLE IF NOT EXISTS meter_readings (
    installation_id VARCHAR NOT NULL,
    measured_at TIMESTAMP WITH TIME ZONE NOT NULL,
    grid_current_l1_a DOUBLE,
    grid_current_l2_a DOUBLE,
    grid_current_l3_a DOUBLE,
    grid_power_l1_w DOUBLE,
    grid_power_l2_w DOUBLE,
    grid_power_l3_w DOUBLE,
    pv_power_w DOUBLE,
    source VARCHAR,
    received_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (installation_id, measured_at)
);

CREATE TABLE IF NOT EXISTS subscriptions (
    subscription_key VARCHAR NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE,
    last_activity_at TIMESTAMP WITH TIME ZONE,
    last_details_refresh_at TIMESTAMP WITH TIME ZONE,
    last_message_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (subscription_key)
);

CREATE TABLE IF NOT EXISTS subscription_renewals (
    renewal_id UUID NOT NULL,
    subscription_key VARCHAR,
    renewed_at TIMESTAMP WITH TIME ZONE,
    reason VARCHAR,
    outcome VARCHAR,
    messages_received INTEGER,
    PRIMARY KEY (renewal_id)
);

CREATE TABLE IF NOT EXISTS bench_results (
    result_id UUID NOT NULL,
    measured_at TIMESTAMP WITH TIME ZONE,
    version VARCHAR,
    benchmark VARCHAR,
    metric VARCHAR,
    value DOUBLE,
    baseline VARCHAR,
    PRIMARY KEY (result_id)
);

-- One row per merge: what it moved, how long it waited for the file lock, what it left behind.
CREATE TABLE IF NOT EXISTS storage_merges (
    merge_id UUID NOT NULL PRIMARY KEY,
    started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE,
    files INTEGER,
    rows_read BIGINT,
    rows_inserted BIGINT,
    lock_wait_s DOUBLE,
    attempts INTEGER
);
