"""The S3 client of the project (the cold tier's store): one place that wires endpoint, keys and
path-style addressing from settings, for the stack (bucket creation) and the archive alike."""

from __future__ import annotations

from typing import Any

from adclick.settings import Settings


def client(settings: Settings) -> Any:
    """A boto3 S3 client for ``ADCLICK_S3_ENDPOINT`` (any S3-compatible store, or AWS itself)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        region_name=settings.s3_region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )
