-- delta.serving.ad_clicks_hourly: one row per (window_start hour, ad_id, campaign_id, country,
-- device_type [, advertiser_id, region]), lambda-merged at the batch watermark W.
--
--   * days <= W: gold.ad_clicks_hourly (day <= W), exact, is_final = true.
--   * days  > W: speed.ad_clicks_minute rolled up to hours (window_date > W, i.e.
--     window_start >= W + 1 day 00:00 UTC), is_final = false.
--   * W null (the batch never advanced): no gold row is final; every speed hour is served.
-- The boundary is the start of the day after W: no hour is served twice or missed. Gold rows of
-- days after W (written, but not through their gates yet) are not served.
--
-- unique_users on speed rows: Trino cannot read the stream's HLL sketches (Spark/DataSketches
-- binary), so the minutes' distinct-user estimates cannot be unioned here. unique_users is their
-- max (a lower bound: the hour has at least as many users as its busiest minute) and
-- unique_users_upper their sum (an upper bound: a user seen in several minutes counts in each).
-- On gold rows both are the exact count.
--
-- Columns: window_start (timestamp(3) with time zone, UTC), day (date; filter on it to prune
-- partitions), ad_id, campaign_id, advertiser_id (null on speed rows), country, region (null on
-- speed rows), device_type, impressions, clicks, fraud_clicks, conversions, cost_micros,
-- revenue_micros, unique_users, unique_users_upper, ctr, cvr, rpc_micros, cpa_micros (doubles,
-- null when the denominator is 0), is_final.
CREATE OR REPLACE VIEW delta.serving.ad_clicks_hourly
SECURITY DEFINER AS
WITH wm AS (
    SELECT max(day) AS day
    FROM delta.ops.batch_watermark
    WHERE pipeline = 'daily_batch'
),
final_hours AS (
    SELECT
        g.window_start,
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
        g.cost_micros,
        g.revenue_micros,
        g.unique_users,
        g.unique_users AS unique_users_upper,
        true AS is_final
    FROM delta.gold.ad_clicks_hourly AS g
    CROSS JOIN wm
    WHERE g.day <= wm.day
),
live_hours AS (
    SELECT
        date_trunc('hour', s.window_start) AS window_start,
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
        sum(s.cost_micros) AS cost_micros,
        sum(s.revenue_micros) AS revenue_micros,
        max(s.unique_users) AS unique_users,
        sum(s.unique_users) AS unique_users_upper,
        false AS is_final
    FROM delta.speed.ad_clicks_minute AS s
    CROSS JOIN wm
    WHERE wm.day IS NULL
       OR s.window_date > wm.day
    GROUP BY date_trunc('hour', s.window_start), s.window_date, s.ad_id, s.campaign_id, s.country,
             s.device_type
),
merged AS (
    SELECT * FROM final_hours
    UNION ALL
    SELECT * FROM live_hours
)
SELECT
    window_start, day, ad_id, campaign_id, advertiser_id, country, region, device_type,
    impressions, clicks, fraud_clicks, conversions, cost_micros, revenue_micros,
    unique_users, unique_users_upper,
    CAST(clicks AS double) / nullif(impressions, 0) AS ctr,
    CAST(conversions AS double) / nullif(clicks, 0) AS cvr,
    CAST(revenue_micros AS double) / nullif(clicks, 0) AS rpc_micros,
    CAST(cost_micros AS double) / nullif(conversions, 0) AS cpa_micros,
    is_final
FROM merged;

-- @fallback: gold.ad_clicks_hourly or ops.batch_watermark not registered yet (the batch never
-- ran): the speed minutes rolled up to hours, none final.
CREATE OR REPLACE VIEW delta.serving.ad_clicks_hourly
SECURITY DEFINER AS
WITH live_hours AS (
    SELECT
        date_trunc('hour', s.window_start) AS window_start,
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
        sum(s.cost_micros) AS cost_micros,
        sum(s.revenue_micros) AS revenue_micros,
        max(s.unique_users) AS unique_users,
        sum(s.unique_users) AS unique_users_upper,
        false AS is_final
    FROM delta.speed.ad_clicks_minute AS s
    GROUP BY date_trunc('hour', s.window_start), s.window_date, s.ad_id, s.campaign_id, s.country,
             s.device_type
)
SELECT
    window_start, day, ad_id, campaign_id, advertiser_id, country, region, device_type,
    impressions, clicks, fraud_clicks, conversions, cost_micros, revenue_micros,
    unique_users, unique_users_upper,
    CAST(clicks AS double) / nullif(impressions, 0) AS ctr,
    CAST(conversions AS double) / nullif(clicks, 0) AS cvr,
    CAST(revenue_micros AS double) / nullif(clicks, 0) AS rpc_micros,
    CAST(cost_micros AS double) / nullif(conversions, 0) AS cpa_micros,
    is_final
FROM live_hours
