-- delta.serving.ad_clicks_minute: one row per (window_start minute, ad_id, campaign_id, country,
-- device_type [, advertiser_id, region]), lambda-merged at the batch watermark W.
--
-- Gold has no minute table, so the final minutes are counted here from silver.events, the batch
-- layer's deduplicated, fraud-scored events: exact, the same definitions gold uses.
--   * days <= W: silver.events (event_date <= W), is_final = true. Rolled up to hours or days
--     they equal gold.ad_clicks_hourly / daily (same rows, same rules).
--   * days  > W: speed.ad_clicks_minute (window_date > W, i.e. window_start >= W + 1 day 00:00 UTC),
--     is_final = false; unique_users is the stream's HLL estimate.
--   * W null (the batch never advanced): every speed minute, is_final = false, nothing final.
-- The boundary is the start of the day after W: no minute is served twice or missed.
--
-- Columns: window_start (timestamp(3) with time zone, UTC), day (date of window_start: filter on
-- it too, it prunes both sources' partitions), ad_id, campaign_id, advertiser_id, country, region,
-- device_type, impressions, clicks, fraud_clicks, conversions, cost_micros, revenue_micros,
-- unique_users, is_final. The speed layer knows neither advertiser nor region: null on speed rows.
-- Null dimension values are 'unknown' (as in gold), so group keys are never null.
CREATE OR REPLACE VIEW delta.serving.ad_clicks_minute
SECURITY DEFINER AS
WITH wm AS (
    SELECT max(day) AS day
    FROM delta.ops.batch_watermark
    WHERE pipeline = 'daily_batch'
),
final_minutes AS (
    SELECT
        date_trunc('minute', e.event_time) AS window_start,
        e.event_date AS day,
        coalesce(e.ad_id, 'unknown') AS ad_id,
        coalesce(e.campaign_id, 'unknown') AS campaign_id,
        coalesce(e.advertiser_id, 'unknown') AS advertiser_id,
        coalesce(e.country, 'unknown') AS country,
        coalesce(e.region, 'unknown') AS region,
        coalesce(e.device_type, 'unknown') AS device_type,
        -- silver holds one row per distinct event_id, so count(*) counts distinct event ids
        count(*) FILTER (WHERE e.event_type = 'impression') AS impressions,
        count(*) FILTER (WHERE e.event_type = 'click' AND NOT coalesce(e.is_fraud, false)) AS clicks,
        count(*) FILTER (WHERE e.event_type = 'click' AND coalesce(e.is_fraud, false)) AS fraud_clicks,
        count(*) FILTER (WHERE e.event_type = 'conversion') AS conversions,
        coalesce(
            sum(e.cost_micros) FILTER (WHERE e.event_type = 'click' AND NOT coalesce(e.is_fraud, false)), 0
        ) AS cost_micros,
        coalesce(sum(e.revenue_micros) FILTER (WHERE e.event_type = 'conversion'), 0) AS revenue_micros,
        count(DISTINCT e.user_key) AS unique_users
    FROM delta.silver.events AS e
    CROSS JOIN wm
    WHERE e.event_date <= wm.day
      AND e.event_time IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
),
live_minutes AS (
    SELECT
        s.window_start,
        s.window_date AS day,
        s.ad_id,
        s.campaign_id,
        CAST(NULL AS varchar) AS advertiser_id,
        s.country,
        CAST(NULL AS varchar) AS region,
        s.device_type,
        s.impressions,
        s.clicks,
        s.fraud_clicks,
        s.conversions,
        s.cost_micros,
        s.revenue_micros,
        s.unique_users
    FROM delta.speed.ad_clicks_minute AS s
    CROSS JOIN wm
    WHERE wm.day IS NULL
       OR s.window_date > wm.day
)
SELECT
    window_start, day, ad_id, campaign_id, advertiser_id, country, region, device_type,
    impressions, clicks, fraud_clicks, conversions, cost_micros, revenue_micros, unique_users,
    true AS is_final
FROM final_minutes
UNION ALL
SELECT
    window_start, day, ad_id, campaign_id, advertiser_id, country, region, device_type,
    impressions, clicks, fraud_clicks, conversions, cost_micros, revenue_micros, unique_users,
    false AS is_final
FROM live_minutes;

-- @fallback: silver.events or ops.batch_watermark not registered yet (the batch never ran):
-- the speed minutes alone, none final.
CREATE OR REPLACE VIEW delta.serving.ad_clicks_minute
SECURITY DEFINER AS
SELECT
    s.window_start,
    s.window_date AS day,
    s.ad_id,
    s.campaign_id,
    CAST(NULL AS varchar) AS advertiser_id,
    s.country,
    CAST(NULL AS varchar) AS region,
    s.device_type,
    s.impressions,
    s.clicks,
    s.fraud_clicks,
    s.conversions,
    s.cost_micros,
    s.revenue_micros,
    s.unique_users,
    false AS is_final
FROM delta.speed.ad_clicks_minute AS s
