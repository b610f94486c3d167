-- delta.serving.archived_days: one row per (table, day) in the cold archive (docs/lifecycle.md):
-- where the raw events of an old day went, so a report on gold (kept for the whole retention)
-- can say which of its days can no longer be drilled into without a restore.
--
-- From ops.archive_manifest (the latest archive run of each day) and ops.lifecycle_log (whether
-- the day is restored into delta.restored.* right now). Columns: table_name (bronze.events,
-- bronze.rejects, silver.events), day, objects, rows, bytes, storage_class, archived_at,
-- restored (true while delta.restored.<layer>_<table> holds the day).
CREATE OR REPLACE VIEW delta.serving.archived_days
SECURITY DEFINER AS
WITH latest AS (
    SELECT m.*, max(m.archived_at) OVER (PARTITION BY m."table", m.day) AS last_at
    FROM delta.ops.archive_manifest AS m
),
restores AS (
    SELECT
        replace(substr(l."table", 10), '_', '.') AS table_name,
        l.day,
        max_by(l.action, l."at") AS last_action
    FROM delta.ops.lifecycle_log AS l
    WHERE l."table" LIKE 'restored.%' AND l.action IN ('restore', 'expire')
    GROUP BY 1, 2
)
SELECT
    a."table" AS table_name,
    a.day,
    count(*) AS objects,
    max(a.partition_rows) AS rows,
    sum(a.bytes) AS bytes,
    max(a.storage_class) AS storage_class,
    max(a.archived_at) AS archived_at,
    coalesce(max(r.last_action) = 'restore', false) AS restored
FROM latest AS a
LEFT JOIN restores AS r ON r.table_name = a."table" AND r.day = a.day
WHERE a.archived_at = a.last_at
GROUP BY a."table", a.day;

-- @fallback: nothing archived yet (ops.archive_manifest or ops.lifecycle_log not registered): no rows.
CREATE OR REPLACE VIEW delta.serving.archived_days
SECURITY DEFINER AS
SELECT
    CAST(NULL AS varchar) AS table_name,
    CAST(NULL AS date) AS day,
    CAST(NULL AS bigint) AS objects,
    CAST(NULL AS bigint) AS rows,
    CAST(NULL AS bigint) AS bytes,
    CAST(NULL AS varchar) AS storage_class,
    CAST(NULL AS timestamp(3) with time zone) AS archived_at,
    CAST(NULL AS boolean) AS restored
WHERE false
