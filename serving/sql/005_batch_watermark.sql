-- delta.serving.batch_watermark: one row, the daily batch's watermark as the serving views use it.
--
-- day: the latest day whose batch passed its gates (null while the batch has never advanced);
-- advanced_at: the latest advance, so a re-published day (same day, new advance) is seen too.
-- The query API compares (day, advanced_at) to invalidate its cache; analysts cannot read
-- delta.ops, so the value is exposed here (the view runs with its owner's rights).
CREATE OR REPLACE VIEW delta.serving.batch_watermark
SECURITY DEFINER AS
SELECT
    'daily_batch' AS pipeline,
    max(w.day) AS day,
    max(w.advanced_at) AS advanced_at
FROM delta.ops.batch_watermark AS w
WHERE w.pipeline = 'daily_batch';

-- @fallback: ops.batch_watermark not registered yet -> the batch has never advanced.
CREATE OR REPLACE VIEW delta.serving.batch_watermark
SECURITY DEFINER AS
SELECT
    'daily_batch' AS pipeline,
    CAST(NULL AS date) AS day,
    CAST(NULL AS timestamp(3) with time zone) AS advanced_at
