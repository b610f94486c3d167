-- delta.serving.job_runs_latest: one row per batch job (silver, gold, reconcile, ...), its latest
-- run from ops.job_runs (by started_at).
--
-- Analysts cannot read delta.ops; this view (run with its owner's rights, like batch_watermark)
-- exposes what a pipeline-health panel needs and no lineage; message (a failure's text) is cut to
-- 500 characters. Columns: job, run_id, day (the batch day it ran for), started_at, finished_at,
-- status (succeeded | failed), rows_in, rows_out, message.
CREATE OR REPLACE VIEW delta.serving.job_runs_latest
SECURITY DEFINER AS
SELECT
    r.job,
    r.run_id,
    r.day,
    r.started_at,
    r.finished_at,
    r.status,
    r.rows_in,
    r.rows_out,
    substr(r.message, 1, 500) AS message
FROM (
    SELECT j.*, row_number() OVER (PARTITION BY j.job ORDER BY j.started_at DESC, j.run_id DESC) AS nth
    FROM delta.ops.job_runs AS j
) AS r
WHERE r.nth = 1;

-- @fallback: ops.job_runs not registered yet (no batch job ran): no rows.
CREATE OR REPLACE VIEW delta.serving.job_runs_latest
SECURITY DEFINER AS
SELECT
    CAST(NULL AS varchar) AS job,
    CAST(NULL AS varchar) AS run_id,
    CAST(NULL AS date) AS day,
    CAST(NULL AS timestamp(3) with time zone) AS started_at,
    CAST(NULL AS timestamp(3) with time zone) AS finished_at,
    CAST(NULL AS varchar) AS status,
    CAST(NULL AS bigint) AS rows_in,
    CAST(NULL AS bigint) AS rows_out,
    CAST(NULL AS varchar) AS message
WHERE false
