"""The services of the local stack: how each is configured, started and health-checked.

Every service binds to ``settings.bind_host`` (127.0.0.1) and keeps its state under
``ADCLICK_HOME``. Config files are rendered on every ``up`` from settings, so a changed port or
heap takes effect on the next start.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adclick.settings import PROJECT_ROOT, Settings
from infra import artifacts
from infra.errors import StackError
from infra.java import java17_home, trino_java_home


@dataclass
class Service:
    name: str
    command: list[str]
    port: int
    health: Callable[[], bool]
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    prepare: Callable[[], None] | None = None
    start_timeout: int = 120
    stop_wait: int = 30
    note: str = ""


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _http_ok(url: str, predicate: Callable[[httpx.Response], bool] = lambda r: r.status_code < 500) -> bool:
    try:
        return predicate(httpx.get(url, timeout=2))
    except httpx.HTTPError:
        return False


# --- Kafka --------------------------------------------------------------------------------------


def kafka_dir(s: Settings) -> Path:
    return s.path("kafka")


def _kafka_properties(s: Settings) -> str:
    d = kafka_dir(s)
    return f"""# Rendered by adclick; edit settings, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{s.bind_host}:{s.kafka_controller_port}
listeners=PLAINTEXT://{s.bind_host}:{s.kafka_port},CONTROLLER://{s.bind_host}:{s.kafka_controller_port}
advertised.listeners=PLAINTEXT://{s.bind_host}:{s.kafka_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={d / "data"}
num.partitions={s.topic_partitions}
num.network.threads=2
num.io.threads=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours={s.kafka_retention_hours}
log.segment.bytes=268435456
message.max.bytes=8388608
"""


_KAFKA_LOG4J = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: WARN
      - name: org.apache.kafka
        level: WARN
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


def _prepare_kafka(s: Settings) -> None:
    d = kafka_dir(s)
    (d / "data").mkdir(parents=True, exist_ok=True)
    (d / "server.properties").write_text(_kafka_properties(s))
    (d / "log4j2.yaml").write_text(_KAFKA_LOG4J)
    if (d / "data" / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    java = java17_home(s) / "bin" / "java"
    proc = subprocess.run(
        [
            str(java),
            "-cp",
            artifacts.kafka_classpath(s),
            f"-Dlog4j2.configurationFile={d / 'log4j2.yaml'}",
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "--config",
            str(d / "server.properties"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"formatting Kafka storage in {d / 'data'} failed:\n{proc.stdout}{proc.stderr}")


def kafka_healthy(s: Settings) -> bool:
    if not _tcp_open(s.bind_host, s.kafka_port):
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers, request_timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def kafka_service(s: Settings) -> Service:
    d = kafka_dir(s)
    java = java17_home(s) / "bin" / "java"
    return Service(
        name="kafka",
        command=[
            str(java),
            f"-Xms{s.kafka_heap}",
            f"-Xmx{s.kafka_heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={d / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={d / 'logs'}",
            "-cp",
            artifacts.kafka_classpath(s),
            "kafka.Kafka",
            str(d / "server.properties"),
        ],
        port=s.kafka_port,
        url=f"kafka://{s.kafka_bootstrap_servers}",
        health=lambda: kafka_healthy(s),
        prepare=lambda: _prepare_kafka(s),
        start_timeout=90,
    )


# --- Trino --------------------------------------------------------------------------------------


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
    if lake is not None:
        lake.mkdir(parents=True, exist_ok=True)
    (etc / "catalog" / f"{s.trino_catalog}.properties").write_text("\n".join(lines) + "\n")
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
    return _http_ok(
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


SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


# --- Airflow ------------------------------------------------------------------------------------


def airflow_dir(s: Settings) -> Path:
    return s.path("airflow")


def airflow_env(s: Settings) -> dict[str, str]:
    """Environment every Airflow process (and the ``airflow`` CLI) runs with."""
    d = airflow_dir(s)
    secret = _airflow_secret(d)
    return {
        "AIRFLOW_HOME": str(d),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(s.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(s.airflow_parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{s.airflow_admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(d / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{s.bind_host}:{s.airflow_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{d / 'airflow.db'}",
        "AIRFLOW__API__HOST": s.bind_host,
        "AIRFLOW__API__PORT": str(s.airflow_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secret,
        "AIRFLOW__API_AUTH__JWT_SECRET": secret,
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(d / "logs"),
        "AIRFLOW__TRIGGERER__DEFAULT_CAPACITY": "50",
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": s.bind_host,
        # The tasks read the same settings as the process that started the stack.
        **{k: v for k, v in os.environ.items() if k.startswith("ADCLICK_")},
        "ADCLICK_HOME": str(s.home),
        "SPARK_LOCAL_IP": s.bind_host,
        "NO_PROXY": "*",
    }


def _airflow_secret(d: Path) -> str:
    """The API/JWT secret, made once per data directory (never a constant in code)."""
    secret_file = d / "secret_key"
    if not secret_file.exists():
        d.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


def _prepare_airflow(s: Settings) -> None:
    d = airflow_dir(s)
    (d / "logs").mkdir(parents=True, exist_ok=True)
    passwords = d / "passwords.json"
    passwords.write_text(json.dumps({s.airflow_admin_user: s.airflow_admin_password.get_secret_value()}))
    passwords.chmod(0o600)
    proc = airflow_cli(s, "db", "migrate")
    if proc.returncode != 0:
        raise StackError(f"airflow db migrate failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    db = d / "airflow.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def _airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


def airflow_cli(
    s: Settings,
    *args: str,
    extra_env: dict[str, str] | None = None,
    capture: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run the airflow CLI against this stack (its environment, database and DAG folder)."""
    env = {**os.environ, **airflow_env(s), **(extra_env or {})}
    return subprocess.run(
        [_airflow_bin(), *args], env=env, capture_output=capture, text=True, check=False, timeout=timeout
    )


def airflow_json(stdout: str) -> Any:
    """The JSON of an airflow ``-o json`` command's output; log lines may precede it on stdout."""
    lines = [line for line in stdout.splitlines() if line.startswith(("[", "{"))]
    return json.loads(lines[-1]) if lines else []


def airflow_healthy(s: Settings) -> bool:
    def ok(r: httpx.Response) -> bool:
        if r.status_code != 200:
            return False
        body = r.json()
        return all(body.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler"))

    return _http_ok(f"{s.airflow_url}/api/v2/monitor/health", ok)


def airflow_services(s: Settings) -> list[Service]:
    """Airflow's standalone components, each its own supervised process."""
    env = airflow_env(s)
    base = [_airflow_bin()]
    api = Service(
        name="airflow-api-server",
        command=[*base, "api-server", "--host", s.bind_host, "--port", str(s.airflow_port), "--workers", "1"],
        env=env,
        port=s.airflow_port,
        url=f"{s.airflow_url}/",
        health=lambda: airflow_healthy(s),
        prepare=lambda: _prepare_airflow(s),
        start_timeout=180,
        note=f"login {s.airflow_admin_user} / {s.airflow_admin_password.get_secret_value()}",
    )
    # serve-logs binds every interface (hard-coded); on one machine the api-server reads task logs
    # from the shared log folder, so it is not started.
    others = [
        Service(name=f"airflow-{c}", command=[*base, c, *flags], env=env, port=0, health=lambda: True)
        for c, flags in (
            ("scheduler", ["--skip-serve-logs"]),
            ("dag-processor", []),
            ("triggerer", ["--skip-serve-logs"]),
        )
    ]
    return [api, *others]


# --- S3-compatible store ------------------------------------------------------------------------


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
    return _http_ok(f"{s.s3_endpoint}/", lambda r: r.status_code in (200, 403))


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


# --- adclick's own applications ---------------------------------------------------------------


def _adclick_bin() -> str:
    return str(Path(sys.executable).parent / "adclick")


def app_env(s: Settings) -> dict[str, str]:
    """The applications read the same settings as the process that started them."""
    return {
        "ADCLICK_HOME": str(s.home),
        "ADCLICK_ENV": s.env,
        "SPARK_LOCAL_IP": s.bind_host,
        "PYTHONUNBUFFERED": "1",
    }


def ingest_api_healthy(s: Settings) -> bool:
    return _http_ok(f"http://{s.bind_host}:{s.ingest_port}/v1/health", lambda r: r.status_code == 200)


def ingest_api_service(s: Settings) -> Service:
    return Service(
        name="ingest-api",
        command=[_adclick_bin(), "ingest-api"],
        env=app_env(s),
        port=s.ingest_port,
        url=f"http://{s.bind_host}:{s.ingest_port}/docs",
        health=lambda: ingest_api_healthy(s),
        start_timeout=60,
    )


def query_api_service(s: Settings) -> Service:
    return Service(
        name="query-api",
        command=[_adclick_bin(), "query-api"],
        env=app_env(s),
        port=s.query_port,
        url=f"http://{s.bind_host}:{s.query_port}/",
        note="dashboard; API docs at /docs",
        # 503 is healthy here: the API is up and says that Trino is not (yet).
        health=lambda: _http_ok(
            f"http://{s.bind_host}:{s.query_port}/v1/health", lambda r: r.status_code in (200, 503)
        ),
        start_timeout=60,
    )


def stream_healthy(s: Settings) -> bool:
    from adclick.stream_status import is_fresh

    return is_fresh(s)


def stream_service(s: Settings) -> Service:
    return Service(
        name="stream",
        command=[_adclick_bin(), "stream"],
        env=app_env(s),
        port=0,
        url="http://127.0.0.1:4040 (when ADCLICK_SPARK_UI=true)"
        if not s.spark_ui
        else f"http://{s.bind_host}:4040",
        health=lambda: stream_healthy(s),
        start_timeout=180,
        stop_wait=60,
    )


def all_services(s: Settings) -> list[Service]:
    infra = [kafka_service(s), s3_service(s), trino_service(s), *airflow_services(s)]
    return [*infra, ingest_api_service(s), query_api_service(s), stream_service(s)] if s.stack_apps else infra
