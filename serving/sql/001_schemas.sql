-- The serving schema: views only (BI tools and the query API read here, never the layers below).
--
-- No location: the Delta Lake connector needs a schema location only for tables created without
-- one; views live in the metastore alone. The layer schemas (bronze, silver, speed, gold, ops,
-- dims) are created by serving/registry.py when it registers their tables.
CREATE SCHEMA IF NOT EXISTS delta.serving
