"""The Trino coordinator of the local stack: config, Delta catalog, access control, health."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from adclick.settings import Settings
from infra import artifacts
from infra.java import trino_java_home
from infra.service import Service, http_ok


def trino_dir(s: Settings) -> Path:
    return s.path("trino")


def _prepare_trino(s: Settings) -> None:
    d = trino_dir(s)
    etc = d / "etc"
    (etc / "catalog").mkdir(parents=True, exist_ok=True)
    (d / "data").mkdir(parents=True, exist_ok=True)
    (d / "metastore").mkdir(parents=True, exist_ok=True)
    (etc / "node.properties").write_text(
        f"node.environment=adclick\nnode.id=adclick-coordinator\nnode.data-dir={d / 'data'}\n"
        f"node.bind-ip={s.bind_host}\n"
    )
    (etc / "jvm.config").write_text(
        "\n".join(
            [
                "-server",
                f"-Xmx{s.trino_heap}",
                f"-Xms{s.trino_heap}",
                "-XX:+UseG1GC",
                "-XX:G1HeapRegionSize=32M",
                "-XX:+ExplicitGCInvokesConcurrent",
                "-XX:+ExitOnOutOfMemoryError",
                "-XX:-OmitStackTraceInFastThrow",
                "-XX:ReservedCodeCacheSize=256M",
                "-XX:PerMethodRecompilationCutoff=10000",
                "-XX:PerBytecodeRecompilationCutoff=10000",
                "-Djdk.attach.allowAttachSelf=true",
                "-Djdk.nio.maxCachedBufferSize=2000000",
                "-Dfile.encoding=UTF-8",
                "-XX:+EnableDynamicAgentLoading",
                "-XX:ActiveProcessorCount=2",
            ]
        )
        + "\n"
    )
    (etc / "config.properties").write_text(
        "\n".join(
            [
                "coordinator=true",
                "node-scheduler.include-coordinator=true",
                f"http-server.http.port={s.trino_port}",
                f"discovery.uri=http://{s.bind_host}:{s.trino_port}",
                f"node.internal-address={s.bind_host}",
                "query.max-memory=2GB",
                "query.max-memory-per-node=1GB",
                "task.concurrency=2",
                "task.max-worker-threads=4",
                "catalog.management=static",
            ]
        )
        + "\n"
    )
    (etc / "log.properties").write_text("io.trino=INFO\n")
    lake = s.lake_local_path if s.lake_is_local else None
    lines = [
        "connector.name=delta_lake",
        "hive.metastore=file",
        f"hive.metastore.catalog.dir=local://{d / 'metastore'}",
        "delta.register-table-procedure.enabled=true",
        "delta.enable-non-concurrent-writes=true",
        "fs.native-local.enabled=true",
        "local.location=/",
    ]
    if s.lake_bucket:  # an s3a:// lake: Trino reads it through its native S3 file system
        lines += [
            "fs.native-s3.enabled=true",
            f"s3.endpoint={s.s3_endpoint}",
            f"s3.region={s.s3_region}",
            "s3.path-style-access=true",
            f"s3.aws-access-key={s.s3_access_key}",
            f"s3.aws-secret-key={s.s3_secret_key.get_secret_value()}",  # the file is the owner's only
        ]
    if lake is not None:
        lake.mkdir(parents=True, exist_ok=True)
    catalog = etc / "catalog" / f"{s.trino_catalog}.properties"
    catalog.write_text("\n".join(lines) + "\n")
    catalog.chmod(0o600)
    _write_access_control(s, etc)


def _write_access_control(s: Settings, etc: Path) -> None:
    """File-based access control (infra/trino/rules.json) with the configured user and catalog names."""
    src = Path(__file__).parent / "trino"
    rules = json.loads((src / "rules.json").read_text())
    names = {"admin": s.trino_user, "analyst": s.trino_analyst_user, "ingest": s.trino_ingest_user}
    for section in rules.values():
        for rule in section:
            if rule.get("user") in names:
                rule["user"] = re.escape(names[rule["user"]])
            if rule.get("catalog") == "delta":
                rule["catalog"] = re.escape(s.trino_catalog)
    (etc / "rules.json").write_text(json.dumps(rules, indent=2) + "\n")
    template = (src / "access-control.properties").read_text()
    (etc / "access-control.properties").write_text(template.replace("@RULES_FILE@", str(etc / "rules.json")))


def trino_healthy(s: Settings) -> bool:
    return http_ok(
        f"{s.trino_url}/v1/info", lambda r: r.status_code == 200 and not r.json().get("starting", True)
    )


def trino_service(s: Settings) -> Service:
    d = trino_dir(s)
    server = artifacts.trino_server_dir(s)
    java_home = trino_java_home(s)
    return Service(
        name="trino",
        command=[
            str(server / "bin" / "launcher"),
            "run",
            f"--etc-dir={d / 'etc'}",
            f"--data-dir={d / 'data'}",
        ],
        env={"JAVA_HOME": str(java_home), "PATH": f"{java_home / 'bin'}:{os.environ.get('PATH', '')}"},
        port=s.trino_port,
        url=f"{s.trino_url}/ui/",
        health=lambda: trino_healthy(s),
        prepare=lambda: _prepare_trino(s),
        start_timeout=180,
    )
