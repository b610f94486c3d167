-- delta.serving.experiments_daily: one row per (day, experiment_id, variant, ad_id, campaign_id),
-- from gold.experiments_daily, final days only (day <= the batch watermark W; nothing while the
-- batch never advanced). A/B results are read from exact counts only: the stream does not
-- aggregate experiments.
--
-- Columns: day, experiment_id, variant, ad_id, campaign_id, impressions, clicks, fraud_clicks,
-- conversions, cost_micros, revenue_micros, unique_users, ctr, cvr, is_final (always true).
CREATE OR REPLACE VIEW delta.serving.experiments_daily
SECURITY DEFINER AS
WITH wm AS (
    SELECT max(day) AS day
    FROM delta.ops.batch_watermark
    WHERE pipeline = 'daily_batch'
)
SELECT
    x.day,
    x.experiment_id,
    x.variant,
    x.ad_id,
    x.campaign_id,
    x.impressions,
    x.clicks,
    x.fraud_clicks,
    x.conversions,
    x.cost_micros,
    x.revenue_micros,
    x.unique_users,
    CAST(x.clicks AS double) / nullif(x.impressions, 0) AS ctr,
    CAST(x.conversions AS double) / nullif(x.clicks, 0) AS cvr,
    true AS is_final
FROM delta.gold.experiments_daily AS x
CROSS JOIN wm
WHERE x.day <= wm.day
