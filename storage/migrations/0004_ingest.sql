-- Which chargers each Service Bus subscription carries (the balance flow trusts ingested state
-- only for those); one row per (subscription, charger), the newest sighting wins.
CREATE TABLE IF NOT EXISTS subscription_chargers (
    subscription_key VARCHAR NOT NULL,
    charger_id VARCHAR NOT NULL,
    last_seen_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (subscription_key, charger_id)
);
