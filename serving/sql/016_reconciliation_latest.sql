-- delta.serving.reconciliation_latest: one row per reconciled batch day, that day's latest check
-- (ops.reconciliation_summary keeps every check; re-running a day appends another).
--
-- Analysts cannot read delta.ops; this view (run with its owner's rights, like batch_watermark)
-- exposes only the checks' totals and verdicts, for the dashboard and GET /v1/pipeline.
-- Columns: day, speed_total, gold_total, diff (speed - gold), missed, over_counted, late_dropped,
-- late_counted, duplicates, fraud_reclassified, unexplained, total_drift, drift (unexplained /
-- gold total), passed, checked_at.
CREATE OR REPLACE VIEW delta.serving.reconciliation_latest
SECURITY DEFINER AS
SELECT
    c.day,
    c.speed_total,
    c.gold_total,
    c.diff,
    c.missed,
    c.over_counted,
    c.late_dropped,
    c.late_counted,
    c.duplicates,
    c.fraud_reclassified,
    c.unexplained,
    c.total_drift,
    c.drift,
    c.passed,
    c.checked_at
FROM (
    SELECT r.*, row_number() OVER (PARTITION BY r.day ORDER BY r.checked_at DESC) AS nth
    FROM delta.ops.reconciliation_summary AS r
) AS c
WHERE c.nth = 1;

-- @fallback: ops.reconciliation_summary not registered yet (no day reconciled): no rows.
CREATE OR REPLACE VIEW delta.serving.reconciliation_latest
SECURITY DEFINER AS
SELECT
    CAST(NULL AS date) AS day,
    CAST(NULL AS bigint) AS speed_total,
    CAST(NULL AS bigint) AS gold_total,
    CAST(NULL AS bigint) AS diff,
    CAST(NULL AS bigint) AS missed,
    CAST(NULL AS bigint) AS over_counted,
    CAST(NULL AS bigint) AS late_dropped,
    CAST(NULL AS bigint) AS late_counted,
    CAST(NULL AS bigint) AS duplicates,
    CAST(NULL AS bigint) AS fraud_reclassified,
    CAST(NULL AS bigint) AS unexplained,
    CAST(NULL AS double) AS total_drift,
    CAST(NULL AS double) AS drift,
    CAST(NULL AS boolean) AS passed,
    CAST(NULL AS timestamp(3) with time zone) AS checked_at
WHERE false
