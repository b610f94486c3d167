"""The batch layer: per-day silver (deduplicated, enriched, fraud-scored) and exact gold tables."""
