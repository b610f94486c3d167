-- delta.serving.ad_clicks_daily: one row per (day, ad_id, campaign_id, country, device_type
-- [, advertiser_id, region]), lambda-merged at the batch watermark W.
--
--   * days <= W: gold.ad_clicks_daily (day <= W), exact, is_final = true.
--   * days  > W: speed.ad_clicks_minute rolled up to days (window_date > W), is_final = false.
--   * W null (the batch never advanced): no gold row is final; every speed day is served.
-- The boundary is the start of the day after W: no day is served twice or missed. Gold days after
-- W (written, but not through their gates yet) are not served.
--
-- unique_users on speed rows: the max of the minutes' HLL estimates (a lower bound; Trino cannot
-- union the stream's Spark sketches), unique_users_upper their sum (an upper bound). Exact on
-- gold rows (both columns).
--
-- Columns: day (date, UTC), ad_id, campaign_id, advertiser_id (null on speed rows), country,
-- region (null on speed rows), device_type, impressions, clicks, fraud_clicks, conversions,
-- unique_users, unique_users_upper, cost_micros, revenue_micros, ctr, cvr, rpc_micros, cpa_micros
-- (doubles, null when the denominator is 0), is_final.
CREATE OR REPLACE VIEW delta.serving.ad_clicks_daily
SECURITY DEFINER AS
WITH wm AS (
    SELECT max(day) AS day
    FROM delta.ops.batch_watermark
    WHERE pipeline = 'daily_batch'
),
final_days AS (
    SELECT
        g.day,
        g.ad_id,
        g.campaign_id,
        g.advertiser_id,
        g.country,
        g.region,
        g.device_type,
        g.impressions,
        g.clicks,
        g.fraud_clicks,
        g.conversions,
        g.unique_users,
        g.unique_users AS unique_users_upper,
        g.cost_micros,
        g.revenue_micros,
        true AS is_final
    FROM delta.gold.ad_clicks_daily AS g
    CROSS JOIN wm
    WHERE g.day <= wm.day
),
live_days AS (
    SELECT
        s.window_date AS day,
        s.ad_id,
        s.campaign_id,
        CAST(NULL AS varchar) AS advertiser_id,
        s.country,
        CAST(NULL AS varchar) AS region,
        s.device_type,
        sum(s.impressions) AS impressions,
        sum(s.clicks) AS clicks,
        sum(s.fraud_clicks) AS fraud_clicks,
        sum(s.conversions) AS conversions,
        max(s.unique_users) AS unique_users,
        sum(s.unique_users) AS unique_users_upper,
        sum(s.cost_micros) AS cost_micros,
        sum(s.revenue_micros) AS revenue_micros,
        false AS is_final
    FROM delta.speed.ad_clicks_minute AS s
    CROSS JOIN wm
    WHERE wm.day IS NULL
       OR s.window_date > wm.day
    GROUP BY s.window_date, s.ad_id, s.campaign_id, s.country, s.device_type
),
merged AS (
    SELECT * FROM final_days
    UNION ALL
    SELECT * FROM live_days
)
SELECT
    day, ad_id, campaign_id, advertiser_id, country, region, device_type,
    impressions, clicks, fraud_clicks, conversions, unique_users, unique_users_upper,
    cost_micros, revenue_micros,
    CAST(clicks AS double) / nullif(impressions, 0) AS ctr,
    CAST(conversions AS double) / nullif(clicks, 0) AS cvr,
    CAST(revenue_micros AS double) / nullif(clicks, 0) AS rpc_micros,
    CAST(cost_micros AS double) / nullif(conversions, 0) AS cpa_micros,
    is_final
FROM merged;

-- @fallback: gold.ad_clicks_daily or ops.batch_watermark not registered yet (the batch never
-- ran): the speed minutes rolled up to days, none final.
CREATE OR REPLACE VIEW delta.serving.ad_clicks_daily
SECURITY DEFINER AS
WITH live_days AS (
    SELECT
        s.window_date AS day,
        s.ad_id,
        s.campaign_id,
        CAST(NULL AS varchar) AS advertiser_id,
        s.country,
        CAST(NULL AS varchar) AS region,
        s.device_type,
        sum(s.impressions) AS impressions,
        sum(s.clicks) AS clicks,
        sum(s.fraud_clicks) AS fraud_clicks,
        sum(s.conversions) AS conversions,
        max(s.unique_users) AS unique_users,
        sum(s.unique_users) AS unique_users_upper,
        sum(s.cost_micros) AS cost_micros,
        sum(s.revenue_micros) AS revenue_micros,
        false AS is_final
    FROM delta.speed.ad_clicks_minute AS s
    GROUP BY s.window_date, s.ad_id, s.campaign_id, s.country, s.device_type
)
SELECT
    day, ad_id, campaign_id, advertiser_id, country, region, device_type,
    impressions, clicks, fraud_clicks, conversions, unique_users, unique_users_upper,
    cost_micros, revenue_micros,
    CAST(clicks AS double) / nullif(impressions, 0) AS ctr,
    CAST(conversions AS double) / nullif(clicks, 0) AS cvr,
    CAST(revenue_micros AS double) / nullif(clicks, 0) AS rpc_micros,
    CAST(cost_micros AS double) / nullif(conversions, 0) AS cpa_micros,
    is_final
FROM live_days
