"""Traffic for the pipeline: a deterministic synthetic ad-traffic generator with its ground truth,
a replay of the real TalkingData clicks, and sinks (NDJSON files, Kafka, the ingestion API).

Used by ``adclick generate`` / ``adclick replay`` (:mod:`traffic.commands`), the demo and the tests.
"""
