"""The S3-compatible store of the local stack (s3proxy, filesystem-backed): config and health."""

from __future__ import annotations

from pathlib import Path

from adclick.settings import Settings
from infra import artifacts
from infra.java import java17_home
from infra.service import Service, http_ok


def s3_dir(s: Settings) -> Path:
    return s.path("s3")


def _prepare_s3(s: Settings) -> None:
    d = s3_dir(s)
    (d / "data").mkdir(parents=True, exist_ok=True)
    props = d / "s3proxy.properties"
    props.write_text(
        "\n".join(
            [
                f"s3proxy.endpoint=http://{s.bind_host}:{s.s3_port}",
                "s3proxy.authorization=aws-v2-or-v4",
                # Trino's AWS SDK asks ListObjectsV2 for optional attributes s3proxy does not know.
                "s3proxy.ignore-unknown-headers=true",
                f"s3proxy.identity={s.s3_access_key}",
                f"s3proxy.credential={s.s3_secret_key.get_secret_value()}",
                "jclouds.provider=filesystem",
                f"jclouds.filesystem.basedir={d / 'data'}",
                f"jclouds.identity={s.s3_access_key}",
                f"jclouds.credential={s.s3_secret_key.get_secret_value()}",
            ]
        )
        + "\n"
    )
    props.chmod(0o600)


def s3_healthy(s: Settings) -> bool:
    return http_ok(f"{s.s3_endpoint}/", lambda r: r.status_code in (200, 403))


def s3_service(s: Settings) -> Service:
    d = s3_dir(s)
    java = java17_home(s) / "bin" / "java"
    return Service(
        name="s3",
        command=[
            str(java),
            "-Xmx256m",
            "-jar",
            str(artifacts.s3proxy_jar(s)),
            "--properties",
            str(d / "s3proxy.properties"),
        ],
        port=s.s3_port,
        url=s.s3_endpoint,
        health=lambda: s3_healthy(s),
        prepare=lambda: _prepare_s3(s),
        start_timeout=60,
        note=f"access key {s.s3_access_key}",
    )
