"""The Kafka service of the local stack (KRaft broker + controller): config, storage, health."""

from __future__ import annotations

import base64
import secrets
import subprocess
from pathlib import Path

from adclick.priority import KAFKA_CGROUP, in_cgroup
from adclick.settings import Settings
from infra import artifacts
from infra.errors import StackError
from infra.java import java17_home
from infra.service import Service, tcp_open


def broker_name(n: int) -> str:
    """Broker 1 is ``kafka`` (the single broker of the local profile); the others ``kafka-<n>``."""
    return "kafka" if n == 1 else f"kafka-{n}"


def kafka_dir(s: Settings, n: int = 1) -> Path:
    return s.path(broker_name(n))


def controller_port(s: Settings, n: int) -> int:
    return s.kafka_controller_port + 2 * (n - 1)


def _kafka_properties(s: Settings, n: int = 1) -> str:
    d = kafka_dir(s, n)
    port, ctl = s.kafka_broker_port(n), controller_port(s, n)
    voters = _voters(s)
    rf, isr = s.kafka_replication_factor, s.kafka_min_insync_replicas
    return f"""# Rendered by adclick; edit settings, not this file.
process.roles=broker,controller
node.id={n}
controller.quorum.voters={voters}
listeners=PLAINTEXT://{s.bind_host}:{port},CONTROLLER://{s.bind_host}:{ctl}
advertised.listeners=PLAINTEXT://{s.bind_host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={d / "data"}
num.partitions={s.topic_partitions}
num.network.threads=2
num.io.threads=4
auto.create.topics.enable=false
default.replication.factor={rf}
min.insync.replicas={isr}
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={isr}
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={isr}
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


def _voters(s: Settings) -> str:
    return ",".join(f"{i}@{s.bind_host}:{controller_port(s, i)}" for i in range(1, s.kafka_brokers + 1))


def _cluster_id(s: Settings) -> str:
    """The KRaft cluster id every local broker's storage is formatted with (made once, kept)."""
    path = kafka_dir(s, 1) / "cluster.id"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("="))
    return path.read_text().strip()


def _check_quorum(s: Settings) -> None:
    """A KRaft log formatted for one set of voters does not start with another: say so plainly."""
    d = kafka_dir(s, 1)
    marker = d / "quorum"
    formatted = (d / "data" / "meta.properties").exists()
    before = marker.read_text().strip() if marker.is_file() else ("" if formatted else None)
    if formatted and before is not None and before != _voters(s) and (before or s.kafka_brokers > 1):
        raise StackError(
            f"the Kafka data in {d} belongs to a quorum of {before or 'one broker'}, not of "
            f"{s.kafka_brokers} brokers ({_voters(s)}): give this profile its own data directory "
            f"(ADCLICK_HOME) or remove {d} and the other kafka-* folders beside it"
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(_voters(s) + "\n")


def _prepare_kafka(s: Settings, n: int = 1) -> None:
    if n == 1:
        _check_quorum(s)
    d = kafka_dir(s, n)
    (d / "data").mkdir(parents=True, exist_ok=True)
    (d / "server.properties").write_text(_kafka_properties(s, n))
    (d / "log4j2.yaml").write_text(_KAFKA_LOG4J)
    if (d / "data" / "meta.properties").exists():
        return
    cluster_id = _cluster_id(s)
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


def kafka_healthy(s: Settings, n: int = 1) -> bool:
    """Broker ``n`` answers a metadata request on its own port."""
    port = s.kafka_broker_port(n)
    if not tcp_open(s.bind_host, port):
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=f"{s.bind_host}:{port}", request_timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def kafka_service(s: Settings, n: int = 1) -> Service:
    d = kafka_dir(s, n)
    java = java17_home(s) / "bin" / "java"
    broker = [
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
    ]
    return Service(
        name=broker_name(n),
        # Every click's 202 waits for the brokers' acks: they run in their own, heavier CPU cgroup.
        command=in_cgroup(KAFKA_CGROUP, s.kafka_cpu_weight, broker),
        port=s.kafka_broker_port(n),
        url=f"kafka://{s.bind_host}:{s.kafka_broker_port(n)}",
        health=lambda: kafka_healthy(s, n),
        prepare=lambda: _prepare_kafka(s, n),
        start_timeout=90,
    )


def kafka_services(s: Settings) -> list[Service]:
    """The local brokers: one, or ``kafka_brokers`` forming one KRaft quorum (the cluster profile's three)."""
    return [kafka_service(s, n) for n in range(1, s.kafka_brokers + 1)]


def is_broker(name: str) -> bool:
    return name == "kafka" or (name.startswith("kafka-") and name[6:].isdigit())
