-- 0002: storage health as a view. The outbox lives outside the database, so the pending-file
-- columns are filled in by zapflow's own reader (`zapflow sql`, reports), which shadows this view
-- with one that adds the live outbox listing; a plain DuckDB session sees NULL there.
CREATE OR REPLACE VIEW storage_health AS
SELECT
    CAST(NULL AS BIGINT) AS pending_files,
    CAST(NULL AS DOUBLE) AS oldest_pending_age_s,
    (SELECT max(finished_at) FROM storage_merges) AS last_merge_at,
    (SELECT count(*) FROM storage_merges) AS merges,
    CAST((SELECT coalesce(sum(rows_inserted), 0) FROM storage_merges) AS BIGINT) AS rows_merged,
    (SELECT coalesce(sum(lock_wait_s), 0) FROM storage_merges) AS lock_wait_s_total,
    CAST((SELECT coalesce(sum(attempts - 1), 0) FROM storage_merges) AS BIGINT) AS lock_retries_total;
