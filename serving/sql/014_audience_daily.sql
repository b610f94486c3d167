-- delta.serving.audience_daily: one row per (day, ad_id, campaign_id, advertiser_id, region,
-- age_group, segment), from gold.audience_daily, final days only (day <= the batch watermark W;
-- nothing while the batch never advanced). No speed counterpart: the stream does not join users.
--
-- Demographic rows can single people out: the query API hides every group with fewer than
-- ADCLICK_K_ANONYMITY distinct users (unique_users is exact here). Analysts reading this view
-- directly are trusted with the raw rows.
--
-- Columns: day, ad_id, campaign_id, advertiser_id, region, age_group, segment, impressions,
-- clicks, fraud_clicks, conversions, cost_micros, revenue_micros, unique_users, ctr, cvr,
-- rpc_micros, cpa_micros, is_final (always true).
CREATE OR REPLACE VIEW delta.serving.audience_daily
SECURITY DEFINER AS
WITH wm AS (
    SELECT max(day) AS day
    FROM delta.ops.batch_watermark
    WHERE pipeline = 'daily_batch'
)
SELECT
    a.day,
    a.ad_id,
    a.campaign_id,
    a.advertiser_id,
    a.region,
    a.age_group,
    a.segment,
    a.impressions,
    a.clicks,
    a.fraud_clicks,
    a.conversions,
    a.cost_micros,
    a.revenue_micros,
    a.unique_users,
    CAST(a.clicks AS double) / nullif(a.impressions, 0) AS ctr,
    CAST(a.conversions AS double) / nullif(a.clicks, 0) AS cvr,
    CAST(a.revenue_micros AS double) / nullif(a.clicks, 0) AS rpc_micros,
    CAST(a.cost_micros AS double) / nullif(a.conversions, 0) AS cpa_micros,
    true AS is_final
FROM delta.gold.audience_daily AS a
CROSS JOIN wm
WHERE a.day <= wm.day
