"""Serving layer: Trino catalog registration, serving views (SQL files) and the query API."""
