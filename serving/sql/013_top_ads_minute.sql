-- delta.serving.top_ads_minute: one row per (window_start minute, ad) among the top ads by
-- non-fraud clicks, straight from speed.top_ads_minute (the stream ranks every minute it touches).
--
-- rank is SQL RANK() on clicks descending: tied ads share a rank, so a minute can hold more rows
-- than the top N. Speed only, so is_final is always false; gold keeps no per-minute ranking (an
-- exact ranking of a past minute: rank serving.ad_clicks_minute's final rows).
--
-- Columns: window_start (timestamp(3) with time zone, UTC), day (date; prunes partitions), rank,
-- ad_id, clicks, is_final.
CREATE OR REPLACE VIEW delta.serving.top_ads_minute
SECURITY DEFINER AS
SELECT
    t.window_start,
    t.window_date AS day,
    t.rank,
    t.ad_id,
    t.clicks,
    false AS is_final
FROM delta.speed.top_ads_minute AS t
