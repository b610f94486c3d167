-- delta.serving.top_ads_minute: one row per (window_start minute, ad) among the top 100 ads by
-- non-fraud clicks, ranked at read time from speed.ad_clicks_minute (clicks summed per ad over
-- campaign, country and device; ads without a click in the minute left out). The stream writes
-- no ranking of its own: one commit fewer per micro-batch, and always the minute table's counts.
--
-- rank is SQL RANK() on clicks descending: tied ads share a rank, so a minute can hold more rows
-- than 100. Speed only, so is_final is always false; gold keeps no per-minute ranking (an exact
-- ranking of a past minute: rank serving.ad_clicks_minute's final rows). The window is
-- partitioned by day as well as minute, so a filter on day (or window_start) reaches the scan of
-- the minute table's window_date partitions.
--
-- Columns: window_start (timestamp(3) with time zone, UTC), day (date; prunes partitions), rank
-- (bigint), ad_id, clicks (bigint), is_final.
CREATE OR REPLACE VIEW delta.serving.top_ads_minute
SECURITY DEFINER AS
SELECT
    ranked.window_start,
    ranked.day,
    ranked.rank,
    ranked.ad_id,
    ranked.clicks,
    false AS is_final
FROM (
    SELECT
        per_ad.window_start,
        per_ad.day,
        per_ad.ad_id,
        per_ad.clicks,
        rank() OVER (PARTITION BY per_ad.day, per_ad.window_start ORDER BY per_ad.clicks DESC) AS rank
    FROM (
        SELECT m.window_start, m.window_date AS day, m.ad_id, sum(m.clicks) AS clicks
        FROM delta.speed.ad_clicks_minute AS m
        GROUP BY m.window_start, m.window_date, m.ad_id
        HAVING sum(m.clicks) > 0
    ) AS per_ad
) AS ranked
WHERE ranked.rank <= 100
